"""The history report's small SVG charts, drawn on the server: runs over time, a duration sparkline, a strip of
test results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from dbt_ferry.exports.html import STATUS_COLOURS, esc, nice_step, seconds_text
from dbt_ferry.exports.runs import Run

PASSED, FAILED, UNKNOWN = "#2e7d32", "#c62828", "#9e9e9e"
LEFT, PLOT_W, RIGHT = 56, 1100, 12
DURATION_H, NODES_H, GAP, AXIS_H = 150, 46, 14, 20


def run_colour(run: Run) -> str:
    return PASSED if run.success else FAILED if run.success is False else UNKNOWN


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "no start recorded"


#: Time axis steps, in hours: the first that gives at most a dozen ticks.
_STEPS_H = (1, 2, 3, 6, 12, 24, 48, 168, 336, 720)


def _time_ticks(since: datetime, until: datetime, top: int, bottom: int) -> list[str]:
    """A tick every round number of hours or days between ``since`` and ``until`` (UTC), labelled."""
    span = max((until - since).total_seconds(), 1.0)
    hours = next((h for h in _STEPS_H if span / 3600 / h <= 12), _STEPS_H[-1])
    step = timedelta(hours=hours)
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if hours >= 24:
        start = start.replace(hour=0)
    elif start.hour % hours:
        start = start.replace(hour=start.hour - start.hour % hours)
    parts, tick = [], start + step
    while tick < until:
        x = LEFT + (tick - since).total_seconds() / span * PLOT_W
        label = f"{tick:%m-%d}" if hours >= 24 else f"{tick:%m-%d %H:%M}"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#eef1f3"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" class="ax">{label}</text>'
        )
        tick += step
    return parts


def runs_chart(runs: Sequence[Run], link: Callable[[Run], str], since: datetime, until: datetime) -> str:
    """One bar per run at its start time: its height the duration, its colour the outcome, under it the number of
    nodes; each bar links to the run's artifacts and its tooltip says what ran."""
    span = max((until - since).total_seconds(), 1.0)
    width = min(max(PLOT_W / max(len(runs), 1) * 0.7, 1.0), 14.0)
    longest = max((r.elapsed_seconds or 0.0 for r in runs), default=0.0) or 1.0
    most = max((r.nodes for r in runs), default=0) or 1
    top, nodes_top = 8, 8 + DURATION_H + GAP
    bottom = nodes_top + NODES_H
    parts = []
    step = nice_step(longest, 4)
    value = 0.0
    while value <= longest + 1e-9:  # the duration axis
        y = top + DURATION_H - value / longest * DURATION_H
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ea"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="ax">{esc(seconds_text(value))}</text>'
        )
        value += step
    parts.append(f'<text x="{LEFT - 6}" y="{nodes_top + 12}" text-anchor="end" class="ax">{most} nodes</text>')
    parts += _time_ticks(since, until, top, bottom)
    for run in runs:
        moment = run.started_at or run.completed_at
        if moment is None:
            continue
        x = LEFT + (moment - since).total_seconds() / span * PLOT_W - width / 2
        height = max((run.elapsed_seconds or 0.0) / longest * DURATION_H, 1.0)
        nodes_height = max(run.nodes / most * NODES_H, 1.0 if run.nodes else 0.0)
        tip = (
            f"{_when(run.started_at)} · {run.status} (exit {run.exit_code if run.exit_code is not None else '?'})\n"
            f"{run.what_ran} · {seconds_text(run.elapsed_seconds)} · {run.nodes} nodes, {run.failed} failed\n"
            f"release {run.release_version or '?'} · {run.invocation_id}"
        )
        parts.append(
            f'<a href="{esc(link(run))}"><title>{esc(tip)}</title>'
            f'<rect x="{x:.1f}" y="{top + DURATION_H - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{run_colour(run)}"/>'
            f'<rect x="{x:.1f}" y="{nodes_top + NODES_H - nodes_height:.1f}" width="{width:.1f}" '
            f'height="{nodes_height:.1f}" fill="#90a4ae"/></a>'
        )
    total = LEFT + PLOT_W + RIGHT
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{bottom + AXIS_H}" role="img" '
        f'aria-label="Duration, outcome and node count of each run over time">{"".join(parts)}</svg>'
    )


def sparkline(series: Sequence[float], median: float, *, flagged: bool, width: int = 160, height: int = 28) -> str:
    """A model's latest durations, oldest on the left; the dashed line is its median, the dot its last run."""
    if not series:
        return ""
    top = max(max(series), median) or 1.0
    step = width / max(len(series) - 1, 1)

    def y(value: float) -> float:
        return height - 3 - value / top * (height - 6)

    points = " ".join(f"{i * step:.1f},{y(v):.1f}" for i, v in enumerate(series))
    last_x, last_y = (len(series) - 1) * step, y(series[-1])
    dot = FAILED if flagged else "#3b6ea8"
    return (
        f'<svg width="{width + 4}" height="{height}" class="spark">'
        f'<line x1="0" x2="{width}" y1="{y(median):.1f}" y2="{y(median):.1f}" stroke="#9aa5ad" stroke-dasharray="3 2"/>'
        f'<polyline points="{points}" fill="none" stroke="#3b6ea8" stroke-width="1.3"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.6" fill="{dot}"/></svg>'
    )


def status_strip(statuses: Sequence[str | None], *, cell: int = 9) -> str:
    """One square per result of a test, oldest on the left, coloured by its status."""
    cells = "".join(
        f'<rect x="{i * (cell + 2)}" width="{cell}" height="{cell}" fill="{STATUS_COLOURS.get(s or "", UNKNOWN)}">'
        f"<title>{esc(s or 'no status')}</title></rect>"
        for i, s in enumerate(statuses)
    )
    return f'<svg width="{len(statuses) * (cell + 2)}" height="{cell}" class="strip">{cells}</svg>'
