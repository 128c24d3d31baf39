"""`make dist`: a wheel and an sdist twine accepts; the templates are package data, in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from dbt_ferry.release.envpack import find_uv
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TEMPLATES = REPO / "src" / "dbt_ferry" / "deploy" / "templates"


def test_make_dist_builds_a_wheel_and_sdist_the_index_accepts(tmp_path: Path) -> None:
    """What `make dist` runs: uv build, then twine check --strict (the metadata and README the index renders)."""
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [find_uv(), "build", "--quiet", "--out-dir", str(tmp_path), str(REPO)],
        check=True, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("dbt_ferry-*.whl")
    (sdist,) = tmp_path.glob("dbt_ferry-*.tar.gz")
    twine = Path(sys.executable).with_name("twine")
    checked = subprocess.run([twine, "check", "--strict", wheel, sdist], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2

    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"dbt_ferry/deploy/templates/{p.relative_to(TEMPLATES).as_posix()}" for p in TEMPLATES.rglob("*")
                if p.is_file()}  # fmt: skip
    assert len(expected) == 14
    assert expected <= names, sorted(expected - names)
    # The sdist holds the package and what its metadata names, not the tests, examples or benchmarks.
    with tarfile.open(sdist) as archive:
        tops = {name.split("/", 2)[1] for name in archive.getnames() if name.count("/") >= 1}
    assert tops == {"src", "README.md", "LICENSE", "pyproject.toml", "PKG-INFO", ".gitignore"}, tops
