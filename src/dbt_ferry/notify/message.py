"""What a job's notification says."""

from __future__ import annotations

from dbt_ferry.core.notification import Notification
from dbt_ferry.core.results import RunSummary, brief_message

MAX_FAILURES = 5
_MAX_MESSAGE = 300


def _clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    return brief_message(text, limit)


def failure_notification(
    *,
    project: str,
    environment: str,
    version: str,
    exit_code: int,
    outcome: str,
    summary: RunSummary | None,
    error: str | None,
    flow_run: str | None,
    flow_run_url: str | None,
    problems: list[str] | None = None,
    regressions: list[str] | None = None,
    outputs_lost: bool = False,
) -> Notification:
    success = exit_code == 0 and not outputs_lost
    if exit_code != 0:
        verdict = "FAILED"
    elif outputs_lost:
        verdict = "passed, but its outputs were not all published"
    else:
        verdict = "succeeded with regressions" if regressions else "succeeded"
    title = f"dbt-ferry {verdict}: {project} {version} in {environment}"
    lines = [f"{outcome} (exit code {exit_code})"]
    lines += regressions or []  # a heading, then a bullet each
    if summary is not None:
        lines.append(f"Nodes: {summary.counts_line()}")
        failures = summary.failures
        for node in failures[:MAX_FAILURES]:
            lines.append(f"• {node.unique_id} [{node.status}]: {_clip(node.message or 'no message')}")
        if len(failures) > MAX_FAILURES:
            lines.append(f"… and {len(failures) - MAX_FAILURES} more failing nodes")
    if error:
        lines.append(f"Error: {_clip(error, 600)}")
    for problem in problems or []:
        lines.append(f"Also: {_clip(problem)}")
    if flow_run_url or flow_run:
        lines.append(f"Prefect flow run: {flow_run_url or flow_run}")
    facts = {"project": project, "environment": environment, "version": version, "exit code": str(exit_code)}
    return Notification(title=title, body="\n".join(lines), success=success, facts=facts, link=flow_run_url)
