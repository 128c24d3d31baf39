"""The Glue catalog with data in the S3 store, against the moto server over HTTP (Glue and S3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import GlueCatalogConfig, S3StoreConfig
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.schema import INVOCATIONS, NODE_RESULTS, SOURCE_FRESHNESS
from dbt_ferry.exports.tables import export_run

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"
NAMESPACE = "dbt_ferry"
PREFIX = "shop"


@pytest.fixture
def glue_catalog(bucket: str) -> Catalog:
    return open_catalog(
        GlueCatalogConfig(type="glue", region="eu-west-1"), S3StoreConfig(type="s3", bucket=bucket, prefix=PREFIX)
    )


def _keys(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _rows(catalog: Catalog, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog.load_table((NAMESPACE, table)).scan().to_arrow().to_pylist()
    return rows


def test_export_to_glue_and_s3(glue_catalog: Catalog, bucket: str) -> None:
    data = json.loads((FIXTURES / "skipped" / "run_results.json").read_text())
    invocation_id = data["metadata"]["invocation_id"]
    result = export_run(glue_catalog, NAMESPACE, FIXTURES / "skipped", environment="pro")
    assert result.rows == {INVOCATIONS: 1, NODE_RESULTS: 5}

    glue = boto3.client("glue", region_name="eu-west-1")
    assert glue.get_database(Name=NAMESPACE)["Database"]["Name"] == NAMESPACE
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=NAMESPACE)["TableList"]}
    assert set(tables) == {INVOCATIONS, NODE_RESULTS}
    for name in tables:
        table = glue.get_table(DatabaseName=NAMESPACE, Name=name)["Table"]
        assert table["Parameters"]["table_type"].upper() == "ICEBERG"
        metadata_location = table["Parameters"]["metadata_location"]
        assert metadata_location.startswith(f"s3://{bucket}/{PREFIX}/tables/")

    keys = _keys(bucket, f"{PREFIX}/tables/")
    for name in (INVOCATIONS, NODE_RESULTS):
        mine = [k for k in keys if f"/{name}/" in k]
        assert any(k.endswith(".metadata.json") and "/metadata/" in k for k in mine), mine
        assert any(k.endswith(".parquet") and "/data/" in k for k in mine), mine
    assert not _keys(bucket, "tables/")  # under the store's prefix, nowhere else

    nodes = {r["unique_id"]: r for r in _rows(glue_catalog, NODE_RESULTS)}
    assert set(nodes) == {r["unique_id"] for r in data["results"]}
    assert {r["environment"] for r in nodes.values()} == {"pro"}
    assert nodes["test.shop.assert_orders_fully_paid"]["failures"] == 3
    assert nodes["model.shop.fct_orders"]["status"] == "skipped"
    (invocation,) = _rows(glue_catalog, INVOCATIONS)
    assert (invocation["invocation_id"], invocation["n_skipped"], invocation["success"]) == (invocation_id, 2, False)

    # Idempotent: a second export leaves one copy, and a new commit (a new metadata file) in Glue.
    before = glue.get_table(DatabaseName=NAMESPACE, Name=NODE_RESULTS)["Table"]["Parameters"]["metadata_location"]
    export_run(glue_catalog, NAMESPACE, FIXTURES / "skipped", environment="pro")
    after = glue.get_table(DatabaseName=NAMESPACE, Name=NODE_RESULTS)["Table"]["Parameters"]["metadata_location"]
    assert after != before
    assert len(_rows(glue_catalog, NODE_RESULTS)) == 5
    assert len(_rows(glue_catalog, INVOCATIONS)) == 1


def test_second_run_and_freshness_in_glue(glue_catalog: Catalog, bucket: str) -> None:
    export_run(glue_catalog, NAMESPACE, FIXTURES / "microbatch", environment="pro")
    export_run(glue_catalog, NAMESPACE, FIXTURES / "freshness", environment="pro")
    export_run(glue_catalog, NAMESPACE, FIXTURES / "dbt18", environment="pro")
    glue = boto3.client("glue", region_name="eu-west-1")
    assert {t["Name"] for t in glue.get_tables(DatabaseName=NAMESPACE)["TableList"]} == {
        INVOCATIONS,
        NODE_RESULTS,
        SOURCE_FRESHNESS,
    }
    assert len(_rows(glue_catalog, INVOCATIONS)) == 3
    assert len(_rows(glue_catalog, NODE_RESULTS)) == 3 + 2
    freshness = {r["unique_id"]: r["status"] for r in _rows(glue_catalog, SOURCE_FRESHNESS)}
    assert freshness["source.shop.crm.contacts"] == "runtime error"
    # Another process (a fresh catalog object, as the next job would open) sees the same tables.
    reopened = open_catalog(
        GlueCatalogConfig(type="glue", region="eu-west-1"), S3StoreConfig(type="s3", bucket=bucket, prefix=PREFIX)
    )
    assert len(_rows(reopened, NODE_RESULTS)) == 5
