"""Run a resolved job inside the environment that holds dbt and Prefect.

Entry point of the re-exec: ``python -m dbt_ferry.runtime.job SPEC.json`` (the spec is written by the
bootstrap before it hands over to the release's packed Python).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from dbt_ferry.core.constants import ENV_DEBUG
from dbt_ferry.runtime import dbt_process
from dbt_ferry.runtime.dbt_process import DbtProcess
from dbt_ferry.runtime.finalize import collect_outputs, export_tables, notify, should_notify
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import EXIT_TERMINATED, JobSpec
from dbt_ferry.runtime.workdir import release_work_dir

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM between dbt steps: the job publishes what exists."""


class _TermHandler:
    """The first SIGTERM stops dbt (or the job, between dbt steps); later ones are ignored so that the job
    can finish publishing. While a dbt step runs, Ctrl-C (SIGINT) is handled the same way."""

    def __init__(self) -> None:
        self.fired = False
        self.signum: int | None = None
        self.dbt: DbtProcess | None = None  # set while a dbt step runs

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:
            return
        self.fired = True
        self.signum = signum
        name = signal.Signals(signum).name
        dbt = self.dbt
        if dbt is not None and dbt.busy:
            log.warning("%s received: stopping dbt, then publishing what exists", name)
            dbt.interrupt()  # dbt cancels its queries, writes run_results.json and returns
            return
        log.warning("%s received: publishing what exists", name)
        raise Terminated()


#: The handler of the job running in this process (set by :func:`execute`).
_active_handler: _TermHandler | None = None


def interruption_code(handler: _TermHandler | None) -> int:
    return 130 if handler is not None and handler.signum == signal.SIGINT else EXIT_TERMINATED


def interruption() -> tuple[int, str]:
    """Exit code and text of a dbt step that was interrupted: 130 for Ctrl-C, else 143 (SIGTERM)."""
    code = interruption_code(_active_handler)
    return code, "interrupted (SIGINT)" if code == 130 else "stopped by SIGTERM"


@contextmanager
def sigterm_stops_dbt(dbt: DbtProcess) -> Iterator[None]:
    """While a dbt step runs, SIGTERM and SIGINT go to the job's handler, which stops dbt's process.

    Prefect's flow engine installs its own SIGTERM handler for the whole flow run; it raises
    ``TerminationSignal`` in this process, which would leave dbt (in its own process) running. dbt stops
    cleanly only on KeyboardInterrupt: the handler sends its process SIGINT and the step waits for dbt's
    answer (its run_results.json written). Once the handler has fired it stays installed, so that later
    signals are ignored while the job publishes (Prefect restores its own when the flow run ends).
    """
    handler = _active_handler
    if handler is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    handler.dbt = dbt
    try:
        yield
    finally:
        handler.dbt = None
        if not handler.fired:
            for signum, before in previous.items():
                signal.signal(signum, before)
        else:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])


def _emergency_finish(spec: JobSpec, report: JobReport) -> None:
    """Publish and notify without Prefect, when the flow itself was interrupted."""
    try:
        collect_outputs(spec, report)
        export_tables(spec, report)
        if should_notify(spec, report):
            report.problems += notify(spec, report)
    except Exception as exc:  # noqa: BLE001 - the job is ending; report and go
        log.error("could not publish outputs after SIGTERM: %s", exc)


def execute(spec: JobSpec) -> JobReport:
    """Run the job's flow; on SIGTERM, still publish and notify, and report exit code 143."""
    dbt_process.start_current()  # dbt imports in its own process while this one imports Prefect
    if not os.environ.get("PREFECT_API_URL"):
        # A temporary local Prefect server: keep it from phoning home (it cannot, offline, and says so loudly).
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    global _active_handler
    handler = _TermHandler()
    previous = signal.signal(signal.SIGTERM, handler)
    _active_handler = handler
    from prefect.exceptions import TerminationSignal

    try:
        from dbt_ferry.runtime.flow import run_flow

        report = run_flow(spec)
    except (KeyboardInterrupt, TerminationSignal) as exc:
        # KeyboardInterrupt: our handler (or Ctrl-C); TerminationSignal: SIGTERM caught by Prefect's own
        # handler, outside a dbt step (between tasks, in Prefect's bookkeeping).
        terminated = handler.fired or isinstance(exc, TerminationSignal)
        handler.fired = True  # from here on, further SIGTERMs are ignored while we publish
        signal.signal(signal.SIGTERM, handler)
        dbt_process.stop_current(interrupt=True)
        report = JobReport(
            exit_code=EXIT_TERMINATED if terminated else 130,
            outcome="the job was stopped by SIGTERM" if terminated else "the job was interrupted",
        )
        _emergency_finish(spec, report)
    finally:
        dbt_process.stop_current()
        _active_handler = None
        signal.signal(signal.SIGTERM, previous)
        if spec.cleanup:
            shutil.rmtree(spec.work_root, ignore_errors=True)
        release_work_dir(spec.lock_fd)
    if handler.fired and report.exit_code not in (EXIT_TERMINATED, 130):
        report.exit_code = interruption_code(handler)
    return report


def main(argv: list[str] | None = None) -> None:
    """``python -m dbt_ferry.runtime.job SPEC.json``: the second half of ``dbt-ferry run``."""
    dbt_process.start_current()  # first thing: dbt's import is the longest part of the start
    from dbt_ferry.cli.run import finish_job
    from dbt_ferry.console import configure_logging

    configure_logging(os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes"))
    args = sys.argv[1:] if argv is None else argv
    spec = JobSpec.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
    finish_job(spec)


if __name__ == "__main__":
    main()
