"""dbt-ferry: package a dbt project into immutable, versioned releases; store, fetch and run them."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("dbt-ferry")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from dbt_ferry.api import export, fetch, history, package, promote, publish, releases, run
from dbt_ferry.core.errors import (
    ConfigError,
    FerryError,
    IntegrityError,
    ProjectError,
    ReleaseConflictError,
    ReleaseNotFoundError,
    StoreError,
)

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
    "promote",
    "publish",
    "releases",
    "run",
]
