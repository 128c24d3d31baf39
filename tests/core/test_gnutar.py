"""Which tar writes the members: GNU tar when on PATH, else Python; and what a failing tar looks like."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from dbt_ferry.core.archive import extract_stream
from dbt_ferry.core.errors import IntegrityError, UnsafeArchiveError
from dbt_ferry.core.gnutar import find_gnu_tar
from tests.core.tarbytes import END, header, member

ARCHIVE = header("d", b"5", mode=0o755) + member("d/f.txt", b"content") + END


def _fake_tar(folder: Path, version: str, body: str = "exit 0", name: str = "tar") -> Path:
    folder.mkdir(exist_ok=True)
    tar = folder / name
    tar.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\n{body}\n')
    tar.chmod(0o755)
    return folder


def test_without_tar_on_path_python_extracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_gnu_tar() is None
    assert extract_stream(io.BytesIO(ARCHIVE), tmp_path / "t") == ["d", "d/f.txt"]
    assert (tmp_path / "t" / "d" / "f.txt").read_text() == "content"
    with pytest.raises(IntegrityError, match="GNU tar was asked for and is not on PATH"):
        extract_stream(io.BytesIO(ARCHIVE), tmp_path / "t2", native=True)


@pytest.mark.parametrize("version", ["bsdtar 3.6.2 - libarchive 3.6.2", "tar (GNU tar) 1.26", "busybox"])
def test_a_tar_that_is_not_a_recent_gnu_tar_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    # Were it used, extraction would fail: this one writes nothing.
    monkeypatch.setenv("PATH", str(_fake_tar(tmp_path / "bin", version)))
    assert find_gnu_tar() is None
    extract_stream(io.BytesIO(ARCHIVE), tmp_path / "t")
    assert (tmp_path / "t" / "d" / "f.txt").read_text() == "content"


def test_a_tar_is_asked_its_version_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_tar(tmp_path / "bin", "tar (GNU tar) 1.35")
    monkeypatch.setenv("PATH", str(folder))
    assert find_gnu_tar() == str(folder / "tar")
    (folder / "tar").write_text("#!/bin/sh\nexit 1\n")  # the answer is remembered: --version is not asked again
    assert find_gnu_tar() == str(folder / "tar")


def test_gtar_is_used_when_tar_is_not_gnu_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_tar(tmp_path / "bin", "bsdtar 3.5.3 - libarchive 3.5.3")
    _fake_tar(folder, "tar (GNU tar) 1.35", name="gtar")
    monkeypatch.setenv("PATH", str(folder))
    assert find_gnu_tar() == str(folder / "gtar")


@pytest.mark.parametrize(
    ("said", "number"),
    [
        ("tar: d/f.txt: Cannot open: No space left on device", errno.ENOSPC),
        ("tar: d/f.txt: Wrote only 5632 of 10240 bytes", errno.ENOSPC),
        ("tar: d/f.txt: Cannot open: Disk quota exceeded", errno.EDQUOT),
        ("tar: d: Cannot mkdir: Read-only file system", errno.EROFS),
    ],
)
def test_tar_on_a_full_or_read_only_disk_is_the_os_error_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str, number: int
) -> None:
    """Not an unsafe archive: the CLI turns the OSError into its one line about the disk, exit 74."""
    body = f'echo "{said}" >&2; exit 2'
    monkeypatch.setenv("PATH", str(_fake_tar(tmp_path / "bin", "tar (GNU tar) 1.34", body)))
    big = header("d", b"5", mode=0o755) + member("d/f.txt", os.urandom(4 * 1024 * 1024)) + END
    with pytest.raises(OSError) as caught:
        extract_stream(io.BytesIO(big), tmp_path / "t")
    assert caught.value.errno == number and not isinstance(caught.value, UnsafeArchiveError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('echo "tar: d/f.txt: Cannot open: Permission denied" >&2; exit 2', r"exit 2\): tar: d/f.txt: Cannot"),
        ("exit 0", r"exit 0"),  # stopped reading before the end: not a success
        ('cat > /dev/null; echo "tar: Unexpected EOF" >&2; exit 2', "Unexpected EOF"),
    ],
)
def test_a_failing_tar_is_an_unsafe_archive_error_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    monkeypatch.setenv("PATH", str(_fake_tar(tmp_path / "bin", "tar (GNU tar) 1.34", body)))
    big = header("d", b"5", mode=0o755) + member("d/f.txt", os.urandom(4 * 1024 * 1024)) + END
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_stream(io.BytesIO(big), tmp_path / "t")
