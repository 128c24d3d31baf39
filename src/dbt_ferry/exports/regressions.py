"""Regressions of one run against the runs before it: models far slower than usual, tests that newly failed.

The job calls :func:`find_regressions` after exporting a run and adds :func:`regression_lines` to its
notification (``notify.regressions``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.expressions import In

from dbt_ferry.config.models import RegressionsConfig
from dbt_ferry.core.errors import ExportError
from dbt_ferry.core.results import FAILED_STATUSES
from dbt_ferry.exports.reading import scan
from dbt_ferry.exports.runs import Run, load_runs
from dbt_ferry.exports.schema import NODE_RESULTS
from dbt_ferry.exports.trends import TEST_TYPES, TIMED_TYPES, slowdown

#: Statuses of a node that did not run in an invocation: they say nothing of whether it passes.
_DID_NOT_RUN = frozenset({"skipped", "no-op"})
_FAILED_WORD = {"fail": "failed", "error": "errored", "runtime error": "errored"}
_MAX_MESSAGE = 160


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


@dataclass(frozen=True)
class SlowerModel:
    """A model (or snapshot) that took far longer than its median over its earlier successful runs."""

    unique_id: str
    seconds: float
    median: float
    runs: int

    @property
    def factor(self) -> float:
        return self.seconds / self.median if self.median > 0 else float("inf")

    @property
    def text(self) -> str:
        return (
            f"{self.unique_id} took {self.seconds:.1f} s, {self.factor:.1f}× its median of {self.median:.1f} s "
            f"over {self.runs} runs"
        )


@dataclass(frozen=True)
class NewlyFailedTest:
    """A test that fails (or errors) now and passed in the previous run that ran it."""

    unique_id: str
    status: str
    failures: int | None
    message: str | None
    passed_in: str
    passed_at: datetime | None

    @property
    def text(self) -> str:
        word = _FAILED_WORD.get(self.status, self.status)
        rows = f" ({self.failures} failing rows)" if self.failures else ""
        when = f" on {self.passed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.passed_at else ""
        message = f": {_clip(self.message)}" if self.message else ""
        return f"{self.unique_id} newly {word}{rows}, after passing in the previous run that ran it{when}{message}"


Regression = SlowerModel | NewlyFailedTest


def _lookback(config: RegressionsConfig) -> int:
    """How many earlier runs are read: enough to find ``runs`` successful ones of a model not run every time."""
    return max(50, 5 * config.runs)


def find_regressions(
    catalog: Catalog, namespace: str, environment: str, invocation_id: str, config: RegressionsConfig
) -> list[Regression]:
    """The regressions of run ``invocation_id`` (already exported) against the environment's earlier runs.

    Models (and snapshots) only when the run succeeded: one that took more than ``config.factor`` × its median
    over its last ``config.runs`` successful runs (at least 3 earlier ones, at least ``config.min_seconds`` now).
    Tests whatever the run's outcome: one that fails or errors now and passed in the previous run that ran it.
    Earlier runs are those that started before this one, among the environment's last 5 × ``runs`` (at least 50).
    Slowest models first, then tests by name.
    """
    runs = load_runs(catalog, namespace, environment)
    position = next((i for i, r in enumerate(runs) if r.invocation_id == invocation_id), None)
    if position is None:
        raise ExportError(
            f"no run {invocation_id} in the result tables of {environment}", "export the run before checking it"
        )
    current = runs[position]
    earlier = [r for r in runs[:position] if r.order < current.order][-_lookback(config) :]
    window = [*earlier, current]
    order = {r.invocation_id: i for i, r in enumerate(window)}
    columns = ("invocation_id", "unique_id", "resource_type", "status", "execution_time", "failures", "message")
    where = In("invocation_id", list(order))  # type: ignore[call-arg,misc]
    since = min(r.day for r in window)
    rows = scan(catalog, namespace, NODE_RESULTS, environment, columns, since=since, where=where).to_pylist()
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: order[r["invocation_id"]]):
        by_node[row["unique_id"]].append(row)
    slower = _slower(by_node, invocation_id, config) if current.success else []
    newly = _newly_failed(by_node, invocation_id, runs)
    return [
        *sorted(slower, key=lambda s: (-s.factor, s.unique_id)),
        *sorted(newly, key=lambda t: t.unique_id),
    ]


def _slower(
    by_node: dict[str, list[dict[str, Any]]], invocation_id: str, config: RegressionsConfig
) -> list[SlowerModel]:
    slower = []
    for uid, rows in by_node.items():
        last = rows[-1]
        if last["invocation_id"] != invocation_id or last["resource_type"] not in TIMED_TYPES:
            continue
        if last["status"] != "success" or last["execution_time"] is None:
            continue
        # Oldest first, ending with this run's (the last row is this run's, a success with a duration).
        durations = [
            float(r["execution_time"]) for r in rows if r["status"] == "success" and r["execution_time"] is not None
        ]
        found = slowdown(durations, factor=config.factor, runs=config.runs, min_seconds=config.min_seconds)
        if found is not None:
            slower.append(SlowerModel(uid, found.seconds, found.median, found.runs))
    return slower


def _newly_failed(
    by_node: dict[str, list[dict[str, Any]]], invocation_id: str, runs: list[Run]
) -> list[NewlyFailedTest]:
    started = {r.invocation_id: r.started_at for r in runs}
    newly = []
    for uid, rows in by_node.items():
        last = rows[-1]
        if last["invocation_id"] != invocation_id or last["resource_type"] not in TEST_TYPES:
            continue
        if last["status"] not in FAILED_STATUSES:
            continue
        previous = next((r for r in reversed(rows[:-1]) if r["status"] not in _DID_NOT_RUN), None)
        if previous is None or previous["status"] != "pass":
            continue
        newly.append(
            NewlyFailedTest(
                unique_id=uid,
                status=last["status"],
                failures=last["failures"],
                message=last["message"],
                passed_in=previous["invocation_id"],
                passed_at=started.get(previous["invocation_id"]),
            )
        )
    return newly


def regression_lines(regressions: list[Regression], *, limit: int = 10) -> list[str]:
    """The lines a notification body gets: a heading, one bullet per regression (``limit`` at most). None: []."""
    if not regressions:
        return []
    models = sum(1 for r in regressions if isinstance(r, SlowerModel))
    tests = len(regressions) - models
    counts = [
        f"{n} {word}{'s' if n != 1 else ''}"
        for n, word in ((models, "slower model"), (tests, "newly failing test"))
        if n
    ]
    lines = [f"Regressions: {', '.join(counts)}"]
    lines += [f"• {r.text}" for r in regressions[:limit]]
    if len(regressions) > limit:
        lines.append(f"… and {len(regressions) - limit} more")
    return lines
