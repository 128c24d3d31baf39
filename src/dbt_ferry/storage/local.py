"""A store in a local folder. Writes go to a temporary name and are renamed into place."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from dbt_ferry.core.errors import StoreError, StoreNotFoundError, StorePreconditionError
from dbt_ferry.core.store import ProgressCallback

_CHUNK = 1024 * 1024


def _write_error(path: Path, exc: OSError) -> StoreError:
    """A write the disk refused (full, read-only, quota): one line, the store's exit code."""
    return StoreError(f"cannot write {path}: {exc.strerror or exc}", "free space on the store's disk, or check it")


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()

    @property
    def url(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StoreError(f"invalid store key {key!r}")
        return self.root.joinpath(*parts)

    def _temp_beside(self, path: Path) -> Path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create {path.parent}: {exc.strerror}", "check the store path and its permissions"
            ) from None
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp makes it private; store files are read by other users and tools
        os.close(fd)
        return Path(name)

    def _commit(self, tmp: Path, path: Path, *, if_absent: bool) -> None:
        try:
            if if_absent:
                try:
                    os.link(tmp, path)  # atomic create-if-absent
                except FileExistsError:
                    raise StorePreconditionError(f"{path} already exists") from None
            else:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreNotFoundError(f"{path} does not exist") from None
        except IsADirectoryError:
            raise StoreNotFoundError(f"{path} is a directory, not a file") from None

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.read_bytes(key)
        return data, hashlib.sha256(data).hexdigest()

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        path = self._path(key)
        if if_match is not None:
            return self._write_if_match(key, path, data, if_match)
        tmp = self._temp_beside(path)
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_error(path, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._commit(tmp, path, if_absent=if_absent)
        return None

    def _write_if_match(self, key: str, path: Path, data: bytes, tag: str) -> None:
        """Compare and swap under an exclusive lock on a file beside ``path``: every such writer takes it."""
        lock = path.parent / f".{path.name}.lock"
        self._temp_beside(path).unlink()  # creates the folder, with the store's error if it cannot
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                current = self.read_versioned(key)[1]
            except StoreNotFoundError:
                current = None
            if current != tag:
                raise StorePreconditionError(f"{path} changed since it was read")
            self.write_bytes(key, data)

    def upload(self, key: str, source: Path, *, progress: ProgressCallback | None = None) -> None:
        path = self._path(key)
        tmp = self._temp_beside(path)
        try:
            with source.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    if progress:
                        progress(len(chunk))
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if not source.is_file():
                raise
            raise _write_error(path, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._commit(tmp, path, if_absent=False)

    def download(self, key: str, dest: Path, *, progress: ProgressCallback | None = None) -> None:
        path = self._path(key)
        try:
            src = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise StoreNotFoundError(f"{path} does not exist") from None
        with src, dest.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
                if progress:
                    progress(len(chunk))

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise StoreNotFoundError(f"{path} does not exist") from None

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root.joinpath(*[p for p in prefix.split("/") if p]) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".") and name.endswith((".tmp", ".lock")):
                    continue  # an unfinished write, or the lock of a compare-and-swap
                keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def missing(self) -> str | None:
        return None if self.root.is_dir() else "its folder does not exist"

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        # Remove directories left empty, up to the root.
        for key in keys:
            parent = self._path(key).parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                shutil.rmtree(parent, ignore_errors=True)
                parent = parent.parent
