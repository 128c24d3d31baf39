"""The env pack: built from the lock with uv, relocatable, cached by its checksum."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.release.envpack import current_platform, current_python
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _point_at_repo(project: Path) -> None:
    """The example depends on dbt-ferry by a relative path; the copy must point at this checkout."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('path = "../.."', f'path = "{REPO}"'))
    lock = project / "uv.lock"
    lock.write_text(re.sub(r'((?:directory|path) = ")\.\./\.\./?(")', rf"\g<1>{REPO}\g<2>", lock.read_text()))


def test_env_pack_runs_from_a_new_path_and_is_cached(shop: Path, tmp_path: Path) -> None:
    _point_at_repo(shop)
    built = package_release(load_project(shop), tmp_path / "build", with_env=True)
    (pack,) = built.manifest.of_kind("env")
    assert pack.name == f"env-{current_python()}-{current_platform()}.tar.zst"
    assert (pack.python, pack.platform) == (current_python(), current_platform())

    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)
    cache = tmp_path / "elsewhere" / "cache"
    transferred: list[int] = []
    first = fetch_release(store, "local", tmp_path / "run1", cache_dir=cache, progress=transferred.append)
    assert first.env_dir == cache / "envs" / pack.sha256
    assert sum(transferred) >= pack.size

    python = first.env_dir / "bin" / "python"
    dbt = subprocess.run([first.env_dir / "bin" / "dbt", "--version"], capture_output=True, text=True, check=False)
    assert dbt.returncode == 0, dbt.stderr
    assert "installed: 1.11." in dbt.stdout
    ferry = subprocess.run([python, "-m", "dbt_ferry", "--help"], capture_output=True, text=True, check=False)
    assert ferry.returncode == 0, ferry.stderr
    assert "Package a dbt project" in ferry.stdout
    # The interpreter is this host's and the site-packages are the pack's, not this checkout's.
    where = subprocess.run(
        [python, "-c", "import dbt_ferry, sys; print(dbt_ferry.__file__); print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(first.env_dir))
    assert where[1] == str(first.env_dir)

    # A warm host: the second fetch does not download or unpack the env pack again.
    marker = first.env_dir / "marker"
    marker.write_text("still here")
    transferred.clear()
    second = fetch_release(store, "local", tmp_path / "run2", cache_dir=cache, progress=transferred.append)
    assert second.env_dir == first.env_dir
    assert marker.read_text() == "still here"
    assert sum(transferred) < pack.size
