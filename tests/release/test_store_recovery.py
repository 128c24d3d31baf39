"""Recovery that recovers: publish --force repairs a damaged artifact, and one damaged release.json or channel
file does not stop listing or promoting the others."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import IntegrityError
from dbt_ferry.release.catalog import list_releases, read_channel
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import BuiltRelease, package_release
from dbt_ferry.release.publish import promote_release, publish_release
from dbt_ferry.storage.local import LocalStore


def _build(shop: Path, tmp_path: Path, version: str) -> BuiltRelease:
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = "[^"]*"$', f'version = "{version}"', pyproject.read_text()))
    return package_release(load_project(shop), tmp_path / "builds" / version)


def test_publish_force_repairs_a_damaged_artifact_of_the_same_size(shop: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    built = _build(shop, tmp_path, "1.0.0")
    publish_release(store, built, environment="local", promote=True)
    (code,) = (store.root / "releases" / "1.0.0").glob("*/code.tar.zst")
    damaged = bytearray(code.read_bytes())
    damaged[100] ^= 0xFF
    code.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError, match="publish the release again with --force"):
        fetch_release(store, "local", tmp_path / "a", with_env=False)
    assert publish_release(store, built).status == "unchanged"  # without --force: nothing rewritten
    assert publish_release(store, built, force=True).status == "uploaded again"
    assert fetch_release(store, "local", tmp_path / "b", with_env=False).manifest.version == "1.0.0"


def test_a_damaged_release_json_or_channel_stops_nothing_else(shop: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        publish_release(store, _build(shop, tmp_path, version), environment="local", promote=True)
    (store.root / "releases" / "1.1.0" / "release.json").write_text("{garbage")
    entries, channel = list_releases(store, "local")
    assert [(e.version, e.manifest is not None) for e in entries] == [
        ("1.2.0", True),
        ("1.1.0", False),
        ("1.0.0", True),
    ]
    assert entries[1].problem is not None and "is not a valid release manifest" in entries[1].problem
    assert channel is not None and channel.version == "1.2.0"

    (store.root / "channels" / "local.json").write_text("not json")
    entries, channel = list_releases(store, "local")
    assert channel is None and len(entries) == 3
    promoted = promote_release(store, "local", "1.0.0")  # the damaged channel is replaced
    assert (promoted.version, promoted.previous) == ("1.0.0", None)
    assert read_channel(store, "local") == promoted
