"""What a job returns to its caller: exit code, outcome, summary, where the outputs went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dbt_ferry.core.results import RunSummary


@dataclass
class StepOutcome:
    name: str
    exit_code: int
    error: str | None = None
    elapsed: float = 0.0
    interrupted: bool = False
    no_nodes: bool = False


@dataclass
class JobReport:
    exit_code: int
    outcome: str
    steps: list[StepOutcome] = field(default_factory=list)
    summary: RunSummary | None = None
    error: str | None = None
    docs: str | None = None
    run_prefix: str | None = None
    state: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    store_url: str | None = None
    flow_run_id: str | None = None
    flow_run_url: str | None = None
    notified: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    timing: str | None = None
    exported: dict[str, int] = field(default_factory=dict)
