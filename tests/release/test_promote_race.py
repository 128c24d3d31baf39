"""Concurrent promotes: the channel is written by compare-and-swap, so no promote's ``previous`` is lost."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import StorePreconditionError
from dbt_ferry.core.manifest import Channel
from dbt_ferry.core.names import channel_key
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.release.catalog import manifest_key, read_channel, read_manifest
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import promote_release, publish_release
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store

VERSIONS = [f"1.0.{i}" for i in range(1, 9)]


def _publish_versions(store: ArtifactStore, shop: Path, tmp_path: Path) -> None:
    """1.0.0 published for real, promoted; 1.0.1 … 1.0.8 as copies of its release.json under other versions."""
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = "[^"]*"$', 'version = "1.0.0"', pyproject.read_text()))
    publish_release(store, package_release(load_project(shop), tmp_path / "build"), environment="prod", promote=True)
    manifest = read_manifest(store, "1.0.0")
    for version in VERSIONS:
        store.write_bytes(manifest_key(version), manifest.model_copy(update={"version": version}).to_json())


#: One promote in a process of its own, started at the same moment as the others (a CLI run each, in effect).
PROMOTER = """
import sys, time
from pathlib import Path
from dbt_ferry.release.publish import promote_release
from dbt_ferry.storage.local import LocalStore
store, version, start = LocalStore(Path(sys.argv[1])), sys.argv[2], float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
channel = promote_release(store, "prod", version)
print(channel.version, channel.previous)
"""


def _assert_one_chain(promoted: list[tuple[str, str | None]], final: Channel | None) -> None:
    """Every promote replaced a different version: following ``previous`` from 1.0.0 visits all of them."""
    after = dict((previous, version) for version, previous in promoted)
    assert len(after) == len(promoted), f"two promotes replaced the same version: {promoted}"
    chain, current = [], "1.0.0"
    while current in after:
        current = after[current]
        chain.append(current)
    assert sorted(chain) == VERSIONS
    assert final is not None and final.version == chain[-1]


def test_concurrent_promotes_on_a_local_store_lose_no_previous(shop: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _publish_versions(store, shop, tmp_path)
    start = time.time() + 3  # every process has imported dbt-ferry by then
    command = [sys.executable, "-c", PROMOTER, str(store.root)]
    processes = [subprocess.Popen([*command, v, str(start)], stdout=subprocess.PIPE, text=True) for v in VERSIONS]
    promoted = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        version, previous = out.split()
        promoted.append((version, previous))
    _assert_one_chain(promoted, read_channel(store, "prod"))
    assert store.list_keys("channels/") == ["channels/prod.json"]  # the lock file is not a key


class _PromotedMeanwhile(S3Store):
    """A real S3 store on which another promote writes the channel right after this one has read it, once."""

    def __init__(self, bucket: str) -> None:
        super().__init__(bucket)
        self.raced = False

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        answer = super().read_versioned(key)
        if key == channel_key("prod") and not self.raced:
            self.raced = True
            promote_release(S3Store(self.bucket), "prod", "1.0.7")
        return answer


def test_a_promote_that_lost_the_race_on_s3_reads_the_channel_again(bucket: str, shop: Path, tmp_path: Path) -> None:
    # moto checks If-Match before it writes, not atomically with it: racing threads could both pass there,
    # so the interleaving is made deterministic here instead; real S3 evaluates the condition atomically.
    store = _PromotedMeanwhile(bucket)
    _publish_versions(store, shop, tmp_path)
    channel = promote_release(store, "prod", "1.0.3")
    assert (channel.version, channel.previous) == ("1.0.3", "1.0.7")  # not 1.0.0, which it read first
    assert read_channel(store, "prod") == channel


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_write_with_a_stale_tag_is_refused(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store: ArtifactStore = (
        LocalStore(tmp_path / "store") if kind == "local" else S3Store(request.getfixturevalue("bucket"))
    )
    store.write_bytes("channels/x.json", b"one")
    _data, tag = store.read_versioned("channels/x.json")
    store.write_bytes("channels/x.json", b"two", if_match=tag)
    with pytest.raises(StorePreconditionError):
        store.write_bytes("channels/x.json", b"three", if_match=tag)
    assert store.read_versioned("channels/x.json")[0] == b"two"
    with pytest.raises(StorePreconditionError):
        store.write_bytes("channels/x.json", b"four", if_absent=True)


def test_concurrent_force_publishes_leave_one_release_and_no_orphan_build(shop: Path, tmp_path: Path) -> None:
    """Four --force publishes of four builds of one version at once, over a published one: one wins, the others
    fail with one line, and the version's folder holds the winner's build only."""
    from concurrent.futures import ThreadPoolExecutor

    from dbt_ferry.core.errors import ReleaseConflictError
    from dbt_ferry.core.names import release_prefix

    store = LocalStore(tmp_path / "store")
    builds = []
    for n in range(5):
        (shop / "models" / "marts" / "extra.sql").write_text(f"select {n} as n\n")
        builds.append(package_release(load_project(shop), tmp_path / f"build-{n}"))
    publish_release(store, builds[0])

    def force(built: object) -> str:
        try:
            return publish_release(store, built, force=True).status  # type: ignore[arg-type]
        except ReleaseConflictError as exc:
            assert "\n" not in str(exc)
            return "lost"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(force, builds[1:]))
    assert outcomes.count("replaced") >= 1
    winner = read_manifest(store, "1.0.0")
    folders = {key.split("/")[2] for key in store.list_keys(release_prefix("1.0.0")) if key.count("/") >= 3}
    assert folders == {winner.build_id}, (outcomes, folders)
