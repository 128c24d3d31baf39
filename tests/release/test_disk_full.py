"""A store on a full disk (a 1 MB tmpfs): publish is one line with the store's exit code (8), and leaves neither a
build folder nobody reads nor a temporary file behind. Needs root to mount the tmpfs, as CI has."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    assert os.geteuid() == 0, "mounting the test's tmpfs needs root (CI runs as root)"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, room: int) -> None:
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(bytes(64 * 1024))
        except OSError:
            pass
    filler.write_bytes(filler.read_bytes()[:-room])


def test_fetching_onto_a_full_disk_is_one_line_and_leaves_nothing(
    full_disk: Path, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", str(store),
                             "--promote")  # fmt: skip
    assert code == 0, out + err
    _fill(full_disk, 16 * 1024)
    dest = full_disk / "dest"
    code, out, err = run_cli(capsys, "fetch", "--env", "local", "--project-dir", str(shop), "--store", str(store),
                             "--dest", str(dest), "--no-env")  # fmt: skip
    assert code == 74, out + err
    assert err.startswith("Error: No space left on device") and "DBT_FERRY_WORK_DIR" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no dest, no staging folder


def test_publishing_into_a_full_store_is_one_line_and_leaves_nothing(
    full_disk: Path, shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(full_disk, 48 * 1024)  # room for a few small files, not for the release
    store = full_disk / "store"
    code, out, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", str(store))
    assert code == 8, out + err
    assert err.startswith("Error: cannot write ") and "No space left on device" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    leftovers = [p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert leftovers == []
