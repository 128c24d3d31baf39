"""The process entries leave without the interpreter's teardown, but after everything an exit must still do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        """
        import atexit, sys, threading, time
        from dbt_ferry.core.exiting import exit_now

        atexit.register(lambda: print("atexit hook ran", flush=True))
        threading._register_atexit(lambda: print("threading hook ran", flush=True))

        def late():
            time.sleep(0.3)
            print("non-daemon thread finished", flush=True)

        threading.Thread(target=late).start()
        sys.stdout.write("buffered, never flushed by hand\\n")
        """
    )
    return subprocess.run([sys.executable, "-c", code + textwrap.dedent(body)], capture_output=True, text=True)


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (1, 1), (143, 143)])
def test_exit_now_runs_the_exit_hooks_and_keeps_the_code(code: object, status: int) -> None:
    done, normal = _run(f"exit_now({code!r})"), _run(f"sys.exit({code!r})")
    assert done.returncode == normal.returncode == status
    assert done.stdout == normal.stdout  # the same hooks, in the interpreter's order
    assert done.stdout.splitlines() == [
        "buffered, never flushed by hand",
        "threading hook ran",  # where Prefect drains its logs and events
        "non-daemon thread finished",
        "atexit hook ran",
    ]


def test_exit_now_with_a_text_prints_it_and_exits_1() -> None:
    done, normal = _run("exit_now('Error: something to say')"), _run("sys.exit('Error: something to say')")
    assert done.returncode == normal.returncode == 1
    assert done.stderr == normal.stderr == "Error: something to say\n"


def test_the_dbt_ferry_script_exits_through_it() -> None:
    """``dbt-ferry`` (the installed script) keeps the CLI's exit codes and output."""
    script = [sys.executable, "-c", "from dbt_ferry.cli.main import entry; entry()"]
    done = subprocess.run([*script, "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("dbt-ferry, version")
    done = subprocess.run([*script, "releases", "--store", "s3:/not-a-url"], capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.strip().startswith("Error:")
