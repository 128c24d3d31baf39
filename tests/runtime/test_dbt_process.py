"""dbt in its own process: commands, forwarded events, interrupts, a child that dies, a parent that dies."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dbt_ferry.runtime.dbt_process import DbtProcess
from dbt_ferry.runtime.events import EventFilter
from dbt_ferry.runtime.invoker import DbtOptions, build_args

pytestmark = pytest.mark.slow

SLOW_MODEL = """\
{{ config(materialized='table') }}
select count(*) as n
from range(1000000) as a(x), range(1000000) as b(y)
where a.x + b.y < 0
"""


@pytest.fixture
def project(shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copyfile(shop / "profiles" / "local.yml", shop / "profiles.yml")
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    return shop


@pytest.fixture
def dbt() -> DbtProcess:
    process = DbtProcess.start()
    yield process  # type: ignore[misc]
    process.stop()


def default_filter(level: str = "warn") -> EventFilter:
    from dbt_ferry.config.models import EventsConfig

    return EventFilter.from_config(EventsConfig(level=level))  # type: ignore[arg-type]


def test_commands_run_in_the_child_and_forward_the_chosen_events(dbt: DbtProcess, project: Path) -> None:
    events: list[tuple[int, str]] = []
    deps = dbt.invoke(build_args(["deps"], project), default_filter(), lambda lvl, txt: events.append((lvl, txt)))
    assert (deps.exit_code, deps.success, deps.error) == (0, True, None)
    assert any(text.startswith("Running with dbt=") for _, text in events)

    events.clear()
    events_filter = default_filter()
    build = dbt.invoke(
        build_args(["build"], project),
        events_filter,
        lambda lvl, txt: events.append((lvl, txt)),
    )
    assert build.exit_code == 0, events
    assert not events_filter.no_nodes
    texts = [text for _, text in events]
    assert any(" of " in t and "stg_customers" in t for t in texts), texts
    assert all(level in (logging.INFO, logging.WARNING, logging.ERROR) for level, _ in events)
    assert (project / "target" / "run_results.json").is_file()  # written by the child, in the project


def test_no_nodes_and_dbt_errors_come_back_as_outcomes(dbt: DbtProcess, project: Path) -> None:
    dbt.invoke(build_args(["deps"], project), default_filter(), lambda *_: None)
    events_filter = default_filter()
    nothing = DbtOptions(select=("nothing_by_that_name",))
    empty = dbt.invoke(build_args(["build"], project, options=nothing), events_filter, lambda *_: None)
    assert empty.exit_code == 0 and events_filter.no_nodes

    broken = dbt.invoke(build_args(["build"], project / "missing"), default_filter(), lambda *_: None)
    assert broken.exit_code == 2 and not broken.success
    assert broken.error and broken.error.startswith("DbtUsageException: Path ") and "does not exist" in broken.error


def test_interrupt_stops_the_running_command_and_dbt_writes_its_results(dbt: DbtProcess, project: Path) -> None:
    (project / "models" / "marts" / "slow_model.sql").write_text(SLOW_MODEL)
    dbt.invoke(build_args(["deps"], project), default_filter(), lambda *_: None)
    seen: list[str] = []

    def on_event(level: int, text: str) -> None:
        seen.append(text)
        if "START sql table model main.slow_model" in text:
            threading.Timer(1.0, dbt.interrupt).start()

    started = time.monotonic()
    args = build_args(["run", "--threads", "1"], project, options=DbtOptions(select=("slow_model",)))
    outcome = dbt.invoke(args, default_filter("info"), on_event)
    assert outcome.interrupted, seen
    assert outcome.exit_code == 2 and "KeyboardInterrupt" in (outcome.error or "")
    assert time.monotonic() - started < 60
    results = json.loads((project / "target" / "run_results.json").read_text())
    assert [r["status"] for r in results["results"]] != ["success"]


def test_a_child_that_dies_gives_a_clear_error_not_a_hang(project: Path) -> None:
    (project / "models" / "marts" / "slow_model.sql").write_text(SLOW_MODEL)
    dbt = DbtProcess.start()
    try:
        dbt.invoke(build_args(["deps"], project), default_filter(), lambda *_: None)
        threading.Timer(8.0, os.kill, (dbt.pid, signal.SIGKILL)).start()
        slow = build_args(["run"], project, options=DbtOptions(select=("slow_model",)))
        outcome = dbt.invoke(slow, default_filter(), lambda *_: None)
    finally:
        dbt.stop()
    assert outcome.exit_code == 2 and not outcome.interrupted
    assert outcome.error == (
        "dbt's process was killed by signal 9 (SIGKILL: out of memory?) before finishing; its own output is above"
    )
    # A dead child answers every later command the same way, at once.
    again = dbt.invoke(["parse"], default_filter(), lambda *_: None)
    assert again.exit_code == 2 and "killed by signal 9" in (again.error or "")


def test_the_child_stops_dbt_and_exits_when_the_job_process_is_killed(project: Path, tmp_path: Path) -> None:
    (project / "models" / "marts" / "slow_model.sql").write_text(SLOW_MODEL)
    script = textwrap.dedent(
        f"""
        import sys
        from dbt_ferry.runtime.dbt_process import DbtProcess
        from dbt_ferry.runtime.events import EventFilter
        from dbt_ferry.runtime.invoker import DbtOptions, build_args

        dbt = DbtProcess.start()
        print(dbt.pid, flush=True)
        project = {str(project)!r}
        events = EventFilter(frozenset(), frozenset(), "info")
        dbt.invoke(build_args(["deps"], project), events, lambda *_: None)
        slow = build_args(["run"], project, options=DbtOptions(select=("slow_model",)))
        dbt.invoke(slow, events, lambda l, t: print(t, flush=True))
        """
    )
    job = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ)
    assert job.stdout is not None
    child = int(job.stdout.readline())
    for line in job.stdout:
        if "START sql table model main.slow_model" in line:
            break
    job.kill()
    job.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.2)
    outlived = _alive(child)
    if outlived:
        os.kill(child, signal.SIGKILL)  # never leave a query of 10^12 rows running on the machine
    assert not outlived, "dbt's process outlived the job's process"


def test_the_job_process_never_imports_dbt(project: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from dbt_ferry.runtime.dbt_process import DbtProcess
        from dbt_ferry.runtime.events import EventFilter
        from dbt_ferry.runtime.invoker import DbtOptions, build_args

        dbt = DbtProcess.start()
        outcome = dbt.invoke(build_args(["deps"], {str(project)!r}), EventFilter(frozenset(), frozenset(), "info"),
                             lambda *_: None)
        dbt.stop()
        print(outcome.exit_code, sorted(m for m in sys.modules if m == "dbt" or m.startswith("dbt.")))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0 []", done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by init) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_the_child_ends_without_a_warning_on_stderr(project: Path) -> None:
    """dbt's locks are released when the child ends at once: no "leaked semaphore objects" from multiprocessing's
    resource tracker in the job's stderr (a user saw it after every run)."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from dbt_ferry.config.models import EventsConfig
        from dbt_ferry.runtime.dbt_process import DbtProcess
        from dbt_ferry.runtime.events import EventFilter
        from dbt_ferry.runtime.invoker import build_args
        dbt = DbtProcess.start()
        for command in (["deps"], ["seed"]):
            done = dbt.invoke(build_args(command, Path({str(project)!r})), EventFilter.from_config(EventsConfig()),
                              lambda *_: None)
            assert done.exit_code == 0, done
        dbt.stop()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "leaked semaphore" not in done.stderr and "Warning" not in done.stderr, done.stderr
