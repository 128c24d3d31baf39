"""Publish, promote, list and fetch releases of the example project, on a local folder and on S3.

The S3 store talks HTTP to the moto server of ``conftest.py``; nothing of boto3 is mocked.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

import boto3
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import (
    IntegrityError,
    ReleaseConflictError,
    ReleaseNotFoundError,
    StoreError,
)
from dbt_ferry.core.manifest import ReleaseManifest
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.release.catalog import list_releases, read_channel, read_manifest
from dbt_ferry.release.fetch import PROVENANCE, fetch_release
from dbt_ferry.release.package import CODE_ARCHIVE, BuiltRelease, package_release
from dbt_ferry.release.publish import PublishResult, promote_release, publish_release
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store

PREFIX = "some/prefix"
MODEL = "models/staging/stg_orders.sql"


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("s3", id="s3", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    bucket = request.getfixturevalue("bucket")
    return S3Store(bucket, PREFIX)


class Builder:
    """Packages the copied project into fresh folders under ``tmp_path/builds``."""

    def __init__(self, project: Path, builds: Path) -> None:
        self.project = project
        self.builds = builds
        self.count = 0

    def __call__(self) -> BuiltRelease:
        self.count += 1
        return package_release(load_project(self.project), out=self.builds / f"build-{self.count}")

    def set_version(self, version: str) -> None:
        pyproject = self.project / "pyproject.toml"
        text, n = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{version}"', pyproject.read_text())
        assert n == 1
        pyproject.write_text(text)

    def edit_model(self, line: str) -> None:
        path = self.project / MODEL
        path.write_text(path.read_text() + f"\n-- {line}\n")


@pytest.fixture
def build(shop: Path, tmp_path: Path) -> Builder:
    return Builder(shop, tmp_path / "builds")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def artifact_path_key(manifest: ReleaseManifest, name: str) -> str:
    return f"releases/{manifest.version}/{manifest.build_id}/{name}"


def corrupt(store: ArtifactStore, key: str) -> bytes:
    """Flip one byte of ``key`` inside the store, behind its back; return the new content."""
    if isinstance(store, LocalStore):
        path = store.root / key
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        return bytes(data)
    assert isinstance(store, S3Store)
    client = boto3.client("s3")
    full = f"{store.prefix}/{key}"
    data = bytearray(client.get_object(Bucket=store.bucket, Key=full)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    client.put_object(Bucket=store.bucket, Key=full, Body=bytes(data))
    return bytes(data)


# --- publish and fetch --------------------------------------------------------------------------


def test_publish_then_fetch_gives_project_and_profile(
    store: ArtifactStore, build: Builder, shop: Path, tmp_path: Path
) -> None:
    built = build()
    result = publish_release(store, built)
    assert result.status == "published"
    assert result.store_url == store.url
    assert result.promoted is None
    assert read_manifest(store, "1.0.0") == built.manifest

    dest = tmp_path / "fetched" / "shop"
    fetched = fetch_release(store, "local", dest, version="1.0.0")
    assert fetched.project_dir == dest
    assert fetched.profiles_dir == dest
    assert fetched.manifest == built.manifest
    assert fetched.env_dir is None

    got = tree(dest)
    assert got.pop("profiles.yml") == (shop / "profiles" / "local.yml").read_bytes()
    assert ReleaseManifest.model_validate_json(got.pop(PROVENANCE)) == built.manifest
    expected = {k: v for k, v in tree(shop).items() if not k.startswith("profiles/")}
    assert got == expected
    assert MODEL in got and "dbt_project.yml" in got
    # Nothing left over beside the destination.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["shop"]


def test_fetch_picks_the_profile_of_the_environment(
    store: ArtifactStore, build: Builder, shop: Path, tmp_path: Path
) -> None:
    publish_release(store, build())
    dest = tmp_path / "ci"
    fetch_release(store, "ci", dest, version="1.0.0")
    assert (dest / "profiles.yml").read_bytes() == (shop / "profiles" / "ci.yml").read_bytes()


def test_fetch_environment_without_profile_is_refused(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "nope"
    with pytest.raises(ReleaseNotFoundError, match="no profile for environment qa"):
        fetch_release(store, "qa", dest, version="1.0.0")
    assert not dest.exists()


def test_publish_identical_build_again_is_unchanged(store: ArtifactStore, build: Builder) -> None:
    first = build()
    publish_release(store, first)
    stored = store.read_bytes("releases/1.0.0/release.json")

    again = build()  # a fresh package of the same tree
    assert again.directory != first.directory
    assert again.manifest.build_id == first.manifest.build_id
    assert publish_release(store, again).status == "unchanged"
    assert publish_release(store, first).status == "unchanged"
    assert store.read_bytes("releases/1.0.0/release.json") == stored


def test_publish_other_content_same_version_conflicts(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    old = build()
    publish_release(store, old)
    before = store.list_keys("releases/")

    build.edit_model("changed")
    new = build()
    assert new.manifest.version == old.manifest.version
    assert new.manifest.build_id != old.manifest.build_id

    with pytest.raises(ReleaseConflictError) as caught:
        publish_release(store, new)
    message = str(caught.value)
    assert "already published" in message
    assert old.manifest.build_id in message
    assert new.manifest.build_id in message
    assert caught.value.exit_code == 6
    # The store is untouched: same keys, same manifest.
    assert store.list_keys("releases/") == before
    assert read_manifest(store, "1.0.0").build_id == old.manifest.build_id


def test_publish_force_replaces_and_removes_old_build(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    old = build()
    publish_release(store, old)
    old_prefix = f"releases/1.0.0/{old.manifest.build_id}/"
    assert store.list_keys(old_prefix)

    build.edit_model("changed")
    new = build()
    result = publish_release(store, new, force=True)
    assert result.status == "replaced"
    assert store.list_keys(old_prefix) == []
    assert read_manifest(store, "1.0.0").build_id == new.manifest.build_id
    new_keys = store.list_keys(f"releases/1.0.0/{new.manifest.build_id}/")
    assert sorted(k.rsplit(f"{new.manifest.build_id}/", 1)[1] for k in new_keys) == sorted(
        a.name for a in new.manifest.artifacts
    )

    dest = tmp_path / "fetched"
    fetch_release(store, "local", dest, version="1.0.0")
    assert (dest / MODEL).read_text().endswith("-- changed\n")


def test_publish_with_promote_moves_the_channel(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    result = publish_release(store, build(), environment="local", promote=True)
    assert result.promoted is not None
    assert result.promoted.version == "1.0.0"
    channel = read_channel(store, "local")
    assert channel is not None and channel.version == "1.0.0"
    assert read_channel(store, "ci") is None

    fetched = fetch_release(store, "local", tmp_path / "dest")
    assert fetched.manifest.version == "1.0.0"


@pytest.mark.integration
def test_publish_to_missing_bucket_is_a_store_error(aws: str, build: Builder) -> None:
    store = S3Store("no-such-bucket-here", PREFIX)
    with pytest.raises(StoreError, match="bucket no-such-bucket-here does not exist"):
        publish_release(store, build())


# --- not found ----------------------------------------------------------------------------------


def test_promote_unknown_version_lists_published(store: ArtifactStore, build: Builder) -> None:
    publish_release(store, build())
    build.set_version("1.2.0")
    publish_release(store, build())
    with pytest.raises(ReleaseNotFoundError) as caught:
        promote_release(store, "local", "9.9.9")
    assert "9.9.9" in str(caught.value)
    assert "published versions: 1.2.0, 1.0.0" in str(caught.value)
    assert read_channel(store, "local") is None


def test_promote_in_empty_store_says_nothing_published(store: ArtifactStore) -> None:
    with pytest.raises(ReleaseNotFoundError, match="nothing is published"):
        promote_release(store, "local", "1.0.0")


def test_fetch_unknown_version_lists_published(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "dest"
    with pytest.raises(ReleaseNotFoundError) as caught:
        fetch_release(store, "local", dest, version="2.0.0")
    assert "version 2.0.0 not found" in str(caught.value)
    assert "published versions: 1.0.0" in str(caught.value)
    assert not dest.exists()


def test_fetch_without_channel_says_to_promote(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "dest"
    with pytest.raises(ReleaseNotFoundError) as caught:
        fetch_release(store, "local", dest)
    assert "no release is promoted in environment local" in str(caught.value)
    assert caught.value.hint is not None
    assert "dbt-ferry promote --env local" in caught.value.hint
    assert "published versions: 1.0.0" in caught.value.hint
    assert not dest.exists()


# --- listing, channels, rollback ----------------------------------------------------------------


def test_list_releases_newest_first_and_rollback(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    built: dict[str, BuiltRelease] = {}
    for version in ("1.2.0", "1.10.0", "1.0.0"):
        build.set_version(version)
        built[version] = build()
        publish_release(store, built[version])

    entries, channel = list_releases(store, "local")
    assert channel is None
    assert [e.manifest.version for e in entries] == ["1.10.0", "1.2.0", "1.0.0"]
    assert not any(e.current for e in entries)
    assert {e.manifest.version: e.manifest.build_id for e in entries} == {
        v: b.manifest.build_id for v, b in built.items()
    }

    first = promote_release(store, "local", "1.2.0")
    assert (first.version, first.previous) == ("1.2.0", None)
    entries, channel = list_releases(store, "local")
    assert channel is not None and channel.version == "1.2.0"
    assert [(e.manifest.version, e.current) for e in entries] == [
        ("1.10.0", False),
        ("1.2.0", True),
        ("1.0.0", False),
    ]

    second = promote_release(store, "local", "1.10.0")
    assert (second.version, second.previous) == ("1.10.0", "1.2.0")
    assert [e.current for e in list_releases(store, "local")[0]] == [True, False, False]
    assert fetch_release(store, "local", tmp_path / "a").manifest.version == "1.10.0"

    rollback = promote_release(store, "local", "1.2.0")
    assert (rollback.version, rollback.previous) == ("1.2.0", "1.10.0")
    assert read_channel(store, "local") == rollback
    assert fetch_release(store, "local", tmp_path / "b").manifest.version == "1.2.0"
    # Other environments have their own channel.
    _, ci_channel = list_releases(store, "ci")
    assert ci_channel is None


# --- integrity ----------------------------------------------------------------------------------


def test_fetch_of_corrupt_code_archive_raises_and_leaves_nothing(
    store: ArtifactStore, build: Builder, tmp_path: Path
) -> None:
    built = build()
    publish_release(store, built)
    code = built.manifest.artifact(CODE_ARCHIVE)
    assert code is not None
    altered = corrupt(store, artifact_path_key(built.manifest, CODE_ARCHIVE))
    actual = hashlib.sha256(altered).hexdigest()
    assert actual != code.sha256

    parent = tmp_path / "fetched"
    dest = parent / "shop"
    with pytest.raises(IntegrityError) as caught:
        fetch_release(store, "local", dest, version="1.0.0")
    message = str(caught.value)
    assert CODE_ARCHIVE in message
    assert code.sha256 in message
    assert actual in message
    assert caught.value.exit_code == 7
    assert not dest.exists()
    assert list(parent.iterdir()) == []


def test_fetch_of_corrupt_profile_raises(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    built = build()
    publish_release(store, built)
    corrupt(store, artifact_path_key(built.manifest, "profiles/local.yml"))
    dest = tmp_path / "dest"
    with pytest.raises(IntegrityError, match=r"profiles/local\.yml"):
        fetch_release(store, "local", dest, version="1.0.0")
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dest")] == []
    # Another environment's profile is intact: that fetch still works.
    fetch_release(store, "ci", tmp_path / "ci", version="1.0.0")


def test_fetch_into_non_empty_directory_is_refused(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    (dest / "sub").mkdir()
    (dest / "sub" / "data.csv").write_text("a,b\n")
    before = tree(dest)

    with pytest.raises(StoreError, match="not empty"):
        fetch_release(store, "local", dest, version="1.0.0")
    assert tree(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt", "sub"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".busy")) == []


def test_fetch_onto_a_file_is_refused(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "afile"
    dest.write_text("x")
    with pytest.raises(StoreError):
        fetch_release(store, "local", dest, version="1.0.0")
    assert dest.read_text() == "x"


def test_fetch_into_existing_empty_directory(store: ArtifactStore, build: Builder, tmp_path: Path) -> None:
    publish_release(store, build())
    dest = tmp_path / "empty"
    dest.mkdir()
    fetch_release(store, "local", dest, version="1.0.0")
    assert (dest / "dbt_project.yml").is_file()
    assert json.loads((dest / PROVENANCE).read_text())["version"] == "1.0.0"


# --- concurrency --------------------------------------------------------------------------------


def _race(stores: list[ArtifactStore], releases: list[BuiltRelease]) -> list[PublishResult | BaseException]:
    barrier = threading.Barrier(len(releases))
    outcomes: list[PublishResult | BaseException | None] = [None] * len(releases)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = publish_release(stores[i], releases[i])
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(releases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


@pytest.mark.integration
def test_concurrent_publishes_of_one_version_one_wins(bucket: str, build: Builder, tmp_path: Path) -> None:
    # One store object (and boto3 client) per publisher, as two CI jobs would have.
    stores: list[ArtifactStore] = [S3Store(bucket, PREFIX), S3Store(bucket, PREFIX)]
    for s in stores:
        assert isinstance(s, S3Store)
        _ = s.client
    for i in range(5):
        version = f"2.0.{i}"
        build.set_version(version)
        build.edit_model(f"variant A {i}")
        a = build()
        a_model = (build.project / MODEL).read_text()
        build.edit_model(f"variant B {i}")
        b = build()
        assert a.manifest.build_id != b.manifest.build_id

        outcomes = _race(stores, [a, b])
        wins = [o for o in outcomes if isinstance(o, PublishResult)]
        losses = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(wins) == 1, f"round {i}: {outcomes!r}"
        assert len(losses) == 1 and isinstance(losses[0], ReleaseConflictError), f"round {i}: {outcomes!r}"
        winner = wins[0]
        assert winner.status == "published"
        assert winner.manifest.build_id in str(losses[0])

        dest = tmp_path / "fetched" / version
        fetched = fetch_release(stores[0], "local", dest, version=version)
        assert fetched.manifest.build_id == winner.manifest.build_id
        expected_model = (
            a_model if winner.manifest.build_id == a.manifest.build_id else (build.project / MODEL).read_text()
        )
        assert (dest / MODEL).read_text() == expected_model
        # The loser's artifacts are gone; only the winner's build remains.
        keys = stores[0].list_keys(f"releases/{version}/")
        builds = {k.split("/")[2] for k in keys if k.count("/") > 2}
        assert builds == {winner.manifest.build_id}
