"""Run history from the result tables: recent runs and what they ran, slowest models and their trend, what fails;
or one model's last runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.results import FAILED_STATUSES, WARN_STATUSES
from dbt_ferry.exports.reading import scan, since_days
from dbt_ferry.exports.runs import Run, load_runs
from dbt_ferry.exports.schema import NODE_RESULTS
from dbt_ferry.exports.trends import TEST_TYPES, TIMED_TYPES

#: What ``history`` counts as a failure of a test: the failing statuses and ``warn`` (the test found rows).
FAILING = FAILED_STATUSES | WARN_STATUSES
#: What ``--model`` looks up: what a dbt build creates.
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})
#: How many of the latest runs are listed, per view.
LAST_RUNS = 20


@dataclass
class RunRow:
    invocation_id: str
    started_at: str | None
    version: str | None
    command: str | None
    select: str | None
    exclude: str | None
    full_refresh: bool
    vars: str | None
    what_ran: str
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
class FailingNode:
    unique_id: str
    resource_type: str | None
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
    #: Tests (failures include ``warn``), then models, seeds and snapshots that errored.
    failing: list[FailingNode] = field(default_factory=list)
    failing_models: list[FailingNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        return data


@dataclass
class ModelRun:
    invocation_id: str
    started_at: str | None
    status: str | None
    seconds: float | None
    version: str | None
    message: str | None


@dataclass
class ModelHistory:
    """One model's (or seed's, or snapshot's) last runs, newest first."""

    environment: str
    since: date
    unique_id: str
    runs: list[ModelRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        return data


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if isinstance(value, datetime) else None


def _run_row(run: Run) -> RunRow:
    return RunRow(
        invocation_id=run.invocation_id,
        started_at=_iso(run.started_at),
        version=run.release_version,
        command=run.command,
        select=run.select,
        exclude=run.exclude,
        full_refresh=run.full_refresh,
        vars=run.vars,
        what_ran=run.what_ran,
        success=run.success,
        exit_code=run.exit_code,
        elapsed_seconds=run.elapsed_seconds,
        nodes=run.nodes,
        failures=run.failed,
    )


def _failing(rows_by_node: dict[str, list[dict[str, Any]]], statuses: frozenset[str], top: int) -> list[FailingNode]:
    failing = []
    for uid, rows in rows_by_node.items():
        count = sum(1 for r in rows if r["status"] in statuses)
        if not count:
            continue
        last = rows[-1]
        message = last["message"] if last["status"] in statuses else None
        failing.append(FailingNode(uid, last["resource_type"], count, len(rows), last["status"], message))
    return sorted(failing, key=lambda f: (-f.failures, f.unique_id))[:top]


def load_history(catalog: Catalog, namespace: str, environment: str, *, days: int = 14, top: int = 10) -> History:
    since = since_days(days)
    history = History(environment=environment, since=since)
    runs = load_runs(catalog, namespace, environment, since)
    history.runs = [_run_row(r) for r in reversed(runs[-LAST_RUNS:])]
    order = {r.invocation_id: i for i, r in enumerate(runs)}
    columns = ("invocation_id", "unique_id", "resource_type", "status", "execution_time", "message")
    nodes = scan(catalog, namespace, NODE_RESULTS, environment, columns, since=since).to_pylist()
    nodes.sort(key=lambda r: order.get(r["invocation_id"], -1))
    timings: dict[str, list[float]] = defaultdict(list)
    tests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    built: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in nodes:
        kind = row["resource_type"]
        if kind in TEST_TYPES:
            tests[row["unique_id"]].append(row)
            continue
        built[row["unique_id"]].append(row)
        if kind in TIMED_TYPES and row["execution_time"] is not None and row["status"] == "success":
            timings[row["unique_id"]].append(float(row["execution_time"]))
    slow = []
    for uid, values in timings.items():
        average = sum(values) / len(values)
        slow.append(SlowModel(uid, len(values), average, values[-1], values[-1] / (average or 1)))
    history.slowest = sorted(slow, key=lambda s: s.average_seconds, reverse=True)[:top]
    history.failing = _failing(tests, FAILING, top)
    history.failing_models = _failing(built, FAILED_STATUSES, top)
    return history


def load_model_history(
    catalog: Catalog, namespace: str, environment: str, model: str, *, days: int = 14
) -> ModelHistory:
    """The last runs of ``model``: its unique_id (``model.shop.fct_orders``) or its name (``fct_orders``)."""
    since = since_days(days)
    where: BooleanExpression = And(
        In("resource_type", BUILT_TYPES),  # type: ignore[call-arg,misc]
        Or(EqualTo("unique_id", model), EqualTo("name", model)),  # type: ignore[call-arg,misc]
    )
    columns = ("invocation_id", "unique_id", "status", "execution_time", "message")
    rows = scan(catalog, namespace, NODE_RESULTS, environment, columns, since=since, where=where).to_pylist()
    found = sorted({r["unique_id"] for r in rows})
    if len(found) > 1:
        raise ConfigError(f"{model!r} names {len(found)} nodes: {', '.join(found)}", "give its unique_id")
    history = ModelHistory(environment=environment, since=since, unique_id=found[0] if found else model)
    if not rows:
        return history
    runs = {r.invocation_id: r for r in load_runs(catalog, namespace, environment, since)}
    unknown = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: runs[r["invocation_id"]].order if r["invocation_id"] in runs else unknown, reverse=True)
    for row in rows[:LAST_RUNS]:
        run = runs.get(row["invocation_id"])
        history.runs.append(
            ModelRun(
                invocation_id=row["invocation_id"],
                started_at=_iso(run.started_at) if run else None,
                status=row["status"],
                seconds=row["execution_time"],
                version=run.release_version if run else None,
                message=row["message"] if row["status"] in FAILED_STATUSES else None,
            )
        )
    return history
