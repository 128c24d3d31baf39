"""Rows for the result tables, built from dbt's artifacts; unknown fields ignored, missing ones null."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema

from dbt_ferry.core.runinfo import RunInfo
from dbt_ferry.exports.schema import (
    INVOCATIONS_SCHEMA,
    NODE_RESULTS_SCHEMA,
    PARTITION_COLUMN,
    SOURCE_FRESHNESS_SCHEMA,
    STATUS_COUNTS,
)

#: Column suffix -> dbt's status string, where they differ.
_DBT_STATUS = {"no_op": "no-op", "runtime_error": "runtime error", "partial_success": "partial success"}


def parse_timestamp(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(value: Any) -> str | None:
    if value is None or value == {} or value == []:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def run_window(run_results: dict[str, Any], info: RunInfo) -> tuple[datetime | None, datetime | None, float | None]:
    """Start, end and elapsed seconds of the run: the job's own times, else dbt's."""
    metadata = run_results.get("metadata") or {}
    elapsed = _float(run_results.get("elapsed_time"))
    generated = parse_timestamp(metadata.get("generated_at"))
    completed = info.completed_at or generated
    started = info.started_at or (
        metadata_started if (metadata_started := parse_timestamp(metadata.get("invocation_started_at"))) else None
    )
    if started is None and completed is not None and elapsed is not None:
        started = completed - timedelta(seconds=elapsed)
    if info.started_at and info.completed_at:
        elapsed = (info.completed_at - info.started_at).total_seconds()
    return started, completed, elapsed


def extraction_date(run_results: dict[str, Any]) -> date:
    """The partition of a run: the UTC day dbt started it, read from dbt's own artifact only, so that every
    re-export of the invocation (with or without the job's ferry.json) lands in the same partition."""
    started, completed, _ = run_window(run_results, RunInfo(project="", environment=""))
    moment = started or completed or datetime.now(UTC)
    return moment.astimezone(UTC).date()


def invocation_id_of(run_results: dict[str, Any]) -> str | None:
    value = (run_results.get("metadata") or {}).get("invocation_id")
    return str(value) if value else None


def invocation_table(run_results: dict[str, Any], info: RunInfo, invocation_id: str, day: date) -> pa.Table:
    args = run_results.get("args") or {}
    counts = Counter(str(r.get("status", "")) for r in run_results.get("results") or [] if isinstance(r, dict))
    started, completed, elapsed = run_window(run_results, info)
    exit_code = info.exit_code
    success = (
        exit_code == 0 if exit_code is not None else not any(counts[s] for s in ("error", "fail", "runtime error"))
    )
    row: dict[str, Any] = {
        "invocation_id": invocation_id,
        "project": info.project,
        "environment": info.environment,
        "release_version": info.release_version,
        "git_commit": info.git_commit,
        "dbt_version": info.dbt_version or (run_results.get("metadata") or {}).get("dbt_version"),
        "adapter_type": info.adapter_type,
        "target": info.target or args.get("target"),
        "command": info.command or args.get("which"),
        "select": " ".join(info.select) or None,
        "exclude": " ".join(info.exclude) or None,
        "full_refresh": info.full_refresh or bool(args.get("full_refresh")),
        "vars": info.vars,
        "threads": info.threads or _int(args.get("threads")),
        "started_at": started,
        "completed_at": completed,
        "elapsed_seconds": elapsed,
        "success": success,
        "exit_code": exit_code,
        "n_total": sum(counts.values()),
        "prefect_flow_run_id": info.prefect_flow_run_id,
        PARTITION_COLUMN: day,
        "retry_of": info.retry_of,
    }
    for status in STATUS_COUNTS:
        row[f"n_{status}"] = counts.get(_DBT_STATUS.get(status, status), 0)
    return pa.Table.from_pylist([row], schema=INVOCATIONS_SCHEMA.as_arrow())


def split_unique_id(unique_id: str) -> tuple[str | None, str | None, str | None]:
    """``(resource type, package, name)`` of a dbt unique_id; a test's name is its third part, not its hash."""
    parts = unique_id.split(".")
    if len(parts) < 3:
        return None, None, None
    kind, package = parts[0], parts[1]
    if kind == "test" and len(parts) >= 3:
        return kind, package, parts[2]
    if kind == "source" and len(parts) >= 4:
        return kind, package, f"{parts[2]}.{parts[3]}"
    return kind, package, parts[-1]


def node_table(
    run_results: dict[str, Any],
    manifest: dict[str, Any] | None,
    info: RunInfo,
    invocation_id: str,
    day: date,
    *,
    compiled_code: bool = False,
) -> pa.Table:
    nodes = (manifest or {}).get("nodes") or {}
    rows: list[dict[str, Any]] = []
    for result in run_results.get("results") or []:
        if not isinstance(result, dict):
            continue
        unique_id = str(result.get("unique_id") or "")
        node = nodes.get(unique_id) or {}
        kind, package, name = split_unique_id(unique_id)
        timing = {t.get("name"): t for t in result.get("timing") or [] if isinstance(t, dict)}
        compile_t, execute_t = timing.get("compile") or {}, timing.get("execute") or {}
        raw_adapter = result.get("adapter_response")
        adapter: dict[str, Any] = raw_adapter if isinstance(raw_adapter, dict) else {}
        code = result.get("compiled_code") or node.get("compiled_code") if compiled_code else None
        values = {
            "invocation_id": invocation_id,
            "environment": info.environment,
            "unique_id": unique_id,
            "resource_type": node.get("resource_type") or kind,
            "package": node.get("package_name") or package,
            "name": node.get("name") or name,
            "status": _text(result.get("status")),
            "thread_id": _text(result.get("thread_id")),
            "execution_time": _float(result.get("execution_time")),
            "compile_started_at": parse_timestamp(compile_t.get("started_at")),
            "compile_completed_at": parse_timestamp(compile_t.get("completed_at")),
            "execute_started_at": parse_timestamp(execute_t.get("started_at")),
            "execute_completed_at": parse_timestamp(execute_t.get("completed_at")),
            "rows_affected": _int(adapter.get("rows_affected")),
            "failures": _int(result.get("failures")),
            "message": _text(result.get("message")),
            "relation_name": _text(result.get("relation_name") or node.get("relation_name")),
            "adapter_response": _json(adapter),
            "batch_results": _json(result.get("batch_results")),
            "compiled_code": _text(code),
            PARTITION_COLUMN: day,
        }
        rows.append(values)
    return _columnar(NODE_RESULTS_SCHEMA, rows)


def freshness_table(sources: dict[str, Any], info: RunInfo, invocation_id: str, day: date) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for result in sources.get("results") or []:
        if not isinstance(result, dict):
            continue
        unique_id = str(result.get("unique_id") or "")
        parts = unique_id.split(".")
        values = {
            "invocation_id": invocation_id,
            "environment": info.environment,
            "unique_id": unique_id,
            "source_name": parts[2] if len(parts) >= 4 else None,
            "table_name": parts[3] if len(parts) >= 4 else None,
            "status": _text(result.get("status")),
            "max_loaded_at": parse_timestamp(result.get("max_loaded_at")),
            "snapshotted_at": parse_timestamp(result.get("snapshotted_at")),
            "max_loaded_at_time_ago_in_s": _float(result.get("max_loaded_at_time_ago_in_s")),
            "execution_time": _float(result.get("execution_time")),
            "thread_id": _text(result.get("thread_id")),
            "criteria": _json(result.get("criteria")),
            "message": _text(result.get("error") or result.get("message")),
            PARTITION_COLUMN: day,
        }
        rows.append(values)
    return _columnar(SOURCE_FRESHNESS_SCHEMA, rows)


def _columnar(schema: Schema, rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of ``schema`` from row dicts holding exactly its columns."""
    columns: dict[str, list[Any]] = {field.name: [row[field.name] for row in rows] for field in schema.fields}
    return pa.Table.from_pydict(columns, schema=schema.as_arrow())
