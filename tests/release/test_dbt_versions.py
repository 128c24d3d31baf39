"""A project that locks a dbt-core outside the supported range is refused at package time, in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.release.package import package_release


def _lock_dbt(shop: Path, version: str) -> None:
    lock = shop / "uv.lock"
    text, count = re.subn(
        r'(\[\[package\]\]\nname = "dbt-core"\nversion = )"[^"]+"', rf'\1"{version}"', lock.read_text()
    )
    assert count == 1
    lock.write_text(text)


@pytest.mark.parametrize("version", ["1.8.7", "1.12.0"])
def test_a_lock_with_an_unsupported_dbt_core_is_refused(shop: Path, tmp_path: Path, version: str) -> None:
    _lock_dbt(shop, version)
    with pytest.raises(ProjectError) as raised:
        package_release(load_project(shop), tmp_path / "out")
    assert raised.value.message == f"the project's uv.lock has dbt-core {version}: dbt-ferry runs dbt-core >=1.9,<1.12"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("version", ["1.9.0", "1.10.4"])
def test_a_lock_with_a_supported_dbt_core_is_recorded(shop: Path, tmp_path: Path, version: str) -> None:
    _lock_dbt(shop, version)
    assert package_release(load_project(shop), tmp_path / "out").manifest.dbt_version == version
