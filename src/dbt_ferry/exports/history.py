"""Run history from the result tables: recent runs, slowest models and their trend, most-failing tests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual

from dbt_ferry.exports.schema import INVOCATIONS, NODE_RESULTS, PARTITION_COLUMN

TIMED_TYPES = frozenset({"model", "seed", "snapshot"})
FAILING = frozenset({"fail", "error", "warn", "runtime error"})


@dataclass
class RunRow:
    invocation_id: str
    started_at: str | None
    version: str | None
    command: str | None
    success: bool | None
    exit_code: int | None
    elapsed_seconds: float | None
    nodes: int | None
    failures: int


@dataclass
class SlowModel:
    unique_id: str
    runs: int
    average_seconds: float
    last_seconds: float
    trend: float  # last / average: above 1 is getting slower


@dataclass
class FailingTest:
    unique_id: str
    failures: int
    runs: int
    last_status: str | None
    last_message: str | None


@dataclass
class History:
    environment: str
    since: date
    runs: list[RunRow] = field(default_factory=list)
    slowest: list[SlowModel] = field(default_factory=list)
    failing: list[FailingTest] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        return data


def _scan(
    catalog: Catalog, namespace: str, name: str, environment: str, since: date, columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    try:
        table = catalog.load_table((namespace, name))
    except (NoSuchTableError, NoSuchNamespaceError):
        return []
    row_filter = And(GreaterThanOrEqual(PARTITION_COLUMN, since.isoformat()), EqualTo("environment", environment))  # type: ignore[call-arg,misc]
    rows: list[dict[str, Any]] = table.scan(row_filter=row_filter, selected_fields=columns).to_arrow().to_pylist()
    return rows


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if isinstance(value, datetime) else None


def load_history(catalog: Catalog, namespace: str, environment: str, *, days: int = 14, top: int = 10) -> History:
    since = datetime.now(UTC).date() - timedelta(days=days)
    history = History(environment=environment, since=since)
    invocations = _scan(
        catalog,
        namespace,
        INVOCATIONS,
        environment,
        since,
        ("invocation_id", "started_at", "release_version", "command", "success", "exit_code", "elapsed_seconds",
         "n_total", "n_error", "n_fail", "n_runtime_error"),
    )  # fmt: skip
    invocations.sort(key=lambda r: r["started_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    history.runs = [
        RunRow(
            invocation_id=r["invocation_id"],
            started_at=_iso(r["started_at"]),
            version=r["release_version"],
            command=r["command"],
            success=r["success"],
            exit_code=r["exit_code"],
            elapsed_seconds=r["elapsed_seconds"],
            nodes=r["n_total"],
            failures=sum(r[k] or 0 for k in ("n_error", "n_fail", "n_runtime_error")),
        )
        for r in invocations[: top * 2]
    ]
    order = {r["invocation_id"]: r["started_at"] or datetime.min.replace(tzinfo=UTC) for r in invocations}
    nodes = _scan(
        catalog,
        namespace,
        NODE_RESULTS,
        environment,
        since,
        ("invocation_id", "unique_id", "resource_type", "status", "execution_time", "message"),
    )
    nodes.sort(key=lambda r: order.get(r["invocation_id"], datetime.min.replace(tzinfo=UTC)))
    timings: dict[str, list[float]] = defaultdict(list)
    tests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in nodes:
        if row["resource_type"] in TIMED_TYPES and row["execution_time"] is not None and row["status"] == "success":
            timings[row["unique_id"]].append(float(row["execution_time"]))
        elif row["resource_type"] in ("test", "unit_test"):
            tests[row["unique_id"]].append(row)
    slow = [
        SlowModel(
            uid, len(values), sum(values) / len(values), values[-1], values[-1] / (sum(values) / len(values) or 1)
        )
        for uid, values in timings.items()
    ]
    history.slowest = sorted(slow, key=lambda s: s.average_seconds, reverse=True)[:top]
    failing = [
        FailingTest(
            uid,
            sum(1 for r in rows if r["status"] in FAILING),
            len(rows),
            rows[-1]["status"],
            rows[-1]["message"] if rows[-1]["status"] in FAILING else None,
        )
        for uid, rows in tests.items()
    ]
    history.failing = sorted((f for f in failing if f.failures), key=lambda f: (-f.failures, f.unique_id))[:top]
    return history
