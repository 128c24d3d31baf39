"""How a job's steps and finishing phases are run and reported: the seam between the job and Prefect.

Two runners implement it: the Prefect flow's (``runtime/flow.py``: a task per step and phase, dbt events in
the task's run log, a Prefect event per finished node) and the plain one (``runtime/engine.py``: no Prefect,
dbt events on the console).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dbt_ferry.runtime.report import JobReport, StepOutcome
    from dbt_ferry.runtime.spec import JobSpec
    from dbt_ferry.runtime.steps import Step


class StepSink(Protocol):
    """Where a running dbt step's forwarded events and finished nodes go."""

    def on_event(self, level: int, text: str) -> None: ...

    def on_node(self, node: dict[str, Any]) -> None: ...


RunStep = Callable[[StepSink], "StepOutcome"]


class Runner(Protocol):
    def step(self, step: Step, run: RunStep) -> StepOutcome:
        """Run one dbt step (``run`` does the work, reporting to the sink it is given)."""
        ...

    def phase(self, name: str, work: Callable[[], None], report: JobReport) -> None:
        """Run one finishing phase; never raises (a failure becomes one of ``report.problems``)."""
        ...

    def summary(self, spec: JobSpec, report: JobReport) -> None:
        """Leave the run's summary where people look (Prefect artifacts); nothing without Prefect."""
        ...
