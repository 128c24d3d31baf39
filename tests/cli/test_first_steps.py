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


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("s3:/bucket/x", "store 's3:/bucket/x' is not a folder and not a store URL dbt-ferry reads"),
        ("s3:bucket", "is not a folder and not a store URL"),
        ("file://", "store 'file://' names no folder"),
    ],
)
def test_a_store_url_that_is_wrong_is_not_a_local_folder(
    shop: Path, capsys: pytest.CaptureFixture[str], store: str, message: str
) -> None:
    code, _, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", store)
    assert code == 3
    assert message in err
    assert not (shop / "s3:").exists()
    assert not (shop / "releases").exists()


@pytest.mark.parametrize("version", ["", "  ", "../../etc", "1.0.0/../2"])
def test_a_version_that_is_empty_or_a_path_is_refused(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    store = str(tmp_path / "store")
    assert (
        run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", store, "--promote")[0] == 0
    )
    code, _, err = run_cli(
        capsys, "fetch", "--env", "local", "--project-dir", str(shop), "--store", store, "--dest",
        str(tmp_path / "dest"), "--no-env", "--version", version,
    )  # fmt: skip
    assert code == 5, err
    assert "published versions: 1.0.0" in err or "the release version given is empty" in err
    assert not (tmp_path / "dest").exists()


def test_an_unexpected_error_is_one_line_with_its_own_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import click

    from dbt_ferry.cli.main import cli

    @click.command("boom")
    def boom() -> None:
        raise RuntimeError("a library said\nsomething on two lines")

    monkeypatch.setitem(cli.commands, "boom", boom)
    code, _, err = run_cli(capsys, "boom")
    assert code == 70
    assert err == (
        "Error: unexpected error: RuntimeError: a library said something on two lines — run again with --debug for "
        "the traceback\n"
    )
    code, _, err = run_cli(capsys, "--debug", "boom")
    assert code == 70 and "Traceback (most recent call last)" in err
