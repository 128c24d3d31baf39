"""The job running in this process: its spec, its signals, its report, and what it holds until it ends.

:func:`running` is entered once per job, whoever starts it (``dbt-ferry run``, the library, a Prefect engine
running the deployment's flow): it starts dbt's process (so that dbt imports while Prefect does), installs the
job's signal handler, and at the end stops dbt, discards the work directory and releases its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.runtime import dbt_process
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.signals import JobSignals
from dbt_ferry.runtime.spec import JobSpec
from dbt_ferry.runtime.workdir import discard_work_dir, release_work_dir


@dataclass
class JobContext:
    spec: JobSpec
    signals: JobSignals
    #: The job's report once its steps started; a signal outside them still finishes this one.
    report: JobReport | None = None


class _Current:
    job: JobContext | None = None


_current = _Current()


def current_job() -> JobContext | None:
    """The job this process runs, when one was started; None inside a bare Prefect engine run."""
    return _current.job


@contextmanager
def running(spec: JobSpec) -> Iterator[JobContext]:
    dbt_process.start_current()  # dbt imports in its own process while this one imports Prefect
    job = JobContext(spec, JobSignals())
    previous, _current.job = _current.job, job
    try:
        with job.signals.installed():
            yield job
    finally:
        _current.job = previous
        dbt_process.stop_current(interrupt=job.signals.fired)
        if spec.cleanup:
            discard_work_dir(Path(spec.work_root))  # renamed aside now, deleted in the background
        release_work_dir(spec.lock_fd)
