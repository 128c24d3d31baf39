"""When each node of one run ran, from dbt's run_results.json: its thread, start, end and duration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbt_ferry.exports.rows import parse_timestamp, split_unique_id


@dataclass(frozen=True)
class NodeSpan:
    unique_id: str
    resource_type: str
    name: str
    status: str
    thread: str
    start: datetime
    end: datetime
    #: dbt's ``execution_time`` (what the tables, the labels and the critical path count), else the span.
    seconds: float


def _thread_key(thread: str) -> tuple[int, str]:
    number = re.search(r"\d+", thread)
    return (int(number.group()) if number else 0, thread)


def node_spans(run_results: dict[str, Any]) -> list[NodeSpan]:
    """The nodes that have a compile or execute timing (a skipped node has none), in start order."""
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
        unique_id = str(result.get("unique_id") or "")
        kind, _, name = split_unique_id(unique_id)
        start, end = min(starts), max(ends)
        seconds = result.get("execution_time")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            seconds = (end - start).total_seconds()
        spans.append(
            NodeSpan(
                unique_id=unique_id,
                resource_type=kind or "other",
                name=name or unique_id,
                status=str(result.get("status") or "unknown"),
                thread=str(result.get("thread_id") or "main"),
                start=start,
                end=max(end, start),
                seconds=max(float(seconds), 0.0),
            )
        )
    return sorted(spans, key=lambda s: (s.start, s.unique_id))


def threads(spans: list[NodeSpan]) -> list[str]:
    """The threads in their natural order: Thread-2 before Thread-10."""
    return sorted({s.thread for s in spans}, key=_thread_key)
