"""Uploads of a run's outputs that failed: one problem for all of them (a full or unreachable store fails them
all, for one cause), each one in the log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dbt_ferry.core.errors import FerryError

log = logging.getLogger(__name__)

#: How many of the keys the problem line names; the log names every one.
NAMED = 3


@dataclass
class FailedUploads:
    keys: list[str] = field(default_factory=list)
    first_error: str | None = None

    def add(self, key: str, error: FerryError) -> None:
        log.error("could not publish %s: %s", key, error)
        self.keys.append(key)
        self.first_error = self.first_error or str(error)

    def problem(self) -> str | None:
        """``could not publish 9 files to the store (a, b, c and 6 more): <the first error>``, or None."""
        if not self.keys:
            return None
        count = f"{len(self.keys)} files" if len(self.keys) > 1 else "1 file"
        named = ", ".join(self.keys[:NAMED])
        if len(self.keys) > NAMED:
            named += f" and {len(self.keys) - NAMED} more"
        return f"could not publish {count} to the store ({named}): {self.first_error}"
