"""Keep the result tables fast as runs pile up: few files per day, few manifests, bounded metadata.

Every export is one commit per table, adding a data file and a manifest; left alone, a table of 1,000 runs holds
1,000 of each and every read plans and opens them all (the history report then takes 25 s instead of 4.5 s), and
each commit rewrites a metadata file listing every snapshot (an export took 0.5 s at the first run, 4.8 s at the
thousandth). So:

- the tables merge manifests on commit and keep the last :data:`METADATA_VERSIONS` metadata files (Iceberg's own
  table properties, set on new tables and added to existing ones);
- after an export, a day's partition that holds more than :data:`COMPACT_ABOVE` data files is rewritten into one
  (an overwrite of that day only; a commit by another job in between makes it fail, and nothing is lost);
- snapshots older than :data:`SNAPSHOT_DAYS` days are expired (time travel reaches that far back). Their data files
  stay in storage: pyiceberg has no orphan-file removal yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table, TableProperties

from dbt_ferry.exports.schema import PARTITION_COLUMN

log = logging.getLogger(__name__)

#: A day's partition is rewritten into one data file once it holds more than this many.
COMPACT_ABOVE = 16
#: Snapshots older than this many days are expired.
SNAPSHOT_DAYS = 7
#: Metadata files kept besides the current one.
METADATA_VERSIONS = 20

TABLE_PROPERTIES = {
    TableProperties.MANIFEST_MERGE_ENABLED: "true",
    TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED: "true",
    TableProperties.METADATA_PREVIOUS_VERSIONS_MAX: str(METADATA_VERSIONS),
}


def ensure_properties(table: Table) -> Table:
    """Add :data:`TABLE_PROPERTIES` to a table made before they were set (a user's own values stay)."""
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if k not in table.properties}
    if not missing:
        return table
    with table.transaction() as tx:
        tx.set_properties(missing)
    return table


def compact_day(table: Table, day: date, *, above: int = COMPACT_ABOVE) -> int:
    """Rewrite ``day``'s partition into one data file when it holds more than ``above``; how many files it held
    (0 when it was left as it was)."""
    only_day = EqualTo(PARTITION_COLUMN, day.isoformat())  # type: ignore[call-arg,misc]
    files = len(list(table.scan(row_filter=only_day).plan_files()))
    if files <= max(above, 1):
        return 0
    rows = table.scan(row_filter=only_day).to_arrow()
    with table.transaction() as tx:
        tx.overwrite(rows, overwrite_filter=only_day)
    log.info("compacted %s of %s: %d files into one (%d rows)", day, table.name()[-1], files, rows.num_rows)
    return files


def expire_snapshots(table: Table, now: datetime | None = None) -> int:
    """Expire the snapshots older than :data:`SNAPSHOT_DAYS` days (never the current one); how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=SNAPSHOT_DAYS)
    current = table.current_snapshot()
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < cutoff.timestamp() * 1000 and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def maintain(table: Table, day: date) -> None:
    """After an export into ``day``: compact that day, expire old snapshots. A failure is logged, never raised:
    the rows are already committed."""
    try:
        compact_day(table, day)
        expire_snapshots(table)
    except Exception as exc:  # noqa: BLE001 - maintenance never fails an export
        log.warning("maintenance of %s skipped: %s: %s", table.name()[-1], type(exc).__name__, exc)
