"""Generated hostile tar archives, and the check that extracting one wrote nothing it should not.

Each archive is a random mix of members drawn from a small pool of names, so that they collide: files,
directories, symbolic and hard links (to `..`, to an absolute path, to each other), fifos and devices, pax records
that rename a member, change its link or its size, GNU long names, and at the end a cut or a flipped byte. Used by
``tests/core/test_archive_generated.py`` (a few hundred) and ``bench/faults.py`` (a thousand and more).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from tests.core.tarbytes import END, data, header, pax

#: Names that collide, climb, and go through each other.
NAMES = ["a", "b", "a/b", "a/b/c", "b/c", "c", "./a", "a/", "../x", "a/../../x", "a//b", "d/e/f/g"]


@dataclass(frozen=True)
class Sandbox:
    """A folder holding ``outside/`` (a file that must never change) beside the extraction targets."""

    root: Path

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def prepare(self) -> None:
        self.outside.mkdir(parents=True, exist_ok=True)
        (self.outside / "keep.txt").write_text("untouched")

    def entries(self, *, but: Path) -> set[str]:
        """Every path under the sandbox outside ``but`` (the extraction target)."""
        found: set[str] = set()
        for dirpath, dirs, files in os.walk(self.root):
            here = Path(dirpath)
            if here == but:
                dirs[:] = []
                continue
            found.update(str(here / name) for name in dirs + files if here / name != but)
        return found


def _link_target(rng: random.Random, sandbox: Sandbox) -> str:
    return rng.choice(
        [*NAMES, ".", "..", "../..", "../outside", "../outside/keep.txt", str(sandbox.outside),
         str(sandbox.outside / "keep.txt"), "/etc/passwd", "a/..", "b/../..", ""]
    )  # fmt: skip


def _member(rng: random.Random, sandbox: Sandbox) -> bytes:
    name = rng.choice([*NAMES, str(sandbox.outside / "new.txt"), "/abs.txt"])
    kind = rng.choices(["file", "dir", "sym", "hard", "fifo", "chr", "pax-path", "pax-link", "pax-size", "long",
                        "pax-number", "pax-length"], weights=[30, 12, 18, 10, 3, 2, 8, 6, 5, 6, 6, 2])[0]  # fmt: skip
    payload = rng.randbytes(rng.choice([0, 1, 100, 511, 512, 513, 3000]))
    if kind == "file":
        return header(name, b"0", len(payload)) + data(payload)
    if kind == "dir":
        return header(name.rstrip("/") + "/", b"5", 0, 0o755)
    if kind in ("sym", "hard"):
        return header(name, b"2" if kind == "sym" else b"1", 0, 0o777, linkname=_link_target(rng, sandbox))
    if kind in ("fifo", "chr"):
        return header(name, b"6" if kind == "fifo" else b"3", 0)
    if kind == "pax-path":
        renamed = rng.choice([*NAMES, str(sandbox.outside / "pax.txt")])
        return pax([("path", renamed)]) + header(name, b"0", len(payload)) + data(payload)
    if kind == "pax-link":
        return pax([("linkpath", _link_target(rng, sandbox))]) + header(name, b"2", 0, 0o777, linkname="a")
    if kind == "pax-size":
        claimed = rng.choice([0, len(payload) + 512, max(len(payload) - 1, 0), 10**12])
        return pax([("size", str(claimed))]) + header(name, b"0", len(payload)) + data(payload)
    if kind == "pax-number":
        key = rng.choice(["size", "mtime", "atime", "uid", "gid"])
        value = rng.choice(["9" * 4400, "9" * 19, "9" * 21, "-1", "-99999999999", "1.5", "1e9", "0x10", "", " 7",
                            "1700000000.123456789", "1700000000.1234567891", "18446744073709551616"])  # fmt: skip
        return pax([(key, value)]) + header(name, b"0", len(payload)) + data(payload)
    if kind == "pax-length":
        body = rng.choice([b"9" * 4400 + b" path=a\n", b"0 path=a\n", b"-5 path=a\n", b"12 path=a\n", b"9 path=ab"])
        return pax(body) + header(name, b"0", len(payload)) + data(payload)
    long_name = "/".join(rng.choice(["a", "b", "..", "x" * 60]) for _ in range(rng.randint(2, 5)))
    body = long_name.encode() + b"\x00"
    return header("././@LongLink", b"L", len(body)) + data(body) + header("short", b"0", len(payload)) + data(payload)


def hostile_archive(rng: random.Random, sandbox: Sandbox) -> bytes:
    """One archive of 1 to 8 members; a fifth are cut short, a tenth have one flipped byte."""
    archive = b"".join(_member(rng, sandbox) for _ in range(rng.randint(1, 8))) + END
    roll = rng.random()
    if roll < 0.2:
        archive = archive[: rng.randrange(1, len(archive))]
    elif roll < 0.3:
        flipped = bytearray(archive)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        archive = bytes(flipped)
    return archive


def escapes(dest: Path, sandbox: Sandbox) -> list[str]:
    """What an accepted extraction left that points or lies outside ``dest``, or is a file outside it."""
    root = Path(os.path.realpath(dest))
    kept = (sandbox.outside / "keep.txt").stat()
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            real = Path(os.path.realpath(path))
            if real != root and root not in real.parents:
                found.append(f"{path} -> {real}")
            if not path.is_symlink() and not (path.is_dir() or path.is_file()):
                found.append(f"{path} is a device or fifo")
            if path.is_file() and (path.stat().st_dev, path.stat().st_ino) == (kept.st_dev, kept.st_ino):
                found.append(f"{path} is a hard link to {sandbox.outside / 'keep.txt'}")
    return found


@dataclass
class Outcome:
    """What one extraction did: accepted, or refused with an error of dbt-ferry's (one line)."""

    accepted: bool
    problems: list[str]


def try_extract(archive: bytes, dest: Path, sandbox: Sandbox, *, native: bool) -> Outcome:
    """Extract ``archive`` into the new folder ``dest``; say what went wrong beyond a clean refusal.

    Any exception other than dbt-ferry's own propagates: a traceback is a failure of its own."""
    import io

    from dbt_ferry.core.archive import extract_stream
    from dbt_ferry.core.errors import FerryError

    before = sandbox.entries(but=dest)
    try:
        extract_stream(io.BytesIO(archive), dest, native=native)
        accepted, problems = True, escapes(dest, sandbox)
    except FerryError as exc:
        accepted = False
        problems = [f"refused, but {dest} was left behind"] if dest.exists() else []
        if "\n" in str(exc):
            problems.append(f"the refusal is not one line: {exc!r}")
    after = sandbox.entries(but=dest)
    problems += [f"created outside the target: {p}" for p in sorted(after - before)]
    problems += [f"removed outside the target: {p}" for p in sorted(before - after)]
    if (sandbox.outside / "keep.txt").read_text() != "untouched":
        problems.append("outside/keep.txt was changed")
    return Outcome(accepted, problems)
