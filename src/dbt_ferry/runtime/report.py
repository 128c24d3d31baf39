"""What a job returns to its caller: exit code, outcome, summary, where the outputs went — and how it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dbt_ferry.core.results import RunSummary, brief_message


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
    #: The environment's history report, published after the export (``docs/<env>/history.html``).
    history: str | None = None
    #: ``notify.regressions``: models much slower than usual and tests that newly fail (a heading, a line each).
    regressions: list[str] = field(default_factory=list)
    #: Some of the run's outputs could not be published or exported (the reasons are in ``problems``): the team
    #: is notified even when dbt passed, since docs, state or table rows are missing.
    outputs_lost: bool = False
    #: A state-aware run: what it built and what it left alone, and why (one line).
    state_aware: str | None = None
    #: Set once the outputs were published, exported and notified: no path does it twice.
    finished: bool = False


def report_lines(report: JobReport) -> list[str]:
    """The job's outcome as the console shows it at the end of ``dbt-ferry run``."""
    lines = [f"{report.outcome} — exit code {report.exit_code}"]
    if report.summary is not None:
        elapsed = f" in {report.summary.elapsed:.1f} s" if report.summary.elapsed is not None else ""
        lines.append(f"  nodes: {report.summary.counts_line()}{elapsed}")
        for node in report.summary.failures[:10]:
            message = brief_message(node.message or "", 200)
            lines.append(f"  ✗ {node.unique_id} [{node.status}] {message}")
    if report.state_aware:
        lines.append(f"  {report.state_aware}")
    if report.error:
        lines.append(f"  error: {report.error}")
    if report.docs:
        lines.append(f"  docs: {report.store_url}/{report.docs}")
    if report.timing:
        lines.append(f"  timing chart: {report.store_url}/{report.timing}")
    if report.history:
        lines.append(f"  history report: {report.store_url}/{report.history}")
    lines += [f"  {line}" for line in report.regressions]
    if report.run_prefix:
        lines.append(f"  run artifacts: {report.store_url}/{report.run_prefix}")
    if report.exported:
        lines.append("  result tables: " + ", ".join(f"{t} +{n}" for t, n in report.exported.items()))
    lines += [f"  problem: {problem}" for problem in report.problems]
    if report.flow_run_url:
        lines.append(f"  Prefect flow run: {report.flow_run_url}")
    elif report.flow_run_id:
        lines.append(f"  Prefect flow run id: {report.flow_run_id}")
    return lines
