"""The runs of an environment, from the ``invocations`` table: when, what ran, how it ended."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyiceberg.catalog import Catalog

from dbt_ferry.exports.reading import scan
from dbt_ferry.exports.schema import INVOCATIONS, PARTITION_COLUMN

_COLUMNS = (
    "invocation_id", "project", "release_version", "command", "select", "exclude", "full_refresh", "vars",
    "threads", "started_at", "completed_at", "elapsed_seconds", "success", "exit_code", "n_total", "n_error",
    "n_fail", "n_runtime_error", "n_warn", "n_skipped", PARTITION_COLUMN,
)  # fmt: skip
_EPOCH = datetime.min.replace(tzinfo=UTC)


def what_ran(command: str | None, select: str | None, exclude: str | None, full_refresh: bool, vars: str | None) -> str:
    """The dbt command line of a run as a shell would take it: ``build --select tag:daily --full-refresh``."""
    parts = (command or "?").split()
    if select:
        parts += ["--select", *select.split()]
    if exclude:
        parts += ["--exclude", *exclude.split()]
    if full_refresh:
        parts.append("--full-refresh")
    if vars:
        parts += ["--vars", vars]
    return shlex.join(parts)


@dataclass(frozen=True)
class Run:
    invocation_id: str
    project: str | None
    started_at: datetime | None
    completed_at: datetime | None
    release_version: str | None
    command: str | None
    select: str | None
    exclude: str | None
    full_refresh: bool
    vars: str | None
    threads: int | None
    success: bool | None
    exit_code: int | None
    elapsed_seconds: float | None
    nodes: int
    failed: int  # error + fail + runtime error
    warned: int
    skipped: int
    day: date

    @property
    def what_ran(self) -> str:
        return what_ran(self.command, self.select, self.exclude, self.full_refresh, self.vars)

    @property
    def status(self) -> str:
        return "passed" if self.success else "FAILED"

    @property
    def order(self) -> datetime:
        """Sort key: the start (a run with no recorded start sorts first)."""
        return self.started_at or self.completed_at or _EPOCH


def _run(row: dict[str, Any]) -> Run:
    return Run(
        invocation_id=row["invocation_id"],
        project=row["project"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        release_version=row["release_version"],
        command=row["command"],
        select=row["select"],
        exclude=row["exclude"],
        full_refresh=bool(row["full_refresh"]),
        vars=row["vars"],
        threads=row["threads"],
        success=row["success"],
        exit_code=row["exit_code"],
        elapsed_seconds=row["elapsed_seconds"],
        nodes=row["n_total"] or 0,
        failed=sum(row[k] or 0 for k in ("n_error", "n_fail", "n_runtime_error")),
        warned=row["n_warn"] or 0,
        skipped=row["n_skipped"] or 0,
        day=row[PARTITION_COLUMN],
    )


def load_runs(catalog: Catalog, namespace: str, environment: str, since: date | None = None) -> list[Run]:
    """The runs of ``environment`` from the partition ``since`` on (all when None), oldest first."""
    rows = scan(catalog, namespace, INVOCATIONS, environment, _COLUMNS, since=since).to_pylist()
    return sorted((_run(r) for r in rows), key=lambda r: (r.order, r.invocation_id))
