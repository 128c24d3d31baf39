"""Piecewise digests: a stream is handed out only piece by verified piece."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pytest

from dbt_ferry.core.checksums import ChunkVerifyingReader, chunk_digests
from dbt_ferry.core.manifest import Artifact, Chunks

DATA = random.Random(5).randbytes(10_000)


class Mismatch(Exception):
    pass


def _reader(data: bytes, expected: tuple[str, ...]) -> ChunkVerifyingReader:
    return ChunkVerifyingReader(io.BytesIO(data), 4096, expected, lambda i, actual: Mismatch(i, actual))


def _digests(tmp_path: Path, data: bytes) -> tuple[str, ...]:
    path = tmp_path / "blob"
    path.write_bytes(data)
    return chunk_digests(path, 4096)


def test_digests_cover_every_piece(tmp_path: Path) -> None:
    assert len(_digests(tmp_path, DATA)) == 3
    assert len(_digests(tmp_path, DATA[:8192])) == 2
    assert _digests(tmp_path, b"") == (hashlib.sha256(b"").hexdigest(),)


def test_intact_data_reads_whole(tmp_path: Path) -> None:
    reader = _reader(DATA, _digests(tmp_path, DATA))
    out = b""
    while piece := reader.read(1000):
        out += piece
    assert out == DATA


def test_no_byte_of_a_damaged_piece_is_handed_out(tmp_path: Path) -> None:
    expected = _digests(tmp_path, DATA)
    damaged = bytearray(DATA)
    damaged[5000] ^= 1
    reader = _reader(bytes(damaged), expected)
    handed = b""
    with pytest.raises(Mismatch) as raised:
        while piece := reader.read(700):
            handed += piece
    assert raised.value.args[0] == 1
    assert handed == DATA[:4096]


@pytest.mark.parametrize("data", [DATA[:9000], DATA + b"x", DATA[:8192]], ids=["short", "long", "piece-missing"])
def test_a_stream_of_another_length_is_refused(tmp_path: Path, data: bytes) -> None:
    reader = _reader(data, _digests(tmp_path, DATA))
    with pytest.raises(Mismatch):
        while reader.read(4096):
            pass


def test_the_manifest_refuses_digests_that_do_not_cover_the_artifact() -> None:
    digest = "0" * 64
    Artifact(name="e", kind="env", size=9000, sha256=digest, chunks=Chunks(size=4096, sha256=(digest,) * 3))
    with pytest.raises(ValueError, match="2 chunk digests for 3 chunks"):
        Artifact(name="e", kind="env", size=9000, sha256=digest, chunks=Chunks(size=4096, sha256=(digest,) * 2))
