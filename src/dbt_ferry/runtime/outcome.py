"""The exit-code rules of a job, in one place, without Prefect or dbt.

dbt's meaning is kept: 0 everything passed, 1 dbt ran and a node failed, 2 dbt could not run; 130 and 143
when a signal stopped the job. The final Prefect state follows from the exit code.
"""

from __future__ import annotations

from typing import Literal

from dbt_ferry.core.errors import (
    EXIT_DBT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NODE_FAILED,
    EXIT_SIGNALLED,
    EXIT_SUCCESS,
)
from dbt_ferry.runtime.report import StepOutcome
from dbt_ferry.runtime.steps import Step

EMPTY_SELECTION = "the selection matches no node; check --select/--exclude/--selector (fail_on_empty_selection)"

FinalState = Literal["completed", "failed", "cancelled", "crashed"]


def judge_step(
    step: Step,
    *,
    exit_code: int,
    error: str | None,
    elapsed: float,
    interrupted: bool,
    no_nodes: bool,
    fail_on_empty_selection: bool,
    signal_exit_code: int | None,
    signal_how: str,
) -> StepOutcome:
    """What one dbt step's result means: its exit code and error text."""
    if interrupted:
        exit_code, error = signal_exit_code or EXIT_INTERRUPTED, signal_how
    elif exit_code == EXIT_SUCCESS and step.selected and no_nodes and fail_on_empty_selection:
        exit_code, error = EXIT_DBT_ERROR, EMPTY_SELECTION
    return StepOutcome(
        name=step.name, exit_code=exit_code, error=error, elapsed=elapsed, interrupted=interrupted, no_nodes=no_nodes
    )


def job_exit_code(step: Step, outcome: StepOutcome) -> int:
    """The job's exit code after ``step`` failed: the command's own, 2 for a setup step, or a signal's."""
    if outcome.exit_code in EXIT_SIGNALLED or step.failure == "command":
        return outcome.exit_code
    return EXIT_DBT_ERROR


def outcome_text(command: str, exit_code: int, *, how: str | None = None, stopped_during: str | None = None) -> str:
    """One line saying how the job ended: ``dbt build passed``, ``dbt build was stopped by SIGTERM``..."""
    if exit_code in EXIT_SIGNALLED:
        how = how or ("interrupted" if exit_code == EXIT_INTERRUPTED else "stopped by SIGTERM")
        if stopped_during and stopped_during != f"dbt {command}":
            return f"the job was {how} during {stopped_during}"
        return f"dbt {command} was {how}"
    if exit_code == EXIT_SUCCESS:
        return f"dbt {command} passed"
    if exit_code == EXIT_NODE_FAILED:
        return f"dbt {command} failed"
    return f"dbt {command} could not run"


def final_state(exit_code: int, *, cancelled: bool) -> FinalState:
    """The Prefect state a job ends in: Completed, Failed, Cancelled (a cancel from Prefect) or Crashed
    (stopped by a signal from elsewhere: ECS stopping the task, Ctrl-C)."""
    if exit_code == EXIT_SUCCESS:
        return "completed"
    if exit_code in EXIT_SIGNALLED:
        return "cancelled" if cancelled else "crashed"
    return "failed"
