"""Open the Iceberg catalog an environment's exports use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import (
    CatalogConfig,
    GlueCatalogConfig,
    LocalStoreConfig,
    RestCatalogConfig,
    S3StoreConfig,
    SqlCatalogConfig,
    StoreConfig,
)
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.names import expand_variables
from dbt_ferry.storage.aws_session import aws_region

TABLES_DIR = "tables"


def _store_tables(store: StoreConfig) -> str:
    if isinstance(store, LocalStoreConfig):
        return Path(store.path).expanduser().absolute().joinpath(TABLES_DIR).as_uri()
    prefix = f"{store.prefix.strip('/')}/" if store.prefix.strip("/") else ""
    return f"s3://{store.bucket}/{prefix}{TABLES_DIR}"


def _s3_properties(region: str | None) -> dict[str, str]:
    """pyarrow's S3 file system: the standard endpoint variables, as boto3 reads them."""
    props: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    region = aws_region(region)
    if region:
        props["s3.region"] = region
    return props


def default_catalog(config: CatalogConfig | None, store: StoreConfig) -> CatalogConfig:
    """The configured catalog, or the default for the store: SQLite beside a local store, Glue for S3."""
    if config is not None:
        return config
    if isinstance(store, S3StoreConfig):
        return GlueCatalogConfig(type="glue", region=store.region)
    return SqlCatalogConfig()


def catalog_location(config: CatalogConfig | None, store: StoreConfig) -> str:
    config = default_catalog(config, store)
    if isinstance(config, SqlCatalogConfig):
        return config.uri or "sqlite (under the store)"
    if isinstance(config, GlueCatalogConfig):
        return f"glue ({config.catalog_id or 'this account'})"
    return config.uri


#: The module of each kind of catalog, imported only when that kind is opened.
_CATALOG_MODULES = {"sql": "pyiceberg.catalog.sql", "glue": "pyiceberg.catalog.glue", "rest": "pyiceberg.catalog.rest"}


def catalog_module(config: CatalogConfig | None, store: StoreConfig) -> str:
    """The pyiceberg module that :func:`open_catalog` imports for ``config`` (to import it ahead of time)."""
    return _CATALOG_MODULES[default_catalog(config, store).type]


def open_catalog(config: CatalogConfig | None, store: StoreConfig) -> Catalog:
    """The catalog of ``config``; table data goes under ``<store>/tables`` unless a warehouse is given."""
    config = default_catalog(config, store)
    warehouse = config.warehouse or _store_tables(store)
    if isinstance(config, SqlCatalogConfig):
        from pyiceberg.catalog.sql import SqlCatalog

        uri = config.uri
        if uri is None:
            if not isinstance(store, LocalStoreConfig):
                raise ConfigError(
                    "the sql catalog keeps its SQLite file in a local store, and this store is S3",
                    'use exports.catalog = {type = "glue"} (or give exports.catalog.uri)',
                )
            folder = Path(store.path).expanduser().absolute() / TABLES_DIR
            folder.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{folder / 'catalog.db'}"
        props: dict[str, Any] = {"uri": uri, "warehouse": warehouse}
        if isinstance(store, S3StoreConfig):
            props.update(_s3_properties(store.region))
        return SqlCatalog("dbt_ferry", **props)
    if isinstance(config, GlueCatalogConfig):
        from pyiceberg.catalog.glue import GlueCatalog

        region = aws_region(config.region or (store.region if isinstance(store, S3StoreConfig) else None))
        glue_props: dict[str, Any] = {"warehouse": warehouse, **_s3_properties(region)}
        if region:
            glue_props["client.region"] = region
        endpoint = os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            glue_props["glue.endpoint"] = endpoint
        if config.catalog_id:
            glue_props["glue.id"] = config.catalog_id
        return GlueCatalog("dbt_ferry", **glue_props)
    if isinstance(config, RestCatalogConfig):
        from pyiceberg.catalog.rest import RestCatalog

        rest_props = {k: expand_variables(v, os.environ) for k, v in config.properties.items()}
        rest_props.setdefault("uri", config.uri)
        if config.warehouse:
            rest_props.setdefault("warehouse", config.warehouse)
        return RestCatalog("dbt_ferry", **rest_props)
    raise TypeError(f"unknown catalog {config!r}")  # pragma: no cover
