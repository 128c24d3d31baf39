"""What the history report shows, read from the result tables of one environment and worked out once.

Columns are filtered in Arrow before anything becomes Python objects: at 1,000 runs of 2,000 nodes the node table
holds two million rows, of which only the timed successes, the tests and the failures are needed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import RegressionsConfig
from dbt_ferry.core.results import FAILED_STATUSES
from dbt_ferry.exports.reading import scan, since_days
from dbt_ferry.exports.regressions import SlowerModel
from dbt_ferry.exports.rows import split_unique_id
from dbt_ferry.exports.runs import Run, load_runs
from dbt_ferry.exports.schema import NODE_RESULTS, SOURCE_FRESHNESS
from dbt_ferry.exports.trends import TEST_TYPES, TIMED_TYPES, flips, median, passed, percentile, slowdown

#: How many of a model's latest durations its sparkline draws, and of a test's latest results its strip.
SERIES = 60
STRIP = 40
TOP_FAILURES = 20


@dataclass(frozen=True)
class ModelTrend:
    """A model's (or snapshot's) successful durations over the period."""

    unique_id: str
    name: str
    runs: int
    median: float
    p95: float
    last: float
    last_run: str  # its invocation_id
    series: tuple[float, ...]  # the latest SERIES durations, oldest first


@dataclass(frozen=True)
class SlowerThanUsual:
    model: SlowerModel
    run: Run | None


@dataclass(frozen=True)
class FlakyTest:
    unique_id: str
    name: str
    runs: int
    failures: int
    flips: int
    last_status: str | None
    statuses: tuple[str | None, ...]  # the latest STRIP results, oldest first


@dataclass(frozen=True)
class Failure:
    unique_id: str
    resource_type: str | None
    count: int
    runs: int
    last_status: str | None
    last_message: str | None
    last_run: Run | None


@dataclass(frozen=True)
class SourceFreshness:
    unique_id: str
    status: str | None
    max_loaded_at: datetime | None
    age_seconds: float | None
    checked_at: datetime | None
    message: str | None
    checks: int
    warned: int
    errored: int


@dataclass
class ReportData:
    environment: str
    since: date
    generated_at: datetime
    rule: RegressionsConfig
    project: str | None = None
    runs: list[Run] = field(default_factory=list)  # oldest first
    models: list[ModelTrend] = field(default_factory=list)  # largest median first
    slower: list[SlowerThanUsual] = field(default_factory=list)
    flaky: list[FlakyTest] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    freshness: list[SourceFreshness] = field(default_factory=list)
    tests: int = 0
    node_rows: int = 0


def _is_in(table: pa.Table, column: str, values: frozenset[str]) -> Any:
    return pc.is_in(table[column], value_set=pa.array(sorted(values), type=table.schema.field(column).type))


def _name(unique_id: str) -> str:
    return split_unique_id(unique_id)[2] or unique_id


def _by_node(table: pa.Table, order: dict[str, int], *columns: str) -> dict[str, list[tuple[Any, ...]]]:
    """unique_id -> its rows' ``columns``, oldest run first (rows of runs outside the period dropped)."""
    grouped: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    values = [table[c].to_pylist() for c in ("invocation_id", "unique_id", *columns)]
    for invocation_id, unique_id, *rest in zip(*values, strict=True):
        position = order.get(invocation_id)
        if position is not None:
            grouped[unique_id].append((position, *rest))
    for rows in grouped.values():
        rows.sort(key=lambda r: r[0])
    return grouped


def _models(timed: pa.Table, order: dict[str, int], runs: list[Run], rule: RegressionsConfig, data: ReportData) -> None:
    for uid, rows in _by_node(timed, order, "execution_time").items():
        seconds = [float(r[1]) for r in rows if r[1] is not None]
        if not seconds:
            continue
        last_run = runs[rows[-1][0]]
        data.models.append(
            ModelTrend(
                unique_id=uid,
                name=_name(uid),
                runs=len(seconds),
                median=median(seconds),
                p95=percentile(seconds, 95),
                last=seconds[-1],
                last_run=last_run.invocation_id,
                series=tuple(seconds[-SERIES:]),
            )
        )
        found = slowdown(seconds, factor=rule.factor, runs=rule.runs, min_seconds=rule.min_seconds)
        if found is not None:
            data.slower.append(SlowerThanUsual(SlowerModel(uid, found.seconds, found.median, found.runs), last_run))
    data.models.sort(key=lambda m: (-m.median, m.unique_id))
    data.slower.sort(key=lambda s: (-s.model.factor, s.model.unique_id))


def _flaky(tests: pa.Table, order: dict[str, int], data: ReportData) -> None:
    grouped = _by_node(tests, order, "status")
    data.tests = len(grouped)
    for uid, rows in grouped.items():
        statuses = [r[1] for r in rows]
        changes = flips(statuses)
        if changes < 2:
            continue
        data.flaky.append(
            FlakyTest(
                unique_id=uid,
                name=_name(uid),
                runs=len(statuses),
                failures=sum(1 for s in statuses if passed(s) is False),
                flips=changes,
                last_status=statuses[-1],
                statuses=tuple(statuses[-STRIP:]),
            )
        )
    data.flaky.sort(key=lambda t: (-t.flips, -t.failures, t.unique_id))


def _failures(nodes: pa.Table, order: dict[str, int], runs: list[Run], data: ReportData) -> None:
    failed = nodes.filter(_is_in(nodes, "status", FAILED_STATUSES))
    if not failed.num_rows:
        return
    counts = nodes.filter(_is_in(nodes, "unique_id", frozenset(failed["unique_id"].to_pylist())))
    grouped = counts.group_by("unique_id").aggregate([([], "count_all")])
    results = dict(zip(grouped["unique_id"].to_pylist(), grouped["count_all"].to_pylist(), strict=True))
    failures = []
    for uid, rows in _by_node(failed, order, "resource_type", "status", "message").items():
        position, kind, status, message = rows[-1]
        failures.append(
            Failure(uid, kind, len(rows), int(results.get(uid, len(rows))), status, message, runs[position])
        )
    failures.sort(key=lambda f: (-f.count, f.unique_id))
    data.failures = failures[:TOP_FAILURES]


def _freshness(catalog: Catalog, namespace: str, data: ReportData) -> None:
    columns = ("invocation_id", "unique_id", "status", "max_loaded_at", "snapshotted_at",
               "max_loaded_at_time_ago_in_s", "message")  # fmt: skip
    rows = scan(catalog, namespace, SOURCE_FRESHNESS, data.environment, columns, since=data.since).to_pylist()
    epoch = datetime.min.replace(tzinfo=UTC)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_source[row["unique_id"]].append(row)
    for uid, checks in sorted(by_source.items()):
        checks.sort(key=lambda r: r["snapshotted_at"] or epoch)
        last = checks[-1]
        data.freshness.append(
            SourceFreshness(
                unique_id=uid,
                status=last["status"],
                max_loaded_at=last["max_loaded_at"],
                age_seconds=last["max_loaded_at_time_ago_in_s"],
                checked_at=last["snapshotted_at"],
                message=last["message"],
                checks=len(checks),
                warned=sum(1 for c in checks if c["status"] == "warn"),
                errored=sum(1 for c in checks if c["status"] in FAILED_STATUSES),
            )
        )


def load_report(
    catalog: Catalog,
    namespace: str,
    environment: str,
    *,
    days: int = 30,
    rule: RegressionsConfig | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Everything the report shows for the runs of the last ``days`` days; ``rule`` says which models are
    slower than usual (``notify.regressions``, or its defaults)."""
    now = now or datetime.now(UTC)
    data = ReportData(environment, since_days(days, now), now, rule or RegressionsConfig())
    data.runs = load_runs(catalog, namespace, environment, data.since)
    data.project = next((r.project for r in reversed(data.runs) if r.project), None)
    order = {r.invocation_id: i for i, r in enumerate(data.runs)}
    columns = ("invocation_id", "unique_id", "resource_type", "status", "execution_time", "message")
    nodes = scan(catalog, namespace, NODE_RESULTS, environment, columns, since=data.since)
    data.node_rows = nodes.num_rows
    timed = nodes.filter(pc.and_(_is_in(nodes, "resource_type", TIMED_TYPES), pc.equal(nodes["status"], "success")))
    _models(timed.select(["invocation_id", "unique_id", "execution_time"]), order, data.runs, data.rule, data)
    tests = nodes.filter(_is_in(nodes, "resource_type", TEST_TYPES))
    _flaky(tests.select(["invocation_id", "unique_id", "status"]), order, data)
    _failures(nodes, order, data.runs, data)
    _freshness(catalog, namespace, data)
    return data
