"""Typed configuration and its loader."""

from dbt_ferry.config.loader import (
    Overrides,
    ProjectConfig,
    load_project,
    project_dir_from,
    resolve_environment,
    resolve_environment_name,
)
from dbt_ferry.config.models import EnvironmentConfig, LocalStoreConfig, S3StoreConfig, StoreConfig
from dbt_ferry.config.store_url import parse_store_url

__all__ = [
    "EnvironmentConfig",
    "LocalStoreConfig",
    "Overrides",
    "ProjectConfig",
    "S3StoreConfig",
    "StoreConfig",
    "load_project",
    "parse_store_url",
    "project_dir_from",
    "resolve_environment",
    "resolve_environment_name",
]
