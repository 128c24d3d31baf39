"""Who published a release: release.json read strictly, and signed with trust.release_key (KMS on moto).

Without a key, a changed release.json is refused wherever its fields stop making sense (a build id that is not
its artifacts', a commit that is not hex, a profile that names another environment, a version other than its
path's). With one, any change at all is refused, and so is an unsigned release — also by a job whose release key
comes from the container's environment (DBT_FERRY_RELEASE_KEY), which the release cannot unset.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import boto3
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import IntegrityError
from dbt_ferry.core.manifest import ReleaseManifest
from dbt_ferry.release.catalog import read_manifest
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import BuiltRelease, package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.release.trust import ReleaseTrust
from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store

KEY = "releases/1.0.0/release.json"


@pytest.fixture
def built(shop: Path, tmp_path: Path) -> BuiltRelease:
    return package_release(load_project(shop), tmp_path / "build")


def _edit(store: LocalStore, change: dict[str, object]) -> None:
    path = store.root / KEY
    data = json.loads(path.read_text())
    for field, value in change.items():
        if field.startswith("artifact."):
            data["artifacts"][1][field.removeprefix("artifact.")] = value
        else:
            data[field] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"build_id": "0123456789abcdef"}, "invalid build_id 0123456789abcdef (not that of its artifacts)"),
        ({"git_commit": "not-a-commit"}, "invalid git_commit"),
        ({"aws_accounts": {"pro": "33333333333"}}, "invalid aws_accounts entry 'pro'"),
        ({"python_version": "3.11; rm -rf /"}, "invalid python_version"),
        ({"artifact.environment": "pro"}, "invalid profile artifact"),
        ({"artifact.name": "../profiles/ci.yml"}, "invalid artifact name"),
        ({"version": "1.0.1"}, "describes version 1.0.1, not 1.0.0"),
    ],
)
def test_a_release_json_whose_fields_do_not_hold_is_refused(
    built: BuiltRelease, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    store = LocalStore(tmp_path / "store")
    publish_release(store, built)
    assert built.manifest.artifacts[1].kind == "profile"
    _edit(store, change)
    with pytest.raises(IntegrityError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(store, "1.0.0")


@pytest.fixture
def release_key(aws: str) -> str:
    answer = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    return str(answer["KeyMetadata"]["Arn"])


@pytest.mark.integration
def test_a_signed_release_refuses_every_change(
    built: BuiltRelease, bucket: str, release_key: str, tmp_path: Path
) -> None:
    store = S3Store(bucket, "shop")
    trust = ReleaseTrust(release_key)
    publish_release(store, built, environment="pro", promote=True, trust=trust)
    published = read_manifest(store, "1.0.0")
    assert published.signature is not None and published.signature.key == release_key
    assert fetch_release(store, "pro", tmp_path / "ok", with_env=False, trust=trust).manifest == published

    original = store.read_bytes(KEY)
    rng = random.Random(120)
    accepted = 0
    for _ in range(40):  # bounded: each one KMS Verify on the emulator
        data = bytearray(original)
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(7)
        store.write_bytes(KEY, bytes(data))
        try:
            trust.check(read_manifest(store, "1.0.0"), store.url)
        except IntegrityError:
            continue
        accepted += 1
    assert accepted == 0

    store.write_bytes(KEY, original)
    forged = json.loads(original)
    forged["git_commit"] = "0" * 40  # a field that still makes sense: only the signature tells
    store.write_bytes(KEY, json.dumps(forged).encode())
    with pytest.raises(IntegrityError, match=r"is not signed by .*: its release.json was changed"):
        fetch_release(store, "pro", tmp_path / "forged", with_env=False, trust=trust)
    assert not (tmp_path / "forged").exists()


@pytest.mark.integration
def test_a_job_with_a_release_key_refuses_an_unsigned_release_before_downloading_it(
    built: BuiltRelease, bucket: str, release_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store(bucket, "shop")
    publish_release(store, built, environment="local", promote=True)  # no key: unsigned
    assert ReleaseManifest.from_json(store.read_bytes(KEY), KEY).signature is None
    monkeypatch.setenv("DBT_FERRY_RELEASE_KEY", release_key)
    container = tmp_path / "container"
    container.mkdir()
    request = JobRequest(
        environment="local", store=f"s3://{bucket}/shop", project_dir=str(container), work_dir=str(tmp_path / "w"),
        no_prefect=True,
    )  # fmt: skip
    with pytest.raises(IntegrityError, match=f"release 1.0.0 in s3://{bucket}/shop is not signed, and {release_key}"):
        prepare(request, cache_dir=tmp_path / "cache", with_env=False)
    assert not any((tmp_path / "w").glob("*/project"))

    publish_release(store, built, environment="local", trust=ReleaseTrust(release_key))  # signs it now
    spec, _ = prepare(request, cache_dir=tmp_path / "cache", with_env=False)
    assert spec.manifest.signature is not None
