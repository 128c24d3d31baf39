"""The run summary shown in Prefect: markdown and one table row per node."""

from __future__ import annotations

from dbt_ferry.core.results import RunSummary

_STATUS_ORDER = ("success", "pass", "warn", "error", "fail", "skipped", "no-op", "runtime error")


def _cell(text: str | None, limit: int = 200) -> str:
    clean = " ".join((text or "").split()).replace("|", "\\|")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def render_markdown(
    summary: RunSummary | None,
    *,
    title: str,
    exit_code: int,
    outcome: str,
    docs: str | None,
    timing: str | None = None,
    run_prefix: str | None = None,
    history: str | None = None,
    problems: list[str] | None = None,
    regressions: list[str] | None = None,
    state_aware: str | None = None,
    slowest: int = 10,
) -> str:
    lines = [f"# {title}", "", f"**{outcome}** — exit code `{exit_code}`", ""]
    if state_aware:
        lines += [_cell(state_aware, 600), ""]
    if summary is None:
        lines += ["dbt wrote no run results.", ""]
    else:
        counts = summary.counts
        ordered = sorted(counts, key=lambda s: _STATUS_ORDER.index(s) if s in _STATUS_ORDER else 99)
        lines += ["| status | nodes |", "|---|---|"]
        lines += [f"| {status} | {counts[status]} |" for status in ordered]
        if summary.elapsed is not None:
            lines += ["", f"Elapsed: {summary.elapsed:.1f} s"]
        if summary.failures:
            lines += ["", "## Failures", "", "| node | status | message |", "|---|---|---|"]
            lines += [f"| `{n.unique_id}` | {n.status} | {_cell(n.message)} |" for n in summary.failures]
        if summary.results:
            lines += ["", f"## Slowest {min(slowest, len(summary.results))} nodes", "", "| node | status | seconds |"]
            lines += ["|---|---|---|"]
            lines += [f"| `{n.unique_id}` | {n.status} | {n.execution_time:.2f} |" for n in summary.slowest(slowest)]
    if regressions:
        heading, *items = regressions
        lines += ["", "## Regressions", "", heading, "", *(f"- {item.removeprefix('• ')}" for item in items)]
    lines += ["", "## Outputs", ""]
    lines.append(f"- Docs: `{docs}`" if docs else "- Docs: not published in this run")
    if timing:
        lines.append(f"- Timing chart: `{timing}`")
    if run_prefix:
        lines.append(f"- Run artifacts: `{run_prefix}`")
    if history:
        lines.append(f"- History report: `{history}`")
    for problem in problems or []:
        lines.append(f"- Problem: {_cell(problem, 400)}")
    return "\n".join(lines) + "\n"


def table_rows(summary: RunSummary | None) -> list[dict[str, object]]:
    if summary is None:
        return []
    return [
        {
            "unique_id": n.unique_id,
            "resource_type": n.resource_type,
            "status": n.status,
            "execution_time": round(n.execution_time, 3),
            "thread_id": n.thread_id or "",
            "failures": n.failures if n.failures is not None else "",
            "message": _cell(n.message),
        }
        for n in summary.results
    ]
