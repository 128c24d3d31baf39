"""A newcomer's first commands in the wrong place: each says what is wrong and what to do, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_releases_outside_a_dbt_project_points_to_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "releases", "--env", "local")
    assert code == 3
    assert f"{tmp_path} is not a dbt project (no dbt_project.yml, no pyproject.toml)" in err
    assert "dbt-ferry init" in err
    assert out == ""


def test_a_store_folder_that_does_not_exist_is_not_an_empty_store(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    code, out, _ = run_cli(capsys, "releases", "--env", "local", "--project-dir", str(shop), "--store", str(missing))
    assert code == 0
    assert f"No releases in {missing}: its folder does not exist (publish creates it; check --store" in out
    code, _, err = run_cli(capsys, "run", "--env", "local", "--project-dir", str(shop), "--store", str(missing))
    assert code == 5
    assert "nothing is published there yet, its folder does not exist: dbt-ferry publish" in err
    assert "or check --store" in err
    assert not missing.exists()  # a reader never creates it

    empty = tmp_path / "empty-store"
    empty.mkdir()
    code, out, _ = run_cli(capsys, "releases", "--env", "local", "--project-dir", str(shop), "--store", str(empty))
    assert code == 0
    assert out == f"No releases in {empty}\n"
