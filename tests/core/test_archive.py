from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_ferry.core.archive import Entry, extract_archive, extract_stream, write_archive
from dbt_ferry.core.checksums import sha256_file
from dbt_ferry.core.errors import IntegrityError, UnsafeArchiveError
from dbt_ferry.core.gnutar import find_gnu_tar
from tests.core.tarbytes import END, header, member, pax

NO_GNU_TAR = pytest.mark.skipif(find_gnu_tar() is None, reason="GNU tar is not on PATH")
#: Both ways of writing the checked members: GNU tar and Python's tarfile.
EXTRACTORS = [pytest.param(True, id="tar", marks=NO_GNU_TAR), pytest.param(False, id="python")]


def _tar(members: list[tuple[str, str, bytes | str]], path: Path, *, compress: bool = True) -> Path:
    """Hand-made archive: (name, kind, data-or-linkname) with kind in file/dir/sym/hard/fifo/chr."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            if kind in ("sym", "hard"):
                info.linkname = str(payload)
            tar.addfile(info)
    data = buffer.getvalue()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return path


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(outside, target): anything appearing in ``outside`` but not under ``target`` is an escape."""
    outside = tmp_path / "outside"
    target = outside / "target"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep me")
    return outside, target


def test_round_trip_keeps_files_links_and_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    (src / "models" / "a.sql").write_text("select 1")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "link.sql").symlink_to("models/a.sql")
    entries = [Entry(p.relative_to(src).as_posix(), p) for p in src.rglob("*")]
    archive = tmp_path / "a.tar.zst"
    write_archive(entries, archive)
    dest = tmp_path / "dest"
    names = extract_archive(archive, dest)
    assert sorted(names) == ["link.sql", "models", "models/a.sql", "run.sh"]
    assert (dest / "models" / "a.sql").read_text() == "select 1"
    assert os.readlink(dest / "link.sql") == "models/a.sql"
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "models" / "a.sql", os.X_OK)


def test_same_tree_gives_same_bytes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.txt").write_text(f"file {i}")
    first, second = tmp_path / "1.tar.zst", tmp_path / "2.tar.zst"
    write_archive([Entry(p.name, p) for p in src.iterdir()], first)
    for p in src.iterdir():
        os.utime(p, (1_700_000_000, 1_700_000_000))
    write_archive(reversed([Entry(p.name, p) for p in src.iterdir()]), second)
    assert sha256_file(first) == sha256_file(second)


def test_an_entry_of_bytes_is_a_plain_file_and_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.sql").write_text("select 1")
    first, second = tmp_path / "1.tar.zst", tmp_path / "2.tar.zst"
    write_archive([Entry("a.sql", src / "a.sql"), Entry("packages.yml", data=b"packages: []\n")], first)
    write_archive([Entry("packages.yml", data=b"packages: []\n"), Entry("a.sql", src / "a.sql")], second)
    assert sha256_file(first) == sha256_file(second)
    dest = tmp_path / "dest"
    assert sorted(extract_archive(first, dest)) == ["a.sql", "packages.yml"]
    assert (dest / "packages.yml").read_bytes() == b"packages: []\n"
    assert not os.access(dest / "packages.yml", os.X_OK)


def test_an_entry_needs_a_path_or_data() -> None:
    with pytest.raises(ValueError, match="either a path or data"):
        Entry("x")
    with pytest.raises(ValueError, match="either a path or data"):
        Entry("x", Path("x"), b"x")


@pytest.mark.parametrize("native", EXTRACTORS)
@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("/etc/evil", "file", "x")], "absolute path"),
        ([("../evil", "file", "x")], "climbs out"),
        ([("a/../../evil", "file", "x")], "climbs out"),
        ([("link", "sym", "/etc")], "absolute"),
        ([("link", "sym", "../")], "leaves the target"),
        ([("a/link", "sym", "../../secret.txt")], "leaves the target"),
        ([("link", "sym", "."), ("link/../evil", "file", "x")], "climbs out"),
        ([("hard", "hard", "../secret.txt")], "climbs out"),
        ([("hard", "hard", "/etc/passwd")], "absolute"),
        ([("hard", "hard", "missing.txt")], "names no extracted regular file"),
        ([("dev", "chr", "")], "device"),
        ([("pipe", "fifo", "")], "device or fifo"),
        ([("a.txt", "file", "1"), ("a.txt", "file", "2")], "appears twice"),
        ([("", "file", "x")], "empty"),
        ([("./", "dir", "")], "names the target itself"),
        ([("x", "sym", "y/.."), ("y", "sym", "."), ("x/evil", "file", "x")], "written through the link x"),
        ([("x", "sym", "y/.."), ("y", "sym", ".")], "leaves the target"),
        ([("d", "sym", "."), ("e", "sym", "d/d/d/..")], "leaves the target"),
    ],
)
def test_malicious_archives_are_refused(
    sandbox: tuple[Path, Path], members: list[tuple[str, str, bytes | str]], message: str, native: bool
) -> None:
    outside, target = sandbox
    archive = _tar(members, outside.parent / "evil.tar.zst")
    before = _snapshot(outside)
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(archive, target, native=native)
    escaped = {p for p in _snapshot(outside) - before if not p.startswith("target")}
    assert escaped == set()
    assert (outside / "secret.txt").read_text() == "keep me"
    assert not target.exists() or list(target.iterdir()) == []  # nothing half-extracted stays


@pytest.mark.parametrize("native", EXTRACTORS)
def test_link_inside_the_target_is_allowed(tmp_path: Path, native: bool) -> None:
    archive = _tar(
        [("d", "dir", ""), ("d/f.txt", "file", "x"), ("l", "sym", "d/f.txt"), ("h", "hard", "d/f.txt")],
        tmp_path / "ok.tar",
        compress=False,
    )
    extract_archive(archive, tmp_path / "t", native=native)
    assert (tmp_path / "t" / "l").read_text() == "x"
    assert (tmp_path / "t" / "h").read_text() == "x"
    assert (tmp_path / "t" / "h").stat().st_ino == (tmp_path / "t" / "d" / "f.txt").stat().st_ino
    assert (tmp_path / "t" / "d").stat().st_mode & 0o777 == 0o755  # whatever the archive says


@pytest.mark.parametrize("native", EXTRACTORS)
def test_nothing_is_written_through_a_link_even_inside(tmp_path: Path, native: bool) -> None:
    archive = _tar(
        [("real", "dir", ""), ("alias", "sym", "real"), ("alias/f.txt", "file", "through")],
        tmp_path / "a.tar.zst",
    )
    with pytest.raises(UnsafeArchiveError, match=r"alias/f\.txt would be written through the link alias"):
        extract_archive(archive, tmp_path / "t", native=native)
    assert not (tmp_path / "t" / "real" / "f.txt").exists()


_segment = st.sampled_from(["a", "b", "..", ".", "", "c.txt", "/", "link"])
_name = st.lists(_segment, min_size=1, max_size=5).map("/".join)
_member = st.tuples(
    _name,
    st.sampled_from(["file", "dir", "sym", "hard"]),
    st.one_of(_name, st.just("/etc"), st.just("../../secret.txt")),
)


@pytest.mark.parametrize("native", EXTRACTORS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(_member, min_size=1, max_size=6))
def test_generated_archives_never_write_outside(
    tmp_path_factory: pytest.TempPathFactory, members: list, native: bool
) -> None:
    root = tmp_path_factory.mktemp("h")
    outside = root / "outside"
    target = outside / "target"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep me")
    archive = _tar([(n, k, p) for n, k, p in members], root / "gen.tar.zst")
    before = _snapshot(outside)
    try:
        extract_archive(archive, target, native=native)
        succeeded = True
    except IntegrityError:
        succeeded = False
    escaped = {p for p in _snapshot(outside) - before if not p.startswith("target")}
    assert escaped == set()
    assert (outside / "secret.txt").read_text() == "keep me"
    if succeeded:
        # A successful extraction leaves nothing that resolves outside the target.
        real_target = Path(os.path.realpath(target))
        for path in target.rglob("*"):
            real = Path(os.path.realpath(path))
            assert real == real_target or real_target in real.parents, f"{path} resolves to {real}"


GOOD = member("ok.txt", b"fine")


@pytest.mark.parametrize("native", EXTRACTORS)
@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (pax([("path", "../evil")]) + member("innocent"), UnsafeArchiveError, "climbs out"),
        (pax([("path", "/etc/evil")]) + member("innocent"), UnsafeArchiveError, "absolute path"),
        (pax([("linkpath", "/etc")]) + header("l", b"2", linkname="ok"), UnsafeArchiveError, "absolute"),
        (pax([("linkpath", "../..")]) + header("l", b"2", linkname="ok"), UnsafeArchiveError, "leaves the"),
        (member("evil", prefix=".."), UnsafeArchiveError, "climbs out"),
        (header("g", b"g", 0), UnsafeArchiveError, "global pax header"),
        (header("././@LongLink", b"L", 0), UnsafeArchiveError, "GNU long name"),
        (header("././@LongLink", b"K", 0), UnsafeArchiveError, "GNU long link name"),
        (header("sparse", b"S", 0), UnsafeArchiveError, "sparse"),
        (pax([("GNU.sparse.size", "10")]) + member("s"), UnsafeArchiveError, "sparse"),
        (header("c", b"7", 0), UnsafeArchiveError, "unsupported type"),
        (header("v", b"V", 0), UnsafeArchiveError, "unsupported type"),
        (header("dev", b"3", 0), UnsafeArchiveError, "device or fifo"),
        (header("dev", b"4", 0), UnsafeArchiveError, "device or fifo"),
        (header("pipe", b"6", 0), UnsafeArchiveError, "device or fifo"),
        (pax([("SCHILY.xattr.user.x", "1")]) + member(), UnsafeArchiveError, "unsupported key"),
        (pax([("hdrcharset", "BINARY")]) + member(), UnsafeArchiveError, "unsupported key"),
        (pax([("path", "a"), ("path", "b")]) + member(), UnsafeArchiveError, "key 'path' twice"),
        (pax([("path", "a")]) + pax([("path", "b")]) + member(), UnsafeArchiveError, "two pax headers"),
        (pax(b"99 path=a\n") + member(), IntegrityError, "malformed pax header"),
        (pax(b"11 path=a\n") + member(), IntegrityError, "malformed pax header"),
        (pax(b"10 path=a\n\x00") + member(), IntegrityError, "malformed pax header"),
        (pax(b"8 patha\n") + member(), IntegrityError, "no '='"),
        (pax([("size", "0x10")]) + member(), IntegrityError, "invalid pax size"),
        (pax([("size", "600")]) + member("m") + bytes(1024), UnsafeArchiveError, "pax size 600 that is not its header"),
        (pax([("size", "0")]) + member("m", b"hidden member"), UnsafeArchiveError, "pax size 0 that is not"),
        (pax([("path", b"\xff")]) + member(), UnsafeArchiveError, "not UTF-8"),
        (header("big", b"x", 100_000), UnsafeArchiveError, "more than allowed"),
        (pax([("path", "a")]) + END, IntegrityError, "followed by no member"),
        (header("f", b"0", b"\x80" + bytes(10) + b"\x01"), UnsafeArchiveError, "base-256 size"),
        (header("f", b"0", 0, b"\xff" * 8), UnsafeArchiveError, "base-256 mode"),
        (header("f", b"0", b"12a\x00" + bytes(8)), IntegrityError, "invalid size"),
        (member("suid", mode=0o4755), UnsafeArchiveError, "setuid"),
        (member("sticky", mode=0o1777), UnsafeArchiveError, "sticky"),
        (member("gnu", magic=b"ustar  \x00"), UnsafeArchiveError, "not POSIX"),
        (member("v7", magic=bytes(8)), UnsafeArchiveError, "not POSIX"),
        (member("bad", checksum=b"000000\x00 "), IntegrityError, "bad checksum"),
        (member(b"\xffname"), UnsafeArchiveError, "not UTF-8"),
        (member("a//b"), UnsafeArchiveError, "empty or '.' component"),
        (member("a/./b"), UnsafeArchiveError, "empty or '.' component"),
        (member("d/"), UnsafeArchiveError, "ends with '/' but is not a directory"),
        (header("l/", b"2", linkname="ok.txt"), UnsafeArchiveError, "ends with '/'"),
        (header("d", b"5", 512) + bytes(512), UnsafeArchiveError, "has data but is not a regular file"),
        (header("l", b"2", 512, linkname="x") + bytes(512), UnsafeArchiveError, "has data"),
        (member("f") + member("f/g"), UnsafeArchiveError, "f/g lies under f, which is not a directory"),
        (header("l", b"2", linkname="d") + header("l/x", b"5"), UnsafeArchiveError, "through the link l"),
        (header("l", b"2", linkname="d") + member("l/a/b"), UnsafeArchiveError, "through the link l"),
        (member("a/b") + header("a", b"2", linkname="."), UnsafeArchiveError, "appears twice"),
        (header("d", b"5") + member("d"), UnsafeArchiveError, "appears twice"),
        (header("l", b"2", linkname="ok.txt") + header("h", b"1", linkname="l"), UnsafeArchiveError, "no extract"),
        (header("d", b"5") + header("h", b"1", linkname="d"), UnsafeArchiveError, "names no extracted regular"),
        (header("h", b"1", linkname="missing.txt"), UnsafeArchiveError, "names no extracted regular file"),
        (header("h", b"1", linkname=""), UnsafeArchiveError, "absolute or empty"),
        (header("l", b"2", linkname=""), UnsafeArchiveError, "absolute or empty"),
        (header("f", b"0", 1000) + bytes(512), IntegrityError, "unexpected end of data"),
        (header("f", b"0", 10)[:300], IntegrityError, "unexpected end of data"),
    ],
)
def test_hand_made_archives_are_refused(
    sandbox: tuple[Path, Path], data: bytes, error: type[Exception], message: str, native: bool
) -> None:
    outside, target = sandbox
    before = _snapshot(outside)
    complete = data if data.endswith(END) or "end of data" in message else data + END
    with pytest.raises(error, match=message):
        extract_stream(io.BytesIO(GOOD + complete), target, native=native)
    escaped = {p for p in _snapshot(outside) - before if not p.startswith("target")}
    assert escaped == set()
    assert (outside / "secret.txt").read_text() == "keep me"


@pytest.mark.parametrize("native", EXTRACTORS)
def test_names_from_pax_headers_and_ustar_prefixes(tmp_path: Path, native: bool) -> None:
    long = "d/" + "n" * 150 + ".txt"
    data = (
        header("d", b"5", mode=0o755)
        + pax([("path", long), ("mtime", "1.5"), ("uid", "1000"), ("uname", "someone")])
        + member("ignored", b"long")
        + member("name.txt", b"prefixed", prefix="d/deep")
        + pax([("linkpath", "n" * 150 + ".txt")])
        + header("d/link", b"2", mode=0o777, linkname="ignored")
        + END
    )
    names = extract_stream(io.BytesIO(data), tmp_path / "t", native=native)
    assert names == ["d", long, "d/deep/name.txt", "d/link"]
    assert (tmp_path / "t" / long).read_bytes() == b"long"
    assert (tmp_path / "t" / "d" / "deep" / "name.txt").read_bytes() == b"prefixed"
    assert (tmp_path / "t" / "d" / "link").read_bytes() == b"long"


@pytest.mark.parametrize("native", EXTRACTORS)
def test_the_end_marker_ends_the_archive(tmp_path: Path, native: bool) -> None:
    extract_stream(io.BytesIO(GOOD + END + member("after", b"ignored")), tmp_path / "t", native=native)
    assert sorted(os.listdir(tmp_path / "t")) == ["ok.txt"]


@pytest.mark.parametrize("native", EXTRACTORS)
def test_an_empty_stream_is_corrupt(tmp_path: Path, native: bool) -> None:
    with pytest.raises(IntegrityError, match="empty file"):
        extract_stream(io.BytesIO(b""), tmp_path / "t", native=native)


def _tree(root: Path) -> None:
    """Every kind of member an env pack or a project holds."""
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "empty.txt").write_bytes(b"")
    (root / "pkg" / "sub" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "pkg" / ("long-" * 30 + "name.py")).write_text("long\n")
    (root / "pkg" / ("d" * 90) / ("e" * 90)).mkdir(parents=True)
    (root / "pkg" / ("d" * 90) / ("e" * 90) / "deep.txt").write_text("deep\n")
    (root / "données-ünïcödé").mkdir()
    (root / "données-ünïcödé" / "fichier-é.txt").write_text("é\n")
    (root / "lib64").symlink_to("pkg")
    (root / "bin" / "python").symlink_to("../pkg/__init__.py")
    (root / "pkg" / "sub" / "up").symlink_to("..")
    (root / "dangling").symlink_to("pkg/nothing-here")


def _state(root: Path) -> dict[str, tuple[object, ...]]:
    """Kind, permission bits, content digest or link target of every path; hard links by group."""
    inodes: dict[int, str] = {}
    state: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            state[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            state[rel] = ("dir", oct(st.st_mode & 0o7777))
        else:
            first = inodes.setdefault(st.st_ino, rel)
            state[rel] = ("file", oct(st.st_mode & 0o7777), sha256_file(path), st.st_nlink, first)
    return state


@NO_GNU_TAR
def test_tar_and_python_extract_the_same_tree(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    entries = [Entry(p.relative_to(src).as_posix(), p) for p in src.rglob("*")]
    archive = tmp_path / "tree.tar.zst"
    write_archive(entries, archive)
    # Hard links (write_archive stores files, never links): appended by hand after the written members.
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(archive.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(plain)) as written:
        written.getmembers()
        body = plain[: written.offset]
    with_links = (
        body
        + header("pkg/hard-link.py", b"1", linkname="pkg/__init__.py")
        + pax([("path", "données-ünïcödé/lien-dur"), ("linkpath", "données-ünïcödé/fichier-é.txt")])
        + header("x", b"1", linkname="x")
        + END
    )
    results = {}
    for native in (True, False):
        dest = tmp_path / ("tar" if native else "python")
        names = extract_stream(io.BytesIO(with_links), dest, native=native)
        results[native] = (names, _state(dest))
    assert results[True] == results[False]
    names, state = results[True]
    assert len(names) == len(entries) + 2
    assert state["bin/tool"][1] == oct(0o755)
    assert state["pkg/empty.txt"][1] == oct(0o644)
    assert state["pkg/hard-link.py"][3:] == (2, "pkg/__init__.py")
    assert state["données-ünïcödé/lien-dur"][3:] == (2, "données-ünïcödé/fichier-é.txt")
    assert state["pkg/sub/up"] == ("link", "..")
    assert state["pkg/sub/big.bin"] == (*_state(src)["pkg/sub/big.bin"][:3], 1, "pkg/sub/big.bin")


@NO_GNU_TAR
def test_tar_and_python_extract_this_package_alike(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "dbt_ferry"
    archive = tmp_path / "src.tar.zst"
    entries = [Entry(p.relative_to(src).as_posix(), p) for p in src.rglob("*") if "__pycache__" not in p.parts]
    write_archive(entries, archive)
    tar_names = extract_archive(archive, tmp_path / "tar", native=True)
    python_names = extract_archive(archive, tmp_path / "python", native=False)
    assert tar_names == python_names
    assert _state(tmp_path / "tar") == _state(tmp_path / "python")


@pytest.mark.parametrize("native", [None, False])
def test_into_a_folder_holding_a_link_nothing_is_written_through_it(
    sandbox: tuple[Path, Path], native: bool | None
) -> None:
    outside, target = sandbox
    target.mkdir()
    (target / "a").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        extract_stream(io.BytesIO(member("a/evil", b"x") + END), target, native=native)
    assert sorted(os.listdir(outside)) == ["secret.txt", "target"]


@NO_GNU_TAR
def test_gnu_tar_is_not_asked_to_extract_into_a_folder_holding_anything(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "there.txt").write_text("x")
    with pytest.raises(IntegrityError, match="GNU tar extracts only into an empty directory"):
        extract_stream(io.BytesIO(member("f", b"x") + END), tmp_path / "t", native=True)
