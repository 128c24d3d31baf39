"""dbt in a process of its own, next to the job's Prefect flow.

The job's process runs Prefect (the flow, its tasks, the API log handler, the exports); a child process,
started first thing, imports dbt and runs the commands the flow sends it. So:

- the two imports (dbt ~1 s, Prefect ~1 s, more without bytecode) overlap on two cores instead of
  adding up before dbt's first event;
- dbt's memory is its own: the exports' pyarrow and Prefect's bookkeeping do not stack on top of dbt's
  peak, and it is all returned when the child ends after the last dbt step;
- forwarding events to Prefect's API happens in the parent, off dbt's GIL.

The protocol: the parent writes one JSON line per command to the child's stdin
(``{"args": [...], "events": {...}}``); the child writes JSON lines to a pipe of its own (fd passed
on the command line): ``{"e": [level, text]}`` for each forwarded event, ``{"o": [level, text]}`` for what the
command prints as its result (``show``, ``ls``...), ``{"n": {...}}`` for each finished node
(:func:`~dbt_ferry.runtime.events.finished_node`), then ``{"r": {...}}`` with the outcome. The
child's stdout and stderr are the job's.

Signals: the parent forwards SIGTERM/SIGINT to the child as SIGINT while a command runs; the child takes
the first SIGINT or SIGTERM for a KeyboardInterrupt, which makes dbt cancel its queries and write
``run_results.json``, and ignores the rest. A child whose parent died interrupts itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import IO, Any

from dbt_ferry.runtime.events import OUTPUT_EVENTS, EventFilter, finished_node
from dbt_ferry.runtime.invoker import Invocation

log = logging.getLogger(__name__)

#: How long a child that was told to stop may take before it is killed.
_STOP_TIMEOUT = 10.0
_PARENT_POLL = 0.5

OnEvent = Callable[[int, str], None]
OnNode = Callable[[dict[str, Any]], None]


def _ignore_node(node: dict[str, Any]) -> None:
    pass


def _log_output(level: int, text: str) -> None:
    log.info("%s", text)


#: The child's entry: ``main`` below, with an interrupt that comes while it still imports (a SIGTERM as the job's
#: first step starts) ending it quietly (exit 130) rather than with Python's traceback of the import.
_CHILD = """
import sys
try:
    from dbt_ferry.runtime.dbt_process import main
    main(sys.argv[1:])
except KeyboardInterrupt:
    sys.exit(130)
"""


class DbtProcess:
    """The parent's handle of a dbt child process (one per job)."""

    def __init__(self, process: subprocess.Popen[bytes], messages: IO[bytes]) -> None:
        self._process = process
        self._messages = messages
        self._lock = threading.Lock()

    @classmethod
    def start(cls) -> DbtProcess:
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(  # this interpreter, a module of ours
                [sys.executable, "-c", _CHILD, str(write_fd)],
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return cls(process, os.fdopen(read_fd, "rb"))

    @property
    def pid(self) -> int:
        return self._process.pid

    def invoke(
        self,
        args: Sequence[str],
        events: EventFilter,
        on_event: OnEvent,
        on_node: OnNode = _ignore_node,
        on_output: OnEvent = _log_output,
    ) -> Invocation:
        """Run one dbt command in the child; forwarded events go to ``on_event``, finished nodes to ``on_node``
        and what the command prints as its result (``show``, ``ls``...) to ``on_output``, as they come."""
        with self._lock:
            return self._invoke(args, events, (on_event, on_node, on_output), time.monotonic())

    def _invoke(
        self, args: Sequence[str], events: EventFilter, handlers: tuple[OnEvent, OnNode, OnEvent], started: float
    ) -> Invocation:
        on_event, on_node, on_output = handlers
        request = json.dumps({"args": list(args), "events": events.to_dict()}) + "\n"
        stdin = self._process.stdin
        try:
            if stdin is None:
                raise BrokenPipeError
            stdin.write(request.encode())
            stdin.flush()
        except (BrokenPipeError, ValueError):
            return self._lost(args, started)
        for line in self._messages:
            message = json.loads(line)
            if "e" in message:
                level, text = message["e"]
                on_event(int(level), str(text))
            elif "n" in message:
                on_node(message["n"])
            elif "o" in message:
                level, text = message["o"]
                on_output(int(level), str(text))
            elif "r" in message:
                result = message["r"]
                events.no_nodes = bool(result.pop("no_nodes", False))
                return Invocation(args=tuple(args), **result)
        return self._lost(args, started)

    def _lost(self, args: Sequence[str], started: float) -> Invocation:
        code = self._process.wait()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        hint = " (SIGKILL: out of memory?)" if code == -signal.SIGKILL else ""
        error = f"dbt's process {how}{hint} before finishing; its own output is above"
        return Invocation(tuple(args), 2, False, error, time.monotonic() - started)

    def interrupt(self) -> None:
        """Ask dbt to stop the running command (it cancels its queries and writes run_results.json)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)

    def stop(self) -> None:
        """End the child (it finishes when its input closes); kill it if it does not."""
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("dbt's process did not end within %.0f s; killing it", _STOP_TIMEOUT)
            self._process.kill()
            self._process.wait()
        self._messages.close()


class _Holder:
    """The job's dbt process: started early by the job, used by the flow's dbt steps, stopped after them."""

    def __init__(self) -> None:
        self.process: DbtProcess | None = None


_holder = _Holder()


def start_current() -> DbtProcess:
    """Start this job's dbt process if it is not running (it begins importing dbt at once)."""
    if _holder.process is None:
        _holder.process = DbtProcess.start()
    return _holder.process


def stop_current(*, interrupt: bool = False) -> None:
    """Stop this job's dbt process; ``interrupt`` first stops a command it may be running."""
    process, _holder.process = _holder.process, None
    if process is not None:
        if interrupt:
            process.interrupt()
        process.stop()


# --- the child -------------------------------------------------------------------------------------------


#: Seconds before a signal that came during a finalizer is taken again; the files whose ``__call__`` finalizes.
_REASK = 0.05
_FINALIZERS = (os.path.join("multiprocessing", "util.py"), "weakref.py")


class _Interrupt:
    """The child's SIGINT/SIGTERM handler: the first one stops dbt, the rest are ignored."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:
            return
        if _in_finalizer(frame):
            # Python ignores an exception raised in a finalizer (it prints "Exception ignored in"), and dbt would
            # go on: ask again in a moment, from wherever the main thread is then.
            main = threading.main_thread().ident
            if main is not None:
                threading.Timer(_REASK, signal.pthread_kill, (main, signal.SIGINT)).start()
            return
        self.fired = True
        raise KeyboardInterrupt


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a ``__del__`` or a ``weakref.finalize``/multiprocessing finalizer."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (code.co_name == "__call__" and code.co_filename.endswith(_FINALIZERS)):
            return True
        frame = frame.f_back
    return False


def _interrupt_trace(event: Any) -> bool:
    """dbt's "Encountered an error" and stack trace for the KeyboardInterrupt that stopped it on a signal: the
    job says it was stopped in one line, a traceback of its own signal says nothing more."""
    name = event.info.name
    if name == "MainStackTrace":
        return re.search(r"KeyboardInterrupt:?\s*$", str(getattr(event.data, "stack_trace", ""))) is not None
    return name == "MainEncounteredError" and not str(getattr(event.data, "exc", "")).strip()


def _watch_parent(parent: int, main_thread: int) -> None:
    """Interrupt dbt if the job's process goes away (killed): nothing would read the results."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL)
    # A real signal to the main thread: it wakes the thread from a blocking wait, as Ctrl-C would.
    signal.pthread_kill(main_thread, signal.SIGINT)


def _serve(out: IO[bytes]) -> None:
    from dbt_ferry.runtime.invoker import invoke

    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with lock:
            out.write(data)
            out.flush()

    for line in sys.stdin.buffer:
        request = json.loads(line)
        events = EventFilter.from_dict(request["events"])

        def callback(event: Any, events: EventFilter = events) -> None:
            if _interrupt_trace(event):
                return
            picked = events(event)
            if picked is not None:
                send({"o" if event.info.name in OUTPUT_EVENTS else "e": picked})
            node = finished_node(event)
            if node is not None:
                send({"n": node})

        sys.argv = ["dbt", *request["args"]]  # run_results.json's invocation_command: the command dbt ran
        result = dataclasses.asdict(invoke(request["args"], [callback]))
        del result["args"]  # the parent has them
        send({"r": {**result, "no_nodes": events.no_nodes}})


def main(argv: list[str] | None = None) -> None:
    """``python -m dbt_ferry.runtime.dbt_process FD``: serve dbt commands until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    handler = _Interrupt()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    with os.fdopen(int(args[0]), "wb") as out:
        try:
            watch = (os.getppid(), threading.get_ident())
            threading.Thread(target=_watch_parent, args=watch, daemon=True, name="parent-watch").start()
            import dbt.cli.main  # noqa: F401 - import now, while the parent imports Prefect

            _serve(out)
        except KeyboardInterrupt:
            sys.exit(130)  # interrupted while starting or between commands: nothing of dbt's is running
        except BrokenPipeError:
            sys.exit(1)  # the job's process went away
    _exit_now()


def _exit_now() -> None:
    """End at once once the job closed stdin: the logs flushed, no teardown of dbt's objects (the manifest and its
    graph), which took 0.5-1 s the job waited for."""
    logging.shutdown()
    # What multiprocessing's own exit hook does first: dbt's locks and semaphores release themselves, else its
    # resource tracker warns of "leaked semaphore objects" on stderr after the run.
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        with contextlib.suppress(Exception):
            mp_util._run_finalizers(0)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
