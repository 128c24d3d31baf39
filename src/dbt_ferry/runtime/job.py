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
from dbt_ferry.runtime.finalize import collect_outputs, export_tables, notify, should_notify
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import EXIT_TERMINATED, JobSpec
from dbt_ferry.runtime.workdir import release_work_dir

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM; dbt stops its nodes and writes what it has."""


class _TermHandler:
    """The first SIGTERM interrupts dbt; later ones are ignored so that the job can finish publishing."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:
            return
        self.fired = True
        log.warning("SIGTERM received: stopping dbt, then publishing what exists")
        raise Terminated()


#: The handler of the job running in this process (set by :func:`execute`).
_active_handler: _TermHandler | None = None


@contextmanager
def sigterm_stops_dbt() -> Iterator[None]:
    """While dbt runs, SIGTERM goes to the job's handler again.

    Prefect's flow engine installs its own SIGTERM handler for the whole flow run; it raises
    ``TerminationSignal``, which dbt does not take for an interrupt (no run_results.json, running queries
    left running, the busy connection fails to close). dbt stops cleanly only on KeyboardInterrupt.
    Once the job's handler has fired it stays installed, so that later SIGTERMs are ignored while the job
    publishes (Prefect restores it anyway when the flow run ends).
    """
    handler = _active_handler
    if handler is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if not handler.fired:
            signal.signal(signal.SIGTERM, previous)


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
        report = JobReport(
            exit_code=EXIT_TERMINATED if terminated else 130,
            outcome="the job was stopped by SIGTERM" if terminated else "the job was interrupted",
        )
        _emergency_finish(spec, report)
    finally:
        _active_handler = None
        signal.signal(signal.SIGTERM, previous)
        if spec.cleanup:
            shutil.rmtree(spec.work_root, ignore_errors=True)
        release_work_dir(spec.lock_fd)
    if handler.fired and report.exit_code not in (EXIT_TERMINATED, 130):
        report.exit_code = EXIT_TERMINATED
    return report


def main(argv: list[str] | None = None) -> None:
    """``python -m dbt_ferry.runtime.job SPEC.json``: the second half of ``dbt-ferry run``."""
    from dbt_ferry.cli.run import finish_job
    from dbt_ferry.console import configure_logging

    configure_logging(os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes"))
    args = sys.argv[1:] if argv is None else argv
    spec = JobSpec.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
    finish_job(spec)


if __name__ == "__main__":
    main()
