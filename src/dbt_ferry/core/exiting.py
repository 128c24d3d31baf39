"""Leaving the process at once: what must run at exit runs, the interpreter's teardown of every module does not.

A job's process has loaded Prefect, pyiceberg, pyarrow and SQLAlchemy by its end; tearing those modules down
took 0.3-0.7 s after the outcome was printed, work nobody waits for. Only the process entries use this (the
``dbt-ferry`` script and the job's re-exec), never a library call.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_code_of(code: object) -> int:
    """What the interpreter would exit with for ``SystemExit(code)`` (a text is printed and means 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # noqa: T201 - what SystemExit("text") prints
    return 1


def exit_now(code: object) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, after what the interpreter's exit runs first: the non-daemon
    threads joined and ``threading``'s exit hooks (Prefect drains its logs and events there), then the
    ``atexit`` hooks (logging's flush, a temporary Prefect server's stop), then the standard streams flushed."""
    status = exit_code_of(code)
    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exitfuncs is None:  # another Python than CPython 3.11-3.13: the normal exit
        sys.exit(status)
    shutdown()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
