"""dbt-ferry's own version, read from the installed distribution (no import of the package root)."""

from __future__ import annotations

from importlib import metadata

try:
    DBT_FERRY_VERSION = metadata.version("dbt-ferry")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    DBT_FERRY_VERSION = "0.0.0"

#: The dbt-core versions the job runs (the ``[job]`` extra's range); a project locks one of them.
DBT_CORE_SUPPORTED = ">=1.9,<1.12"


def dbt_core_supported(version: str) -> bool:
    """Whether ``version`` (of dbt-core) lies in :data:`DBT_CORE_SUPPORTED`."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) in SpecifierSet(DBT_CORE_SUPPORTED)
    except InvalidVersion:
        return False
