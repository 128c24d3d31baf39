"""What the history report shows, read from the result tables of one environment and worked out once.

The node table is read a batch at a time, and of each batch only what the report needs is kept — the timed successes,
the tests and the failures, each with its own columns and the run as its position. At 1,000 runs of 2,000 nodes the
table holds two million rows; the whole of it in Arrow was ~500 MB while it was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import RegressionsConfig
from dbt_ferry.core.results import FAILED_STATUSES
from dbt_ferry.exports.reading import scan, scan_batches, since_days
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


def _by_node(table: pa.Table, *columns: str) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Each unique_id with its rows' ``position`` (its run's index, oldest first) and ``columns``, oldest first.

    Grouped and ordered in Arrow (grouping without threads keeps the input's order in each group); only one node's
    rows at a time become Python objects — all of them at once took ~500 MB at 2,000 nodes × 1,000 runs.
    """
    names = ["position", *columns]
    ordered = table.sort_by("position")
    grouped = ordered.group_by("unique_id", use_threads=False).aggregate([(name, "list") for name in names])
    lists = [grouped[f"{name}_list"] for name in names]
    for index, unique_id in enumerate(grouped["unique_id"].to_pylist()):
        values = [column[index].as_py() for column in lists]
        yield unique_id, list(zip(*values, strict=True))


def _models(timed: pa.Table, runs: list[Run], rule: RegressionsConfig, data: ReportData) -> None:
    for uid, rows in _by_node(timed, "execution_time"):
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


def _flaky(tests: pa.Table, data: ReportData) -> None:
    for uid, rows in _by_node(tests, "status"):
        data.tests += 1
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


def _failures(failed: pa.Table, results: dict[str, int], runs: list[Run], data: ReportData) -> None:
    """``failed``: the failing rows of the period's runs; ``results``: how many rows each node has in the period."""
    failures = []
    for uid, rows in _by_node(failed, "resource_type", "status", "message"):
        position, kind, status, message = rows[-1]
        failures.append(
            Failure(uid, kind, len(rows), int(results.get(uid, len(rows))), status, message, runs[position])
        )
    failures.sort(key=lambda f: (-f.count, f.unique_id))
    data.failures = failures[:TOP_FAILURES]


@dataclass
class _NodeRows:
    """What the report keeps of the node table, gathered a batch at a time: each part only the rows and columns it
    needs, the run as its position instead of its id."""

    timed: list[pa.Table] = field(default_factory=list)
    tests: list[pa.Table] = field(default_factory=list)
    failed: list[pa.Table] = field(default_factory=list)
    counts: list[pa.Table] = field(default_factory=list)
    rows: int = 0

    def add(self, batch: pa.Table, order: pa.Array) -> None:
        self.rows += batch.num_rows
        self.counts.append(batch.group_by("unique_id").aggregate([([], "count_all")]))
        ids = batch["invocation_id"]
        position = pc.index_in(ids, value_set=order.cast(ids.type))
        batch = batch.append_column("position", position.cast(pa.int32())).filter(pc.is_valid(position))
        timed = pc.and_(_is_in(batch, "resource_type", TIMED_TYPES), pc.equal(batch["status"], "success"))
        self.timed.append(batch.filter(timed).select(["position", "unique_id", "execution_time"]))
        self.tests.append(batch.filter(_is_in(batch, "resource_type", TEST_TYPES)).select(["position", "unique_id",
                                                                                           "status"]))  # fmt: skip
        failed = batch.filter(_is_in(batch, "status", FAILED_STATUSES))
        self.failed.append(failed.select(["position", "unique_id", "resource_type", "status", "message"]))

    def results(self, failed: pa.Table) -> dict[str, int]:
        """Rows per node (in the scanned partitions), for the nodes in ``failed``."""
        uids = frozenset(failed["unique_id"].to_pylist())
        if not uids:
            return {}
        counts = pa.concat_tables(self.counts).group_by("unique_id").aggregate([("count_all", "sum")])
        return {
            uid: int(count)
            for uid, count in zip(counts["unique_id"].to_pylist(), counts["count_all_sum"].to_pylist(), strict=True)
            if uid in uids
        }


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
    order = pa.array([r.invocation_id for r in data.runs], type=pa.string())
    columns = ("invocation_id", "unique_id", "resource_type", "status", "execution_time", "message")
    kept = _NodeRows()
    for batch in scan_batches(catalog, namespace, NODE_RESULTS, environment, columns, since=data.since):
        kept.add(batch, order)
    data.node_rows = kept.rows
    if kept.rows:
        _models(pa.concat_tables(kept.timed), data.runs, data.rule, data)
        kept.timed.clear()
        _flaky(pa.concat_tables(kept.tests), data)
        kept.tests.clear()
        failed = pa.concat_tables(kept.failed)
        _failures(failed, kept.results(failed), data.runs, data)
    _freshness(catalog, namespace, data)
    return data
