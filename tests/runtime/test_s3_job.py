"""A whole job with its store in S3 (the moto server over HTTP): fetch from the bucket, publish outputs to it.

The job runs as in a container: no project on disk (an empty project directory), the store given as a URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ReleaseNotFoundError
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.runtime.workdir import work_dir_name
from dbt_ferry.storage.s3 import S3Store
from tests.conftest import settled

pytestmark = pytest.mark.integration

PREFIX = "shop"


def _publish_to_s3(shop: Path, bucket: str, tmp_path: Path) -> S3Store:
    store = S3Store(bucket, PREFIX)
    built = package_release(load_project(shop), tmp_path / "build")
    result = publish_release(store, built, environment="local", promote=True)
    assert result.status == "published"
    return store


def _keys(bucket: str) -> set[str]:
    client = boto3.client("s3")
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def _empty_dir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.slow
def test_job_with_the_store_in_s3(
    prefect_api: str, bucket: str, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv("DBT_FERRY_ENV", raising=False)
    monkeypatch.delenv("DBT_FERRY_STORE", raising=False)
    _publish_to_s3(shop, bucket, tmp_path)
    released = _keys(bucket)

    request = JobRequest(
        environment="local",
        store=f"s3://{bucket}/{PREFIX}",
        project_dir=str(_empty_dir(tmp_path / "container")),
        work_dir=str(_empty_dir(tmp_path / "work")),
    )
    spec, fetched = prepare(request, cache_dir=tmp_path / "cache")
    assert fetched.manifest.version == "1.0.0"
    assert spec.channel_release is True
    report = execute(spec)

    assert report.exit_code == 0, report
    assert report.outcome == "dbt build passed"
    assert report.store_url == f"s3://{bucket}/{PREFIX}"
    assert report.summary is not None and report.summary.invocation_id
    invocation = report.summary.invocation_id
    keys = _keys(bucket)
    run = f"{PREFIX}/runs/local/{invocation}/"
    expected = {
        f"{PREFIX}/docs/local/index.html",
        f"{run}run_results.json",
        f"{run}manifest.json",
        f"{PREFIX}/state/local/manifest.json",
    }
    assert expected <= keys, sorted(keys - released)
    assert report.docs == "docs/local/index.html"
    assert report.state == ["state/local/manifest.json", "state/local/partial_parse.msgpack", "state/local/state.json"]

    client = boto3.client("s3")
    results = json.loads(client.get_object(Bucket=bucket, Key=f"{run}run_results.json")["Body"].read())
    assert results["args"]["which"] == "build"  # the command's results, not those of docs generate
    assert results["metadata"]["invocation_id"] == invocation
    index = client.get_object(Bucket=bucket, Key=f"{PREFIX}/docs/local/index.html")["Body"].read(5000)
    assert b"<html" in index.lower()
    # Nothing of the job leaks outside the prefix, and the work directory is cleaned up.
    everything = {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert all(key.startswith(f"{PREFIX}/") for key in everything)
    lock = work_dir_name("local", f"s3://{bucket}/{PREFIX}") + ".lock"
    assert settled(tmp_path / "work") == [lock]


def test_unpublished_version_lists_the_published_ones(bucket: str, shop: Path, tmp_path: Path) -> None:
    _publish_to_s3(shop, bucket, tmp_path)
    work = _empty_dir(tmp_path / "work")
    request = JobRequest(
        environment="local",
        version="9.9.9",
        store=f"s3://{bucket}/{PREFIX}",
        project_dir=str(_empty_dir(tmp_path / "container")),
        work_dir=str(work),
    )
    with pytest.raises(ReleaseNotFoundError) as raised:
        prepare(request, cache_dir=tmp_path / "cache")
    error = raised.value
    assert error.exit_code == 5
    assert f"version 9.9.9 not found in s3://{bucket}/{PREFIX}" in error.message
    assert error.hint == "published versions: 1.0.0"
    # The half-made work directory is removed; only the environment's lock file stays.
    assert [p.name for p in work.iterdir()] == [work_dir_name("local", f"s3://{bucket}/{PREFIX}") + ".lock"]
