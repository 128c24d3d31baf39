"""The protocol every store backend implements (a local folder, an S3 bucket + prefix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

#: Called with the number of bytes just transferred.
ProgressCallback = Callable[[int], None]


@runtime_checkable
class ArtifactStore(Protocol):
    """Keys are posix paths relative to the store root (``releases/1.0.0/release.json``)."""

    @property
    def url(self) -> str:
        """Where the store is, for people: ``/path/to/store`` or ``s3://bucket/prefix``."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """Raise :class:`StoreNotFoundError` when ``key`` does not exist."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """``key``'s bytes and a tag of this version of it, for a later ``write_bytes(..., if_match=tag)``."""
        ...

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        """Write atomically; raise :class:`StorePreconditionError` when ``if_absent`` and it exists, or when
        ``if_match`` is not the tag of the version there now (compare-and-swap)."""
        ...

    def upload(self, key: str, source: Path, *, progress: ProgressCallback | None = None) -> None:
        """Copy a local file to ``key`` atomically (readers see the old or the whole new object)."""
        ...

    def download(self, key: str, dest: Path, *, progress: ProgressCallback | None = None) -> None:
        """Copy ``key`` to the local file ``dest``."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A stream of ``key``'s bytes, to read once from the start (close it when done)."""
        ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or ``None`` when the key does not exist."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, recursively, sorted."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove keys; missing ones are ignored."""
        ...

    def missing(self) -> str | None:
        """Why the store cannot exist yet for a reader (a folder that is not there), or ``None``; writers create it."""
        ...
