"""The example end to end on the oldest dbt-core dbt-ferry supports (1.9), in a virtualenv of its own.

The environment is locked in ``tests/fixtures/dbt-oldest`` (dbt-ferry from this source tree, dbt-core and
dbt-duckdb 1.9) and synced into ``.venv-dbt-oldest``. Its CLI packages a copy of the example that locks nothing (so
the release records the dbt it finds), publishes and promotes it, and runs it through the Prefect flow on the test
server: build, docs, the result tables and the history report. The newest supported dbt is the one of the
repository's own lock, which the rest of the suite runs on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "dbt-oldest"
VENV = ROOT / ".venv-dbt-oldest"


def _tests_as_dbt_1_9_writes_them(text: str) -> str:
    """Generic tests' ``arguments:`` (dbt 1.10's form, which the example uses) as 1.9 takes them: one level up."""
    lines, out, depth = text.splitlines(), [], None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if line.strip() == "arguments:":
            depth = indent
            continue
        if depth is not None and line.strip() and indent > depth:
            out.append(line[2:])
            continue
        depth = None
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def oldest() -> Iterator[Path]:
    """The locked dbt 1.9 environment's ``bin`` folder (synced; quick when it already is)."""
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH (make test puts it there)"
    subprocess.run(
        [uv, "sync", "--locked", "--quiet", "--project", str(FIXTURE), "--python", sys.executable],
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}, check=True, timeout=600,
    )  # fmt: skip
    yield VENV / "bin"


def test_the_example_runs_end_to_end_on_dbt_1_9(oldest: Path, shop: Path, prefect_api: str, tmp_path: Path) -> None:
    version = subprocess.run(
        [str(oldest / "python"), "-c", "from importlib.metadata import version; print(version('dbt-core'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version.startswith("1.9."), version
    (shop / "uv.lock").unlink()  # the release records the dbt it is packaged with
    for path in (shop / "models").rglob("*.yml"):
        path.write_text(_tests_as_dbt_1_9_writes_them(path.read_text()))
    store = tmp_path / "store"
    environ = {
        **os.environ, "PREFECT_API_URL": prefect_api, "SHOP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_FERRY_WORK_DIR": str(tmp_path / "work"), "DBT_FERRY_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    environ.pop("VIRTUAL_ENV", None)

    def ferry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(oldest / "dbt-ferry"), *args], cwd=shop, env=environ, capture_output=True, text=True,
            check=False, timeout=600,
        )  # fmt: skip

    published = ferry("publish", "--env", "local", "--promote", "--store", str(store))
    assert published.returncode == 0, published.stdout + published.stderr
    release = json.loads((store / "releases" / "1.0.0" / "release.json").read_text())
    assert release["dbt_version"] == version

    run = ferry("run", "--env", "local", "--store", str(store))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "PASS=" in output and "ERROR=0" in output
    (folder,) = [p for p in (store / "runs" / "local").iterdir() if p.is_dir()]
    results = json.loads((folder / "run_results.json").read_text())
    assert results["metadata"]["dbt_version"] == version
    assert {r["status"] for r in results["results"]} <= {"success", "pass", "no-op"}
    assert (store / "docs" / "local" / "index.html").is_file()
    assert (store / "docs" / "local" / "history.html").is_file()
    assert (store / "state" / "local" / "partial_parse.msgpack").is_file()
