"""The result tables stay small in files as runs pile up: a day's partition is compacted past 16 files, old
snapshots expire, old metadata files go; every row stays readable and a re-export still replaces its rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.maintenance import COMPACT_ABOVE, METADATA_VERSIONS, expire_snapshots
from dbt_ferry.exports.schema import INVOCATIONS, NODE_RESULTS
from dbt_ferry.exports.tables import export_run
from tests.exports.synthetic import NAMESPACE, Result, SyntheticRun, write_run_dir


def _export(catalog: Catalog, tmp_path: Path, n: int, started: datetime) -> None:
    run = SyntheticRun(f"inv-{n:03d}", started, {f"model.shop.m{i}": Result("success", 1.0 + i) for i in range(5)})
    export_run(catalog, NAMESPACE, write_run_dir(tmp_path / f"run-{n}", run))


def test_a_busy_day_is_compacted_and_every_row_stays(tmp_path: Path) -> None:
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))
    day = datetime(2026, 11, 30, 1, tzinfo=UTC)
    runs = COMPACT_ABOVE + 8
    for n in range(runs):
        _export(catalog, tmp_path, n, day + timedelta(minutes=20 * n))
    _export(catalog, tmp_path, 3, day + timedelta(minutes=60))  # a retried export: its rows replaced, not doubled
    for name, per_run in ((INVOCATIONS, 1), (NODE_RESULTS, 5)):
        table = catalog.load_table((NAMESPACE, name))
        files = list(table.scan().plan_files())
        assert len(files) <= COMPACT_ABOVE, f"{name}: {len(files)} data files"
        rows = table.scan().to_arrow()
        assert rows.num_rows == runs * per_run
        assert sorted(set(rows["invocation_id"].to_pylist())) == [f"inv-{n:03d}" for n in range(runs)]
        assert table.properties["commit.manifest-merge.enabled"] == "true"
    metadata = list((tmp_path / "store" / "tables" / NAMESPACE / NODE_RESULTS / "metadata").glob("*.metadata.json"))
    assert len(metadata) <= METADATA_VERSIONS + 1


def test_snapshots_older_than_a_week_expire(tmp_path: Path) -> None:
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))
    for n in range(3):
        _export(catalog, tmp_path, n, datetime(2026, 11, 1 + n, tzinfo=UTC))
    table = catalog.load_table((NAMESPACE, INVOCATIONS))
    before = len(table.snapshots())
    assert expire_snapshots(table, now=datetime.now(UTC)) == 0  # all made just now
    assert expire_snapshots(table, now=datetime.now(UTC) + timedelta(days=8)) == before - 1  # all but the current
    table = catalog.load_table((NAMESPACE, INVOCATIONS))
    assert len(table.snapshots()) == 1 and table.scan().to_arrow().num_rows == 3
