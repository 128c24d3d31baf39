"""The environment's state is used only when trusted and intact: a digest per file, a KMS signature on S3.

The attack this guards against: whoever can write ``state/<env>/`` rewrites a node's SQL inside dbt's parse cache
(``partial_parse.msgpack``), and the next run would build it, since dbt trusts its own cache for unchanged files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import msgpack
import pytest

from dbt_ferry.runtime.state import (
    KmsTrust,
    LocalTrust,
    StateRecord,
    Untrusted,
    publish_state,
    read_record,
    restore_file,
    restore_parse_cache,
)
from dbt_ferry.runtime.uploads import FailedUploads
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store

PWNED = "select 'PWNED' as x"


def _target(tmp_path: Path) -> Path:
    target = tmp_path / "project" / "target"
    target.mkdir(parents=True)
    (target / "manifest.json").write_text('{"nodes": {}}')
    cache = {"nodes": {"model.shop.fct_orders": {"raw_code": "select 1 as id", "original_file_path": "models/f.sql"}}}
    (target / "partial_parse.msgpack").write_bytes(msgpack.packb(cache))
    return target


def _publish(store: object, target: Path, trust: object) -> list[str]:
    published = publish_state(
        store,  # type: ignore[arg-type]
        "pro",
        target,
        trust=trust,  # type: ignore[arg-type]
        release_version="1.0.0",
        build_id="b" * 16,
        invocation_id="inv-1",
        project_dir=target.parent,
        failed=(failed := FailedUploads()),
    )
    assert published.problems == [] and failed.keys == []
    return published.keys


def _tamper(store: object, name: str = "partial_parse.msgpack") -> bytes:
    key = f"state/pro/{name}"
    data = msgpack.unpackb(store.read_bytes(key), raw=False)  # type: ignore[attr-defined]
    data["nodes"]["model.shop.fct_orders"]["raw_code"] = PWNED
    evil = msgpack.packb(data)
    store.write_bytes(key, evil)  # type: ignore[attr-defined]
    return evil


def test_a_local_store_restores_intact_state_and_nothing_else(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    target = _target(tmp_path)
    keys = _publish(store, target, LocalTrust())
    assert keys == ["state/pro/manifest.json", "state/pro/partial_parse.msgpack", "state/pro/state.json"]
    record = StateRecord.model_validate_json(store.read_bytes("state/pro/state.json"))
    assert set(record.files) == {"manifest.json", "partial_parse.msgpack"}
    assert record.signature is None and record.project_dir == str(target.parent)

    restored = tmp_path / "restored"
    (restored / "target").mkdir(parents=True)
    assert restore_parse_cache(store, "pro", target.parent, LocalTrust())
    assert not restore_parse_cache(store, "pro", restored, LocalTrust())  # made at another path: dbt would misread

    cache = target / "partial_parse.msgpack"
    cache.unlink()
    _tamper(store)
    assert not restore_parse_cache(store, "pro", target.parent, LocalTrust())
    assert not cache.exists()  # nothing of the tampered bytes reached target/
    assert list(target.iterdir()) == [target / "manifest.json"]


@pytest.mark.integration
def test_unsigned_state_in_s3_is_never_used(bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = S3Store(bucket, "shop")
    target = _target(tmp_path)
    trust = Untrusted(store.url)
    _publish(store, target, trust)
    assert read_record(store, "pro", trust) is None
    assert "is used only when signed — set trust.state_key" in caplog.text


def _kms_key() -> str:
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/shop-dbt-ferry-pro-state", TargetKeyId=key)
    return str(key)


@pytest.mark.integration
def test_state_signed_with_kms_is_restored_and_a_forged_one_is_not(bucket: str, tmp_path: Path) -> None:
    store = S3Store(bucket, "shop")
    target = _target(tmp_path)
    key = _kms_key()
    trust = KmsTrust("alias/shop-dbt-ferry-pro-state")
    _publish(store, target, trust)
    record = read_record(store, "pro", trust)
    assert record is not None and record.signature is not None and record.signature.key == key
    (target / "partial_parse.msgpack").unlink()
    assert restore_parse_cache(store, "pro", target.parent, trust)
    (target / "partial_parse.msgpack").unlink()

    # The attacker rewrites the cache and its digest in the record: the signature no longer holds.
    evil = _tamper(store)
    forged = json.loads(store.read_bytes("state/pro/state.json"))
    forged["files"]["partial_parse.msgpack"] = {"size": len(evil), "sha256": hashlib.sha256(evil).hexdigest()}
    store.write_bytes("state/pro/state.json", json.dumps(forged).encode())
    assert read_record(store, "pro", trust) is None
    # ... or drops the signature, or signs with a key of their own.
    del forged["signature"]
    store.write_bytes("state/pro/state.json", json.dumps(forged).encode())
    assert read_record(store, "pro", trust) is None
    other = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    record = StateRecord.model_validate(forged)
    signed = record.model_copy(update={"signature": KmsTrust(other).sign(record.payload())})
    store.write_bytes("state/pro/state.json", signed.model_dump_json().encode())
    assert read_record(store, "pro", trust) is None
    assert not restore_parse_cache(store, "pro", target.parent, trust)
    assert not (target / "partial_parse.msgpack").exists()


def test_restore_file_checks_the_bytes_it_read(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    target = _target(tmp_path)
    _publish(store, target, LocalTrust())
    record = read_record(store, "pro", LocalTrust())
    assert record is not None
    assert restore_file(store, record, "manifest.json", tmp_path / "out" / "manifest.json")
    store.write_bytes("state/pro/manifest.json", b'{"nodes": {"x": 1}}')
    assert not restore_file(store, record, "manifest.json", tmp_path / "out2" / "manifest.json")
    assert not (tmp_path / "out2" / "manifest.json").exists()
    assert not restore_file(store, record, "sources.json", tmp_path / "out2" / "sources.json")  # not in the record
