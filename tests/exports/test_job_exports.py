"""Real jobs (dbt-duckdb through a real Prefect server) write their results into the tables under the store."""

from __future__ import annotations

import io
import json
import logging
import re
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog import Catalog

from dbt_ferry import api
from dbt_ferry.cli.main import main
from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.schema import INVOCATIONS, NODE_RESULTS, SOURCE_FRESHNESS
from dbt_ferry.runtime.report import JobReport
from tests.conftest import free_port
from tests.runtime.conftest import RunJob

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMESPACE = "dbt_ferry"


def _catalog(store: Path) -> Catalog:
    return open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(store)))


def _rows(catalog: Catalog, table: str, invocation_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog.load_table((NAMESPACE, table)).scan().to_arrow().to_pylist()
    return [r for r in rows if r["invocation_id"] == invocation_id]


def _published(store: Path, invocation_id: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store / "runs" / "local" / invocation_id / name).read_text())
    return data


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _invocation_id(report: JobReport) -> str:
    assert report.summary is not None and report.summary.invocation_id, report
    return report.summary.invocation_id


def _cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process, like tests/cli/test_cli.py; its output is taken with redirect_stdout, not capsys:
    Prefect's console log handler, set up during the job, must not keep a capsys stream that pytest then closes."""
    stdout, stderr = io.StringIO(), io.StringIO()
    logger = logging.getLogger("dbt_ferry")  # the CLI configures it; give it back as it was
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)
    return code, stdout.getvalue(), stderr.getvalue()


def _assert_node_rows_match(store: Path, catalog: Catalog, invocation_id: str) -> list[dict[str, Any]]:
    """Every row of node_results against the published run_results.json and manifest.json, field by field."""
    results = _published(store, invocation_id, "run_results.json")["results"]
    nodes = _published(store, invocation_id, "manifest.json")["nodes"]
    rows = _rows(catalog, NODE_RESULTS, invocation_id)
    assert len(rows) == len(results)
    by_uid = {r["unique_id"]: r for r in rows}
    assert set(by_uid) == {r["unique_id"] for r in results}
    for result in results:
        row, node = by_uid[result["unique_id"]], nodes.get(result["unique_id"], {})
        kind, package, *_, last = result["unique_id"].split(".")
        if not node:  # an exposure (manifest["exposures"]): what the unique_id says
            assert kind == "exposure", result["unique_id"]
            node = {"resource_type": kind, "package_name": package, "name": last}
        adapter = result["adapter_response"] or {}
        timing = {t["name"]: t for t in result["timing"]}
        expected = {
            "environment": "local",
            "status": result["status"],
            "execution_time": result["execution_time"],
            "thread_id": result["thread_id"],
            "message": result["message"],
            "failures": result["failures"],
            "rows_affected": adapter.get("rows_affected"),
            "adapter_response": json.dumps(adapter, sort_keys=True) if adapter else None,
            "relation_name": result["relation_name"] or node.get("relation_name"),
            "resource_type": node.get("resource_type"),
            "package": node.get("package_name"),
            "name": node.get("name"),
            "compiled_code": None,  # off by default
            "compile_started_at": _ts(timing.get("compile", {}).get("started_at")),
            "compile_completed_at": _ts(timing.get("compile", {}).get("completed_at")),
            "execute_started_at": _ts(timing.get("execute", {}).get("started_at")),
            "execute_completed_at": _ts(timing.get("execute", {}).get("completed_at")),
        }
        assert {k: row[k] for k in expected} == expected, result["unique_id"]
    return rows


def _assert_invocation(
    catalog: Catalog, report: JobReport, invocation_id: str, *, exit_code: int, command: str = "build"
) -> dict[str, Any]:
    (row,) = _rows(catalog, INVOCATIONS, invocation_id)
    assert report.summary is not None
    assert (row["project"], row["environment"], row["release_version"]) == ("shop", "local", "1.0.0")
    assert (row["command"], row["target"], row["adapter_type"]) == (command, "local", "duckdb")
    assert (row["exit_code"], row["success"]) == (exit_code, exit_code == 0)
    assert row["dbt_version"].startswith("1.11")
    assert row["prefect_flow_run_id"] == report.flow_run_id
    assert row["started_at"] == report.started_at and row["completed_at"] == report.completed_at
    assert row["started_at"] <= row["completed_at"]
    assert row["elapsed_seconds"] == pytest.approx((row["completed_at"] - row["started_at"]).total_seconds())
    assert row["p_extraction_date"] == row["started_at"].date()
    assert row["n_total"] == len(report.summary.results)
    for status, count in report.summary.counts.items():
        assert row[f"n_{status.replace(' ', '_').replace('-', '_')}"] == count, status
    return row


def test_successful_run_is_exported(run_job: RunJob, shop: Path, store: Path) -> None:
    report = run_job()
    assert report.exit_code == 0, report
    invocation_id = _invocation_id(report)
    assert report.exported == {INVOCATIONS: 1, NODE_RESULTS: 55}
    assert not [p for p in report.problems if "export" in p]

    catalog = _catalog(store)
    assert (store / "tables" / "catalog.db").is_file()
    rows = _assert_node_rows_match(store, catalog, invocation_id)
    assert {r["status"] for r in rows} == {"success", "pass", "no-op"}
    assert any(r["rows_affected"] for r in rows if r["resource_type"] == "seed")
    invocation = _assert_invocation(catalog, report, invocation_id, exit_code=0)
    assert (invocation["n_success"], invocation["n_pass"], invocation["n_no_op"]) == (15, 39, 1)

    # The timing chart: published, offline, naming the models.
    assert report.timing == "docs/local/timing.html"
    html = (store / "docs" / "local" / "timing.html").read_text()
    assert (store / "runs" / "local" / invocation_id / "timing.html").is_file()
    assert not re.search(r"<(script|link|img)[^>]*\s(src|href)=", html)  # self-contained, no chart library
    assert len(html.encode()) < 100_000 and "plotly" not in html
    assert "model.shop.fct_orders" in html
    assert "Critical path" in html  # the job gives the chart the run's manifest, so its dependency graph

    # The history report, published after the export, beside the docs.
    assert report.history == "docs/local/history.html"
    history = (store / "docs" / "local" / "history.html").read_text()
    assert invocation_id in history and not re.search(r"<(script|link|img)[^>]*\s(src|href)=", history)

    # Re-export from the store through the CLI: one copy, the same values (ferry.json travels with the run).
    code, out, err = _cli(
        "export",
        "--env",
        "local",
        "--invocation",
        invocation_id,
        "--store",
        str(store),
        "--project-dir",
        str(shop),
    )
    assert (code, err) == (0, ""), err
    assert out.startswith(f"Exported {invocation_id}: invocations 1, node_results 55 rows in ")
    catalog = _catalog(store)
    assert _rows(catalog, INVOCATIONS, invocation_id) == [invocation]
    again = _rows(catalog, NODE_RESULTS, invocation_id)
    key = lambda r: r["unique_id"]  # noqa: E731
    assert sorted(again, key=key) == sorted(rows, key=key)
    assert len(catalog.load_table((NAMESPACE, NODE_RESULTS)).scan().to_arrow()) == 55


def _add_broken_model(shop: Path) -> None:
    (shop / "models" / "marts" / "broken.sql").write_text("select no_such_column from {{ ref('stg_orders') }}\n")


def test_failing_run_is_exported_and_history_lists_both(run_job: RunJob, shop: Path, store: Path) -> None:
    passed = run_job()
    assert passed.exit_code == 0, passed
    _add_broken_model(shop)
    failed = run_job()
    assert failed.exit_code == 1, failed
    assert failed.exported == {INVOCATIONS: 1, NODE_RESULTS: 56}
    passed_id, failed_id = _invocation_id(passed), _invocation_id(failed)
    assert passed_id != failed_id

    catalog = _catalog(store)
    rows = {r["unique_id"]: r for r in _assert_node_rows_match(store, catalog, failed_id)}
    broken = rows["model.shop.broken"]
    assert broken["status"] == "error"
    assert "no_such_column" in broken["message"]
    invocation = _assert_invocation(catalog, failed, failed_id, exit_code=1)
    assert invocation["n_error"] == 1
    _assert_invocation(catalog, passed, passed_id, exit_code=0)  # the first run is still there, untouched
    assert len(_rows(catalog, NODE_RESULTS, passed_id)) == 55

    history = api.history("local", project_dir=shop, store=str(store))
    assert [r.invocation_id for r in history.runs] == [failed_id, passed_id]  # newest first
    newest, oldest = history.runs
    assert (newest.success, newest.exit_code, newest.failures, newest.nodes) == (False, 1, 1, 56)
    assert (oldest.success, oldest.exit_code, oldest.failures, oldest.nodes) == (True, 0, 0, 55)
    assert {r.version for r in history.runs} == {"1.0.0"} and {r.command for r in history.runs} == {"build"}
    slow = {s.unique_id: s for s in history.slowest}
    assert slow and all(uid.split(".")[0] in ("model", "seed", "snapshot") for uid in slow)
    assert all(s.runs == 2 for s in slow.values())  # every slowest node succeeded in both runs
    assert "model.shop.broken" not in slow  # only successful runs are timed
    assert history.failing == []  # no test failed

    code, out, err = _cli(
        "history", "--env", "local", "--format", "json", "--store", str(store), "--project-dir", str(shop)
    )
    assert (code, err) == (0, ""), err
    data = json.loads(out)
    assert {"runs", "slowest", "failing"} <= set(data)
    assert [r["invocation_id"] for r in data["runs"]] == [failed_id, passed_id]
    assert data["environment"] == "local"
    assert data["runs"][0]["success"] is False and data["runs"][1]["success"] is True
    assert {s["unique_id"] for s in data["slowest"]} == set(slow)

    code, out, err = _cli("history", "--env", "local", "--store", str(store), "--project-dir", str(shop))
    assert (code, err) == (0, ""), err
    assert "FAILED" in out and "passed" in out and "Slowest models" in out


def test_ci_run_creates_no_tables(run_job: RunJob, store: Path) -> None:
    report = run_job("ci")
    assert report.exit_code == 0, report
    assert report.exported == {}
    assert report.timing is None
    assert not (store / "tables").exists()
    assert not (store / "docs").exists()


def test_unreachable_catalog_is_a_problem_not_an_exit_code(run_job: RunJob, shop: Path, store: Path) -> None:
    pyproject = shop / "pyproject.toml"
    section = '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    assert section in pyproject.read_text()
    rest = f'exports = {{ catalog = {{ type = "rest", uri = "http://127.0.0.1:{free_port()}" }} }}\n'
    pyproject.write_text(pyproject.read_text().replace(section, section + rest))
    report = run_job()
    assert report.exit_code == 0, report
    assert report.outcome == "dbt build passed"
    assert report.exported == {}
    (problem,) = [p for p in report.problems if "export" in p]
    assert problem.startswith("run results were not exported to the tables: ")
    assert not (store / "tables").exists()
    # Everything else was still published.
    assert report.docs == "docs/local/index.html" and report.timing == "docs/local/timing.html"
    assert (store / "runs" / "local" / _invocation_id(report) / "run_results.json").is_file()


SOURCES_YML = """\
sources:
  - name: raw
    schema: main
    tables:
      - name: orders
        config:
          loaded_at_field: "cast(ordered_on as timestamp)"
          freshness:
            warn_after: {count: 1, period: day}
"""


@pytest.mark.parametrize("docs", [None, False], ids=["docs-default", "no-docs"])
def test_source_freshness_job_is_exported(run_job: RunJob, shop: Path, store: Path, docs: bool | None) -> None:
    """`dbt-ferry run -- source freshness` (the README's example): dbt writes sources.json and no run_results.json."""
    (shop / "models" / "staging" / "_sources.yml").write_text(SOURCES_YML)
    built = run_job()  # loads the seeds the source reads
    assert built.exit_code == 0, built
    report = run_job(publish=False, dbt_args=("source", "freshness"), docs=docs)
    assert report.exit_code == 0, report  # stale data is a warning here
    (sources_file,) = [p for p in (store / "runs" / "local").glob("*/sources.json")]
    sources = json.loads(sources_file.read_text())
    freshness_id = sources["metadata"]["invocation_id"]
    assert [r["status"] for r in sources["results"]] == ["warn"]

    assert report.exported.get(SOURCE_FRESHNESS) == 1, (report.exported, report.problems, report.run_prefix)
    catalog = _catalog(store)
    (row,) = _rows(catalog, SOURCE_FRESHNESS, freshness_id)
    assert (row["unique_id"], row["status"], row["source_name"], row["table_name"]) == (
        "source.shop.raw.orders",
        "warn",
        "raw",
        "orders",
    )
    assert row["max_loaded_at"] == _ts(sources["results"][0]["max_loaded_at"])
    (invocation,) = _rows(catalog, INVOCATIONS, freshness_id)
    assert (invocation["command"], invocation["exit_code"], invocation["n_warn"]) == ("source freshness", 0, 1)
    assert _rows(catalog, NODE_RESULTS, freshness_id) == []
