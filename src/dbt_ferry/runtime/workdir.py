"""The work directory of a job: the same path for every run of an environment on a host, when free.

dbt's parse cache (``partial_parse.msgpack``) records the project's absolute path and reads seed files
through it, so it may only be reused by a project at the same path. Each environment's runs therefore
use ``<base>/dbt-ferry-<env>``, held by an exclusive lock for the whole job (the lock's file descriptor
survives the re-exec into the env pack). A second concurrent run of the same environment gets a private
temporary directory instead, and does not restore the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkDir:
    path: Path
    stable: bool
    lock_fd: int | None = None


def release_work_dir(lock_fd: int | None) -> None:
    """Let the next run of the environment have the stable directory (closing the descriptor unlocks it)."""
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)


def acquire_work_dir(environment: str, base: str | None) -> WorkDir:
    root = Path(base or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    lock_path = root / f"dbt-ferry-{environment}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return WorkDir(Path(tempfile.mkdtemp(prefix=f"dbt-ferry-{environment}-", dir=root)), stable=False)
    os.set_inheritable(fd, True)  # held until the job's process (after exec) ends
    path = root / f"dbt-ferry-{environment}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return WorkDir(path, stable=True, lock_fd=fd)
