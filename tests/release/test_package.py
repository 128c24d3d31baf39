"""Packaging the example project: a deterministic code bundle, exclusions, profiles, release.json."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml
import zstandard

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.archive import FIXED_MTIME
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.core.manifest import MANIFEST_NAME, build_id
from dbt_ferry.release.package import CODE_ARCHIVE, BuiltRelease, package_release

PROFILE_ENVS = ["ci", "local", "pre", "pro", "snd"]


def package(project: Path, out: Path) -> BuiltRelease:
    return package_release(load_project(project), out=out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            return {m.name: m for m in tar}


def member_bytes(archive: Path, name: str) -> bytes:
    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                if member.name == name:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return handle.read()
    raise AssertionError(f"{name} is not in {archive}")


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def project_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- determinism --------------------------------------------------------------------------------


def test_code_bundle_is_deterministic(shop: Path, tmp_path: Path) -> None:
    first = package(shop, tmp_path / "out-1")
    second = package(shop, tmp_path / "out-2")
    code_1 = first.directory / CODE_ARCHIVE
    code_2 = second.directory / CODE_ARCHIVE
    assert code_1 != code_2
    assert sha256(code_1) == sha256(code_2)
    assert first.manifest.build_id == second.manifest.build_id

    # New mtimes on every file and folder change nothing.
    stamp = 2_000_000_000
    for path in [shop, *shop.rglob("*")]:
        os.utime(path, (stamp, stamp))
    third = package(shop, tmp_path / "out-3")
    assert sha256(third.directory / CODE_ARCHIVE) == sha256(code_1)
    assert third.manifest.build_id == first.manifest.build_id

    for info in members(code_1).values():
        assert info.mtime == FIXED_MTIME
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")


def test_code_bundle_does_not_depend_on_where_the_project_is(shop: Path, tmp_path: Path) -> None:
    here = package(shop, tmp_path / "out-here")
    moved = tmp_path / "elsewhere" / "deeper" / "shop"
    shutil.copytree(shop, moved)
    there = package(moved, tmp_path / "out-there")
    assert sha256(there.directory / CODE_ARCHIVE) == sha256(here.directory / CODE_ARCHIVE)
    assert there.manifest.build_id == here.manifest.build_id


def test_content_change_changes_the_bundle(shop: Path, tmp_path: Path) -> None:
    before = package(shop, tmp_path / "out-1")
    model = shop / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    after = package(shop, tmp_path / "out-2")
    assert sha256(after.directory / CODE_ARCHIVE) != sha256(before.directory / CODE_ARCHIVE)
    assert after.manifest.build_id != before.manifest.build_id
    assert member_bytes(after.directory / CODE_ARCHIVE, "models/staging/stg_orders.sql") == model.read_bytes()


# --- what goes in, what stays out ---------------------------------------------------------------


def test_code_bundle_holds_the_project_files(shop: Path, tmp_path: Path) -> None:
    built = package(shop, tmp_path / "out")
    names = set(members(built.directory / CODE_ARCHIVE))
    expected = {f for f in project_files(shop) if not f.startswith("profiles/")}
    assert names == expected
    for name in ("dbt_project.yml", "models/marts/fct_orders.sql", "local_packages/shop_utils/dbt_project.yml"):
        assert member_bytes(built.directory / CODE_ARCHIVE, name) == (shop / name).read_bytes()


def test_code_bundle_excludes_build_output_and_caches(shop: Path, tmp_path: Path) -> None:
    excluded = [
        "target/manifest.json",
        "target/run/shop/model.sql",
        "logs/dbt.log",
        "dbt_packages/dbt_utils/dbt_project.yml",
        ".venv/pyvenv.cfg",
        ".venv/bin/python",
        ".git/HEAD",
        ".git/objects/ab/cdef",
        "shop.duckdb",
        "models/dev.duckdb",
        "__pycache__/mod.cpython-311.pyc",
        "scripts/__pycache__/generate_seeds.cpython-311.pyc",
        "local_packages/shop_utils/target/manifest.json",
        "local_packages/shop_utils/logs/dbt.log",
    ]
    kept = ["models/target_customers.sql", "models/duckdb_notes.md", "docs/logs.md"]
    for name in excluded + kept:
        write(shop / name)

    names = set(members(package(shop, tmp_path / "out").directory / CODE_ARCHIVE))
    for name in excluded:
        assert name not in names
    for prefix in ("target/", "logs/", "dbt_packages/", ".venv/", ".git/", "__pycache__/"):
        assert not [n for n in names if n.startswith(prefix) or f"/{prefix}" in n], prefix
    assert not [n for n in names if n.endswith(".duckdb")]
    for name in kept:
        assert name in names
    assert "dbt_project.yml" in names


def test_profiles_ship_as_artifacts_not_in_code(shop: Path, tmp_path: Path) -> None:
    built = package(shop, tmp_path / "out")
    names = set(members(built.directory / CODE_ARCHIVE))
    assert not [n for n in names if n.startswith("profiles/") or n == "profiles.yml"]

    profiles = built.manifest.of_kind("profile")
    assert sorted(a.name for a in profiles) == [f"profiles/{e}.yml" for e in PROFILE_ENVS]
    assert built.manifest.environments == PROFILE_ENVS
    for artifact in profiles:
        assert artifact.environment is not None
        assert artifact.name == f"profiles/{artifact.environment}.yml"
        assert built.path(artifact).read_bytes() == (shop / "profiles" / f"{artifact.environment}.yml").read_bytes()


def test_environment_without_profile_file_is_left_out(shop: Path, tmp_path: Path) -> None:
    (shop / "profiles" / "snd.yml").unlink()
    built = package(shop, tmp_path / "out")
    assert built.manifest.environments == ["ci", "local", "pre", "pro"]


def test_no_profile_at_all_is_refused(shop: Path, tmp_path: Path) -> None:
    shutil.rmtree(shop / "profiles")
    with pytest.raises(ProjectError, match="no profile file found"):
        package(shop, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- release.json -------------------------------------------------------------------------------


def test_release_json_fields(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    built = package(shop, out)
    assert built.directory == out
    data = json.loads((out / MANIFEST_NAME).read_text())

    assert data["format"] == 1
    assert data["project"] == "shop"
    assert data["version"] == "1.0.0"
    assert data["dbt_version"].startswith("1.11")
    assert re.fullmatch(r"\d+\.\d+", data["python_version"])
    assert re.fullmatch(r"[0-9a-f]{16}", data["build_id"])
    assert data["build_id"] == build_id(built.manifest.artifacts)
    assert data["git_commit"] is None  # the copy is not a git checkout

    kinds = sorted((a["kind"], a["name"]) for a in data["artifacts"])
    assert kinds == sorted(
        [("code", CODE_ARCHIVE), ("lock", "uv.lock")] + [("profile", f"profiles/{e}.yml") for e in PROFILE_ENVS]
    )
    for artifact in data["artifacts"]:
        path = out / artifact["name"]
        assert path.stat().st_size == artifact["size"], artifact["name"]
        assert sha256(path) == artifact["sha256"], artifact["name"]
    assert (out / "uv.lock").read_bytes() == (shop / "uv.lock").read_bytes()
    assert BuiltRelease.load(out).manifest == built.manifest


def test_out_folder_is_replaced_whole(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out / "stale.txt")
    write(out / "profiles" / "old.yml")
    package(shop, out)
    assert not (out / "stale.txt").exists()
    assert not (out / "profiles" / "old.yml").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out"]


def test_default_out_is_inside_the_project_and_not_shipped(shop: Path) -> None:
    first = package_release(load_project(shop))
    assert first.directory == shop / ".ferry" / "build" / "1.0.0"
    again = package_release(load_project(shop))  # the first build is now inside the project
    assert again.manifest.build_id == first.manifest.build_id
    assert not [n for n in members(again.directory / CODE_ARCHIVE) if n.startswith(".ferry")]


# --- refusals -----------------------------------------------------------------------------------


def _drop_version(shop: Path, replacement: str = "") -> None:
    pyproject = shop / "pyproject.toml"
    text, n = re.subn(r'(?m)^version = "[^"]*"\n', replacement, pyproject.read_text())
    assert n == 1
    pyproject.write_text(text)


def test_missing_version_is_refused_with_hint(shop: Path, tmp_path: Path) -> None:
    _drop_version(shop)
    with pytest.raises(ProjectError) as caught:
        package(shop, tmp_path / "out")
    assert "sets no release version" in caught.value.message
    assert caught.value.hint is not None
    assert "[project] version" in caught.value.hint
    assert caught.value.exit_code == 4
    assert not (tmp_path / "out").exists()


def test_dynamic_version_is_refused_and_says_so(shop: Path, tmp_path: Path) -> None:
    _drop_version(shop, 'dynamic = ["version"]\n')
    with pytest.raises(ProjectError, match="dynamic"):
        package(shop, tmp_path / "out")


def test_local_package_outside_the_project_ships_under_ferry_packages(shop: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside_pkg"
    write(outside / "dbt_project.yml", "name: outside_pkg\nversion: '1.0'\n")
    write(outside / "macros" / "m.sql", "{% macro m() %}1{% endmacro %}")
    (shop / "packages.yml").write_text("packages:\n  - local: local_packages/shop_utils\n  - local: ../outside_pkg\n")
    code = package(shop, tmp_path / "out").directory / CODE_ARCHIVE
    names = set(members(code))
    assert {"_ferry_packages/outside_pkg/dbt_project.yml", "_ferry_packages/outside_pkg/macros/m.sql"} <= names
    assert "local_packages/shop_utils/dbt_project.yml" in names
    shipped = yaml.safe_load(member_bytes(code, "packages.yml"))
    assert shipped == {"packages": [{"local": "local_packages/shop_utils"}, {"local": "_ferry_packages/outside_pkg"}]}


def test_local_package_inside_the_project_is_fine(shop: Path, tmp_path: Path) -> None:
    (shop / "packages.yml").write_text("packages:\n  - local: ./local_packages/../local_packages/shop_utils\n")
    built = package(shop, tmp_path / "out")
    assert "local_packages/shop_utils/macros/safe_divide.sql" in members(built.directory / CODE_ARCHIVE)


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_symlink_leaving_the_project_is_refused(shop: Path, tmp_path: Path, kind: str) -> None:
    if kind == "file":
        target = write(tmp_path / "secret.sql", "select 1")
        link = shop / "models" / "evil.sql"
    else:
        target = tmp_path / "secret_dir"
        write(target / "leak.sql", "select 1")
        link = shop / "models" / "evil"
    link.symlink_to(target)
    with pytest.raises(ProjectError, match="outside the project") as caught:
        package(shop, tmp_path / "out")
    assert link.relative_to(shop).as_posix() in caught.value.message
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


def test_symlink_inside_the_project_is_archived_as_a_link(shop: Path, tmp_path: Path) -> None:
    (shop / "models" / "alias.sql").symlink_to("staging/stg_orders.sql")
    built = package(shop, tmp_path / "out")
    info = members(built.directory / CODE_ARCHIVE)["models/alias.sql"]
    assert info.issym()
    assert info.linkname == "staging/stg_orders.sql"


# --- configured exclusions ----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["scripts/*", "scripts", "scripts/"])
def test_configured_exclude_patterns(shop: Path, tmp_path: Path, pattern: str) -> None:
    write(shop / "scripts" / "nested" / "tool.py")
    baseline = set(members(package(shop, tmp_path / "before").directory / CODE_ARCHIVE))
    assert {"scripts/generate_seeds.py", "scripts/nested/tool.py"} <= baseline

    with (shop / "pyproject.toml").open("a") as handle:
        handle.write(f'\n[tool.dbt-ferry.package]\nexclude = ["{pattern}"]\n')
    names = set(members(package(shop, tmp_path / "after").directory / CODE_ARCHIVE))
    assert not [n for n in names if n.startswith("scripts/")]
    # Only the scripts are gone; pyproject.toml changed, so compare the rest without it.
    assert {n for n in baseline if not n.startswith("scripts/")} == names


def test_commit_from_github_sha_when_git_is_missing(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt_ferry.config.loader import load_project
    from dbt_ferry.release.package import package_release

    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    built = package_release(load_project(shop), tmp_path / "out")
    assert built.manifest.git_commit == "0123456789abcdef0123456789abcdef01234567"
    assert built.manifest.git_dirty is None
