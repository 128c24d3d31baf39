"""SIGTERM, as ECS sends it 30 s before SIGKILL: dbt stops, the job publishes what exists and exits 143."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import publish_shop

pytestmark = [pytest.mark.slow, pytest.mark.integration]

#: Minutes of DuckDB work (10^12 row pairs) that dbt-duckdb can cancel: its cancel calls the cursor's interrupt().
SLOW_MODEL = """\
{{ config(materialized='table') }}
select count(*) as n
from range(1000000) as a(x), range(1000000) as b(y)
where a.x + b.y < 0
"""

#: A dbt result line of the last node in the build order ("56 of 56 PASS ..."): the build is well under way.
LAST_NODE_DONE = r"\b(\d+) of \1 "

#: ECS kills the task 30 s after SIGTERM; the job must be done well before.
GRACE = 25


class Output:
    """A subprocess' output, read line by line in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stream = process.stdout
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._lock:
                self._lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(re.search(pattern, line) for line in self._lines):
                    return True
            time.sleep(0.1)
        return False

    def text(self) -> str:
        self._thread.join(timeout=5)
        with self._lock:
            return "".join(self._lines)


def test_sigterm_stops_dbt_publishes_what_exists_and_exits_143(prefect_api: str, shop: Path, tmp_path: Path) -> None:
    (shop / "models" / "marts" / "slow_model.sql").write_text(SLOW_MODEL)
    store = tmp_path / "store"
    publish_shop(shop, store)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "SHOP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "dbt_ferry", "run", "--env", "local"]
    command += ["--project-dir", str(shop), "--store", str(store)]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = Output(process)
    try:
        started = output.wait_for(LAST_NODE_DONE, timeout=120)
        assert started and process.poll() is None, output.text()
        time.sleep(1.5)  # the slow model is running; everything else is done or nearly
        assert process.poll() is None, output.text()
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GRACE} s after SIGTERM:\n{output.text()}")
        stopped_after = time.time() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.text()
    assert code == 143, text
    assert stopped_after < GRACE
    assert "dbt build was stopped by SIGTERM — exit code 143" in text
    assert "CANCEL query model.shop.slow_model" in text  # dbt cancelled the DuckDB query, not waited for it

    # The interrupted run's artifacts, written by dbt on the interrupt and published after the signal.
    runs = store / "runs" / "local"
    (run_dir,) = [path for path in runs.iterdir() if path.is_dir()]
    assert (runs / "last-failed.json").is_file()  # a stopped run is one `dbt-ferry retry` can take
    assert f"run artifacts: {run_dir}/" in text
    for name in ("run_results.json", "manifest.json"):
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_mtime >= signalled, name
    results = json.loads((run_dir / "run_results.json").read_text())
    assert results["metadata"]["invocation_id"] == run_dir.name
    assert results["args"]["which"] == "build"
    generated = datetime.fromisoformat(results["metadata"]["generated_at"].replace("Z", "+00:00"))
    assert generated.replace(tzinfo=generated.tzinfo or UTC).timestamp() >= signalled - 0.5
    done = {r["unique_id"]: r["status"] for r in results["results"]}
    assert done.get("model.shop.fct_orders") == "success"
    assert done.get("model.shop.slow_model") != "success"

    # No docs for an interrupted run: docs generate never ran, nothing went to docs/.
    assert "Task run 'dbt docs generate'" not in text
    assert not (run_dir / "catalog.json").exists()
    assert not (store / "docs" / "local" / "index.html").exists()
    assert not (store / "state").exists()  # state only after a fully successful run
