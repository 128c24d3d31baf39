"""Write one run's results into the Iceberg tables: idempotent, evolving, one commit per table."""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, EqualTo
from pyiceberg.schema import Schema
from pyiceberg.table import Table

from dbt_ferry.core.errors import ExportError
from dbt_ferry.core.runinfo import RUN_INFO_NAME, RunInfo
from dbt_ferry.exports.maintenance import TABLE_PROPERTIES, ensure_properties, maintain
from dbt_ferry.exports.rows import (
    extraction_date,
    freshness_table,
    invocation_id_of,
    invocation_table,
    node_table,
)
from dbt_ferry.exports.schema import (
    INVOCATIONS,
    NODE_RESULTS,
    PARTITION_COLUMN,
    SCHEMAS,
    SOURCE_FRESHNESS,
    partition_spec,
)

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    invocation_id: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    invocations: list[str] = field(default_factory=list)


def _freshness_info(info: RunInfo) -> RunInfo:
    """The context of a freshness run found beside another invocation's artifacts: not that one's times."""
    return info.model_copy(
        update={"command": "source freshness", "started_at": None, "completed_at": None, "exit_code": None}
    )


def ensure_table(catalog: Catalog, namespace: str, name: str) -> Table:
    """Load the table, creating namespace and table on first use and adding any new columns."""
    schema: Schema = SCHEMAS[name]
    identifier = (namespace, name)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        catalog.create_namespace_if_not_exists(namespace)
        return catalog.create_table_if_not_exists(
            identifier, schema=schema, partition_spec=partition_spec(schema), properties=TABLE_PROPERTIES
        )
    table = ensure_properties(table)
    existing = {f.name for f in table.schema().fields}
    if any(f.name not in existing for f in schema.fields):
        with table.update_schema() as update:
            update.union_by_name(schema)
        table = catalog.load_table(identifier)
    return table


def _replace_rows(table: Table, rows: pa.Table, invocation_id: str, day: date, *, new: bool = False) -> None:
    """Delete the invocation's rows and append the new ones in one commit (a retried export leaves one copy).
    ``new``: the invocation was never exported, so there is nothing to delete (and no day's files to scan for it)."""
    target = table.schema().as_arrow()
    rows = rows.select([f.name for f in target if f.name in rows.column_names])
    missing = [f for f in target if f.name not in rows.column_names]
    for column in missing:  # columns a newer dbt-ferry added, or a user added: null
        rows = rows.append_column(column, pa.nulls(rows.num_rows, type=column.type))
    rows = rows.cast(pa.schema([target.field(n) for n in rows.column_names]))
    existing = And(EqualTo(PARTITION_COLUMN, day.isoformat()), EqualTo("invocation_id", invocation_id))  # type: ignore[call-arg,misc]
    with table.transaction() as tx:
        if not new:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                tx.delete(existing)
        if rows.num_rows:
            tx.append(rows)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else None


def export_run(
    catalog: Catalog,
    namespace: str,
    run_dir: Path,
    info: RunInfo | None = None,
    *,
    environment: str | None = None,
    compiled_code: bool = False,
    new_invocations: bool = False,
) -> ExportResult:
    """Export the artifacts in ``run_dir`` (run_results.json, manifest.json, sources.json, ferry.json).

    ``new_invocations``: dbt wrote them in this job, so their invocations were never exported and their rows are
    appended without first deleting earlier copies (which scans the day's files). Any other export replaces them."""
    started = time.perf_counter()
    run_results = _read_json(run_dir / "run_results.json")
    sources = _read_json(run_dir / "sources.json")
    if run_results is None and sources is None:
        raise ExportError(f"{run_dir} holds no run_results.json or sources.json", "give a dbt target/ or run folder")
    if info is None:
        raw = _read_json(run_dir / RUN_INFO_NAME)
        manifest_meta = (_read_json(run_dir / "manifest.json") or {}).get("metadata") or {}
        info = (
            RunInfo.model_validate(raw)
            if raw
            else RunInfo(project=str(manifest_meta.get("project_name") or "unknown"), environment=environment or "")
        )
    if environment and info.environment != environment:
        info = info.model_copy(update={"environment": environment})
    manifest = _read_json(run_dir / "manifest.json")
    # One folder can hold two invocations: a build's run_results.json and a later `source freshness`'s
    # sources.json (dbt writes no run_results.json for freshness). Each is exported as its own invocation.
    groups: list[tuple[str, dict[str, Any], list[tuple[str, pa.Table]]]] = []
    if run_results is not None:
        run_id = invocation_id_of(run_results)
        if not run_id:
            raise ExportError(f"{run_dir}/run_results.json names no invocation_id")
        day = extraction_date(run_results)
        tables = [(INVOCATIONS, invocation_table(run_results, info, run_id, day))]
        if (run_results.get("args") or {}).get("which") != "source":
            rows = node_table(run_results, manifest, info, run_id, day, compiled_code=compiled_code)
            tables.append((NODE_RESULTS, rows))
        groups.append((run_id, run_results, tables))
    if sources is not None:
        fresh_id = invocation_id_of(sources)
        if not fresh_id:
            raise ExportError(f"{run_dir}/sources.json names no invocation_id")
        day = extraction_date(sources)
        fresh_info = info if run_results is None or fresh_id == groups[0][0] else _freshness_info(info)
        tables = [(SOURCE_FRESHNESS, freshness_table(sources, fresh_info, fresh_id, day))]
        if groups and groups[0][0] == fresh_id:
            groups[0][2].extend(tables)
        else:
            tables.insert(0, (INVOCATIONS, invocation_table(sources, fresh_info, fresh_id, day)))
            groups.append((fresh_id, sources, tables))
    result = ExportResult(groups[0][0])
    for invocation_id, artifact, tables in groups:
        day = extraction_date(artifact)
        for name, rows in tables:
            table = ensure_table(catalog, namespace, name)
            _replace_rows(table, rows, invocation_id, day, new=new_invocations)
            maintain(table, day)  # the commit brought the table object up to date
            result.rows[name] = result.rows.get(name, 0) + rows.num_rows
    result.invocations = [g[0] for g in groups]
    result.seconds = time.perf_counter() - started
    log.info("exported %s: %s in %.2f s", invocation_id, result.rows, result.seconds)
    return result
