"""Headless Debian chromium for the page tests: a screenshot of a local HTML file, the DOM after its scripts ran,
and what a PNG holds (decoded here with zlib and struct: no imaging library needed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The chromium binary; a test that needs it fails (never skips) without it: CI installs it (.ci/run)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does it for CI)", pytrace=False)
    return found


def _run(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "chromium-profile"
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot(page: Path, tmp: Path, *, width: int = 1280, height: int = 2000) -> bytes:
    png = tmp / f"{page.stem}.png"
    _run(page, tmp, f"--screenshot={png}", f"--window-size={width},{height}")
    return png.read_bytes()


def dom(page: Path, tmp: Path) -> str:
    """The document as serialised after its scripts ran."""
    return _run(page, tmp, "--dump-dom").stdout


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    colours: Counter[tuple[int, int, int]]  # over the rows decoded

    @property
    def pixels(self) -> int:
        return sum(self.colours.values())

    def share(self, colour: tuple[int, int, int]) -> float:
        return self.colours[colour] / self.pixels

    def near(self, colour: tuple[int, int, int], tolerance: int = 12) -> int:
        """How many pixels are within ``tolerance`` of ``colour`` on every channel."""
        return sum(
            n for c, n in self.colours.items() if all(abs(a - b) <= tolerance for a, b in zip(c, colour, strict=True))
        )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_png(data: bytes, *, max_rows: int = 1200) -> Picture:
    """The colours of the first ``max_rows`` rows of an 8-bit RGB or RGBA PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    previous = bytearray(stride)
    colours: Counter[tuple[int, int, int]] = Counter()
    for y in range(min(height, max_rows)):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                upper_left = previous[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(left, previous[i], upper_left)) & 0xFF
        colours.update(zip(row[0::bpp], row[1::bpp], row[2::bpp], strict=True))
        previous = row
    return Picture(width, height, colours)


def hex_colour(text: str) -> tuple[int, int, int]:
    value = text.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
