"""dbt-ferry: package a dbt project into immutable, versioned releases; store, fetch and run them."""

from __future__ import annotations

from dbt_ferry.api import (
    export,
    fetch,
    history,
    package,
    package_contents,
    promote,
    publish,
    releases,
    report,
    run,
    state,
)
from dbt_ferry.core.errors import (
    ConfigError,
    FerryError,
    IntegrityError,
    ProjectError,
    ReleaseConflictError,
    ReleaseNotFoundError,
    StoreError,
)
from dbt_ferry.core.version import DBT_FERRY_VERSION as __version__

__all__ = [
    "ConfigError",
    "FerryError",
    "IntegrityError",
    "ProjectError",
    "ReleaseConflictError",
    "ReleaseNotFoundError",
    "StoreError",
    "__version__",
    "export",
    "fetch",
    "history",
    "package",
    "package_contents",
    "promote",
    "publish",
    "releases",
    "report",
    "run",
    "state",
]
