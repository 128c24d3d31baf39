"""Deterministic tar.zst archives and the one safe extraction function.

Every archive dbt-ferry reads goes through :func:`extract_stream` (:func:`extract_archive` and
:func:`extract_zstd_stream` feed it). Every header is checked by :class:`~dbt_ferry.core.tarcheck.TarChecker`
before its member is extracted: absolute names, ``..`` components, links that leave the target, device files,
duplicate members, special mode bits and members under a link are refused, so nothing ever lands outside
the target directory and owners are never applied. The checked members are written by GNU tar when it is on
``PATH`` (fast: thousands of small files), else by Python's ``tarfile`` member by member, which checks them a
second time as it writes.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import zstandard

from dbt_ferry.core.errors import IntegrityError, UnsafeArchiveError
from dbt_ferry.core.gnutar import extract_with_tar, find_gnu_tar
from dbt_ferry.core.tarcheck import TarChecker, member_name

#: mtime written for every member, so that the same tree always gives the same bytes.
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One member to archive: ``arcname`` (posix, relative) taken from ``path`` on disk, or a regular file
    whose content is ``data`` (a file rewritten for the archive, mode 0644)."""

    arcname: str
    path: Path | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError(f"archive entry {self.arcname} needs either a path or data")


def _data_info(arcname: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    info.size = len(data)
    info.mode = 0o644
    return info


def _normalised_info(arcname: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    st = path.lstat()
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    else:
        raise UnsafeArchiveError(f"{path} is neither a file, a directory nor a symbolic link")
    return info


def write_archive(entries: Iterable[Entry], dest: Path, *, level: int = 3, threads: int = 0) -> None:
    """Write ``entries`` as a zstd-compressed tar to ``dest``, sorted by name.

    Owner, group and mtime are fixed, so identical trees give identical archives (with
    ``threads=0``; multi-threaded zstd output depends on nothing but the level either).
    """
    ordered = sorted(entries, key=lambda e: e.arcname)
    params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with tmp.open("wb") as raw, compressor.stream_writer(raw, closefd=False) as zout:
            with tarfile.open(fileobj=zout, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for entry in ordered:
                    if entry.data is not None:
                        tar.addfile(_data_info(entry.arcname, entry.data), io.BytesIO(entry.data))
                        continue
                    if entry.path is None:  # pragma: no cover - __post_init__ refuses it
                        raise ValueError(f"archive entry {entry.arcname} has no path")
                    info = _normalised_info(entry.arcname, entry.path)
                    if info.isreg():
                        with entry.path.open("rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _member_path(name: str) -> PurePosixPath:
    """Validate a member name and return it as a relative path of plain components."""
    return PurePosixPath(member_name(name))


def _inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


def _resolved_parent(root: Path, relative: PurePosixPath) -> Path:
    """Create and resolve the parent directory of ``relative`` under ``root``, refusing escapes."""
    parent = root.joinpath(*relative.parts[:-1])
    real = Path(os.path.realpath(parent))
    if not _inside(root, real):
        raise UnsafeArchiveError(f"archive member {relative} would be written outside the target")
    if not real.exists():
        # Create one component at a time so that no symlink placed earlier is followed out.
        current = root
        for part in relative.parts[:-1]:
            current = current / part
            if current.is_symlink():
                target = Path(os.path.realpath(current))
                if not _inside(root, target):
                    raise UnsafeArchiveError(
                        f"archive member {relative} would be written through a link leaving the target"
                    )
            current.mkdir(exist_ok=True)
        real = Path(os.path.realpath(parent))
        if not _inside(root, real):
            raise UnsafeArchiveError(f"archive member {relative} would be written outside the target")
    return real


def _check_link_target(root: Path, relative: PurePosixPath, linkname: str, *, hard: bool) -> Path:
    if not linkname or linkname.startswith("/") or "\x00" in linkname:
        raise UnsafeArchiveError(f"link {relative} points to an absolute or empty path {linkname!r}")
    if hard:
        target = root.joinpath(*_member_path(linkname).parts)
    else:
        base = root.joinpath(*relative.parts[:-1])
        target = Path(os.path.normpath(base / linkname))
    real = Path(os.path.realpath(target))
    if not _inside(root, Path(os.path.normpath(target))) or not _inside(root, real):
        raise UnsafeArchiveError(f"link {relative} -> {linkname} leaves the target")
    return target


def extract_stream(stream: BinaryIO, dest: Path, *, native: bool | None = None) -> list[str]:
    """Extract a plain (uncompressed) tar stream into ``dest`` safely; return the member names.

    ``dest`` is created if missing. Members are written by GNU tar when it is found (``native=None``) or
    asked for (``native=True``), else in Python (``native=False``). GNU tar only extracts into an empty
    directory, where the checked headers are all there is: into one that holds anything, Python extracts,
    checking the filesystem as it goes. On refusal an :class:`UnsafeArchiveError` is raised, and a ``dest`` that
    was new or empty is left as it was (removed, or emptied); into a folder that held files, what was extracted
    before the refusal stays (extract into a fresh directory).
    """
    fresh = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    empty = fresh or not any(dest.iterdir())
    try:
        return _extract_stream(stream, dest, native)
    except BaseException:
        if fresh:
            shutil.rmtree(dest, ignore_errors=True)
        elif empty:
            for child in list(dest.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _extract_stream(stream: BinaryIO, dest: Path, native: bool | None) -> list[str]:
    root = Path(os.path.realpath(dest))
    tar = None if native is False else find_gnu_tar()
    if native and tar is None:
        raise IntegrityError("GNU tar was asked for and is not on PATH", "install GNU tar or extract in Python")
    if tar is not None and any(root.iterdir()):
        if native:
            raise IntegrityError(f"GNU tar extracts only into an empty directory; {dest} is not", "use a new one")
        tar = None
    if tar is None:
        names, links = _extract_python(_CheckedReader(stream), root)
    else:
        checker = extract_with_tar(stream, root, tar)
        for directory in checker.dirs:
            os.chmod(root / directory, 0o755)  # noqa: S103 - as the Python extraction does
        names, links = checker.names, checker.links
    # A link can be made to escape by a later member (a -> b/.., then b -> .): check the end state.
    for link in links:
        if not _inside(root, Path(os.path.realpath(root / link))):
            raise UnsafeArchiveError(f"link {link} leaves the target")
    return names


class _CheckedReader:
    """A tar stream as ``tarfile`` reads it: only the bytes a :class:`TarChecker` has passed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._checker = TarChecker()
        self._buffer = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        while self._pos >= len(self._buffer):
            if self._checker.done:
                return b""
            self._buffer = bytes(self._checker.feed(self._stream.read(_COPY_CHUNK)))
            self._pos = 0
        end = len(self._buffer) if size < 0 else self._pos + size
        data = self._buffer[self._pos : end]
        self._pos += len(data)
        return data


def _extract_python(stream: _CheckedReader, root: Path) -> tuple[list[str], list[str]]:
    """Extract member by member; return the member names and the symbolic links made (relative to root)."""
    seen: set[PurePosixPath] = set()
    names: list[str] = []
    links: list[Path] = []
    # Directories known to be real (no link on their way from the root): files inside them need no realpath.
    # A known directory cannot turn into a link later: a link member at its path fails (it exists).
    real_dirs: set[PurePosixPath] = {PurePosixPath(".")}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                names.append(str(_extract_member(tar, member, root, seen, links, real_dirs)))
    except tarfile.TarError as exc:
        raise IntegrityError(f"the archive is corrupt: {exc}", "fetch or package it again") from None
    return names, [str(link.relative_to(root)) for link in links]


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: Path,
    seen: set[PurePosixPath],
    links: list[Path],
    real_dirs: set[PurePosixPath],
) -> PurePosixPath:
    relative = _member_path(member.name)
    try:
        _write_member(tar, member, relative, root, seen, links, real_dirs)
    except OSError as exc:
        raise UnsafeArchiveError(f"cannot extract archive member {relative}: {exc.strerror or exc}") from None
    return relative


def _write_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    relative: PurePosixPath,
    root: Path,
    seen: set[PurePosixPath],
    links: list[Path],
    real_dirs: set[PurePosixPath],
) -> None:
    if relative in seen and not member.isdir():
        raise UnsafeArchiveError(f"archive member {relative} appears twice")
    seen.add(relative)
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchiveError(f"archive member {relative} is a device or fifo")
    parent_rel = relative.parent
    if parent_rel in real_dirs:
        parent = root.joinpath(*parent_rel.parts)
    else:
        parent = _resolved_parent(root, relative)
        if parent == root.joinpath(*parent_rel.parts):  # no link on the way: remember it and its ancestors
            real_dirs.update((parent_rel, *parent_rel.parents))
    path = parent / relative.name
    if path.is_symlink():
        raise UnsafeArchiveError(f"archive member {relative} would overwrite a link")
    if member.isdir():
        path.mkdir(exist_ok=True)
        os.chmod(path, 0o755)  # noqa: S103 - directories of a release are world-readable
        if parent_rel in real_dirs:
            real_dirs.add(relative)
    elif member.issym():
        _check_link_target(root, relative, member.linkname, hard=False)
        os.symlink(member.linkname, path)
        links.append(path)
    elif member.islnk():
        target = _check_link_target(root, relative, member.linkname, hard=True)
        if not target.is_file() or target.is_symlink():
            raise UnsafeArchiveError(f"hard link {relative} -> {member.linkname} names no extracted regular file")
        os.link(target, path)
    elif member.isreg():
        source = tar.extractfile(member)
        if source is None:  # pragma: no cover - regular members always have data
            raise UnsafeArchiveError(f"archive member {relative} has no data")
        mode = 0o755 if member.mode & 0o100 else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
    else:
        raise UnsafeArchiveError(f"archive member {relative} has an unsupported type")


def extract_zstd_stream(stream: BinaryIO, dest: Path, *, native: bool | None = None) -> list[str]:
    """Extract a zstd-compressed tar read from ``stream`` (a download in progress) into ``dest`` safely."""
    reader = zstandard.ZstdDecompressor().stream_reader(stream, read_size=_COPY_CHUNK, closefd=False)
    try:
        with reader:
            return extract_stream(reader, dest, native=native)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"the archive is corrupt: {exc}", "fetch or package it again") from None


def extract_archive(archive: Path, dest: Path, *, native: bool | None = None) -> list[str]:
    """Extract a ``.tar.zst`` (or plain ``.tar``) file into ``dest`` safely."""
    with archive.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic == b"\x28\xb5\x2f\xfd":
            return extract_zstd_stream(raw, dest, native=native)
        return extract_stream(raw, dest, native=native)
