"""Parse a store given as one string (``DBT_FERRY_STORE``, ``--store``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from dbt_ferry.config.models import LocalStoreConfig, S3StoreConfig, StoreConfig
from dbt_ferry.core.constants import ENV_STORE
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.names import clean_value


def parse_store_url(raw: str) -> StoreConfig:
    """``/a/folder``, ``./rel``, ``file:///a/folder`` or ``s3://bucket/prefix``."""
    text = clean_value(raw)
    if not text:
        raise ConfigError(f"{ENV_STORE} is empty", "give a folder, file://PATH or s3://BUCKET/PREFIX")
    if text.startswith("s3://"):
        parsed = urlparse(text)
        try:
            return S3StoreConfig(type="s3", bucket=parsed.netloc, prefix=parsed.path.strip("/"))
        except ValidationError:
            raise ConfigError(f"store {text!r} does not name a valid S3 bucket", "use s3://BUCKET/PREFIX") from None
    if text.startswith("file://"):
        parsed = urlparse(text)
        path = unquote(parsed.netloc + parsed.path)
        if not path:
            raise ConfigError(f"store {text!r} names no folder", "use file:///absolute/path")
        return LocalStoreConfig(path=path)
    scheme = text.split(":", 1)[0]
    if ":" in text and scheme.isalnum() and len(scheme) > 1 and "/" not in scheme:
        # s3:/bucket, s3:bucket, gs:// ...: a URL that is wrong, never a local folder named "s3:".
        raise ConfigError(
            f"store {text!r} is not a folder and not a store URL dbt-ferry reads",
            "use a folder, file://PATH or s3://BUCKET/PREFIX (two slashes)",
        )
    if "://" in text:
        raise ConfigError(
            f"store {text!r} has an unsupported scheme", "use a folder, file://PATH or s3://BUCKET/PREFIX"
        )
    return LocalStoreConfig(path=str(Path(text).expanduser().absolute()))


def absolute_store(config: StoreConfig, base: Path) -> StoreConfig:
    """``config`` with a relative local path resolved from ``base`` (the project directory)."""
    if isinstance(config, LocalStoreConfig) and not Path(config.path).expanduser().is_absolute():
        return LocalStoreConfig(path=str((base / config.path).absolute()))
    return config
