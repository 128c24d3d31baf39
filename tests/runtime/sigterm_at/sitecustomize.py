"""Sends the job SIGTERM at a phase (``FERRY_SIGTERM_AT``: deps, docs, publish, export, summary, or
end: once the job is over, as it prints its outcome; several, comma-separated, for one each), and a second one right
after the first with ``FERRY_SIGTERM_TWICE=1``. Put on ``PYTHONPATH`` by ``tests/runtime/test_sigterm_phases.py``:
Python imports it at start; it takes the variable out of the environment, so that only the process started with
it (the job's, not dbt's) is changed."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

_AT = os.environ.pop("FERRY_SIGTERM_AT", None)


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    if os.environ.get("FERRY_SIGTERM_TWICE"):
        os.kill(os.getpid(), signal.SIGTERM)


def _before(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _terminate()
        return function(*args, **kwargs)

    return wrapper


class _AtFirstEvent:
    """A step's sink that sends the signal as dbt's first event of the step arrives: dbt is under way."""

    def __init__(self, sink: Any) -> None:
        self._sink, self._sent = sink, False

    def on_event(self, level: int, text: str) -> None:
        if not self._sent:
            self._sent = True
            _terminate()
        self._sink.on_event(level, text)

    def on_node(self, node: dict[str, Any]) -> None:
        self._sink.on_node(node)


def _install(at: str) -> None:
    from dbt_ferry.runtime import engine, finish, job

    if at in ("deps", "docs"):
        original = engine.execute_step

        def step(spec: Any, step: Any, sink: Any, signals: Any) -> Any:
            if step.name.startswith("dbt deps") and at == "deps":
                threading.Timer(0.5, _terminate).start()  # dbt's process is starting the step by then
            if step.name.startswith("dbt docs") and at == "docs":
                sink = _AtFirstEvent(sink)  # docs after a passed build take well under a second: no timer
            return original(spec, step, sink, signals)

        engine.execute_step = step  # type: ignore[assignment]
        return
    if at == "end":
        job.report_lines = _before(job.report_lines)  # type: ignore[attr-defined]
        return
    if at == "summary":
        engine.PlainRunner.summary = _before(engine.PlainRunner.summary)  # type: ignore[method-assign]
        return
    name = {"publish": "collect_outputs", "export": "export_tables"}[at]
    setattr(finish, name, _before(getattr(finish, name)))


for _phase in (_AT or "").split(","):
    if _phase:
        _install(_phase)
