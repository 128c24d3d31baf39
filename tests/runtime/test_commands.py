"""Every dbt command is usable: dbt's everyday flags on `dbt-ferry run`, flags after `--` added to build, what a
command prints on stdout and in the log, a seed step, source freshness, retries within the job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbt_ferry.cli.run import run_cmd
from dbt_ferry.runtime.report import JobReport
from tests.conftest import run_cli
from tests.runtime.conftest import RunJob

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _results(store: Path, report: JobReport) -> dict[str, object]:
    assert report.summary is not None
    data: dict[str, object] = json.loads(
        (store / "runs" / "local" / str(report.summary.invocation_id) / "run_results.json").read_text()
    )
    return data


def test_dbt_flags_reach_dbt_with_their_meaning(run_job: RunJob, store: Path) -> None:
    report = run_job(
        no_prefect=True,
        seed=True,
        select=("stg_orders",),
        fail_fast=True,
        warn_error=True,
        empty=True,
        resource_types=("model",),
        indirect_selection="cautious",
    )
    assert report.exit_code == 0, report
    args = _results(store, report)["args"]
    assert args["select"] == ["stg_orders"]  # type: ignore[index]
    assert args["fail_fast"] is True and args["warn_error"] is True and args["empty"] is True  # type: ignore[index]
    assert args["resource_types"] == ["model"]  # type: ignore[index]
    assert args["indirect_selection"] == "cautious"  # type: ignore[index]
    command = args["invocation_command"]  # type: ignore[index]
    assert command.startswith("dbt ") and " build " in command and "--fail-fast" in command
    assert "dbt_ferry" not in command  # the command dbt ran, not the job's process


def test_flags_after_the_dashes_are_added_to_build(run_job: RunJob, store: Path) -> None:
    flags = ("--select", "stg_customers", "--fail-fast", "--indirect-selection", "cautious")
    report = run_job(no_prefect=True, seed=True, dbt_args=flags)
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt seed", "dbt build " + " ".join(flags)]
    args = _results(store, report)["args"]
    assert args["which"] == "build" and args["select"] == ["stg_customers"] and args["fail_fast"] is True  # type: ignore[index]
    assert report.docs is None  # a selection after -- is a selection too: no docs, no state
    assert not (store / "state").exists()


def test_short_forms_and_both_meanings_of_debug_and_version() -> None:
    context = run_cmd.make_context("run", ["-t", "pro", "-s", "a", "-x", "-f", "--debug", "--", "--debug"])
    params = context.params
    assert (params["target"], params["select"], params["fail_fast"], params["full_refresh"]) == (
        "pro",
        ("a",),
        True,
        True,
    )
    assert params["dbt_debug"] is True  # dbt-ferry's --debug: run `dbt debug` first
    assert params["dbt_args"] == ("--debug",)  # dbt's own --debug (logs), added to build
    context = run_cmd.make_context("run", ["--version", "1.3.0", "--", "--version"])
    assert context.params["version"] == "1.3.0" and context.params["dbt_args"] == ("--version",)


def test_show_prints_its_rows_on_stdout_and_in_the_prefect_log(
    prefect_api: str, shop: Path, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.conftest import publish_shop
    from tests.runtime.test_flow import _flow_run_details

    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    publish_shop(shop, store)
    code, out, _ = run_cli(
        capsys, "run", "--env", "local", "--project-dir", str(shop), "--store", str(store), "--",
        "show", "--inline", "select 6 * 7 as answer",
    )  # fmt: skip
    assert code == 0, out
    assert "answer" in out and "42" in out
    flow_run_id = next(line for line in out.splitlines() if "Prefect flow run" in line).rsplit("/", 1)[-1].split()[-1]
    _, _, logs, _ = _flow_run_details(flow_run_id)
    (lines,) = [v for k, v in logs.items() if k.startswith("dbt show")]
    assert any("answer" in line and "42" in line for line in lines)
    assert not (store / "state").exists()  # a show is not the environment's state


#: Fails on its first attempt, succeeds on the second: each attempt counts itself outside the model's transaction.
FLAKY = """\
{{ config(materialized='table', pre_hook=[
    before_begin("create table if not exists main.attempts (n integer)"),
    before_begin("insert into main.attempts values (1)"),
]) }}
select case when (select count(*) from main.attempts) < 2 then error('a transient failure') else 1 end as x
"""


def test_retries_run_the_failed_nodes_again_within_the_job(run_job: RunJob, shop: Path, store: Path) -> None:
    (shop / "models" / "marts" / "flaky.sql").write_text(FLAKY)
    (shop / "models" / "marts" / "after_flaky.sql").write_text("select x from {{ ref('flaky') }}\n")
    pyproject = shop / "pyproject.toml"
    header = "[tool.dbt-ferry.environments.local]\n"
    pyproject.write_text(pyproject.read_text().replace(header, header + "retries = 2\n"))
    report = run_job(no_prefect=True, docs=False)
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt build", "dbt retry (1 of 2)"]
    assert [s.exit_code for s in report.steps] == [0, 1, 0]
    results = _results(store, report)
    status = {r["unique_id"]: r["status"] for r in results["results"]}  # type: ignore[attr-defined, index]
    assert status["model.shop.flaky"] == "success" and status["model.shop.after_flaky"] == "success"
    assert len(status) == 57  # every node of the build, each with its last result
    assert report.summary is not None and report.summary.failures == []


def test_seed_and_source_freshness_before_the_command(run_job: RunJob, shop: Path, store: Path) -> None:
    (shop / "models" / "staging" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    schema: main\n    tables:\n      - name: orders\n"
        '        loaded_at_field: "cast(ordered_on as timestamp)"\n'
        "        freshness: {warn_after: {count: 36500, period: day}}\n"
    )
    cautious = {"select": ("stg_orders",), "indirect_selection": "cautious"}
    report = run_job(no_prefect=True, docs=False, seed=True, freshness=True, **cautious)
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt seed", "dbt source freshness", "dbt build"]
    assert report.exported.get("source_freshness") == 1, report.exported
    assert report.problems == []
    (shop / "models" / "staging" / "_sources.yml").write_text(
        (shop / "models" / "staging" / "_sources.yml")
        .read_text()
        .replace("warn_after: {count: 36500", "error_after: {count: 1")
    )
    stale = run_job(no_prefect=True, docs=False, freshness=True, **cautious)
    assert stale.exit_code == 0, stale  # stale sources are a problem of the run, not its failure
    assert [p for p in stale.problems if p.startswith("dbt source freshness:")], stale.problems
