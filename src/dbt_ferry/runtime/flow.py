"""The Prefect flow of a job: one task per dbt step, then the outputs, the summary and the notification.

This module and its helpers are the only ones importing Prefect.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.states import Failed

from dbt_ferry.runtime import dbt_process
from dbt_ferry.runtime.events import EventFilter, run_logger
from dbt_ferry.runtime.finalize import collect_outputs, export_tables, notify, should_notify
from dbt_ferry.runtime.invoker import build_args
from dbt_ferry.runtime.job import interruption, sigterm_stops_dbt
from dbt_ferry.runtime.report import JobReport, StepOutcome
from dbt_ferry.runtime.spec import EXIT_TERMINATED, JobSpec
from dbt_ferry.runtime.summary import render_markdown, table_rows

log = logging.getLogger(__name__)


@task(cache_policy=NONE, persist_result=False)
def dbt_step(spec: JobSpec, name: str, command: list[str], selected: bool) -> StepOutcome | State[StepOutcome]:
    """Run one dbt command in the job's dbt process, its events forwarded to this task's log."""
    events = EventFilter.from_config(spec.environment.events)
    logger = run_logger()
    request = spec.request
    args = build_args(
        command,
        spec.project_path,
        target=spec.target,
        select=request.select if selected else (),
        exclude=request.exclude if selected else (),
        full_refresh=request.full_refresh,
        vars_yaml=request.vars,
        threads=request.threads,
    )
    dbt = dbt_process.start_current()
    with sigterm_stops_dbt(dbt):  # Prefect's own SIGTERM handler would not stop dbt cleanly
        invocation = dbt.invoke(args, events, lambda level, text: logger.log(level, "%s", text))
    outcome = StepOutcome(
        name=name,
        exit_code=invocation.exit_code,
        error=invocation.error,
        elapsed=invocation.elapsed,
        interrupted=invocation.interrupted,
        no_nodes=events.no_nodes,
    )
    if outcome.exit_code == 0 and selected and outcome.no_nodes and spec.environment.fail_on_empty_selection:
        outcome.exit_code = 2
        outcome.error = "the selection matches no node; check --select/--exclude (fail_on_empty_selection)"
    if outcome.interrupted:
        outcome.exit_code, outcome.error = interruption()
    if outcome.exit_code != 0:
        # A Failed state, not an exception: Prefect shows the message without a Python traceback.
        return Failed(message=outcome.error or f"{name} exited with code {outcome.exit_code}", data=outcome)
    return outcome


def _run_step(spec: JobSpec, name: str, command: list[str], *, selected: bool = False) -> StepOutcome:
    step = dbt_step.with_options(name=name, task_run_name=name)
    state = step(spec, name, command, selected, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, StepOutcome):
        return result
    if isinstance(result, BaseException):
        return StepOutcome(name=name, exit_code=2, error=f"{type(result).__name__}: {result}")
    return StepOutcome(name=name, exit_code=2, error=f"unexpected task result {result!r}")


@contextmanager
def keep_run_results(target: Path) -> Iterator[None]:
    """``docs generate`` rewrites run_results.json: keep the command's, which retry and exports need."""
    saved = target / "run_results.json"
    backup = target / ".run_results.command.json"
    existed = saved.is_file()
    if existed:
        shutil.copyfile(saved, backup)
    try:
        yield
    finally:
        if backup.is_file():
            backup.replace(saved)
        elif not existed:
            saved.unlink(missing_ok=True)  # the command wrote none (source freshness): keep it that way


def _outcome_text(report: JobReport, command: str) -> str:
    if report.exit_code == 0:
        return f"dbt {command} passed"
    if report.exit_code == EXIT_TERMINATED:
        return f"dbt {command} was stopped by SIGTERM"
    if report.exit_code == 130:
        return f"dbt {command} was interrupted"
    if report.exit_code == 1:
        return f"dbt {command} failed"
    return f"dbt {command} could not run"


@task(name="publish outputs", cache_policy=NONE, persist_result=False)
def publish_task(spec: JobSpec, report: JobReport) -> JobReport:
    collect_outputs(spec, report)
    return report


@task(name="export results", cache_policy=NONE, persist_result=False)
def export_task(spec: JobSpec, report: JobReport) -> JobReport:
    export_tables(spec, report)
    if report.exported:
        get_run_logger().info("exported %s", ", ".join(f"{n} {t}" for t, n in report.exported.items()))
    return report


@task(name="summary", cache_policy=NONE, persist_result=False)
def summary_task(spec: JobSpec, report: JobReport) -> JobReport:
    title = f"{spec.manifest.project} {spec.manifest.version} in {spec.environment.name}"
    markdown = render_markdown(
        report.summary,
        title=title,
        exit_code=report.exit_code,
        outcome=report.outcome,
        docs=f"{report.store_url}/{report.docs}" if report.docs else None,
        timing=f"{report.store_url}/{report.timing}" if report.timing else None,
        run_prefix=f"{report.store_url}/{report.run_prefix}" if report.run_prefix else None,
        problems=report.problems,
    )
    key = f"dbt-ferry-{spec.environment.name}".lower().replace("_", "-")
    create_markdown_artifact(markdown, key=key, description=f"dbt-ferry run of {title}")
    rows = table_rows(report.summary)
    if rows:
        create_table_artifact(rows, key=f"{key}-nodes", description=f"Node results of {title}")
    return report


@task(name="notify", cache_policy=NONE, persist_result=False)
def notify_task(spec: JobSpec, report: JobReport) -> list[str]:
    problems = notify(spec, report)
    block = spec.environment.notify.block
    if block:
        try:
            from prefect.blocks.abstract import NotificationBlock

            notification_block: Any = NotificationBlock.load(block)
            notification_block.notify(body=report.outcome, subject=f"dbt-ferry: {spec.run_name}")
        except Exception as exc:  # noqa: BLE001 - a notification never changes the job's outcome
            problems.append(f"Prefect notification block {block!r} failed: {exc}")
    logger = get_run_logger()
    for problem in problems:
        logger.warning("%s", problem)
    return problems


def needs_deps(project: Path) -> bool:
    """Whether ``packages.yml`` or ``dependencies.yml`` lists packages; if not, ``dbt deps`` has nothing to do.

    A file that cannot be read as YAML counts as listing packages, so that ``dbt deps`` reports the error.
    """
    import yaml

    for name in ("packages.yml", "dependencies.yml"):
        path = project / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return True
        if data is None:
            continue
        if not isinstance(data, dict) or data.get("packages"):
            return True
    return False


@flow(name="dbt-ferry", persist_result=False, validate_parameters=False)
def ferry_flow(spec: JobSpec) -> JobReport | State[JobReport]:
    """deps (if packages) → debug (optional) → the dbt command → docs (full runs) → publish → notify."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    command = list(spec.command)
    ui = PREFECT_UI_URL.value()
    url = f"{ui.rstrip('/')}/runs/flow-run/{flow_run.id}" if ui and flow_run.id else None
    report = JobReport(exit_code=0, outcome="", flow_run_id=flow_run.id, flow_run_url=url, started_at=datetime.now(UTC))
    steps = [("dbt deps", ["deps"], False)] if needs_deps(spec.project_path) else []
    if spec.request.debug:
        steps.append(("dbt debug", ["debug"], False))
    steps.append((f"dbt {' '.join(command)}", command, True))
    for name, args, selected in steps:
        outcome = _run_step(spec, name, args, selected=selected)
        report.steps.append(outcome)
        if outcome.exit_code != 0:
            # deps and debug failing mean dbt could not run the command.
            report.exit_code = outcome.exit_code if selected or outcome.interrupted else 2
            report.error = outcome.error
            break
    terminated = report.exit_code in (EXIT_TERMINATED, 130)
    ran_command = len(report.steps) == len(steps)
    if spec.docs_enabled and ran_command and not terminated and report.exit_code in (0, 1):
        with keep_run_results(spec.project_path / "target"):
            docs = _run_step(spec, "dbt docs generate", ["docs", "generate", "--static"])
        report.steps.append(docs)
        if docs.exit_code != 0:
            report.problems.append(f"docs were not generated: {docs.error or 'dbt docs generate failed'}")
    dbt_process.stop_current()  # dbt's memory goes back before the exports load pyarrow
    report.outcome = _outcome_text(report, " ".join(command))
    report.completed_at = datetime.now(UTC)
    report = publish_task(spec, report)
    report = export_task(spec, report)
    report = summary_task(spec, report)
    if should_notify(spec, report):
        report.problems += notify_task(spec, report)
    if report.exit_code != 0:
        return Failed(message=f"{report.outcome} (exit code {report.exit_code})", data=report)
    return report


def run_flow(spec: JobSpec) -> JobReport:
    """Run the flow with its tags and name; return the report whatever the final state."""
    with tags(*spec.tags()):
        state = ferry_flow.with_options(flow_run_name=spec.run_name)(spec, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, JobReport):
        return result
    if isinstance(result, BaseException):
        raise result
    raise RuntimeError(f"unexpected flow result {result!r}")  # pragma: no cover
