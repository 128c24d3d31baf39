"""The one place dbt is called: ``dbtRunner`` with dbt-ferry's standard flags (in the job's dbt process)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Commands that accept selection, threads, full-refresh.
_SELECTING = frozenset({"build", "run", "test", "seed", "snapshot", "compile", "list", "ls", "docs", "source", "clone"})
_NO_TARGET = frozenset({"deps", "clean", "init"})


@dataclass(frozen=True)
class DbtOptions:
    """What the job adds to the dbt command it was asked to run (not to deps, debug or docs)."""

    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    resource_types: tuple[str, ...] = ()
    indirect_selection: str | None = None
    fail_fast: bool = False
    warn_error: bool = False
    empty: bool = False
    defer: bool = False
    state: str | None = None

    def args(self, head: str) -> list[str]:
        """The flags for the command ``head``: selections where dbt takes them; the rest as given, for dbt to
        check (``--empty`` on a command without it is dbt's one-line error, exit 2)."""
        args: list[str] = []
        if head in _SELECTING:
            for value in self.select:
                args += ["--select", value]
            for value in self.exclude:
                args += ["--exclude", value]
            if self.selector:
                args += ["--selector", self.selector]
        for value in self.resource_types:
            args += ["--resource-type", value]
        if self.indirect_selection:
            args += ["--indirect-selection", self.indirect_selection]
        args += [flag for flag, on in (("--fail-fast", self.fail_fast), ("--warn-error", self.warn_error),
                                       ("--empty", self.empty), ("--defer", self.defer)) if on]  # fmt: skip
        if self.state:
            args += ["--state", self.state]
        return args


@dataclass(frozen=True)
class Invocation:
    args: tuple[str, ...]
    exit_code: int
    success: bool
    error: str | None
    elapsed: float
    interrupted: bool = False


def build_args(
    command: Sequence[str],
    project_dir: Path,
    *,
    target: str | None = None,
    full_refresh: bool = False,
    vars_yaml: str | None = None,
    threads: int | None = None,
    options: DbtOptions | None = None,
) -> list[str]:
    """dbt arguments for ``command``: standard flags first, then the command with its options (``options``: the
    job's selection and dbt flags, for the command it was asked to run)."""
    head = command[0] if command else "build"
    args = [
        "--no-use-colors",
        "--log-level",
        "none",
        "--log-level-file",
        "debug",
        "--no-send-anonymous-usage-stats",
        *command,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    if target and head not in _NO_TARGET:
        args += ["--target", target]
    if vars_yaml:
        args += ["--vars", vars_yaml]
    if options is not None:
        args += options.args(head)
    if head in _SELECTING:
        if threads:
            args += ["--threads", str(threads)]
        if full_refresh and head in ("build", "run", "seed"):
            args.append("--full-refresh")
    return args


def invoke(args: Sequence[str], callbacks: list[Callable[[Any], None]]) -> Invocation:
    """Run dbt once. 0: success, 1: dbt ran and a node failed, 2: dbt could not run."""
    from dbt.cli.main import dbtRunner

    started = time.monotonic()
    result = dbtRunner(callbacks=callbacks).invoke(list(args))
    elapsed = time.monotonic() - started
    exception = result.exception
    interrupted = isinstance(exception, KeyboardInterrupt)
    if result.success:
        code, error = 0, None
    elif exception is not None:
        code, error = 2, f"{type(exception).__name__}: {exception}".strip()
    else:
        code, error = 1, None
    return Invocation(tuple(args), code, bool(result.success), error, elapsed, interrupted)
