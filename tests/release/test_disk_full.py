"""Full disks (a 4 MB tmpfs, filled): publishing into a full store is one line with the store's exit code (8) and
leaves neither a build folder nobody reads nor a temporary file behind; a full `--dest`, env cache or work folder is
one line and exit 74; a job whose store fills keeps dbt's exit code, says what it could not publish and notifies.
Needs root to mount the tmpfs, as CI has."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_ferry.core.archive import Entry, write_archive
from dbt_ferry.release.envpack import unpack_env
from tests.conftest import run_cli
from tests.http_receiver import receiving
from tests.runtime.test_notify_job import _notify

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    assert os.geteuid() == 0, "mounting the test's tmpfs needs root (CI runs as root)"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
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
    if room:
        filler.write_bytes(filler.read_bytes()[:-room])


def _publish(capsys: pytest.CaptureFixture[str], shop: Path, store: Path) -> None:
    code, out, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", str(store),
                             "--promote")  # fmt: skip
    assert code == 0, out + err


def test_fetching_onto_a_full_disk_is_one_line_and_leaves_nothing(
    full_disk: Path, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    _publish(capsys, shop, store)
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


def test_an_env_pack_unpacked_onto_a_full_disk_leaves_nothing_in_the_cache(full_disk: Path, tmp_path: Path) -> None:
    site = f"lib/python{PYTHON}/site-packages"
    members = ["bin/dbt", f"{site}/dbt/__init__.py", f"{site}/dbt_ferry/__init__.py"]
    entries = [Entry(name, data=b"") for name in members] + [Entry(f"{site}/dbt/big.bin", data=os.urandom(256 * 1024))]
    pack = tmp_path / "env.tar.zst"
    write_archive(entries, pack)
    _fill(full_disk, 64 * 1024)  # room for the small members, not for the big one
    cache = full_disk / "cache"
    with pytest.raises(OSError, match="No space left on device") as caught:
        unpack_env(pack, cache / "env-abc", PYTHON)
    assert caught.value.errno == errno.ENOSPC  # the CLI's last resort turns this into one line and exit 74
    assert list(cache.iterdir()) == []  # neither the env nor its staging folder


def test_a_job_whose_work_folder_is_on_a_full_disk_is_one_line(
    full_disk: Path, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _publish(capsys, shop, store)
    _fill(full_disk, 16 * 1024)
    monkeypatch.setenv("DBT_FERRY_WORK_DIR", str(full_disk / "work"))
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    code, out, err = run_cli(capsys, "run", "--env", "local", "--project-dir", str(shop), "--store", str(store),
                             "--no-prefect")  # fmt: skip
    assert code == 74, out + err
    assert err.startswith("Error: No space left on device") and "DBT_FERRY_WORK_DIR" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (store / "runs").exists(), err  # nothing published from a job that never started


def test_a_job_whose_store_is_full_keeps_dbts_exit_code_and_notifies(
    full_disk: Path, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = full_disk / "store"
    with receiving() as receiver:
        _notify(shop, "local", f'{{ urls = ["slack+http://{receiver.base}/hook"] }}')
        _publish(capsys, shop, store)
        before = {p for p in store.rglob("*") if p.is_file()}
        _fill(full_disk, 0)
        monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
        code, out, err = run_cli(capsys, "run", "--env", "local", "--project-dir", str(shop), "--store", str(store),
                                 "--no-prefect", "--no-docs")  # fmt: skip
        posts = receiver.posts()
    assert code == 0, out + err  # dbt passed: its exit code stands
    assert "dbt build passed — exit code 0" in out
    assert "Traceback" not in out + err
    problems = [line for line in out.splitlines() if line.startswith("  problem: ")]
    (uploads,) = [p for p in problems if "could not publish" in p]  # one line for every failed upload, one cause
    assert uploads.startswith("  problem: could not publish 9 files to the store (runs/local/"), uploads
    assert uploads.endswith("No space left on device — free space on the store's disk, or check it"), uploads
    assert " and 6 more): cannot write " in uploads
    assert (
        "  problem: run results were not exported to the tables: OperationalError: (sqlite3.OperationalError) "
        "database or disk is full" in problems
    )  # one line, whatever the library's message holds
    assert "[SQL:" not in out
    (post,) = posts
    text = post.json()["text"]
    assert text.startswith("dbt-ferry passed, but its outputs were not all published: shop 1.0.0 in local"), text
    assert "Also: could not publish" in text
    after = {p for p in store.rglob("*") if p.is_file()}
    catalog = store / "tables" / "catalog.db"  # SQLite created the result tables' catalog, and wrote nothing
    assert after - before <= {catalog}  # nothing half-written: no temporary file, no partial object
    if catalog.exists():
        with sqlite3.connect(catalog) as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
