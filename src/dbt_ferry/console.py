"""All human output goes through here: one rich console for stdout, one for stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn
from rich.text import Text

from dbt_ferry.core.store import ProgressCallback

# Markup is off: messages carry user text such as "[build 1a2b]" that must print as it is.
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
for _console in (out, err):
    if not _console.is_terminal:
        _console.width = 160  # logs and pipes: do not squeeze tables into 80 columns


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is at the time of the record (it may be replaced after set-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(debug: bool = False) -> None:
    """Entry points only: warnings (or everything with --debug) to stderr."""
    level = logging.DEBUG if debug else logging.WARNING
    handler: logging.Handler
    if err.is_terminal:
        handler = RichHandler(console=err, show_time=False, show_path=debug, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("dbt_ferry")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if debug:
        logging.getLogger("botocore").setLevel(logging.INFO)


@contextmanager
def transfer_progress(description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal; nothing at all in logs and pipes."""
    if not err.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def advance(count: int) -> None:
            progress.update(task, advance=count)

        yield advance


def error(message: str) -> None:
    if err.is_terminal:
        err.print(Text.assemble(("Error:", "bold red"), f" {message}"))
    else:
        err.print(f"Error: {message}")
