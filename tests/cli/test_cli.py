"""The CLI: exit codes and the exact one-line messages people read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

run = run_cli


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DBT_FERRY_ENV", "DBT_FERRY_STORE", "DBT_FERRY_DEBUG", "DBT_FERRY_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_help_lists_variables_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for text in ("DBT_FERRY_STORE", "DBT_FERRY_ENV", "DBT_FERRY_CACHE_DIR", "release or channel not found"):
        assert text in out


def test_package_publish_promote_fetch(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ("--project-dir", str(shop))
    code, out, err = run(capsys, "package", *project)
    assert (code, err) == (0, "")
    assert out.startswith("Packaged shop 1.0.0 [build ")
    code, out, _ = run(capsys, "publish", "--env", "local", *project)
    assert code == 0
    assert out.startswith("Published shop 1.0.0 [build ")
    code, out, _ = run(capsys, "promote", "--env", "local", "1.0.0", *project)
    assert (code, out) == (0, "Channel now points at 1.0.0\n")
    code, out, _ = run(capsys, "releases", "--env", "local", *project)
    assert code == 0
    assert "→ local" in out and "1.0.0" in out
    dest = tmp_path / "fetched"
    code, out, _ = run(capsys, "fetch", "--env", "local", "--dest", str(dest), *project)
    assert code == 0
    assert (dest / "dbt_project.yml").is_file()
    assert (dest / "profiles.yml").read_text() == (shop / "profiles" / "local.yml").read_text()


def test_env_from_variable(shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DBT_FERRY_ENV", "local")
    monkeypatch.setenv("DBT_FERRY_PROJECT_DIR", str(shop))
    code, out, _ = run(capsys, "releases")
    assert code == 0
    assert out.startswith(f"No releases in {shop / '.ferry' / 'store'}: its folder does not exist (publish creates it")


def test_no_environment(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "releases", "--project-dir", str(shop))
    assert (code, out) == (3, "")
    assert err == "Error: no environment given — pass --env NAME or set DBT_FERRY_ENV\n"


def test_unknown_environment(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "publish", "--env", "qa", "--project-dir", str(shop))
    assert code == 3
    assert err == (
        f"Error: environment 'qa' is not configured in {shop / 'pyproject.toml'} — "
        "configured environments: ci, local, pre, pro, snd\n"
    )


def test_unknown_version_lists_published(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ("--project-dir", str(shop))
    assert run(capsys, "publish", "--env", "local", *project)[0] == 0
    code, _, err = run(capsys, "fetch", "--env", "local", "--version", "9.9.9", "--dest", str(tmp_path / "d"), *project)
    assert code == 5
    assert err == (f"Error: version 9.9.9 not found in {shop / '.ferry' / 'store'} — published versions: 1.0.0\n")
    code, _, err = run(capsys, "fetch", "--env", "local", "--dest", str(tmp_path / "d"), *project)
    assert code == 5
    assert err.startswith("Error: no release is promoted in environment local")


def test_conflict_and_force(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ("--project-dir", str(shop))
    assert run(capsys, "publish", "--env", "local", *project)[0] == 0
    (shop / "models" / "marts" / "extra.sql").write_text("select 1 as x\n")
    code, out, err = run(capsys, "publish", "--env", "local", *project)
    assert (code, out) == (6, "")
    assert "Error: version 1.0.0 is already published in" in err
    assert err.rstrip().endswith("bump the version in pyproject.toml, or pass --force to replace the published release")
    code, out, _ = run(capsys, "publish", "--env", "local", "--force", *project)
    assert code == 0
    assert out.startswith("Replaced shop 1.0.0")


def test_corrupt_artifact(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ("--project-dir", str(shop))
    assert run(capsys, "publish", "--env", "local", "--promote", *project)[0] == 0
    (code_archive,) = (shop / ".ferry" / "store" / "releases" / "1.0.0").glob("*/code.tar.zst")
    data = bytearray(code_archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    code_archive.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    code, _, err = run(capsys, "fetch", "--env", "local", "--dest", str(dest), *project)
    assert code == 7
    assert err.startswith("Error: artifact code.tar.zst of release 1.0.0 is corrupt: expected sha256 ")
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]  # no half-fetched folder left


@pytest.mark.integration
def test_missing_bucket_is_one_line(aws: str, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "releases", "--env", "local", "--store", "s3://no-such-bucket/x", "--project-dir", str(shop)
    )
    assert code == 8
    assert err == "Error: bucket no-such-bucket does not exist — create it, or fix the store's bucket name\n"


@pytest.mark.integration
def test_debug_shows_traceback(aws: str, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "--debug", "releases", "--env", "local", "--store", "s3://no-such-bucket/x", "--project-dir", str(shop)
    )
    assert code == 8
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("create it, or fix the store's bucket name")


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fetch", "--env", "local")
    assert code == 2
    assert "Missing option '--dest'" in err


def test_nothing_published_says_how_to_publish(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fetch", "--env", "local", "--dest", str(tmp_path / "d"), "--project-dir", str(shop))
    assert code == 5
    assert err == (
        f"Error: no release is promoted in environment local ({shop / '.ferry' / 'store'}) — "
        "nothing is published there yet, its folder does not exist: dbt-ferry publish --env local --promote, "
        "or check --store and the environment's store\n"
    )
