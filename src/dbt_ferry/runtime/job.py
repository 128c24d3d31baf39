"""Run a resolved job in this interpreter: as a Prefect flow run, or without Prefect.

Entry point of the re-exec: ``python -m dbt_ferry.runtime.job SPEC.json`` (the spec is written by the
bootstrap before it hands over to the release's packed Python). Nothing here imports the CLI.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from dbt_ferry.console import configure_logging, out
from dbt_ferry.core.constants import ENV_DEBUG
from dbt_ferry.core.errors import EXIT_INTERRUPTED
from dbt_ferry.core.exiting import exit_now
from dbt_ferry.runtime import dbt_process
from dbt_ferry.runtime.context import JobContext, running
from dbt_ferry.runtime.engine import PlainRunner, configure_job_logging, end_job, new_report, run_job
from dbt_ferry.runtime.mode import uses_prefect
from dbt_ferry.runtime.report import JobReport, report_lines
from dbt_ferry.runtime.spec import JobSpec

log = logging.getLogger(__name__)


def execute(spec: JobSpec) -> JobReport:
    """Run the job; on a signal, still publish, export and notify, and report 143 (SIGTERM) or 130 (Ctrl-C)."""
    with running(spec) as job:
        try:
            if uses_prefect(spec):
                if not os.environ.get("PREFECT_API_URL"):
                    # A temporary local server: keep it from phoning home (it cannot, offline, and says so loudly),
                    # and give its first start, which creates and migrates the database, more than Prefect's 20 s.
                    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
                    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
                from dbt_ferry.runtime.flow import run_flow

                return run_flow(job)
            report = job.report = new_report()
            return run_job(spec, PlainRunner(), job.signals, report)
        except KeyboardInterrupt:
            # A signal outside the steps (while Prefect started or ended the flow run): finish here, once.
            return _finish_stopped(job)


def _finish_stopped(job: JobContext) -> JobReport:
    report = job.report or new_report()
    if not report.finished:
        report.exit_code = job.signals.exit_code or EXIT_INTERRUPTED
        report.error = report.error or job.signals.how
        report.outcome = ""
        end_job(job.spec, PlainRunner(), job.signals, report)
    return report


def finish_job(spec: JobSpec) -> None:
    """Run the job in this interpreter, print the outcome, and exit with the job's code."""
    report = execute(spec)
    for signum in (signal.SIGTERM, signal.SIGINT):  # the job is over: a signal now would only lose its exit code
        signal.signal(signum, signal.SIG_IGN)
    for line in report_lines(report):
        out.print(line)
    sys.exit(report.exit_code)


def main(argv: list[str] | None = None) -> None:
    """``python -m dbt_ferry.runtime.job SPEC.json``: the second half of ``dbt-ferry run``."""
    dbt_process.start_current()  # first thing: dbt's import is the longest part of the start
    configure_logging(os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes"))
    configure_job_logging()
    args = sys.argv[1:] if argv is None else argv
    spec = JobSpec.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
    try:
        finish_job(spec)
    except SystemExit as exc:  # a process of its own: leave without the teardown of Prefect's and pyarrow's modules
        exit_now(exc.code)


if __name__ == "__main__":
    main()
