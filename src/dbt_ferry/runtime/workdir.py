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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.core.constants import ENV_WORK_DIR
from dbt_ferry.core.errors import ConfigError


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


#: A finished job's folder, renamed aside to be removed in the background: ``.<name>.discard-<pid>-<ns>``.
_DISCARDED = ".{name}.discard-"

#: The remover: a process of its own, in its own session (a Ctrl-C meant for the job does not stop it).
_REMOVER = "import shutil, sys\nfor path in sys.argv[1:]:\n    shutil.rmtree(path, ignore_errors=True)\n"


def _remove_in_background(paths: list[Path]) -> None:
    if not paths:
        return
    try:
        subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _REMOVER, *map(str, paths)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)


def discard_work_dir(path: Path) -> None:
    """Remove a finished job's folder without waiting for it: renamed aside at once (the environment's stable path
    is free for the next run before the lock is released), then deleted by a process of its own. dbt's thousands
    of compiled files took ~1 s to delete at 1,000 models, after the outcome was known; in a container, whose disk
    goes with it, nobody needs to wait for that."""
    aside = path.with_name(f"{_DISCARDED.format(name=path.name)}{os.getpid()}-{time.monotonic_ns()}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return
    _remove_in_background([aside])


def _sweep(root: Path, name: str) -> None:
    """Folders of earlier runs whose remover never finished (the machine stopped): removed in the background too."""
    _remove_in_background(sorted(root.glob(f"{_DISCARDED.format(name=name)}*")))


def work_dir_name(environment: str, store_url: str) -> str:
    """``dbt-ferry-<env>-<digest of the store URL>``: one folder per project and environment on a host."""
    return f"dbt-ferry-{environment}-{hashlib.sha256(store_url.encode()).hexdigest()[:10]}"


def _base(base: str | None) -> Path:
    """``base`` (``DBT_FERRY_WORK_DIR``), else a folder of this user's own in the shared temporary folder (0700:
    the fetched profile and the job's parameters are nobody else's business)."""
    if base:
        root = Path(base)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"the work folder {root} is a file", f"point {ENV_WORK_DIR} at a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the work folder {root}: {exc.strerror}", f"check {ENV_WORK_DIR}"
            ) from None
        return root
    root = Path(tempfile.gettempdir()) / f"dbt-ferry-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot create the work folder {root}: {exc.strerror}", f"set {ENV_WORK_DIR}") from None
    if not root.is_dir() or root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"{root} is not a private folder of this user (another user made it, or it is a file or a link)",
            f"remove it, or set {ENV_WORK_DIR} to a folder of your own",
        )
    return root


def acquire_work_dir(environment: str, store_url: str, base: str | None) -> WorkDir:
    root = _base(base)
    name = work_dir_name(environment, store_url)
    try:
        fd = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock {root / name}.lock: {exc.strerror}", f"check {ENV_WORK_DIR}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return WorkDir(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root)), stable=False)
    os.set_inheritable(fd, True)  # held until the job's process (after exec) ends
    _sweep(root, name)
    path = root / name
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return WorkDir(path, stable=True, lock_fd=fd)
