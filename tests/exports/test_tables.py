"""The result tables from hand-written dbt artifacts, in a real SQLite-backed Iceberg catalog under tmp_path."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    TimestamptzType,
)

from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.core.runinfo import RUN_INFO_NAME, RunInfo
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.rows import node_table
from dbt_ferry.exports.schema import (
    INVOCATIONS,
    NODE_RESULTS,
    NODE_RESULTS_SCHEMA,
    PARTITION_COLUMN,
    SOURCE_FRESHNESS,
    STATUS_COUNTS,
    partition_spec,
)
from dbt_ferry.exports.tables import ExportError, export_run
from tests.conftest import free_port, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
NAMESPACE = "dbt_ferry"
RUN_FIXTURES = ("microbatch", "skipped", "minimal", "dbt18")
DBT_STATUS = {"no_op": "no-op", "runtime_error": "runtime error", "partial_success": "partial success"}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name / "run_results.json").read_text())
    return data


def _rows(catalog: Catalog, table: str, invocation_id: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog.load_table((NAMESPACE, table)).scan().to_arrow().to_pylist()
    return [r for r in rows if invocation_id is None or r["invocation_id"] == invocation_id]


def _by_uid(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in rows}


def _ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _copy(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / "runs" / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


# --- every fixture ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", RUN_FIXTURES)
def test_run_fixture_exports_and_reads_back(catalog: Catalog, fixture: str) -> None:
    data = _load(fixture)
    invocation_id = data["metadata"]["invocation_id"]
    result = export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local")
    assert result.invocation_id == invocation_id
    assert result.rows == {INVOCATIONS: 1, NODE_RESULTS: len(data["results"])}

    nodes = _rows(catalog, NODE_RESULTS)
    assert sorted(r["unique_id"] for r in nodes) == sorted(r["unique_id"] for r in data["results"])
    assert {r["invocation_id"] for r in nodes} == {invocation_id}
    assert {r["environment"] for r in nodes} == {"local"}
    for row in nodes:
        expected = next(r for r in data["results"] if r["unique_id"] == row["unique_id"])
        assert row["status"] == expected["status"]
        assert row["execution_time"] == pytest.approx(float(expected["execution_time"]))
        assert row["thread_id"] == expected.get("thread_id")
        assert row["message"] == expected.get("message")
        assert row["failures"] == expected.get("failures")
        assert row["rows_affected"] == ((expected.get("adapter_response") or {}).get("rows_affected"))
        assert row["resource_type"] == row["unique_id"].split(".")[0]
        assert row["package"] == "shop"
        timing = {t["name"]: t for t in expected.get("timing") or []}
        for step in ("compile", "execute"):
            for edge in ("started_at", "completed_at"):
                want = timing[step][edge] if step in timing else None
                assert row[f"{step}_{edge}"] == (_ts(want) if want else None), (row["unique_id"], step, edge)
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert invocation["invocation_id"] == invocation_id
    assert invocation["dbt_version"] == data["metadata"]["dbt_version"]
    assert invocation["command"] == data["args"]["which"]
    assert invocation["n_total"] == len(data["results"])
    assert invocation["elapsed_seconds"] == pytest.approx(data["elapsed_time"])
    assert invocation["started_at"] <= invocation["completed_at"]
    assert invocation["completed_at"] == _ts(data["metadata"]["generated_at"])
    assert invocation[PARTITION_COLUMN] == invocation["started_at"].astimezone(UTC).date()
    assert {r[PARTITION_COLUMN] for r in nodes} == {invocation[PARTITION_COLUMN]}


@pytest.mark.parametrize("fixture", RUN_FIXTURES)
def test_column_types(catalog: Catalog, fixture: str) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local")
    nodes = catalog.load_table((NAMESPACE, NODE_RESULTS))
    schema = nodes.schema()
    for column in ("compile_started_at", "compile_completed_at", "execute_started_at", "execute_completed_at"):
        assert schema.find_field(column).field_type == TimestamptzType()
    assert schema.find_field("execution_time").field_type == DoubleType()
    assert schema.find_field("rows_affected").field_type == LongType()
    assert schema.find_field("failures").field_type == LongType()
    assert schema.find_field("batch_results").field_type == StringType()
    assert schema.find_field(PARTITION_COLUMN).field_type == DateType()
    assert [f.name for f in nodes.spec().fields] == [PARTITION_COLUMN]

    arrow = nodes.scan().to_arrow().schema
    assert arrow.field("execute_started_at").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("execution_time").type == pa.float64()
    assert arrow.field("rows_affected").type == pa.int64()
    assert pa.types.is_string(arrow.field("batch_results").type) or pa.types.is_large_string(
        arrow.field("batch_results").type
    )
    assert arrow.field(PARTITION_COLUMN).type == pa.date32()

    invocations = catalog.load_table((NAMESPACE, INVOCATIONS)).schema()
    assert invocations.find_field("started_at").field_type == TimestamptzType()
    assert invocations.find_field("completed_at").field_type == TimestamptzType()
    assert invocations.find_field("elapsed_seconds").field_type == DoubleType()
    assert invocations.find_field("success").field_type == BooleanType()
    assert invocations.find_field("exit_code").field_type == IntegerType()
    assert invocations.find_field(PARTITION_COLUMN).field_type == DateType()


@pytest.mark.parametrize("fixture", (*RUN_FIXTURES, "freshness"))
def test_invocation_counts_match_statuses(catalog: Catalog, fixture: str) -> None:
    folder = FIXTURES / fixture
    artifact = folder / ("sources.json" if fixture == "freshness" else "run_results.json")
    results = json.loads(artifact.read_text())["results"]
    export_run(catalog, NAMESPACE, folder, environment="local")
    (row,) = _rows(catalog, INVOCATIONS)
    statuses = Counter(r["status"] for r in results)
    for status in STATUS_COUNTS:
        assert row[f"n_{status}"] == statuses.get(DBT_STATUS.get(status, status), 0), status
    assert row["n_total"] == len(results) == sum(row[f"n_{s}"] for s in STATUS_COUNTS)
    failed = any(statuses[s] for s in ("error", "fail", "runtime error"))
    assert row["success"] is (not failed)
    assert row["exit_code"] is None  # no ferry.json: dbt-ferry did not run this


# --- what each fixture is for -----------------------------------------------------------------------------------


def test_microbatch_batch_results_are_json_text(catalog: Catalog) -> None:
    data = _load("microbatch")
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")
    nodes = _by_uid(_rows(catalog, NODE_RESULTS))
    batch = nodes["model.shop.fct_events"]
    assert batch["status"] == "partial success"
    assert isinstance(batch["batch_results"], str)
    assert json.loads(batch["batch_results"]) == data["results"][1]["batch_results"]
    assert len(json.loads(batch["batch_results"])["successful"]) == 2
    assert json.loads(batch["adapter_response"]) == {"_message": "OK", "rows_affected": 1200}
    assert batch["rows_affected"] == 1200
    assert batch["relation_name"] == '"shop"."main"."fct_events"'
    assert nodes["seed.shop.events_raw"]["batch_results"] is None  # null stays null, not "null"
    assert nodes["test.shop.not_null_fct_events_event_id.5d7c6a3e21"]["name"] == "not_null_fct_events_event_id"
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert invocation["n_partial_success"] == 1
    assert invocation["started_at"] == _ts("2024-06-03T08:14:58.000001Z")  # dbt's invocation_started_at
    assert invocation[PARTITION_COLUMN] == date(2024, 6, 3)
    assert (invocation["target"], invocation["threads"], invocation["full_refresh"]) == ("local", 4, False)


def test_skipped_nodes_have_nulls(catalog: Catalog) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / "skipped", environment="local")
    nodes = _by_uid(_rows(catalog, NODE_RESULTS))
    for uid in ("model.shop.fct_orders", "test.shop.unique_fct_orders_order_id.0f2a6b1c9d"):
        skipped = nodes[uid]
        assert skipped["status"] == "skipped"
        assert skipped["adapter_response"] is None
        assert skipped["rows_affected"] is None
        assert skipped["execute_started_at"] is None and skipped["compile_completed_at"] is None
        assert skipped["execution_time"] == 0.0
    assert nodes["model.shop.stg_orders"]["adapter_response"] is None  # {} is no information either
    assert "no_such_column" in nodes["model.shop.stg_orders"]["message"]
    assert nodes["test.shop.assert_orders_fully_paid"]["failures"] == 3
    assert nodes["seed.shop.orders"]["rows_affected"] == 100
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert (invocation["n_skipped"], invocation["n_error"], invocation["n_fail"]) == (2, 1, 1)
    assert invocation["success"] is False
    assert invocation["full_refresh"] is True


def test_missing_optional_fields_and_unknown_fields(catalog: Catalog) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / "minimal", environment="local")
    nodes = _by_uid(_rows(catalog, NODE_RESULTS))
    model = nodes["model.shop.dim_customers"]
    assert (model["status"], model["execution_time"], model["message"]) == ("success", 1.25, "OK")
    for column in ("thread_id", "rows_affected", "failures", "adapter_response", "batch_results", "compiled_code"):
        assert model[column] is None, column
        assert nodes["snapshot.shop.snap_products"][column] is None, column
    assert nodes["snapshot.shop.snap_products"]["status"] == "no-op"
    assert nodes["snapshot.shop.snap_products"]["resource_type"] == "snapshot"
    assert set(model) == {f.name for f in NODE_RESULTS_SCHEMA.fields}  # unknown fields never become columns
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert (invocation["n_no_op"], invocation["n_success"], invocation["threads"]) == (1, 1, None)


def test_dbt_1_8_run_results_without_invocation_started_at(catalog: Catalog) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / "dbt18", environment="local")
    (invocation,) = _rows(catalog, INVOCATIONS)
    # started = generated_at - elapsed_time: 00:00:10 - 30 s, the evening before.
    assert invocation["started_at"] == datetime(2024, 3, 1, 23, 59, 40, tzinfo=UTC)
    assert invocation["completed_at"] == datetime(2024, 3, 2, 0, 0, 10, tzinfo=UTC)
    assert invocation[PARTITION_COLUMN] == date(2024, 3, 1)  # the day the run started, in UTC
    assert (invocation["dbt_version"], invocation["target"], invocation["threads"]) == ("1.8.9", "prod", 8)
    assert invocation["n_warn"] == 1 and invocation["success"] is True
    nodes = _by_uid(_rows(catalog, NODE_RESULTS))
    assert {r[PARTITION_COLUMN] for r in nodes.values()} == {date(2024, 3, 1)}
    assert nodes["model.shop.fct_daily_revenue"]["batch_results"] is None  # no such key before dbt 1.9
    assert nodes["test.shop.accepted_values_fct_orders_status.8a1b2c3d4e"]["failures"] == 2


# --- source freshness -------------------------------------------------------------------------------------------


def test_source_freshness_rows(catalog: Catalog) -> None:
    sources = json.loads((FIXTURES / "freshness" / "sources.json").read_text())
    invocation_id = sources["metadata"]["invocation_id"]
    result = export_run(catalog, NAMESPACE, FIXTURES / "freshness", environment="local")
    assert result.invocation_id == invocation_id
    assert result.rows == {INVOCATIONS: 1, SOURCE_FRESHNESS: 4}
    with pytest.raises(NoSuchTableError):  # a freshness run has no node results
        catalog.load_table((NAMESPACE, NODE_RESULTS))

    table = catalog.load_table((NAMESPACE, SOURCE_FRESHNESS))
    schema = table.schema()
    for column in ("max_loaded_at", "snapshotted_at"):
        assert schema.find_field(column).field_type == TimestamptzType()
    assert schema.find_field("max_loaded_at_time_ago_in_s").field_type == DoubleType()
    assert schema.find_field(PARTITION_COLUMN).field_type == DateType()

    rows = _by_uid(_rows(catalog, SOURCE_FRESHNESS))
    assert {uid: r["status"] for uid, r in rows.items()} == {
        "source.shop.raw.orders": "pass",
        "source.shop.raw.payments": "warn",
        "source.shop.crm.customers": "error",
        "source.shop.crm.contacts": "runtime error",
    }
    for expected in sources["results"]:
        row = rows[expected["unique_id"]]
        assert row["invocation_id"] == invocation_id
        assert (row["source_name"], row["table_name"]) == tuple(expected["unique_id"].split(".")[2:4])
        if expected["status"] == "runtime error":
            assert row["message"] == expected["error"]
            for column in ("max_loaded_at", "snapshotted_at", "max_loaded_at_time_ago_in_s", "criteria"):
                assert row[column] is None
            continue
        assert row["max_loaded_at"] == _ts(expected["max_loaded_at"])
        assert row["snapshotted_at"] == _ts(expected["snapshotted_at"])
        assert row["max_loaded_at_time_ago_in_s"] == expected["max_loaded_at_time_ago_in_s"]
        assert row["execution_time"] == expected["execution_time"]
        assert row["thread_id"] == expected["thread_id"]
        assert json.loads(row["criteria"]) == expected["criteria"]
        assert row["message"] is None
        assert row[PARTITION_COLUMN] == date(2024, 6, 6)

    (invocation,) = _rows(catalog, INVOCATIONS)
    assert invocation["invocation_id"] == invocation_id
    assert invocation["started_at"] == datetime(2024, 6, 6, 6, 0, tzinfo=UTC)
    assert (invocation["n_pass"], invocation["n_warn"], invocation["n_error"], invocation["n_runtime_error"]) == (
        1,
        1,
        1,
        1,
    )


def test_source_freshness_with_run_results_of_the_same_invocation(catalog: Catalog, tmp_path: Path) -> None:
    """Should a dbt write run_results.json for ``source freshness`` (args.which == "source"), it is no node result."""
    run_dir = _copy("freshness", tmp_path)
    sources = json.loads((run_dir / "sources.json").read_text())
    run_results = {
        "metadata": sources["metadata"] | {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
        "results": [
            {"status": "pass", "unique_id": "source.shop.raw.orders", "execution_time": 0.4, "timing": []},
            {"status": "warn", "unique_id": "source.shop.raw.payments", "execution_time": 0.3, "timing": []},
        ],
        "elapsed_time": 4.0,
        "args": {"which": "source", "threads": 2},
    }
    (run_dir / "run_results.json").write_text(json.dumps(run_results))
    result = export_run(catalog, NAMESPACE, run_dir, environment="local")
    assert result.rows == {INVOCATIONS: 1, SOURCE_FRESHNESS: 4}
    with pytest.raises(NoSuchTableError):
        catalog.load_table((NAMESPACE, NODE_RESULTS))
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert (invocation["command"], invocation["threads"]) == ("source", 2)


# --- idempotency ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", (*RUN_FIXTURES, "freshness"))
def test_exporting_twice_leaves_one_copy(catalog: Catalog, fixture: str) -> None:
    first = export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local")
    before = {name: _rows(catalog, name) for name in first.rows}
    second = export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local")
    assert second.rows == first.rows
    for name, rows in before.items():
        after = _rows(catalog, name)
        assert len(after) == first.rows[name]
        key = "invocation_id" if name == INVOCATIONS else "unique_id"
        assert sorted(after, key=lambda r: r[key]) == sorted(rows, key=lambda r: r[key])


@pytest.mark.parametrize("fixture", ["microbatch"])
def test_a_new_invocation_is_appended_without_the_delete(catalog: Catalog, fixture: str) -> None:
    """The job's export of what dbt just wrote skips the delete; promising it falsely would duplicate rows, which
    is why only the job (results written during it) makes the promise."""
    first = export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local", new_invocations=True)
    export_run(catalog, NAMESPACE, FIXTURES / fixture, environment="local", new_invocations=True)
    for name, count in first.rows.items():  # nothing deleted: the promise is the caller's
        assert len(_rows(catalog, name)) == 2 * count, name


def test_second_export_replaces_changed_rows(catalog: Catalog, tmp_path: Path) -> None:
    run_dir = _copy("microbatch", tmp_path)
    export_run(catalog, NAMESPACE, run_dir, environment="local")
    data = json.loads((run_dir / "run_results.json").read_text())
    data["results"][1]["status"] = "error"
    data["results"][1]["message"] = "all batches failed"
    data["results"][1]["batch_results"] = {
        "successful": [],
        "failed": [["2024-06-01T00:00:00Z", "2024-06-04T00:00:00Z"]],
    }
    (run_dir / "run_results.json").write_text(json.dumps(data))
    export_run(catalog, NAMESPACE, run_dir, environment="local")

    nodes = _rows(catalog, NODE_RESULTS)
    assert len(nodes) == 3
    model = _by_uid(nodes)["model.shop.fct_events"]
    assert (model["status"], model["message"]) == ("error", "all batches failed")
    assert json.loads(model["batch_results"]) == data["results"][1]["batch_results"]
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert (invocation["n_error"], invocation["n_partial_success"], invocation["success"]) == (1, 0, False)


def test_reexport_with_the_job_run_info_leaves_one_copy(catalog: Catalog, tmp_path: Path) -> None:
    """The job exports with its own times (ferry.json); a re-export of the same dbt run must replace those rows.

    Here the job's flow started before midnight and dbt's invocation after it: the job's partition is the day
    before the one dbt's own metadata gives.
    """
    run_dir = _copy("microbatch", tmp_path)
    info = RunInfo(
        project="shop",
        environment="local",
        release_version="1.0.0",
        started_at=datetime(2024, 6, 2, 23, 59, 30, tzinfo=UTC),
        completed_at=datetime(2024, 6, 3, 8, 15, 43, tzinfo=UTC),
        exit_code=0,
    )
    export_run(catalog, NAMESPACE, run_dir, info)
    export_run(catalog, NAMESPACE, run_dir, environment="local")  # e.g. `dbt-ferry export --run-dir target`
    assert len(_rows(catalog, INVOCATIONS)) == 1
    assert len(_rows(catalog, NODE_RESULTS)) == 3


def test_run_info_from_ferry_json(catalog: Catalog, tmp_path: Path) -> None:
    run_dir = _copy("skipped", tmp_path)
    started = datetime(2024, 6, 4, 1, 59, 0, tzinfo=UTC)
    info = RunInfo(
        project="shop",
        environment="pro",
        release_version="2.3.4",
        git_commit="abc1234",
        adapter_type="duckdb",
        command="build",
        select=("tag:daily", "fct_orders+"),
        threads=6,
        started_at=started,
        completed_at=started + timedelta(seconds=75),
        exit_code=1,
        prefect_flow_run_id="flow-run-1",
    )
    (run_dir / RUN_INFO_NAME).write_bytes(info.to_json())
    export_run(catalog, NAMESPACE, run_dir)
    (row,) = _rows(catalog, INVOCATIONS)
    assert (row["project"], row["environment"], row["release_version"], row["git_commit"]) == (
        "shop",
        "pro",
        "2.3.4",
        "abc1234",
    )
    assert (row["select"], row["threads"], row["exit_code"], row["success"]) == ("tag:daily fct_orders+", 6, 1, False)
    assert (row["started_at"], row["elapsed_seconds"]) == (started, 75.0)
    assert row["prefect_flow_run_id"] == "flow-run-1"
    assert {r["environment"] for r in _rows(catalog, NODE_RESULTS)} == {"pro"}


# --- two runs, schema evolution, user columns -------------------------------------------------------------------


def test_two_invocations_are_both_kept(catalog: Catalog) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")
    export_run(catalog, NAMESPACE, FIXTURES / "skipped", environment="local")
    ids = {_load(name)["metadata"]["invocation_id"]: name for name in ("microbatch", "skipped")}
    assert {r["invocation_id"] for r in _rows(catalog, INVOCATIONS)} == set(ids)
    nodes = _rows(catalog, NODE_RESULTS)
    assert Counter(r["invocation_id"] for r in nodes) == {i: len(_load(n)["results"]) for i, n in ids.items()}
    # Re-exporting one of them leaves the other alone.
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")
    assert len(_rows(catalog, NODE_RESULTS)) == len(nodes)
    assert len(_rows(catalog, INVOCATIONS)) == 2


def test_older_table_schema_gains_the_new_columns(catalog: Catalog) -> None:
    new_columns = [f.name for f in NODE_RESULTS_SCHEMA.fields if f.name != PARTITION_COLUMN][-2:]
    assert new_columns == ["batch_results", "compiled_code"]
    old_schema = Schema(*[f for f in NODE_RESULTS_SCHEMA.fields if f.name not in new_columns])
    assert old_schema.find_field(PARTITION_COLUMN).field_id == NODE_RESULTS_SCHEMA.find_field(PARTITION_COLUMN).field_id
    catalog.create_namespace(NAMESPACE)
    table = catalog.create_table(
        (NAMESPACE, NODE_RESULTS), schema=old_schema, partition_spec=partition_spec(old_schema)
    )
    assert "batch_results" not in {f.name for f in table.schema().fields}
    # Rows an older dbt-ferry wrote: the microbatch run under another invocation id, without the new columns.
    old = node_table(
        _load("microbatch"), None, RunInfo(project="shop", environment="local"), "old-run", date(2024, 5, 1)
    )
    table.append(old.drop_columns(new_columns).cast(table.schema().as_arrow()))

    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local", compiled_code=True)
    evolved = catalog.load_table((NAMESPACE, NODE_RESULTS))
    names = [f.name for f in evolved.schema().fields]
    assert set(new_columns) <= set(names)
    assert evolved.schema().find_field("batch_results").field_type == StringType()
    rows = evolved.scan().to_arrow().to_pylist()
    assert Counter(r["invocation_id"] for r in rows) == {
        "old-run": 3,
        _load("microbatch")["metadata"]["invocation_id"]: 3,
    }
    for row in rows:
        if row["invocation_id"] == "old-run":
            assert (row["batch_results"], row["compiled_code"]) == (None, None)
            assert row["status"] is not None and row[PARTITION_COLUMN] == date(2024, 5, 1)
        elif row["unique_id"] == "model.shop.fct_events":
            assert json.loads(row["batch_results"])["failed"] == [["2024-06-03T00:00:00Z", "2024-06-04T00:00:00Z"]]
            assert row["compiled_code"].startswith("select * from")


def test_user_added_column_is_kept_and_null(catalog: Catalog) -> None:
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")
    table = catalog.load_table((NAMESPACE, NODE_RESULTS))
    with table.update_schema() as update:
        update.add_column("owner_team", StringType())
    table = catalog.load_table((NAMESPACE, NODE_RESULTS))
    user_row = node_table(
        _load("minimal"), None, RunInfo(project="shop", environment="local"), "user-run", date(2024, 5, 2)
    )
    user_row = user_row.append_column("owner_team", pa.array(["analytics"] * user_row.num_rows, pa.large_string()))
    table.append(user_row.cast(table.schema().as_arrow()))

    export_run(catalog, NAMESPACE, FIXTURES / "skipped", environment="local")
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")  # re-export into the wider table
    table = catalog.load_table((NAMESPACE, NODE_RESULTS))
    assert "owner_team" in {f.name for f in table.schema().fields}
    rows = table.scan().to_arrow().to_pylist()
    teams = {(r["invocation_id"], r["owner_team"]) for r in rows}
    microbatch, skipped = (_load(n)["metadata"]["invocation_id"] for n in ("microbatch", "skipped"))
    assert teams == {("user-run", "analytics"), (microbatch, None), (skipped, None)}
    assert Counter(r["invocation_id"] for r in rows) == {"user-run": 2, microbatch: 3, skipped: 5}


def test_compiled_code_is_off_by_default(catalog: Catalog, tmp_path: Path) -> None:
    data = _load("microbatch")
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local")
    assert {r["compiled_code"] for r in _rows(catalog, NODE_RESULTS)} == {None}
    export_run(catalog, NAMESPACE, FIXTURES / "microbatch", environment="local", compiled_code=True)
    nodes = _by_uid(_rows(catalog, NODE_RESULTS))
    assert len(nodes) == 3
    for result in data["results"]:
        assert nodes[result["unique_id"]]["compiled_code"] == result["compiled_code"]
    assert nodes["model.shop.fct_events"]["compiled_code"] is not None


def test_compiled_code_from_the_manifest(catalog: Catalog, tmp_path: Path) -> None:
    run_dir = _copy("minimal", tmp_path)
    manifest = {
        "metadata": {"project_name": "shop"},
        "nodes": {
            "model.shop.dim_customers": {
                "resource_type": "model",
                "package_name": "shop",
                "name": "dim_customers",
                "relation_name": '"shop"."main"."dim_customers"',
                "compiled_code": "select * from customers",
            }
        },
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    export_run(catalog, NAMESPACE, run_dir, environment="local", compiled_code=True)
    model = _by_uid(_rows(catalog, NODE_RESULTS))["model.shop.dim_customers"]
    assert model["compiled_code"] == "select * from customers"
    assert model["relation_name"] == '"shop"."main"."dim_customers"'
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert invocation["project"] == "shop"  # from the manifest, when there is no ferry.json


# --- errors -----------------------------------------------------------------------------------------------------


def test_empty_folder_is_an_export_error(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"holds no run_results\.json or sources\.json"):
        export_run(catalog, NAMESPACE, tmp_path / "empty", environment="local")


def test_invalid_json_is_an_export_error(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run_results.json").write_text("{not json")
    with pytest.raises(ExportError, match="is not valid JSON"):
        export_run(catalog, NAMESPACE, tmp_path / "bad", environment="local")
    with pytest.raises(NoSuchTableError):
        catalog.load_table((NAMESPACE, INVOCATIONS))


def test_target_folder_after_build_then_freshness(catalog: Catalog, tmp_path: Path) -> None:
    """`dbt build`, then `dbt source freshness`, in one project: target/ holds the build's run_results.json and the
    freshness run's sources.json (dbt writes no run_results.json for freshness). The README says a dbt target/
    works for `dbt-ferry export --run-dir`: the freshness results must not be dropped."""
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(FIXTURES / "skipped" / "run_results.json", target)
    shutil.copy(FIXTURES / "freshness" / "sources.json", target)
    export_run(catalog, NAMESPACE, target, environment="local")
    freshness_id = json.loads((target / "sources.json").read_text())["metadata"]["invocation_id"]
    assert len(_rows(catalog, SOURCE_FRESHNESS, freshness_id)) == 4


# --- the export command -----------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # only this command's output
    return run_cli(capsys, *args)


def test_cli_export_from_a_run_dir(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ("--env", "local", "--project-dir", str(shop))
    for _ in range(2):
        code, out, err = _cli(capsys, "export", *project, "--run-dir", str(FIXTURES / "microbatch"))
        assert (code, err) == (0, "")
        assert out.startswith("Exported 0b3c1f7e-7d0e-4a38-9b41-000000000001: invocations 1, node_results 3 rows in ")
    # The sql catalog under the environment's store (.ferry/store in the project).
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(shop / ".ferry" / "store")))
    assert (shop / ".ferry" / "store" / "tables" / "catalog.db").is_file()
    assert len(_rows(catalog, NODE_RESULTS)) == 3
    (invocation,) = _rows(catalog, INVOCATIONS)
    assert (invocation["environment"], invocation["project"]) == ("local", "unknown")


def test_cli_export_to_an_unreachable_catalog_exits_10(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = shop / "pyproject.toml"
    section = '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    port = free_port()
    rest = f'exports = {{ catalog = {{ type = "rest", uri = "http://127.0.0.1:{port}" }} }}\n'
    pyproject.write_text(pyproject.read_text().replace(section, section + rest))
    code, out, err = _cli(
        capsys, "export", "--env", "local", "--project-dir", str(shop), "--run-dir", str(FIXTURES / "microbatch")
    )
    assert (code, out) == (10, "")
    assert err.startswith(f"Error: could not write the result tables (http://127.0.0.1:{port}): ")
    assert err.count("\n") == 1


def test_cli_export_of_an_unknown_invocation(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "export", "--env", "local", "--project-dir", str(shop), "--invocation", "nope")
    assert (code, out) == (5, "")
    assert err.startswith("Error: no run nope in ")
