"""Read the result tables of one environment: a scan of chosen columns, newer than a day, as Arrow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual
from pyiceberg.table import DataScan

from dbt_ferry.exports.schema import PARTITION_COLUMN, SCHEMAS


def since_days(days: int, now: datetime | None = None) -> date:
    """The first partition (UTC day) of a look back over ``days`` days."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=days)


def _row_filter(environment: str, since: date | None, where: BooleanExpression | None) -> BooleanExpression:
    row_filter: BooleanExpression = EqualTo("environment", environment)  # type: ignore[call-arg,misc]
    if since is not None:
        row_filter = And(row_filter, GreaterThanOrEqual(PARTITION_COLUMN, since.isoformat()))  # type: ignore[call-arg,misc]
    if where is not None:
        row_filter = And(row_filter, where)
    return row_filter


def _data_scan(
    catalog: Catalog, namespace: str, name: str, environment: str, columns: tuple[str, ...],
    since: date | None, where: BooleanExpression | None,
) -> DataScan | None:  # fmt: skip
    """The scan of those rows and columns, or None while the table (or namespace) does not exist."""
    try:
        table = catalog.load_table((namespace, name))
    except (NoSuchTableError, NoSuchNamespaceError):
        return None
    return table.scan(row_filter=_row_filter(environment, since, where), selected_fields=columns)


def scan(
    catalog: Catalog,
    namespace: str,
    name: str,
    environment: str,
    columns: tuple[str, ...],
    *,
    since: date | None = None,
    where: BooleanExpression | None = None,
) -> pa.Table:
    """The rows of ``environment`` in table ``name`` (partitions from ``since``), only ``columns``.

    A table (or namespace) that does not exist yet holds no rows: an empty table of those columns.
    """
    found = _data_scan(catalog, namespace, name, environment, columns, since, where)
    rows: pa.Table = found.to_arrow() if found is not None else SCHEMAS[name].as_arrow().empty_table()
    return rows.select(list(columns))


def scan_batches(
    catalog: Catalog,
    namespace: str,
    name: str,
    environment: str,
    columns: tuple[str, ...],
    *,
    since: date | None = None,
) -> Iterator[pa.Table]:
    """:func:`scan` a batch at a time, for a reader that keeps only part of each: the whole node table of a month of
    runs is hundreds of MB in Arrow, twice that while it is put together."""
    found = _data_scan(catalog, namespace, name, environment, columns, since, None)
    if found is None:
        yield SCHEMAS[name].as_arrow().empty_table().select(list(columns))
        return
    for batch in found.to_arrow_batch_reader():
        yield pa.Table.from_batches([batch]).select(list(columns))
