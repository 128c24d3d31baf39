"""The job's steps and its end, whatever runs them: a Prefect flow (``runtime/flow.py``) or the plain runner here.

A :class:`~dbt_ferry.runtime.runner.Runner` decides how a step or a finishing phase is wrapped (a Prefect task
with its run logger and node events, or a line on the console); :func:`run_job` decides what runs and what it
means. Nothing here imports Prefect or dbt.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_ferry.console import out
from dbt_ferry.core.errors import EXIT_NODE_FAILED, EXIT_SUCCESS, EXIT_TERMINATED
from dbt_ferry.core.results import lay_over, load_results
from dbt_ferry.runtime import dbt_process
from dbt_ferry.runtime.changed import state_aware, state_selection
from dbt_ferry.runtime.events import EventFilter
from dbt_ferry.runtime.finish import finish, preload_finish
from dbt_ferry.runtime.invoker import build_args
from dbt_ferry.runtime.outcome import job_exit_code, judge_step, outcome_text
from dbt_ferry.runtime.report import JobReport, StepOutcome
from dbt_ferry.runtime.runner import Runner, RunStep, StepSink
from dbt_ferry.runtime.signals import JobSignals, Terminated
from dbt_ferry.runtime.spec import JobSpec
from dbt_ferry.runtime.steps import Step, docs_step, docs_wanted, plan_steps, retry_steps

log = logging.getLogger(__name__)

#: The logger of a job's dbt events and steps when no Prefect run logger takes them (the plain runner).
JOB_LOGGER = "dbt_ferry.job"


# --- the plain runner: no Prefect, the same steps, logs on the console ----------------------------------


class _LogSink:
    def __init__(self, logger: logging.Logger, step: str) -> None:
        self._logger = logger
        self._extra = {"step": step}

    def on_event(self, level: int, text: str) -> None:
        self._logger.log(level, "%s", text, extra=self._extra)

    def on_node(self, node: dict[str, Any]) -> None:
        pass  # node events need Prefect; the node results are in run_results.json


class PlainRunner:
    """Runs the steps in this process without Prefect: no server, no flow run, the same outputs."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(JOB_LOGGER)

    def step(self, step: Step, run: RunStep) -> StepOutcome:
        self._logger.info("starting", extra={"step": step.name})
        outcome = run(_LogSink(self._logger, step.name))
        if outcome.exit_code != EXIT_SUCCESS:
            reason = outcome.error or f"exited with code {outcome.exit_code}"
            self._logger.error("%s", reason, extra={"step": step.name})
        else:
            self._logger.info("finished in %.1f s", outcome.elapsed, extra={"step": step.name})
        return outcome

    def phase(self, name: str, work: Callable[[], None], report: JobReport) -> None:
        try:
            work()
        except Exception as exc:
            report.problems.append(f"{name} failed: {type(exc).__name__}: {exc}")
            log.error("%s failed: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))

    def summary(self, spec: JobSpec, report: JobReport) -> None:
        pass  # the console shows the report at the end


def configure_job_logging() -> None:
    """Show the plain runner's dbt events on stderr, as Prefect's console handler shows a flow's."""
    logger = logging.getLogger(JOB_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(step)s - %(message)s", "%H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


# --- the steps --------------------------------------------------------------------------------------------


@contextmanager
def _kept_run_results(target: Path) -> Iterator[None]:
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


def execute_step(spec: JobSpec, step: Step, sink: StepSink, signals: JobSignals) -> StepOutcome:
    """Run one dbt step in the job's dbt process; what its result means is :func:`judge_step`'s."""
    request = spec.request
    events = EventFilter.from_config(spec.environment.events, tuple(spec.secret_values))
    options = spec.dbt_options
    if spec.changed_since is not None:  # state-aware: what changed since the state, decided after freshness ran
        options = replace(options, select=state_selection(spec))
    args = build_args(
        step.args,
        spec.project_path,
        target=spec.target,
        full_refresh=request.full_refresh,
        vars_yaml=request.vars,
        threads=request.threads,
        options=options if step.selected else None,
    )
    dbt = dbt_process.start_current()
    target = spec.project_path / "target"
    keep: AbstractContextManager[None] = _kept_run_results(target) if step.keeps_run_results else nullcontext()

    def output(level: int, text: str) -> None:
        """What the command prints as its result (show, ls, compile, run-operation's log): stdout and the log."""
        out.print(text)
        sink.on_event(level, text)

    with keep, signals.running_dbt(dbt):
        invocation = dbt.invoke(args, events, sink.on_event, sink.on_node, output)
    # dbt's process may die of the interrupt before it can say so (early in a step, as in deps): a step that
    # failed while a signal was being handled failed because of the signal.
    interrupted = invocation.interrupted or (signals.fired and invocation.exit_code != EXIT_SUCCESS)
    return judge_step(
        step,
        exit_code=invocation.exit_code,
        error=invocation.error,
        elapsed=invocation.elapsed,
        interrupted=interrupted,
        no_nodes=events.no_nodes,
        fail_on_empty_selection=spec.environment.fail_on_empty_selection and not spec.selects_by_state,
        signal_exit_code=signals.exit_code,
        signal_how=signals.how,
    )


def new_report(flow_run_id: str | None = None, flow_run_url: str | None = None) -> JobReport:
    return JobReport(
        exit_code=EXIT_SUCCESS,
        outcome="",
        flow_run_id=flow_run_id,
        flow_run_url=flow_run_url,
        started_at=datetime.now(UTC),
    )


def run_job(spec: JobSpec, runner: Runner, signals: JobSignals, report: JobReport) -> JobReport:
    """deps → debug → freshness, seed → the command (→ retries) → docs (full runs) → publish → export → summary →
    notify. What a failing step means is the step's (:class:`~dbt_ferry.runtime.steps.Step.failure`)."""
    stopped_during: str | None = None
    ran_command, retried, starting = False, False, None
    try:
        steps = plan_steps(spec)
        for step in steps:
            starting = step.name
            if step.selected and not ran_command:
                preload_finish(spec.environment, spec.store)  # while dbt parses and builds in its own process
            outcome = _run(spec, runner, signals, step)
            report.steps.append(outcome)
            if step.selected and outcome.exit_code == EXIT_NODE_FAILED and not outcome.interrupted:
                outcome, retried = _retry(spec, runner, signals, report), True
            if outcome.exit_code != EXIT_SUCCESS and step.failure == "problem" and not outcome.interrupted:
                report.problems.append(f"{step.name}: {outcome.error or 'it failed'}")
                continue
            if outcome.exit_code != EXIT_SUCCESS:
                report.exit_code, report.error = job_exit_code(step, outcome), outcome.error
                stopped_during = step.name if outcome.interrupted else None
                ran_command = step.selected and not outcome.interrupted
                break
            ran_command = ran_command or step.selected
        nothing_changed = spec.changed_since is not None and bool(report.steps) and report.steps[-1].no_nodes
        if ran_command and not nothing_changed and _wants_docs(spec, signals, report):
            compiled = report.exit_code == EXIT_SUCCESS and not retried and not state_aware(spec)
            docs_run = docs_step(spec.command, compiled_everything=compiled)
            starting = docs_run.name
            docs = _run(spec, runner, signals, docs_run)
            report.steps.append(docs)
            if docs.interrupted or signals.fired:  # a signal as dbt's process started the docs is one during them
                report.exit_code, report.error = signals.exit_code or docs.exit_code, signals.how or docs.error
                stopped_during = docs_run.name
            elif docs.exit_code != EXIT_SUCCESS:
                report.problems.append(f"docs were not generated: {docs.error or 'dbt docs generate failed'}")
    except Terminated:  # between two steps: after the command, the outcome names the step that did not start
        report.exit_code, report.error = signals.exit_code or EXIT_TERMINATED, signals.how
        stopped_during = starting if ran_command else None
    end_job(spec, runner, signals, report, stopped_during=stopped_during)
    return report


def _retry(spec: JobSpec, runner: Runner, signals: JobSignals, report: JobReport) -> StepOutcome:
    """``dbt retry`` of what failed, up to ``retries`` times; each lays its results over the command's, so that
    ``run_results.json`` holds every node's last result. The last attempt's outcome is the command's."""
    target = spec.project_path / "target"
    outcome = report.steps[-1]
    for step in retry_steps(spec):
        before = load_results(target)
        outcome = _run(spec, runner, signals, step)
        report.steps.append(outcome)
        after = load_results(target)
        if before is not None and after is not None:
            (target / "run_results.json").write_text(json.dumps(lay_over(before, after)), encoding="utf-8")
        if outcome.exit_code != EXIT_NODE_FAILED or outcome.interrupted:
            break
    return outcome


def _wants_docs(spec: JobSpec, signals: JobSignals, report: JobReport) -> bool:
    """Docs after the command ran, also when nodes failed (exit 1): the catalog describes the tables just built."""
    return docs_wanted(spec) and report.exit_code in (EXIT_SUCCESS, EXIT_NODE_FAILED) and not signals.fired


def _run(spec: JobSpec, runner: Runner, signals: JobSignals, step: Step) -> StepOutcome:
    signals.raise_if_fired()
    return runner.step(step, lambda sink: execute_step(spec, step, sink, signals))


def end_job(
    spec: JobSpec, runner: Runner, signals: JobSignals, report: JobReport, *, stopped_during: str | None = None
) -> None:
    """The one end of every job: dbt's process stops, then the outputs are published, exported and notified."""
    signals.finishing()
    dbt_process.stop_current(interrupt=signals.fired)  # its memory goes back before the exports load pyarrow
    if signals.fired and report.exit_code == EXIT_SUCCESS and not report.finished:
        report.exit_code, report.error = signals.exit_code or EXIT_TERMINATED, signals.how
    if not report.outcome:
        how = signals.how if signals.fired else None
        report.outcome = outcome_text(spec.command_text, report.exit_code, how=how, stopped_during=stopped_during)
    report.completed_at = report.completed_at or datetime.now(UTC)
    finish(spec, report, runner)
