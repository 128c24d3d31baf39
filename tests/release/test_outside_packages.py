"""`local:` packages from outside the project ship with it: a dbt package's `integration_tests/` (`local: ../`) and
a monorepo's shared package (`local: ../../shared/pkg`), packaged, published and run by the real job."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.release import package as package_module
from dbt_ferry.release.package import CODE_ARCHIVE, BuiltRelease, package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore
from tests.release.layouts import BUNDLE, monorepo, package_repository, write_tree
from tests.release.test_package import member_bytes, members

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
HEADER = b"# Rewritten by dbt-ferry"


def package(project: Path, out: Path) -> BuiltRelease:
    return package_release(load_project(project), out=out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_integration_tests_ship_their_package_once(tmp_path: Path) -> None:
    repo, project = package_repository(tmp_path)
    code = package(project, tmp_path / "out").directory / CODE_ARCHIVE
    assert set(members(code)) == BUNDLE  # no integration_tests/ inside the package's copy, no scratch/ (its .gitignore)
    shipped = member_bytes(code, "packages.yml")
    assert shipped.startswith(HEADER)
    assert yaml.safe_load(shipped) == {"packages": [{"local": "_ferry_packages/tiny_pkg"}]}
    assert (project / "packages.yml").read_text() == "packages:\n  - local: ../\n"  # the project is left as it was
    assert member_bytes(code, "_ferry_packages/tiny_pkg/macros/double.sql") == (repo / "macros/double.sql").read_bytes()


def test_a_monorepo_shared_package_ships_with_the_project(tmp_path: Path) -> None:
    _, project = monorepo(tmp_path)
    code = package(project, tmp_path / "out").directory / CODE_ARCHIVE
    assert set(members(code)) == BUNDLE
    assert yaml.safe_load(member_bytes(code, "packages.yml")) == {"packages": [{"local": "_ferry_packages/tiny_pkg"}]}


def test_the_bundle_with_an_outside_package_is_deterministic(tmp_path: Path) -> None:
    repo, project = package_repository(tmp_path / "a")
    first = package(project, tmp_path / "out-1")
    second = package(project, tmp_path / "out-2")
    assert sha256(first.directory / CODE_ARCHIVE) == sha256(second.directory / CODE_ARCHIVE)
    for path in [repo, *repo.rglob("*")]:
        os.utime(path, (2_000_000_000, 2_000_000_000), follow_symlinks=False)
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    shutil.copytree(repo, moved / "tiny_pkg", symlinks=True)
    third = package(moved / "tiny_pkg" / "integration_tests", tmp_path / "out-3")
    assert sha256(third.directory / CODE_ARCHIVE) == sha256(first.directory / CODE_ARCHIVE)
    assert third.manifest.build_id == first.manifest.build_id


def _dbt_lock_hash(packages_yml: dict[str, object]) -> str:
    """dbt's own sha1_hash of a packages file (what `dbt deps` compares with package-lock.yml's)."""
    from dbt.config.project import package_config_from_data
    from dbt.config.renderer import PackageRenderer
    from dbt.task.deps import _create_sha1_hash

    config = package_config_from_data(PackageRenderer({}).render_data(packages_yml), packages_yml)
    return str(_create_sha1_hash(config.packages))


def test_package_lock_is_rewritten_with_the_hash_dbt_computes(tmp_path: Path) -> None:
    _, project = package_repository(tmp_path)
    original = {
        "packages": [
            {"local": "../"},
            {"package": "dbt-labs/dbt_utils", "version": [">=1.0.0", "<2.0.0"]},
            {"git": "https://example.invalid/pkg.git", "revision": "v1"},
        ]
    }
    (project / "packages.yml").write_text(yaml.safe_dump(original, sort_keys=False))
    lock = {
        "packages": [
            {"local": "../", "name": "tiny_pkg"},
            {"package": "dbt-labs/dbt_utils", "name": "dbt_utils", "version": "1.3.0"},
            {"git": "https://example.invalid/pkg.git", "name": "pkg", "revision": "abc"},
        ],
        "sha1_hash": _dbt_lock_hash(original),
    }
    (project / "package-lock.yml").write_text(yaml.safe_dump(lock, sort_keys=False))
    code = package(project, tmp_path / "out").directory / CODE_ARCHIVE
    shipped_packages = yaml.safe_load(member_bytes(code, "packages.yml"))
    shipped_lock = yaml.safe_load(member_bytes(code, "package-lock.yml"))
    assert shipped_packages["packages"][0] == {"local": "_ferry_packages/tiny_pkg"}
    assert shipped_packages["packages"][1:] == original["packages"][1:]
    assert shipped_lock["packages"][0] == {"local": "_ferry_packages/tiny_pkg", "name": "tiny_pkg"}
    assert shipped_lock["packages"][1:] == lock["packages"][1:]
    assert shipped_lock["sha1_hash"] == _dbt_lock_hash(shipped_packages) != lock["sha1_hash"]


def test_a_stale_lock_keeps_its_hash(tmp_path: Path) -> None:
    _, project = package_repository(tmp_path)
    (project / "package-lock.yml").write_text("packages:\n  - local: ../\n    name: tiny_pkg\nsha1_hash: stale\n")
    code = package(project, tmp_path / "out").directory / CODE_ARCHIVE
    assert yaml.safe_load(member_bytes(code, "package-lock.yml")) == {
        "packages": [{"local": "_ferry_packages/tiny_pkg", "name": "tiny_pkg"}],
        "sha1_hash": "stale",  # dbt deps resolves again, as it would have in the project
    }


def test_dependencies_yml_is_rewritten_too(tmp_path: Path) -> None:
    _, project = monorepo(tmp_path)
    (project / "packages.yml").rename(project / "dependencies.yml")
    code = package(project, tmp_path / "out").directory / CODE_ARCHIVE
    shipped = yaml.safe_load(member_bytes(code, "dependencies.yml"))
    assert shipped == {"packages": [{"local": "_ferry_packages/tiny_pkg"}]}
    assert "packages.yml" not in members(code)


def test_config_exclude_applies_to_the_bundle_paths_of_packages(tmp_path: Path) -> None:
    _, project = package_repository(tmp_path)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.dbt-ferry.package]\nexclude = ["_ferry_packages/*/README.md"]\n')
    names = set(members(package(project, tmp_path / "out").directory / CODE_ARCHIVE))
    assert names == BUNDLE - {"_ferry_packages/tiny_pkg/README.md"}


def test_large_outside_packages_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, project = package_repository(tmp_path)
    monkeypatch.setattr(package_module, "OUTSIDE_PACKAGES_WARN_BYTES", 100)
    with caplog.at_level(logging.WARNING, logger="dbt_ferry"):
        package(project, tmp_path / "out")
    (record,) = [r for r in caplog.records if "from outside the project" in r.getMessage()]
    assert "../:" in record.getMessage() and "MB" in record.getMessage()


def test_a_local_package_that_is_not_there_is_refused(tmp_path: Path) -> None:
    _, project = monorepo(tmp_path)
    (project / "packages.yml").write_text("packages:\n  - local: ../../shared/gone\n")
    with pytest.raises(ProjectError, match=r"local dbt package \.\./\.\./shared/gone .* holds no dbt_project.yml"):
        package(project, tmp_path / "out")


def test_a_link_in_an_outside_package_is_checked_against_the_package(tmp_path: Path) -> None:
    repo, project = monorepo(tmp_path)
    (repo / "macros" / "leak.sql").symlink_to(project / "models" / "doubled.sql")
    with pytest.raises(ProjectError, match=r"macros/leak.sql is a link to .*, outside the package"):
        package(project, tmp_path / "out")
    write_tree(repo, {".gitignore": "leak.sql\n"})
    assert "_ferry_packages/tiny_pkg/macros/leak.sql" not in members(
        package(project, tmp_path / "out").directory / CODE_ARCHIVE
    )


# --- the real thing: dbt build in the project, then publish and run the release -----------------------------


def _bare_dbt(project: Path, profiles: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_PROFILES_DIR": str(profiles), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [str(BIN / "dbt"), "--no-use-colors", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.parametrize("layout", [package_repository, monorepo], ids=["integration_tests", "monorepo"])
def test_published_release_runs_like_bare_dbt_build(
    layout: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt_ferry.runtime.bootstrap import prepare
    from dbt_ferry.runtime.job import execute
    from dbt_ferry.runtime.spec import JobRequest

    _, project = layout(tmp_path)  # type: ignore[operator]
    profiles = tmp_path / "bare-profiles"
    profiles.mkdir()
    shutil.copyfile(project / "profiles" / "local.yml", profiles / "profiles.yml")
    monkeypatch.setenv("LAYOUT_DUCKDB", str(tmp_path / "bare.duckdb"))
    for args in (("deps",), ("build",)):
        done = _bare_dbt(project, profiles, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "package-lock.yml").is_file()  # written by dbt deps: it ships rewritten

    monkeypatch.setenv("LAYOUT_DUCKDB", str(tmp_path / "job.duckdb"))
    monkeypatch.delenv("DBT_FERRY_ENV", raising=False)
    store = tmp_path / "store"
    built = package(project, tmp_path / "build")
    code = built.directory / CODE_ARCHIVE
    assert set(members(code)) == BUNDLE | {"package-lock.yml"}
    publish_release(LocalStore(store), built, environment="local", promote=True)

    request = JobRequest(
        environment="local",
        project_dir=str(project),
        store=str(store),
        no_prefect=True,
        docs=False,
        work_dir=str(tmp_path / "work"),
        keep_work_dir=True,
    )
    spec, _ = prepare(request, cache_dir=tmp_path / "cache")
    report = execute(spec)
    assert report.exit_code == 0, report
    assert [s.name for s in report.steps] == ["dbt deps", "dbt build"]
    assert report.summary is not None
    run_dir = store / "runs" / "local" / str(report.summary.invocation_id)
    results = json.loads((run_dir / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in results["results"]}
    assert statuses["model.tiny_pkg.pkg_numbers"] == "success"  # the package's model
    assert statuses["model.tiny_pkg_integration_tests.doubled"] == "success"  # the project's, with its macro
    assert sorted(s for u, s in statuses.items() if u.startswith("test.")) == ["pass", "pass"]
    # dbt deps installed from the shipped lock: its hash matched, so dbt did not write a lock of its own.
    work_project = Path(spec.project_dir)
    assert (work_project / "package-lock.yml").read_bytes() == member_bytes(code, "package-lock.yml")
    assert (work_project / "dbt_packages" / "tiny_pkg").resolve() == (work_project / "_ferry_packages" / "tiny_pkg")
