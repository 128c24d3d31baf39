"""The parse-cache attack, on real jobs: a node's SQL rewritten inside ``state/<env>/partial_parse.msgpack``.

dbt trusts its own cache for files whose checksums did not change, so a rewritten ``raw_code`` would be built
into the warehouse. The job must not let it reach dbt: on a local store the cache has to match its digest; on S3
the record of the state has to carry the environment's KMS signature.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import duckdb
import msgpack
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store
from tests.conftest import publish_shop

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PWNED = "select 'PWNED' as order_id"
MODEL = "model.shop.fct_orders"


def _tamper(store: LocalStore | S3Store, *, forge_digest: bool) -> None:
    key = "state/local/partial_parse.msgpack"
    cache = msgpack.unpackb(store.read_bytes(key), raw=False, strict_map_key=False)
    cache["nodes"][MODEL]["raw_code"] = PWNED
    evil = msgpack.packb(cache)
    store.write_bytes(key, evil)
    if forge_digest:
        record = json.loads(store.read_bytes("state/local/state.json"))
        record["files"]["partial_parse.msgpack"] = {"size": len(evil), "sha256": hashlib.sha256(evil).hexdigest()}
        store.write_bytes("state/local/state.json", json.dumps(record).encode())


def _run(store_url: str, project: Path, tmp_path: Path, **options: object) -> JobReport:
    request = JobRequest(
        environment="local", store=store_url, project_dir=str(project), work_dir=str(tmp_path / "work"),
        no_prefect=True, docs=False, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    spec, _ = prepare(request, cache_dir=tmp_path / "cache")
    return execute(spec)


def _dbt_log(store: LocalStore | S3Store, report: JobReport) -> str:
    assert report.summary is not None
    return store.read_bytes(f"runs/local/{report.summary.invocation_id}/dbt.log").decode()


def _fct_orders_columns(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        return [row[0] for row in db.execute("describe main.fct_orders").fetchall()]


def test_a_tampered_parse_cache_in_a_local_store_is_not_used(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(warehouse))
    store_dir = tmp_path / "store"
    publish_shop(shop, store_dir)
    store = LocalStore(store_dir)
    assert _run(str(store_dir), shop, tmp_path).exit_code == 0
    intact = _run(str(store_dir), shop, tmp_path)
    assert "Partial parsing enabled" in _dbt_log(store, intact)  # the cache works when intact

    _tamper(store, forge_digest=False)
    report = _run(str(store_dir), shop, tmp_path)
    assert report.exit_code == 0, report
    assert "Partial parsing enabled" not in _dbt_log(store, report)  # parsed from the release's own files
    assert "PWNED" not in _dbt_log(store, report)
    assert "order_id" in _fct_orders_columns(warehouse) and len(_fct_orders_columns(warehouse)) > 1


def _publish_s3(shop: Path, bucket: str, tmp_path: Path, state_key: str | None) -> None:
    if state_key:
        pyproject = shop / "pyproject.toml"
        header = "[tool.dbt-ferry.environments.local]\n"
        trust = f'trust = {{ state_key = "{state_key}" }}\n'
        pyproject.write_text(pyproject.read_text().replace(header, header + trust))
    built = package_release(load_project(shop), tmp_path / "build")
    publish_release(S3Store(bucket, "shop"), built, environment="local", promote=True)


def test_state_in_s3_is_used_only_when_signed_by_the_environments_key(
    shop: Path, tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(warehouse))
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/shop-local-state", TargetKeyId=key)
    _publish_s3(shop, bucket, tmp_path, "alias/shop-local-state")
    store, url = S3Store(bucket, "shop"), f"s3://{bucket}/shop"
    container = tmp_path / "container"
    container.mkdir()

    first = _run(url, container, tmp_path)
    assert first.exit_code == 0, first
    assert first.state == ["state/local/manifest.json", "state/local/partial_parse.msgpack", "state/local/state.json"]
    record = json.loads(store.read_bytes("state/local/state.json"))
    assert record["signature"]["algorithm"] == "ECDSA_SHA_256" and record["signature"]["key"].endswith(key)
    second = _run(url, container, tmp_path)
    assert "Partial parsing enabled" in _dbt_log(store, second)

    # Whoever can write the bucket rewrites the cache and its digest; they cannot sign with the key.
    _tamper(store, forge_digest=True)
    third = _run(url, container, tmp_path)
    assert third.exit_code == 0, third
    assert "Partial parsing enabled" not in _dbt_log(store, third)
    assert "PWNED" not in _dbt_log(store, third)
    assert "its record's signature is not one of alias/shop-local-state" in caplog.text
    assert "order_id" in _fct_orders_columns(warehouse) and len(_fct_orders_columns(warehouse)) > 1
