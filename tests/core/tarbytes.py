"""Tar archives byte by byte, for what ``tarfile`` will not write: ustar headers, pax records, odd fields."""

from __future__ import annotations

from typing import Any

#: The end-of-archive marker: two zero blocks.
END = bytes(1024)
POSIX_MAGIC = b"ustar\x0000"


def header(
    name: str | bytes = "f.txt",
    kind: bytes = b"0",
    size: int | bytes = 0,
    mode: int | bytes = 0o644,
    *,
    linkname: str = "",
    prefix: str = "",
    magic: bytes = POSIX_MAGIC,
    checksum: bytes | None = None,
) -> bytes:
    """One 512-byte ustar header; a number given as bytes is written as it is."""

    def number(value: int | bytes, width: int) -> bytes:
        return value if isinstance(value, bytes) else b"%0*o\x00" % (width - 1, value)

    block = bytearray(512)
    for start, end, value in [
        (0, 100, name if isinstance(name, bytes) else name.encode()),
        (100, 108, number(mode, 8)),
        (108, 116, number(0, 8)),
        (116, 124, number(0, 8)),
        (124, 136, number(size, 12)),
        (136, 148, number(315532800, 12)),
        (148, 156, b" " * 8),
        (156, 157, kind),
        (157, 257, linkname.encode()),
        (257, 265, magic),
        (345, 500, prefix.encode()),
    ]:
        if len(value) > end - start:
            raise ValueError(f"{value!r} does not fit in {end - start} bytes")
        block[start : start + len(value)] = value
    block[148:156] = checksum if checksum is not None else b"%06o\x00 " % sum(block)
    return bytes(block)


def data(payload: bytes) -> bytes:
    """A member's data padded to whole blocks."""
    return payload + bytes(-len(payload) % 512)


def member(name: str | bytes = "f.txt", payload: bytes = b"x", **fields: Any) -> bytes:
    """A regular file member: header and data."""
    return header(name, b"0", len(payload), **fields) + data(payload)


def pax(records: list[tuple[str, str | bytes]] | bytes) -> bytes:
    """A per-file pax header ('x') with these records (or this raw body)."""
    if isinstance(records, bytes):
        body = records
    else:
        body = b""
        for key, value in records:
            text = b" " + key.encode() + b"=" + (value if isinstance(value, bytes) else value.encode()) + b"\n"
            length = len(text) + 1
            while len(str(length)) + len(text) != length:
                length = len(str(length)) + len(text)
            body += str(length).encode() + text
    return header("././@PaxHeader", b"x", len(body)) + data(body)
