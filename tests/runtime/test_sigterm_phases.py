"""SIGTERM around dbt's command: while deps run, while docs are generated, while outputs are published, exported
(twice) and summarised, and once the job is over. Within seconds the job ends; what it prints, what it exits with,
the state its Prefect flow run ends in and what the result table says agree.

The signal comes from inside the job's own process at the phase (``sigterm_at/sitecustomize.py``, on
``PYTHONPATH``), so each phase is hit every time rather than by a timed guess. The rule the job follows:
- while a dbt step runs (deps and docs included), SIGTERM stops it: exit 143, "stopped by SIGTERM during dbt deps";
- once dbt is done, the job only finishes publishing what it has (seconds): a signal then is logged and does not
  change the outcome, which is dbt's — a finished, published run is not reported as stopped;
- a second SIGTERM is ignored, and so is one once the job is over, as it prints its outcome and exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client

from tests.conftest import publish_shop

pytestmark = [pytest.mark.slow, pytest.mark.integration]

INJECT = Path(__file__).with_name("sigterm_at")


def _run(
    shop: Path, store: Path, tmp_path: Path, at: str, *, twice: bool = False, prefect_api: str | None = None
) -> tuple[int, str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(INJECT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "FERRY_SIGTERM_AT": at,
        "SHOP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if twice:
        env["FERRY_SIGTERM_TWICE"] = "1"
    if prefect_api is not None:
        env["PREFECT_API_URL"] = prefect_api
    command = [sys.executable, "-m", "dbt_ferry", "run", "--env", "local"]
    command += [] if prefect_api else ["--no-prefect"]
    command += [] if at == "docs" else ["--no-docs"]  # docs take seconds; only their own case needs them
    command += ["--project-dir", str(shop), "--store", str(store)]
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _exported_exit_code(store: Path, text: str) -> int:
    """The exit code the invocations table holds for this run (read back through ``dbt-ferry history``)."""
    (line,) = [line for line in text.splitlines() if "run artifacts:" in line]
    invocation_id = Path(line.split("run artifacts:")[1].strip()).name
    history = subprocess.run(
        [sys.executable, "-m", "dbt_ferry", "history", "--env", "local", "--store", str(store), "--format", "json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    (run,) = [r for r in json.loads(history.stdout)["runs"] if r["invocation_id"] == invocation_id]
    return int(run["exit_code"])


def _flow_state(text: str) -> str:
    """The final state of the flow run the job printed, as the Prefect server holds it."""
    (line,) = [line for line in text.splitlines() if "Prefect flow run" in line]
    flow_run_id = line.rstrip("/").rsplit("/", 1)[-1].split()[-1]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    assert state is not None
    return state.type.value


@pytest.mark.parametrize(
    ("at", "twice", "code", "outcome", "state"),
    [
        ("deps", False, 143, "the job was stopped by SIGTERM during dbt deps — exit code 143", None),
        ("docs", False, 143, "the job was stopped by SIGTERM during dbt docs generate — exit code 143", "CRASHED"),
        ("export", True, 0, "dbt build passed — exit code 0", "COMPLETED"),
        ("publish,summary,end", False, 0, "dbt build passed — exit code 0", None),  # one run, without Prefect
    ],
)
def test_sigterm_after_the_command_ends_the_job_with_one_story(
    at: str, twice: bool, code: int, outcome: str, state: str | None, shop: Path, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    store = tmp_path / "store"
    publish_shop(shop, store)
    api = request.getfixturevalue("prefect_api") if state else None
    exit_code, text, _seconds = _run(shop, store, tmp_path, at, twice=twice, prefect_api=api)
    assert exit_code == code, text
    if state:  # the flow run ends in the state the exit code means, however late the signal came
        assert _flow_state(text) == state, text
    assert outcome in text
    assert "Traceback" not in text and "Exception ignored" not in text
    if at in ("deps", "docs"):
        assert "SIGTERM received: stopping dbt, then publishing what exists" in text
    else:  # while publishing or exporting the job finishes them; at the end the signal is ignored
        assert "SIGTERM received while publishing the run's outputs: finishing them first" in text
    if at == "deps":  # before the command dbt wrote no results: nothing to export
        assert "result tables:" not in text
        return
    assert "result tables: invocations +1" in text  # exported, whatever the phase
    assert _exported_exit_code(store, text) == code
    assert any((store / "runs" / "local").glob("*/run_results.json"))
