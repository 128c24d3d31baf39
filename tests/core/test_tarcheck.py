"""The streaming header check: only checked members are passed on, however the stream is cut."""

from __future__ import annotations

import pytest

from dbt_ferry.core.errors import UnsafeArchiveError
from dbt_ferry.core.tarcheck import END_OF_ARCHIVE, TarChecker
from tests.core.tarbytes import END, header, member, pax

GOOD = header("d", b"5", mode=0o755) + member("d/ok.txt", b"fine" * 300) + header("d/l", b"2", linkname="ok.txt")
LONG = "d/" + "n" * 120
ARCHIVE = GOOD + pax([("path", LONG)]) + member("short", b"long name") + END
CHUNKS = [1, 7, 511, 512, 513, 4096, len(ARCHIVE)]


def _feed(data: bytes, size: int) -> tuple[TarChecker, bytes]:
    checker = TarChecker()
    out = b""
    for start in range(0, len(data), size):
        out += bytes(checker.feed(data[start : start + size]))
        if checker.done:
            break
    out += bytes(checker.feed(b""))
    return checker, out


@pytest.mark.parametrize("size", CHUNKS)
def test_whatever_the_chunks_the_archive_is_passed_on_whole(size: int) -> None:
    checker, out = _feed(ARCHIVE, size)
    assert out == ARCHIVE
    assert checker.done
    assert checker.names == ["d", "d/ok.txt", "d/l", LONG]
    assert checker.links == ["d/l"]
    assert checker.dirs == ["d"]


@pytest.mark.parametrize("size", CHUNKS)
def test_nothing_from_a_refused_member_on_is_passed_on(size: int) -> None:
    evil = pax([("path", "../evil")]) + member("innocent", b"EVIL DATA") + END
    checker = TarChecker()
    out = b""
    data = GOOD + evil
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        for start in range(0, len(data), size):
            out += bytes(checker.feed(data[start : start + size]))
    assert GOOD.startswith(out)  # a prefix of the checked members, nothing of the refused one


def test_a_header_is_held_back_until_it_is_complete() -> None:
    checker = TarChecker()
    first = member("ok.txt", b"data")
    assert [bytes(checker.feed(first[i : i + 1])) for i in range(511)] == [b""] * 511
    assert bytes(checker.feed(first[511:512])) == first[:512]
    assert bytes(checker.feed(first[512:516])) == b"data"  # data flows through once its header is checked


def test_a_stream_ending_at_a_member_boundary_gets_the_end_marker() -> None:
    checker, out = _feed(GOOD, 4096)
    assert out == GOOD + END_OF_ARCHIVE
    assert checker.done
