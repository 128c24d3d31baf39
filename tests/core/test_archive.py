from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_ferry.core.archive import Entry, extract_archive, write_archive
from dbt_ferry.core.checksums import sha256_file
from dbt_ferry.core.errors import IntegrityError, UnsafeArchiveError


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
        ([("x", "sym", "y/.."), ("y", "sym", "."), ("x/evil", "file", "x")], "outside the target"),
        ([("x", "sym", "y/.."), ("y", "sym", ".")], "leaves the target"),
        ([("d", "sym", "."), ("e", "sym", "d/d/d/..")], "leaves the target"),
    ],
)
def test_malicious_archives_are_refused(
    sandbox: tuple[Path, Path], members: list[tuple[str, str, bytes | str]], message: str
) -> None:
    outside, target = sandbox
    archive = _tar(members, outside.parent / "evil.tar.zst")
    before = _snapshot(outside)
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(archive, target)
    escaped = {p for p in _snapshot(outside) - before if not p.startswith("target")}
    assert escaped == set()
    assert (outside / "secret.txt").read_text() == "keep me"


def test_link_inside_the_target_is_allowed(tmp_path: Path) -> None:
    archive = _tar(
        [("d", "dir", ""), ("d/f.txt", "file", "x"), ("l", "sym", "d/f.txt"), ("h", "hard", "d/f.txt")],
        tmp_path / "ok.tar",
        compress=False,
    )
    extract_archive(archive, tmp_path / "t")
    assert (tmp_path / "t" / "l").read_text() == "x"
    assert (tmp_path / "t" / "h").read_text() == "x"


def test_writing_through_a_symlink_to_a_directory_stays_inside(tmp_path: Path) -> None:
    archive = _tar(
        [("real", "dir", ""), ("alias", "sym", "real"), ("alias/f.txt", "file", "through")],
        tmp_path / "a.tar.zst",
    )
    extract_archive(archive, tmp_path / "t")
    assert (tmp_path / "t" / "real" / "f.txt").read_text() == "through"


_segment = st.sampled_from(["a", "b", "..", ".", "", "c.txt", "/", "link"])
_name = st.lists(_segment, min_size=1, max_size=5).map("/".join)
_member = st.tuples(
    _name,
    st.sampled_from(["file", "dir", "sym", "hard"]),
    st.one_of(_name, st.just("/etc"), st.just("../../secret.txt")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(_member, min_size=1, max_size=6))
def test_generated_archives_never_write_outside(tmp_path_factory: pytest.TempPathFactory, members: list) -> None:
    root = tmp_path_factory.mktemp("h")
    outside = root / "outside"
    target = outside / "target"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep me")
    archive = _tar([(n, k, p) for n, k, p in members], root / "gen.tar.zst")
    before = _snapshot(outside)
    try:
        extract_archive(archive, target)
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
