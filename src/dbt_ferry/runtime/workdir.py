"""The work directory of a job: the same path for every run of a project's environment on a host, when free.

dbt's parse cache (``partial_parse.msgpack``) records the project's absolute path and reads seed files
through it, so it may only be reused by a project at the same path. Each environment's runs therefore
use ``<base>/dbt-ferry-<env>-<store>``, held by an exclusive lock for the whole job (the lock's file descriptor
survives the re-exec into the env pack). ``<store>`` is a short digest of the store's URL: a store holds the
releases of one project, so two projects on one host never share a folder (nor, through it, a parse cache).
A second concurrent run of the same environment gets a private temporary directory instead, and does not
restore the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
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


def work_dir_name(environment: str, store_url: str) -> str:
    """``dbt-ferry-<env>-<digest of the store URL>``: one folder per project and environment on a host."""
    return f"dbt-ferry-{environment}-{hashlib.sha256(store_url.encode()).hexdigest()[:10]}"


def acquire_work_dir(environment: str, store_url: str, base: str | None) -> WorkDir:
    root = Path(base or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    name = work_dir_name(environment, store_url)
    fd = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return WorkDir(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root)), stable=False)
    os.set_inheritable(fd, True)  # held until the job's process (after exec) ends
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return WorkDir(path, stable=True, lock_fd=fd)
