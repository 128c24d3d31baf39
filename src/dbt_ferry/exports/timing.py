"""The timing chart: every node on its thread over time, coloured by status, as one offline HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from dbt_ferry.exports.rows import parse_timestamp

STATUS_COLOURS = {
    "success": "#2e7d32",
    "pass": "#66bb6a",
    "warn": "#f9a825",
    "error": "#c62828",
    "fail": "#e53935",
    "runtime error": "#b71c1c",
    "skipped": "#9e9e9e",
    "no-op": "#bdbdbd",
}


def _spans(run_results: dict[str, Any]) -> list[dict[str, Any]]:
    spans = []
    for result in run_results.get("results") or []:
        if not isinstance(result, dict):
            continue
        timing = {t.get("name"): t for t in result.get("timing") or [] if isinstance(t, dict)}
        parts = [timing.get("compile") or {}, timing.get("execute") or {}]
        starts = [s for s in (parse_timestamp(p.get("started_at")) for p in parts) if s]
        ends = [e for e in (parse_timestamp(p.get("completed_at")) for p in parts) if e]
        if not starts or not ends:
            continue
        spans.append(
            {
                "unique_id": str(result.get("unique_id")),
                "status": str(result.get("status")),
                "thread": str(result.get("thread_id") or "main"),
                "start": min(starts),
                "end": max(ends),
                "seconds": float(result.get("execution_time") or 0.0),
            }
        )
    return spans


def timing_figure(run_results: dict[str, Any], title: str) -> go.Figure:
    spans = _spans(run_results)
    figure = go.Figure()
    for status in sorted({s["status"] for s in spans}):
        group = [s for s in spans if s["status"] == status]
        figure.add_trace(
            go.Bar(
                name=status,
                orientation="h",
                y=[s["thread"] for s in group],
                base=[s["start"].isoformat() for s in group],
                x=[max((s["end"] - s["start"]).total_seconds() * 1000, 1.0) for s in group],
                marker_color=STATUS_COLOURS.get(status, "#546e7a"),
                customdata=[[s["unique_id"], s["seconds"]] for s in group],
                hovertemplate="%{customdata[0]}<br>%{customdata[1]:.2f} s<extra>" + status + "</extra>",
            )
        )
    threads = sorted({s["thread"] for s in spans})
    figure.update_layout(
        title=title,
        barmode="overlay",
        xaxis={"type": "date", "title": "time"},
        yaxis={"title": "thread", "categoryorder": "array", "categoryarray": threads[::-1]},
        height=max(300, 60 * len(threads) + 160),
        legend={"title": "status"},
    )
    return figure


def write_timing_chart(run_results: dict[str, Any], title: str, dest: Path) -> Path:
    """Write a self-contained HTML file (plotly.js embedded: opens offline, no CDN)."""
    timing_figure(run_results, title).write_html(dest, include_plotlyjs=True, full_html=True, auto_open=False)
    return dest
