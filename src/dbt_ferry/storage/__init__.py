"""Store backends and the factory that opens one from configuration."""

from __future__ import annotations

from pathlib import Path

from dbt_ferry.config.models import LocalStoreConfig, S3StoreConfig, StoreConfig
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.storage.local import LocalStore


def open_store(config: StoreConfig, base_dir: Path | None = None) -> ArtifactStore:
    """Open the store ``config`` describes; a relative local path is taken from ``base_dir``."""
    if isinstance(config, LocalStoreConfig):
        path = Path(config.path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return LocalStore(path)
    if isinstance(config, S3StoreConfig):
        from dbt_ferry.storage.s3 import S3Store  # boto3 is imported only when S3 is used

        return S3Store(config.bucket, config.prefix, config.region)
    raise TypeError(f"unknown store configuration {config!r}")  # pragma: no cover


__all__ = ["ArtifactStore", "LocalStore", "open_store"]
