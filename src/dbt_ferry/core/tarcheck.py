"""Streaming validation of a plain tar stream, header by header, before anything extracts it.

:class:`TarChecker` is fed the stream in chunks and hands back the bytes that may be passed on to an
extractor: a member's header (with its pax header) and data are handed back only once that header has been
checked, and nothing after the end-of-archive marker is. What it accepts is a small, unambiguous subset of
POSIX tar, the one :func:`dbt_ferry.core.archive.write_archive` writes:

- ``ustar`` headers with the POSIX magic, octal numbers only (no base-256), a valid checksum, mode bits no
  higher than ``0o777``; regular files, directories, symbolic links and hard links;
- per-file pax headers (``x``) with the keys ``path``, ``linkpath``, ``size`` (only equal to the header's own
  size field: extractors disagree on which one wins) and the owner/time keys an extractor is told to ignore;
  no global (``g``) headers, no GNU long names or sparse files, no xattrs;
- names of plain components (an optional leading ``./``, a trailing ``/`` only on directories), none of them
  ``..``; each path appears once (directories may repeat), and no member lies under an earlier symbolic link
  or under a non-directory;
- symbolic links that are relative and lexically stay inside; hard links to an earlier regular file member.

Whether the links stay inside once all are on disk is the extractor's last check (``links`` lists them).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dbt_ferry.core.constants import ENV_ARCHIVE_MAX_BYTES, ENV_ARCHIVE_MAX_DEPTH, ENV_ARCHIVE_MAX_MEMBERS
from dbt_ferry.core.errors import ConfigError, IntegrityError, UnsafeArchiveError

BLOCK = 512
#: The end-of-archive marker handed on once the stream's own end is reached.
END_OF_ARCHIVE = bytes(2 * BLOCK)
_ZERO_BLOCK = bytes(BLOCK)
_POSIX_MAGIC = b"ustar\x0000"
_MAX_PAX = 64 * 1024
_OCTAL = re.compile(rb" *([0-7]+)[ \x00]*")
_DECIMAL = re.compile(rb"[0-9]+")
_KINDS = {b"0": "file", b"\x00": "file", b"1": "hard", b"2": "sym", b"5": "dir"}
_REFUSED_TYPES = {
    b"3": "is a device or fifo",
    b"4": "is a device or fifo",
    b"6": "is a device or fifo",
    b"g": "is a global pax header, which is not supported",
    b"L": "is a GNU long name, which is not supported",
    b"K": "is a GNU long link name, which is not supported",
    b"S": "is a sparse file, which is not supported",
}
#: Pax keys that carry nothing an extractor applies: owners are never applied, and nor are times.
_IGNORED_PAX_KEYS = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
#: The pax records holding numbers, and the largest value both extractors take (a time may have a fraction,
#: and be negative): anything else is refused here rather than by one extractor only.
_PAX_NUMBERS: dict[str, tuple[re.Pattern[str], int]] = {
    "size": (re.compile(r"[0-9]{1,20}"), 2**63 - 1),
    "uid": (re.compile(r"[0-9]{1,10}"), 2**32 - 2),
    "gid": (re.compile(r"[0-9]{1,10}"), 2**32 - 2),
    **{key: (re.compile(r"-?([0-9]{1,19})(\.[0-9]{1,9})?"), 2**63 - 1) for key in ("mtime", "atime", "ctime")},
}
_FILE_KINDS = ("file", "hard")
#: Numbers an extractor is told to ignore, checked all the same: (start, end, what).
_IGNORED_NUMBERS = ((108, 116, "uid"), (116, 124, "gid"), (136, 148, "mtime"))


def _corrupt(what: str) -> IntegrityError:
    return IntegrityError(f"the archive is corrupt: {what}", "fetch or package it again")


def member_name(name: str) -> str:
    """Validate a member name and return it as relative posix path of plain components."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"archive member with an empty or invalid name: {name!r}")
    if name.startswith(("/", "\\")) or name[1:2] == ":":
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = name.split("/")
    if parts[0] == ".":
        parts = parts[1:]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts:
        raise UnsafeArchiveError(f"archive member {name!r} names the target itself")
    if ".." in parts or any("\\" in p for p in parts):
        raise UnsafeArchiveError(f"archive member {name!r} climbs out of the target with '..'")
    if "" in parts or "." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} has an empty or '.' component")
    return "/".join(parts)


def _text(field: bytes, what: str) -> str:
    try:
        return field.split(b"\x00", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchiveError(f"archive member {what} is not UTF-8: {field!r}") from None


def _octal(field: bytes, what: str) -> int:
    if field[:1] in (b"\x80", b"\xff"):
        raise UnsafeArchiveError(f"archive header has a base-256 {what}, which is not supported")
    match = _OCTAL.fullmatch(field)
    if match is None:
        raise _corrupt(f"invalid {what} field {field!r} in a member header")
    return int(match[1], 8)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class _Header:
    __slots__ = ("kind", "linkname", "mode", "name", "size")

    def __init__(self, block: bytes) -> None:
        if _octal(block[148:156], "checksum") != sum(block) - sum(block[148:156]) + 8 * 32:
            raise _corrupt("a member header has a bad checksum")
        if block[257:265] != _POSIX_MAGIC:
            raise UnsafeArchiveError("archive member header is not POSIX ustar/pax (GNU or v7 tar format)")
        self.kind = block[156:157]
        self.size = _octal(block[124:136], "size")
        self.mode = _octal(block[100:108], "mode")
        for start, end, what in _IGNORED_NUMBERS:
            _octal(block[start:end], what)
        name = _text(block[0:100], "name")
        prefix = _text(block[345:500], "name prefix")
        self.name = f"{prefix}/{name}" if prefix else name
        self.linkname = _text(block[157:257], "link name")


def _pax_records(raw: bytes) -> dict[str, str]:
    """Parse a pax header's records (``"<length> <key>=<value>\\n"``), strictly: one key once, known keys."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        space = raw.find(b" ", pos)
        if space < 0 or space - pos > 20 or not _DECIMAL.fullmatch(raw, pos, space):
            raise _corrupt("malformed pax header (record length)")
        end = pos + int(raw[pos:space])
        if end <= space + 1 or end > len(raw) or raw[end - 1] != 0x0A:
            raise _corrupt("malformed pax header (record length or newline)")
        key_b, eq, value_b = raw[space + 1 : end - 1].partition(b"=")
        pos = end
        if not eq:
            raise _corrupt("malformed pax header (no '=')")
        key = key_b.decode("ascii", "replace")
        if key.startswith("GNU.sparse."):
            raise UnsafeArchiveError("archive member is a sparse file, which is not supported")
        if key not in ("path", "linkpath", "size") and key not in _IGNORED_PAX_KEYS:
            raise UnsafeArchiveError(f"archive has a pax header with the unsupported key {key!r}")
        if key in records:
            raise UnsafeArchiveError(f"archive has a pax header with the key {key!r} twice")
        try:
            records[key] = value_b.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeArchiveError(f"archive has a pax {key} that is not UTF-8: {value_b!r}") from None
    for key, (pattern, largest) in _PAX_NUMBERS.items():
        found = pattern.fullmatch(records[key]) if key in records else None
        if key in records and not (found and int(found.group(1) if found.groups() else found.group()) <= largest):
            shown = records[key] if len(records[key]) <= 24 else records[key][:20] + "…"
            raise _corrupt(f"invalid pax {key} {shown!r}")
    return records


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold at most, uncompressed: members, bytes, path depth (an env pack holds ~25,000
    members and ~700 MB). Each is overridden by its environment variable (:data:`LIMIT_VARIABLES`)."""

    members: int = 500_000
    size: int = 16 * 1024**3
    depth: int = 48

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ArchiveLimits:
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field_name, variable in LIMIT_VARIABLES.items():
            raw = env.get(variable, "").strip()
            if raw:
                if not raw.isdigit() or int(raw) < 1:
                    raise ConfigError(f"{variable}={raw!r} is not a positive whole number", f"set {variable} to one")
                values[field_name] = int(raw)
        return cls(**values)

    def check(self, members: int, size: int, path: str) -> None:
        for what, value, limit, variable in (
            ("members", members, self.members, LIMIT_VARIABLES["members"]),
            ("bytes uncompressed", size, self.size, LIMIT_VARIABLES["size"]),
            ("levels deep", path.count("/") + 1, self.depth, LIMIT_VARIABLES["depth"]),
        ):
            if value > limit:
                raise UnsafeArchiveError(
                    f"archive holds more than {limit:,} {what} (at member {path})",
                    f"if it is yours, raise {variable}",
                )


#: The environment variables that raise (or lower) :class:`ArchiveLimits`.
LIMIT_VARIABLES = {"members": ENV_ARCHIVE_MAX_MEMBERS, "size": ENV_ARCHIVE_MAX_BYTES, "depth": ENV_ARCHIVE_MAX_DEPTH}


class TarChecker:
    """Check a plain tar stream fed in chunks; hand back only the bytes of checked members.

    ``feed(chunk)`` returns what may be passed on (possibly nothing, while a header is incomplete);
    ``feed(b"")`` marks the end of the stream. After the end-of-archive marker ``done`` is true and the
    rest of the stream is ignored. ``names`` lists the members (normalised), ``links`` the symbolic links
    and ``dirs`` the directory members. A refusal raises :class:`UnsafeArchiveError`; a damaged stream
    :class:`IntegrityError`.
    """

    def __init__(self, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits.from_environ()
        self.total_size = 0
        self.names: list[str] = []
        self.links: list[str] = []
        self.dirs: list[str] = []
        self.done = False
        self._kinds: dict[str, str] = {}
        self._pending = b""
        self._skip = 0
        self._offset = 0

    def feed(self, chunk: bytes) -> bytes | memoryview:
        if self.done:
            return b""
        if not chunk:
            return self._end_of_stream()
        data = self._pending + chunk if self._pending else chunk
        i, n = 0, len(data)
        while True:
            if self._skip:
                step = min(self._skip, n - i)
                i += step
                self._skip -= step
                if self._skip:
                    break
            if n - i < BLOCK:
                break
            if data[i : i + BLOCK] == _ZERO_BLOCK:
                self.done = True
                self._pending = b""
                return bytes(data[:i]) + END_OF_ARCHIVE
            used = self._member(data, i, n)
            if not used:
                break
            i += used
        self._offset += i
        self._pending = bytes(data[i:])
        return memoryview(data)[:i]

    def _end_of_stream(self) -> bytes:
        # tarfile accepts a stream that stops at a member boundary without the marker; so does this.
        if self._skip or self._pending:
            raise _corrupt("unexpected end of data")
        if not self._offset:
            raise _corrupt("empty file")
        self.done = True
        return END_OF_ARCHIVE

    def _member(self, data: bytes, i: int, n: int) -> int:
        """Check the member whose header starts at ``data[i]``; return the header bytes used, 0 if incomplete."""
        header = _Header(data[i : i + BLOCK])
        used = BLOCK
        if header.kind == b"x":
            if header.size > _MAX_PAX:
                raise UnsafeArchiveError(f"archive has a pax header of {header.size} bytes, more than allowed")
            used += _padded(header.size) + BLOCK
            if n - i < used:
                return 0
            records = _pax_records(data[i + BLOCK : i + BLOCK + header.size])
            block = data[i + used - BLOCK : i + used]
            if block == _ZERO_BLOCK:
                raise _corrupt("a pax header is followed by no member")
            header = _Header(block)
            if header.kind == b"x":
                raise UnsafeArchiveError("archive has two pax headers for one member")
            header.name = records.get("path", header.name)
            header.linkname = records.get("linkpath", header.linkname)
            if "size" in records and int(records["size"]) != header.size:
                # Extractors differ on which size wins (GNU tar and Python's tarfile read member boundaries
                # differently then): a size the ustar field does not also hold is refused, so that every
                # extractor sees the members this checker saw. write_archive writes no member of 8 GiB or more.
                raise UnsafeArchiveError(
                    f"archive member {header.name} has a pax size {records['size']} that is not its header's "
                    f"{header.size}"
                )
        self._accept(header)
        return used

    def _accept(self, header: _Header) -> None:
        kind = _KINDS.get(header.kind)
        if kind is None:
            why = _REFUSED_TYPES.get(header.kind, f"has an unsupported type {header.kind!r}")
            raise UnsafeArchiveError(f"archive member {header.name!r} {why}")
        path = member_name(header.name)
        self.total_size += header.size
        self.limits.check(len(self.names) + 1, self.total_size, path)
        if header.mode > 0o777:
            raise UnsafeArchiveError(f"archive member {path} has mode {header.mode:o} (setuid, setgid or sticky)")
        if header.size and kind != "file":
            raise UnsafeArchiveError(f"archive member {path} has data but is not a regular file")
        if kind != "dir" and header.name.endswith("/"):
            raise UnsafeArchiveError(f"archive member {header.name!r} ends with '/' but is not a directory")
        slash = path.rfind("/")
        if slash > 0 and self._kinds.get(path[:slash]) != "dir":
            self._check_parents(path)
        previous = self._kinds.get(path)
        if previous is not None and (previous != "dir" or kind != "dir"):
            raise UnsafeArchiveError(f"archive member {path} appears twice")
        if kind == "sym":
            self._check_symlink(path, header.linkname)
            self.links.append(path)
        elif kind == "hard":
            self._check_hard_link(path, header.linkname)
        elif kind == "dir":
            self.dirs.append(path)
        self._kinds[path] = kind
        self.names.append(path)
        self._skip = _padded(header.size)

    def _check_parents(self, path: str) -> None:
        """Every directory above ``path`` is a directory (a member or implied), never a link or a file."""
        slash = path.find("/")
        while slash > 0:
            parent = path[:slash]
            kind = self._kinds.setdefault(parent, "dir")
            if kind == "sym":
                raise UnsafeArchiveError(f"archive member {path} would be written through the link {parent}")
            if kind != "dir":
                raise UnsafeArchiveError(f"archive member {path} lies under {parent}, which is not a directory")
            slash = path.find("/", slash + 1)

    def _check_symlink(self, path: str, linkname: str) -> None:
        if not linkname or linkname.startswith("/") or "\x00" in linkname:
            raise UnsafeArchiveError(f"link {path} points to an absolute or empty path {linkname!r}")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), linkname))
        if target == ".." or target.startswith("../"):
            raise UnsafeArchiveError(f"link {path} -> {linkname} leaves the target")

    def _check_hard_link(self, path: str, linkname: str) -> None:
        if not linkname or linkname.startswith("/") or "\x00" in linkname:
            raise UnsafeArchiveError(f"link {path} points to an absolute or empty path {linkname!r}")
        if self._kinds.get(member_name(linkname)) not in _FILE_KINDS:
            raise UnsafeArchiveError(f"hard link {path} -> {linkname} names no extracted regular file")
