"""The templates are package data: the wheel hatch builds carries every one of them."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from dbt_ferry.release.envpack import find_uv
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TEMPLATES = REPO / "src" / "dbt_ferry" / "deploy" / "templates"


def test_the_wheel_holds_every_template(tmp_path: Path) -> None:
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path), str(REPO)],
        check=True, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("dbt_ferry-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"dbt_ferry/deploy/templates/{p.relative_to(TEMPLATES).as_posix()}" for p in TEMPLATES.rglob("*")
                if p.is_file()}  # fmt: skip
    assert len(expected) == 13
    assert expected <= names, sorted(expected - names)
