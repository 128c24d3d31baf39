"""The benchmark scripts still run: each once on a tiny project (bench/*.py; figures in BENCHMARKS.md).

coldstart.py and package.py need a ~150 MB env pack and a pip install of the whole job environment (minutes),
so only their command line is checked here; the rest run end to end on N=5 against the session's Prefect server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _run(script: str, *args: str, timeout: float = 120, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    "script",
    [
        "generate.py",
        "overhead.py",
        "coldstart.py",
        "parse.py",
        "package.py",
        "prefect_modes.py",
        "report.py",
        "quick.py",
        "docs.py",
    ],
)
def test_help(script: str) -> None:
    assert "usage:" in _run(script, "--help")


def test_generate_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _run("generate.py", "--models", "12", "--dest", str(tmp_path / name), "--json", str(tmp_path / f"{name}.json"))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".sql"]) == 12
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_overhead_tiny(tmp_path: Path, prefect_api: str) -> None:
    out = tmp_path / "overhead.json"
    table = _run(
        "overhead.py", "--models", "5", "--runs", "1", "--peer-models", "--api-url", prefect_api, "--json", str(out)
    )
    assert "ferry" in table and "bare" in table
    row = json.loads(out.read_text())["rows"][0]
    assert row["ferry"]["exit_codes"] == [0] and row["bare"]["exit_codes"] == [0]
    assert row["ferry"]["peak_rss_bytes"]["median"] > 0


def test_parse_log_reading(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from bench.parse import parse_from_log

    log = tmp_path / "dbt.log"
    log.write_text(
        "\x1b[0m10:00:01.500000 [info ] [MainThread]: Unable to do partial parsing because saved manifest not found.\n"
        "10:00:03.000000 [debug] [MainThread]: something\n"
        "10:00:04.250000 [info ] [MainThread]: Found 5 models, 3 seeds, 4 data tests, 500 macros\n"
    )
    assert parse_from_log(log) == pytest.approx(2.75)


def test_export_tiny(tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    _run("export.py", "--nodes", "10", "--repeat", "1", "--json", str(out))
    assert json.loads(out.read_text())[0]["nodes"] == 10


def test_report_tiny(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    table = _run("report.py", "--runs", "4", "--nodes", "40", "--repeat", "1", "--json", str(out))
    assert "node rows" in table
    (row,) = json.loads(out.read_text())
    assert (row["runs"], row["node_rows"]) == (4, 160) and row["bytes"] > 0


def test_prefect_modes_tiny(tmp_path: Path, prefect_api: str) -> None:
    """The node-events part on N=5 (the modes part runs the example four times: minutes, so not here)."""
    out = tmp_path / "modes.json"
    args = ["--skip-modes", "--events-models", "5", "--events-runs", "1", "--api-url", prefect_api, "--json", str(out)]
    table = _run("prefect_modes.py", *args, timeout=300)
    assert "no-events" in table
    data = json.loads(out.read_text())
    assert data["node_events"]["events"]["exit_codes"] == [0] == data["node_events"]["no-events"]["exit_codes"]
