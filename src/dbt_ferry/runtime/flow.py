"""The Prefect face of a job: the flow ``dbt-ferry``, a task per dbt step and finishing phase.

This module and its helpers (``runtime/node_events.py``) are the only ones importing Prefect. The flow runs
as a new flow run when a job is started by hand, or *as* the flow run a Prefect worker started the container
for (``PREFECT__FLOW_RUN_ID``, carried across the re-exec in the job spec). Its parameters are the user's
words (``command``, ``select``, ``full_refresh``...), so a deployment's UI form and ``--param`` speak them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.context import TagsContext
from prefect.exceptions import TerminationSignal
from prefect.flow_engine import run_flow as run_flow_engine
from prefect.logging import get_run_logger
from prefect.states import Cancelled, Crashed, Failed

from dbt_ferry.core.errors import EXIT_SUCCESS
from dbt_ferry.core.masking import mask_mapping
from dbt_ferry.runtime.context import JobContext, current_job, running
from dbt_ferry.runtime.engine import new_report, run_job
from dbt_ferry.runtime.node_events import NodeEvents
from dbt_ferry.runtime.outcome import final_state
from dbt_ferry.runtime.parameters import Command, RunParameters, Threads
from dbt_ferry.runtime.report import JobReport, StepOutcome, report_lines
from dbt_ferry.runtime.runner import RunStep
from dbt_ferry.runtime.signals import JobSignals, Terminated
from dbt_ferry.runtime.spec import JobRequest, JobSpec
from dbt_ferry.runtime.steps import Step
from dbt_ferry.runtime.summary import render_markdown, table_rows

log = logging.getLogger(__name__)

#: How often the job asks Prefect whether its flow run is being cancelled (a worker may not tell it).
CANCEL_POLL_SECONDS = 3.0


class _StepFailureNoise(logging.Filter):
    """Prefect logs a task that returns a Failed state as ``Task run failed with state: Failed(...)`` with an
    empty traceback (``NoneType: None``); the step's own error (dbt's) is already in the log, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task run failed with state")


_NOISE = _StepFailureNoise()


def _quiet_step_failures() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if _NOISE not in logger.filters:
        logger.addFilter(_NOISE)


def _literal(text: str) -> Callable[[], str]:
    """A run name Prefect uses as it is: a plain string would go through ``str.format`` (user text has braces)."""
    return lambda: text


# --- tasks ------------------------------------------------------------------------------------------------


class _TaskSink:
    def __init__(self, logger: Any, events: NodeEvents | None) -> None:
        self._logger = logger
        self._events = events

    def on_event(self, level: int, text: str) -> None:
        self._logger.log(level, "%s", text)

    def on_node(self, node: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.emit(node)


@task(cache_policy=NONE, persist_result=False)
def _dbt_step(step: Step, run: RunStep, events: NodeEvents) -> StepOutcome | State[StepOutcome]:
    outcome = run(_TaskSink(get_run_logger(), events if step.reports_nodes and events.enabled else None))
    if outcome.exit_code != EXIT_SUCCESS:
        # A Failed state, not an exception: Prefect shows the message once, without a Python traceback.
        message = outcome.error or f"{step.name}: a node errored or a test failed (exit code {outcome.exit_code})"
        return Failed(message=message, data=outcome)
    return outcome


@task(cache_policy=NONE, persist_result=False)
def _phase(work: Callable[[], None]) -> None:
    work()


class PrefectRunner:
    """Each dbt step and finishing phase a task of the flow run; dbt events in the task's log."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.node_events = NodeEvents(spec)

    def step(self, step: Step, run: RunStep) -> StepOutcome:
        named = _dbt_step.with_options(name=step.name, task_run_name=_literal(step.name))
        state = named(step, run, self.node_events, return_state=True)
        result = state.result(raise_on_failure=False)
        if isinstance(result, StepOutcome):
            return result
        error = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else str(result)
        return StepOutcome(name=step.name, exit_code=2, error=error)

    def phase(self, name: str, work: Callable[[], None], report: JobReport) -> None:
        # Without the job's tags: a tagged task run asks the API for tag concurrency slots as it starts, ~0.4 s
        # each while the server takes in the build's logs; publishing never touches the warehouse a limit guards.
        with TagsContext(current_tags=set()):
            state = _phase.with_options(name=name, task_run_name=_literal(name))(work, return_state=True)
        if state.is_failed():
            result = state.result(raise_on_failure=False)
            report.problems.append(f"{name} failed: {result}")

    def summary(self, spec: JobSpec, report: JobReport) -> None:
        title = f"{spec.manifest.project} {spec.manifest.version} in {spec.environment.name}"
        markdown = render_markdown(
            report.summary,
            title=title,
            exit_code=report.exit_code,
            outcome=report.outcome,
            docs=f"{report.store_url}/{report.docs}" if report.docs else None,
            timing=f"{report.store_url}/{report.timing}" if report.timing else None,
            run_prefix=f"{report.store_url}/{report.run_prefix}" if report.run_prefix else None,
            history=f"{report.store_url}/{report.history}" if report.history else None,
            problems=report.problems,
            regressions=report.regressions,
            state_aware=report.state_aware,
        )
        key = f"dbt-ferry-{spec.environment.name}".lower().replace("_", "-")
        create_markdown_artifact(markdown, key=key, description=f"dbt-ferry run of {title}")
        rows = table_rows(report.summary)
        if rows:
            create_table_artifact(rows, key=f"{key}-nodes", description=f"Node results of {title}")
        if report.exported:
            get_run_logger().info("exported %s", ", ".join(f"{n} {t}" for t, n in report.exported.items()))


# --- cancellation -----------------------------------------------------------------------------------------


def _is_cancelling(flow_run_id: str) -> bool:
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - no answer is not a cancel
        return False
    return state is not None and (state.is_cancelling() or state.is_cancelled())


class _CancelWatcher:
    """Asks Prefect every few seconds whether the flow run is Cancelling; if so, stops the job the way SIGTERM
    does. A process worker sends SIGTERM itself; an ECS worker cannot reach a running container, so the job
    must notice on its own."""

    def __init__(self, flow_run_id: str, signals: JobSignals, interval: float = CANCEL_POLL_SECONDS) -> None:
        self._flow_run_id = flow_run_id
        self._signals = signals
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="dbt-ferry-cancel-watch")

    def __enter__(self) -> _CancelWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            if self._signals.fired:
                return
            if _is_cancelling(self._flow_run_id):
                log.warning("the flow run is being cancelled from Prefect: stopping the job")
                self._signals.cancelled = True
                os.kill(os.getpid(), signal.SIGTERM)
                return


# --- the flow ---------------------------------------------------------------------------------------------


def _flow_run_ids() -> tuple[str | None, str | None]:
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    flow_run_id = flow_run.id
    ui = PREFECT_UI_URL.value()
    url = f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui and flow_run_id else None
    return flow_run_id, url


def _add_tags(flow_run_id: str, wanted: list[str]) -> None:
    """A deployment's flow run exists before the job: give it the job's tags as well."""
    try:
        with get_client(sync_client=True) as client:
            existing = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
            merged = list(dict.fromkeys([*existing.tags, *wanted]))
            if merged != list(existing.tags):
                client.update_flow_run(flow_run_id, tags=merged)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - tags are a nicety
        log.warning("could not tag the flow run: %s", exc)


def _run_as_flow(job: JobContext) -> JobReport | State[JobReport]:
    spec, signals = job.spec, job.signals
    flow_run_id, url = _flow_run_ids()
    report = job.report = new_report(flow_run_id, url)
    if spec.flow_run_id and flow_run_id:
        _add_tags(flow_run_id, spec.tags())
    if flow_run_id:
        signals.classify = lambda: _is_cancelling(flow_run_id)
    watcher = _CancelWatcher(flow_run_id, signals) if flow_run_id else None
    with signals.take_over():  # over the flow engine's own SIGTERM handler, for the flow's body
        if watcher is None:
            run_job(spec, PrefectRunner(spec), signals, report)
        else:
            with watcher:
                run_job(spec, PrefectRunner(spec), signals, report)
    message = f"{report.outcome} (exit code {report.exit_code})"
    ending = final_state(report.exit_code, cancelled=signals.cancelled)
    if ending == "failed":
        return Failed(message=message, data=report)
    if ending == "cancelled":
        return Cancelled(message=message, data=report)
    if ending == "crashed":
        return Crashed(message=message, data=report)
    return report


@flow(name="dbt-ferry", persist_result=False, log_prints=False)
def ferry_flow(
    command: Command = "build",
    select: str | None = None,
    exclude: str | None = None,
    selector: str | None = None,
    full_refresh: bool = False,
    vars: dict[str, Any] | None = None,
    threads: Threads | None = None,
    target: str | None = None,
    version: str | None = None,
    docs: bool | None = None,
    retry_of: str | None = None,
) -> JobReport | State[JobReport]:
    """Run a dbt project's release with dbt-ferry: deps, the dbt command, docs; then publish, export, notify.

    Args:
        command: The dbt command with its own arguments, e.g. `build`, `run`, `test`, `seed`,
            `source freshness`, `run-operation my_macro --args '{x: 1}'`.
        select: dbt `--select`: nodes to run, space-separated as dbt takes them, e.g. `tag:daily fct_orders+`;
            empty: everything.
        exclude: dbt `--exclude`: nodes to leave out, space-separated.
        selector: A selector defined in the project's `selectors.yml`.
        full_refresh: Rebuild incremental models and seeds from scratch (dbt `--full-refresh`).
        vars: dbt `--vars`, a mapping such as `{"start_date": "2024-01-01"}`.
        threads: dbt threads; empty: the profile's.
        target: dbt target; empty: the environment's.
        version: Release version to run; empty: the one the environment's channel names.
        docs: Generate and publish docs; empty: the environment's setting (never for selected runs).
        retry_of: Retry a failed run: its invocation id, or `last` for the environment's last failed run; only
            its failed and skipped nodes run (`dbt retry`).
    """
    job = current_job()
    if job is None:
        # Started by a Prefect engine (`python -m prefect.engine`, a process worker without a command):
        # this Python resolves and runs the job itself.
        given = RunParameters(
            command=command, select=select, exclude=exclude, selector=selector, full_refresh=full_refresh,
            vars=vars, threads=threads, target=target, version=version, docs=docs, retry_of=retry_of,
        )  # fmt: skip
        return _run_in_engine(given)
    return _run_as_flow(job)


def _run_in_engine(given: RunParameters) -> JobReport | State[JobReport]:
    from dbt_ferry.runtime.bootstrap import prepare
    from dbt_ferry.runtime.flow_run import ENV_FLOW_RUN_ID

    request = given.apply_to(JobRequest(), RunParameters.model_fields)
    spec, _ = prepare(request, with_env=False, adopt_flow_run=False)
    spec = spec.model_copy(update={"flow_run_id": os.environ.get(ENV_FLOW_RUN_ID)})
    with running(spec) as job:
        ending = _run_as_flow(job)
    if job.report is not None:
        logger = get_run_logger()
        for line in report_lines(job.report):
            logger.info("%s", line)
    return ending


def run_flow(job: JobContext) -> JobReport:
    """Run the job as a Prefect flow run (its own, or the deployment's); return the report whatever the state."""
    _quiet_step_failures()
    spec = job.spec
    named = ferry_flow.with_options(flow_run_name=_literal(spec.run_name))
    parameters = RunParameters.of_request(spec.request, spec.manifest.version).model_dump()
    # The flow's body runs the spec; what Prefect keeps and shows has the secret vars masked.
    parameters["vars"] = mask_mapping(parameters["vars"], spec.environment.secret_vars)[0]
    try:
        if spec.flow_run_id:
            with get_client(sync_client=True) as client:
                flow_run = client.read_flow_run(spec.flow_run_id)  # type: ignore[arg-type]
            state = run_flow_engine(named, flow_run=flow_run, parameters=parameters, return_type="state")
        else:
            with tags(*spec.tags()):
                state = named(**parameters, return_state=True)
    except TerminationSignal as exc:  # SIGTERM during Prefect's own bookkeeping, outside the flow's body
        if not job.signals.fired:
            job.signals.signum = signal.SIGTERM
        raise Terminated() from exc
    if not isinstance(state, State):
        raise RuntimeError(f"unexpected flow result {state!r}")  # pragma: no cover
    result = state.result(raise_on_failure=False)
    if isinstance(result, JobReport):
        return result
    if job.report is not None:
        job.report.problems.append(f"the Prefect flow run ended in state {state.type.value}: {state.message}")
        return job.report
    if isinstance(result, BaseException):
        raise result
    raise RuntimeError(f"unexpected flow result {result!r}")  # pragma: no cover
