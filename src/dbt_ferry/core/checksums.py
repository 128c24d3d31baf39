"""sha256 of files and streams, read in chunks so size never matters."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashingReader:
    """Reads through to ``raw`` while computing the sha256 and size of every byte read."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self._progress = progress
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        self.size += len(data)
        if self._progress and data:
            self._progress(len(data))
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left unread."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


#: The piece size of :class:`~dbt_ferry.core.manifest.Chunks` digests of what dbt-ferry writes.
CHUNK_SIZE = 4 * 1024 * 1024


def chunk_digests(path: Path, size: int = CHUNK_SIZE) -> tuple[str, ...]:
    """The sha256 of each ``size``-byte piece of ``path``, in order (one digest for an empty file)."""
    digests: list[str] = []
    with path.open("rb") as handle:
        while True:
            piece = handle.read(size)
            if not piece and digests:
                break
            digests.append(hashlib.sha256(piece).hexdigest())
            if len(piece) < size:
                break
    return tuple(digests)


class ChunkVerifyingReader:
    """Reads ``raw`` one piece at a time and hands out a piece's bytes only once its sha256 is the expected one.

    ``mismatch(index, actual)`` builds the error raised for a piece that differs (or is missing, or too long).
    """

    def __init__(
        self,
        raw: BinaryIO,
        size: int,
        expected: tuple[str, ...],
        mismatch: Callable[[int, str], Exception],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._size = size
        self._expected = expected
        self._mismatch = mismatch
        self._progress = progress
        self._piece = b""
        self._at = 0
        self._index = 0

    def _next_piece(self) -> bool:
        if self._index >= len(self._expected):
            if self._raw.read(1):
                raise self._mismatch(self._index, "bytes past the last chunk")
            return False
        piece = bytearray()
        while len(piece) < self._size:
            data = self._raw.read(self._size - len(piece))
            if not data:
                break
            piece += data
        actual = hashlib.sha256(piece).hexdigest()
        if actual != self._expected[self._index]:
            raise self._mismatch(self._index, actual)
        if self._progress and piece:
            self._progress(len(piece))
        self._index += 1
        self._piece, self._at = bytes(piece), 0
        return True

    def read(self, size: int = -1) -> bytes:
        if self._at >= len(self._piece) and not self._next_piece():
            return b""
        end = len(self._piece) if size < 0 else min(len(self._piece), self._at + size)
        data = self._piece[self._at : end]
        self._at = end
        return data
