"""dbt-ferry's own version, read from the installed distribution (no import of the package root)."""

from __future__ import annotations

from importlib import metadata

try:
    DBT_FERRY_VERSION = metadata.version("dbt-ferry")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    DBT_FERRY_VERSION = "0.0.0"
