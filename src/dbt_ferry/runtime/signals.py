"""The job's signals: SIGTERM (ECS stopping the task, a Prefect cancel) and SIGINT (Ctrl-C).

One handler for the whole job, whatever runs it (a Prefect flow or the plain runner). What it does depends
on where the job is:

- while a dbt step runs, it interrupts dbt's process (dbt cancels its queries, writes ``run_results.json``
  and returns), and the step ends as interrupted;
- between dbt steps, it raises :class:`Terminated` in the main thread, so no further dbt step starts;
- while the job publishes what exists (after dbt), it only records the signal: finishing takes seconds,
  well within ECS's 30 s, and stopping halfway would lose outputs.

Only the first signal acts; later ones are ignored so that the job can finish publishing. Prefect's flow
engine installs a SIGTERM handler of its own around a flow run; :meth:`JobSignals.take_over` puts this one
back for the flow's body.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Literal, Protocol

from dbt_ferry.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

log = logging.getLogger(__name__)

_HANDLED = (signal.SIGTERM, signal.SIGINT)

Phase = Literal["setup", "dbt", "finishing"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on a signal between dbt steps: the job publishes what exists."""


class Interruptible(Protocol):
    def interrupt(self) -> None: ...


class JobSignals:
    """The job's signal handler and what it has seen."""

    def __init__(self) -> None:
        self.signum: int | None = None
        #: Set when the signal came from a Prefect cancel (the flow run was Cancelling).
        self.cancelled = False
        #: Asked once, after a SIGTERM, whether it was a cancel (set by the Prefect flow: is the run Cancelling?).
        self.classify: Callable[[], bool] | None = None
        self.phase: Phase = "setup"
        self._dbt: Interruptible | None = None

    @property
    def fired(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int | None:
        """130 for Ctrl-C, 143 for SIGTERM, None when no signal came."""
        if self.signum is None:
            return None
        return EXIT_INTERRUPTED if self.signum == signal.SIGINT else EXIT_TERMINATED

    @property
    def how(self) -> str:
        """How the job was stopped, in words."""
        if self.signum == signal.SIGTERM and not self.cancelled and self.classify is not None:
            classify, self.classify = self.classify, None
            self.cancelled = classify()
        if self.cancelled:
            return "cancelled from Prefect"
        return "interrupted" if self.signum == signal.SIGINT else "stopped by SIGTERM"

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:
            return
        self.signum = signum
        name = signal.Signals(signum).name
        if self.phase == "finishing":
            log.warning("%s received while publishing the run's outputs: finishing them first", name)
            return
        dbt = self._dbt
        if dbt is not None:
            log.warning("%s received: stopping dbt, then publishing what exists", name)
            dbt.interrupt()  # dbt cancels its queries, writes run_results.json and returns
            return
        log.warning("%s received: publishing what exists", name)
        raise Terminated()

    @contextmanager
    def installed(self) -> Iterator[JobSignals]:
        """Handle SIGTERM and SIGINT for the block (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self) for signum in _HANDLED}
        try:
            yield self
        finally:
            for signum, before in previous.items():
                signal.signal(signum, before)

    @contextmanager
    def take_over(self) -> Iterator[None]:
        """Put this handler back for the block, over whatever a library installed (Prefect's flow engine)."""
        with self.installed():
            yield

    @contextmanager
    def running_dbt(self, dbt: Interruptible) -> Iterator[None]:
        """While a dbt step runs, a signal interrupts dbt's process instead of raising."""
        self.phase, self._dbt = "dbt", dbt
        try:
            yield
        finally:
            self.phase, self._dbt = "setup", None

    def finishing(self) -> None:
        """From here on the job publishes what exists: a signal is recorded, nothing is interrupted."""
        self.phase = "finishing"

    def raise_if_fired(self) -> None:
        """Between steps: a signal that came while dbt ran stops the job before the next step."""
        if self.fired and self.phase != "finishing":
            raise Terminated()
