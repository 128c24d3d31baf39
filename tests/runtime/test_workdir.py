"""The work folder: private to its user (0700, profiles and the job's parameters 0600), one-line errors for odd
states instead of tracebacks."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.runtime.workdir import acquire_work_dir, discard_work_dir, release_work_dir, work_dir_name
from dbt_ferry.storage.local import LocalStore
from tests.conftest import publish_shop, settled


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shared = tmp_path / "tmp"
    shared.mkdir(mode=0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def test_the_default_work_folder_is_the_user_s_own(shared_tmp: Path) -> None:
    work = acquire_work_dir("pro", "s3://bucket/shop", None)
    try:
        mine = shared_tmp / f"dbt-ferry-{os.getuid()}"
        assert work.path == mine / work_dir_name("pro", "s3://bucket/shop")
        assert work.stable and _mode(mine) == 0o700 and _mode(work.path) == 0o700
        assert _mode(mine / f"{work.path.name}.lock") == 0o600
    finally:
        release_work_dir(work.lock_fd)


def test_a_shared_folder_someone_else_could_write_is_refused(shared_tmp: Path) -> None:
    mine = shared_tmp / f"dbt-ferry-{os.getuid()}"
    mine.mkdir(mode=0o777)
    mine.chmod(0o777)
    with pytest.raises(ConfigError, match="is not a private folder of this user") as raised:
        acquire_work_dir("pro", "s3://bucket/shop", None)
    assert "DBT_FERRY_WORK_DIR" in str(raised.value)


def test_odd_states_are_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match=f"the work folder {a_file} is a file — point DBT_FERRY_WORK_DIR at a"):
        acquire_work_dir("pro", "s3://b/p", str(a_file))
    base = tmp_path / "base"
    base.mkdir()
    (base / work_dir_name("pro", "s3://b/p")).write_text("a file where the work folder goes")
    work = acquire_work_dir("pro", "s3://b/p", str(base))
    try:
        assert work.stable and work.path.is_dir()
    finally:
        release_work_dir(work.lock_fd)


def test_the_fetched_profile_is_private(shop: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_shop(shop, store)
    fetched = fetch_release(LocalStore(store), "local", tmp_path / "dest", with_env=False)
    assert _mode(fetched.project_dir / "profiles.yml") == 0o600


def test_a_finished_job_s_folder_is_renamed_aside_at_once_and_removed_in_the_background(tmp_path: Path) -> None:
    work = acquire_work_dir("pro", "s3://bucket/shop", str(tmp_path))
    lock = f"{work.path.name}.lock"
    for i in range(300):  # dbt's target/compiled and target/run: thousands of files at 1,000 models
        (work.path / "project" / "target" / f"m{i // 50}").mkdir(parents=True, exist_ok=True)
        (work.path / "project" / "target" / f"m{i // 50}" / f"{i}.sql").write_text("select 1")
    discard_work_dir(work.path)
    assert not work.path.exists()  # the stable path is free before the lock is released
    release_work_dir(work.lock_fd)
    assert settled(tmp_path) == [lock]
    discard_work_dir(work.path)  # already gone: nothing to do


def test_a_folder_whose_remover_never_finished_is_removed_by_the_next_run(tmp_path: Path) -> None:
    name = work_dir_name("pro", "s3://bucket/shop")
    left = tmp_path / f".{name}.discard-1-2" / "project"
    left.mkdir(parents=True)
    (left / "dbt_project.yml").write_text("name: x")
    other = tmp_path / f".{work_dir_name('dev', 's3://bucket/shop')}.discard-1-2"
    other.mkdir()  # another environment's: its own next run sweeps it
    work = acquire_work_dir("pro", "s3://bucket/shop", str(tmp_path))
    try:
        assert settled(tmp_path, name) == sorted([other.name, name, f"{name}.lock"])
    finally:
        release_work_dir(work.lock_fd)
