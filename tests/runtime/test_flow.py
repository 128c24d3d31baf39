"""Real jobs: dbt-duckdb runs of the example project through a real Prefect server."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.logging.handlers import APILogWorker

from dbt_ferry.core.errors import DbtUsageError
from dbt_ferry.runtime.steps import needs_deps
from tests.runtime.conftest import RunJob

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _flow_run_details(flow_run_id: str) -> tuple[object, list[object], dict[str, list[str]], list[object]]:
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
        logs: dict[str, list[str]] = {}
        for task_run in task_runs:
            records = client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run.id])))
            logs[task_run.name] = [r.message for r in records]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]))
        )
    return flow_run, task_runs, logs, artifacts


def test_successful_job(run_job: RunJob, store: Path) -> None:
    report = run_job()
    assert report.exit_code == 0, report
    assert report.outcome == "dbt build passed"
    assert report.summary is not None
    assert report.summary.counts == {"no-op": 1, "pass": 39, "success": 15}
    assert [s.name for s in report.steps] == ["dbt deps", "dbt build", "dbt docs generate"]

    # Published outputs: docs, the run's artifacts, the state for slim CI.
    assert report.docs == "docs/local/index.html"
    page = (store / "docs" / "local" / "index.html").read_text()
    assert "<html" in page[:5000].lower()
    # The docs reuse the build's compiled SQL (docs generate --no-compile after a build that passed): it is there.
    assert '\\"main\\".\\"stg_order_items\\"\\n    group by order_id' in page
    run_dir = store / "runs" / "local" / report.summary.invocation_id  # type: ignore[operator]
    results = json.loads((run_dir / "run_results.json").read_text())
    assert results["args"]["which"] == "build"  # the command's results, not docs generate's
    assert (run_dir / "manifest.json").is_file()
    assert (run_dir / "dbt.log").is_file()
    assert (store / "state" / "local" / "manifest.json").is_file()

    flow_run, task_runs, logs, artifacts = _flow_run_details(report.flow_run_id)  # type: ignore[arg-type]
    assert flow_run.name == "shop-local-1.0.0-build"  # type: ignore[attr-defined]
    assert flow_run.state.is_completed()  # type: ignore[attr-defined]
    expected_tags = {"dbt-ferry", "env:local", "version:1.0.0", "command:build", "target:local", "target_type:duckdb"}
    assert expected_tags <= set(flow_run.tags)  # type: ignore[attr-defined]
    by_name = {t.name: t for t in task_runs}  # type: ignore[attr-defined]
    assert {"dbt deps", "dbt build", "dbt docs generate"} <= set(by_name)
    for name in ("dbt deps", "dbt build"):
        assert by_name[name].state.is_completed()
        assert expected_tags <= set(by_name[name].tags)
        assert any(t.startswith("dbt:1.11") for t in by_name[name].tags)
    for name in ("publish outputs", "export results", "summary"):  # untagged: no tag-concurrency round trips
        assert by_name[name].state.is_completed() and not by_name[name].tags, name
    build_logs = logs["dbt build"]
    assert any("OK created sql table model main.fct_orders" in line for line in build_logs)
    assert any(line.startswith("Done. PASS=54 WARN=0 ERROR=0 SKIP=0 NO-OP=1 TOTAL=55") for line in build_logs)
    assert not any("\x1b[" in line for line in build_logs)
    # The default filter keeps SQL and connection debug chatter out.
    assert not any("Acquiring new duckdb connection" in line for line in build_logs)
    assert len(build_logs) < 120
    assert any("Installing local_packages/shop_utils" in line for line in logs["dbt deps"])
    kinds = {a.type for a in artifacts}  # type: ignore[attr-defined]
    assert {"markdown", "table"} <= kinds
    markdown = next(a for a in artifacts if a.type == "markdown")  # type: ignore[attr-defined]
    assert "| pass | 39 |" in markdown.data  # type: ignore[attr-defined]
    assert "docs/local/index.html" in markdown.data  # type: ignore[attr-defined]


def _add_model(shop: Path, name: str, sql: str) -> None:
    (shop / "models" / "marts" / f"{name}.sql").write_text(sql)


def test_model_with_sql_error_exits_1(run_job: RunJob, shop: Path, store: Path) -> None:
    _add_model(shop, "broken", "select no_such_column from {{ ref('stg_orders') }}\n")
    report = run_job()
    assert report.exit_code == 1
    assert report.outcome == "dbt build failed"
    assert report.summary is not None
    (failure,) = report.summary.failures
    assert failure.unique_id == "model.shop.broken"
    assert "no_such_column" in (failure.message or "")
    assert not (store / "state" / "local").exists()  # state only after a fully successful run
    # Docs of what exists are still published, as the run's own: the environment's stay those of its last good run.
    assert report.docs == f"runs/local/{report.summary.invocation_id}/index.html"
    assert not (store / "docs" / "local" / "index.html").exists()
    assert not (store / "docs" / "local" / "timing.html").exists()
    assert (store / "docs" / "local" / "history.html").is_file()  # the history counts failed runs too
    flow_run, task_runs, _, _ = _flow_run_details(report.flow_run_id)  # type: ignore[arg-type]
    assert flow_run.state.is_failed()  # type: ignore[attr-defined]
    assert next(t for t in task_runs if t.name == "dbt build").state.is_failed()  # type: ignore[attr-defined]


def test_failing_test_exits_1(run_job: RunJob, shop: Path) -> None:
    (shop / "tests" / "assert_always_fails.sql").write_text("select 1 as failure\n")
    report = run_job()
    assert report.exit_code == 1
    assert report.summary is not None
    assert [f.unique_id for f in report.summary.failures] == ["test.shop.assert_always_fails"]
    assert report.summary.failures[0].status == "fail"


def test_jinja_compilation_error_exits_2(run_job: RunJob, shop: Path) -> None:
    _add_model(shop, "bad_jinja", "select {{ not_a_macro( }} 1\n")
    report = run_job()
    assert report.exit_code == 2
    assert report.outcome == "dbt build could not run"
    assert report.error and "bad_jinja" in report.error


def test_unknown_target_exits_2(run_job: RunJob) -> None:
    with pytest.raises(DbtUsageError) as raised:  # before the flow starts (tests/runtime/test_preflight.py)
        run_job(target="nowhere")
    assert raised.value.exit_code == 2
    assert "the target 'nowhere' is not in the profile 'shop'" in raised.value.message


def test_selection_matching_nothing_exits_2(run_job: RunJob) -> None:
    report = run_job(select=("tag:no_such_tag",))
    assert report.exit_code == 2
    assert report.error and "selection matches no node" in report.error
    assert report.docs is None  # no docs for partial runs


def test_selection_and_command_after_dashes(run_job: RunJob) -> None:
    report = run_job(select=("orders",), dbt_args=("seed",))
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt seed"]  # no docs for a partial run
    assert report.summary is not None
    assert {r.unique_id for r in report.summary.results} == {"seed.shop.orders"}


def test_ci_environment_publishes_no_docs_or_state(run_job: RunJob, store: Path) -> None:
    report = run_job("ci")
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt build"]
    assert not (store / "docs").exists()
    assert not (store / "state").exists()


def test_library_run_in_this_python(prefect_api: str, shop: Path, store: Path, tmp_path: Path) -> None:
    import os

    import dbt_ferry
    from tests.conftest import publish_shop

    publish_shop(shop, store)
    os.environ["SHOP_DUCKDB_PATH"] = str(tmp_path / "lib.duckdb")
    try:
        report = dbt_ferry.run("local", store=str(store), project_dir=str(shop), dbt_args=("seed",), docs=False)
    finally:
        del os.environ["SHOP_DUCKDB_PATH"]
    assert report.exit_code == 0, report
    assert report.summary is not None
    assert report.summary.counts == {"success": 5}


def test_parse_cache_is_persisted_and_restored(run_job: RunJob, store: Path) -> None:
    first = run_job(docs=False)
    assert first.exit_code == 0, first
    assert (store / "state" / "local" / "partial_parse.msgpack").is_file()
    second = run_job(publish=False, docs=False)
    assert second.exit_code == 0, second
    assert first.summary is not None and second.summary is not None
    first_log = (store / "runs" / "local" / str(first.summary.invocation_id) / "dbt.log").read_text()
    second_log = (store / "runs" / "local" / str(second.summary.invocation_id) / "dbt.log").read_text()
    assert "Partial parsing enabled" not in first_log
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed." in second_log


def test_changed_vars_fall_back_to_a_full_parse_silently(run_job: RunJob, store: Path) -> None:
    assert run_job(docs=False).exit_code == 0
    report = run_job(publish=False, docs=False, vars="{lookback_days: 5}")
    assert report.exit_code == 0, report
    assert report.summary is not None
    log = (store / "runs" / "local" / str(report.summary.invocation_id) / "dbt.log").read_text()
    assert "Partial parsing enabled" not in log
    assert report.problems == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, False),
        ({"packages.yml": "packages:\n  - local: pkgs/utils\n"}, True),
        ({"packages.yml": "packages: []\n"}, False),
        ({"packages.yml": ""}, False),
        ({"dependencies.yml": "projects:\n  - name: upstream\n"}, False),
        ({"dependencies.yml": "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"}, True),
        ({"dependencies.yml": "packages: [\n"}, True),  # unreadable: dbt deps says what is wrong
    ],
)
def test_deps_runs_only_when_the_project_declares_packages(
    tmp_path: Path, files: dict[str, str], expected: bool
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert needs_deps(tmp_path) is expected


def test_user_text_with_braces_is_never_a_format_string(run_job: RunJob, shop: Path) -> None:
    (shop / "macros").mkdir(exist_ok=True)
    (shop / "macros" / "hello.sql").write_text(
        "{% macro hello(name) %}{{ log('hello ' ~ name, info=True) }}{% endmacro %}\n"
    )
    report = run_job(dbt_args=("run-operation", "hello", "--args", "{name: ferry}"))
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt run-operation hello --args '{name: ferry}'"]
    _, task_runs, logs, _ = _flow_run_details(report.flow_run_id)  # type: ignore[arg-type]
    assert "hello ferry" in logs["dbt run-operation hello --args '{name: ferry}'"]

    braces = run_job(publish=False, dbt_args=("seed", "--select", "orders", "--vars", '{"x": 1}'))
    assert braces.exit_code == 0, braces
    assert braces.outcome == "dbt seed --select orders --vars '{\"x\": 1}' passed"
    flow_run, task_runs, _, _ = _flow_run_details(braces.flow_run_id)  # type: ignore[arg-type]
    assert "dbt seed --select orders --vars '{\"x\": 1}'" in {t.name for t in task_runs}  # type: ignore[attr-defined]
    assert "select:orders" in flow_run.tags  # type: ignore[attr-defined]


def test_without_prefect_the_same_steps_run_and_publish(
    run_job: RunJob, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dbt_ferry.runtime.engine import configure_job_logging

    configure_job_logging()
    report = run_job(no_prefect=True)
    assert report.exit_code == 0, report
    assert report.flow_run_id is None
    assert [s.name for s in report.steps] == ["dbt deps", "dbt build", "dbt docs generate"]
    assert report.docs == "docs/local/index.html"
    assert report.summary is not None and report.summary.counts == {"no-op": 1, "pass": 39, "success": 15}
    assert report.exported == {"invocations": 1, "node_results": 55}
    assert (store / "state" / "local" / "manifest.json").is_file()
    err = capsys.readouterr().err
    assert "| INFO    | dbt build - Done. PASS=54 WARN=0 ERROR=0 SKIP=0 NO-OP=1 TOTAL=55" in err
    info = json.loads((store / "runs" / "local" / str(report.summary.invocation_id) / "ferry.json").read_text())
    assert info["prefect_flow_run_id"] is None and info["exit_code"] == 0
