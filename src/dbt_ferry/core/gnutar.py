"""Extraction by GNU tar, fed only members that :class:`~dbt_ferry.core.tarcheck.TarChecker` has checked.

Python reads the stream (a download through sha256 and zstd) and checks every header; the ``tar`` child
writes the files, which is where the time goes with thousands of small files. tar is told never to apply
owners, special mode bits, ACLs, SELinux contexts or xattrs, and never to replace a file; it runs with a
clean environment (no ``TAR_OPTIONS``), the C locale (names are written as the archive spells them) and
umask 022.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from dbt_ferry.core.errors import UnsafeArchiveError
from dbt_ferry.core.tarcheck import TarChecker

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_PIPE_SIZE = 1024 * 1024
_MIN_VERSION = (1, 29)
_ENV = {"LC_ALL": "C", "PATH": os.defpath}
_FLAGS = (
    "--extract",
    "--file=-",
    "--no-same-owner",
    "--no-same-permissions",
    "--keep-old-files",
    "--touch",
    "--no-acls",
    "--no-selinux",
    "--no-xattrs",
)


def find_gnu_tar() -> str | None:
    """The GNU tar on ``PATH`` (``tar``, else ``gtar`` as on macOS), version 1.29 or later, or None.

    Each candidate's ``--version`` is asked once per ``PATH``.
    """
    search_path = os.environ.get("PATH", os.defpath)
    for name in ("tar", "gtar"):
        found = _gnu_tar(shutil.which(name, path=search_path))
        if found:
            return found
    return None


@functools.lru_cache(maxsize=8)
def _gnu_tar(tar: str | None) -> str | None:
    if tar is None:
        return None
    try:
        done = subprocess.run([tar, "--version"], capture_output=True, text=True, env=_ENV, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"tar \(GNU tar\) (\d+)\.(\d+)", done.stdout)
    if done.returncode != 0 or found is None or (int(found[1]), int(found[2])) < _MIN_VERSION:
        log.debug("%s is not GNU tar %d.%d or later", tar, *_MIN_VERSION)
        return None
    return tar


def _grow_pipe(fd: int) -> None:
    """A larger pipe means fewer wake-ups between the two processes (Linux only; best effort)."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stderr_tail(errors: BinaryIO) -> str:
    errors.seek(0)
    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return "; ".join(" ".join(line.split())[:300] for line in lines[-5:])


#: How GNU tar reports a full or read-only disk ("Wrote only N of M bytes" is its short write on a full one).
_DISK_MESSAGES = (
    ("No space left on device", errno.ENOSPC),
    ("Wrote only ", errno.ENOSPC),
    ("Disk quota exceeded", errno.EDQUOT),
    ("Read-only file system", errno.EROFS),
)


def _raise_disk_error(errors: BinaryIO, root: Path) -> None:
    """Raise tar's failure as the ``OSError`` Python's own writer would, when it was a full or read-only disk."""
    errors.seek(0)
    text = errors.read().decode("utf-8", "replace")
    for message, number in _DISK_MESSAGES:
        if message in text:
            raise OSError(number, os.strerror(number), str(root))


def extract_with_tar(stream: BinaryIO, root: Path, tar: str) -> TarChecker:
    """Check ``stream`` (a plain tar) and have ``tar`` extract it into the existing directory ``root``.

    Returns the checker, whose ``links`` and ``dirs`` the caller still has to check and fix once tar is done.
    On a refusal tar is killed and the error raised; the caller discards ``root``.
    """
    checker = TarChecker()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tar, *_FLAGS, f"--directory={root}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=_ENV,
            umask=0o022,
        )
        if proc.stdin is None:  # pragma: no cover - stdin=PIPE always gives one
            raise RuntimeError("tar has no stdin")
        try:
            fd = proc.stdin.fileno()
            _grow_pipe(fd)
            try:
                while not checker.done:
                    _write_all(fd, checker.feed(stream.read(_CHUNK)))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # tar stopped reading: its exit status and message say why
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        if code != 0 or not checker.done:
            _raise_disk_error(errors, root)
            raise UnsafeArchiveError(
                f"tar could not extract the archive (exit {code}): {_stderr_tail(errors)}",
                f"check the free space and permissions of {root.parent}",
            )
    return checker
