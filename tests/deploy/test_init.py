"""``dbt-ferry init``: what it writes (golden files), what it never touches, and what it says.

Regenerate the golden files after a deliberate template change with:
    DBT_FERRY_UPDATE_GOLDEN=1 .venv/bin/pytest -p no:logging tests/deploy/test_init.py -k golden
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbt_ferry.cli.init import init_cmd
from dbt_ferry.config.loader import load_project, resolve_environment
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.deploy import init_project
from dbt_ferry.deploy.pyproject import Table, append_tables
from tests.deploy.conftest import GOLDEN, HOME_PROFILES, SECRET, Adoptable, write_project

GOLDEN_PROJECT = GOLDEN / "jaffle"
UPDATE = os.environ.get("DBT_FERRY_UPDATE_GOLDEN", "").lower() in ("1", "true", "yes")


def test_golden_files(jaffle: Adoptable) -> None:
    result = jaffle.init()
    assert result.changed
    generated = jaffle.generated()
    if UPDATE:
        shutil.rmtree(GOLDEN_PROJECT, ignore_errors=True)
        for name, text in generated.items():
            (GOLDEN_PROJECT / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN_PROJECT / name).write_text(text, encoding="utf-8")
    expected = {
        p.relative_to(GOLDEN_PROJECT).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(GOLDEN_PROJECT.rglob("*"))
        if p.is_file()
    }
    assert sorted(generated) == sorted(expected), "set DBT_FERRY_UPDATE_GOLDEN=1 to regenerate"
    for name, text in expected.items():
        assert generated[name] == text, f"{name} differs from its golden file (DBT_FERRY_UPDATE_GOLDEN=1 regenerates)"


def test_outcome_of_a_first_init(jaffle: Adoptable) -> None:
    result = jaffle.init()
    actions = {p.relative_to(jaffle.root).as_posix(): f.action for f in result.files for p in [f.path]}
    assert actions == {
        "pyproject.toml": "created",
        "profiles/local.yml": "created",
        "profiles/ci.yml": "created",
        "deploy/ferry/Dockerfile": "created",
        ".github/workflows/dbt-ferry-ci.yml": "created",
        ".github/workflows/dbt-ferry-cd.yml": "created",
        "deploy/ferry/cloudformation.yaml": "created",
        "deploy/ferry/prefect.yaml": "created",
        "deploy/ferry/k8s/job.yaml": "created",
        "deploy/ferry/k8s/cronjob.yaml": "created",
        ".github/dependabot.yml": "created",
    }
    assert result.environments == ["local", "ci", "snd", "pro"]
    project = load_project(jaffle.root)
    # The adapter of every target: dev and ci on DuckDB, prod on Postgres.
    assert project.pyproject_data["project"]["dependencies"] == ["dbt-ferry[job]>=0.1.0", "dbt-duckdb", "dbt-postgres"]
    local = resolve_environment(project, "local", environ={})
    ci = resolve_environment(project, "ci", environ={})
    pro = resolve_environment(project, "pro", environ={})
    assert (local.target, local.store.type, ci.target, ci.ci) == ("dev", "local", "ci", True)
    assert pro.model_dump(include={"target", "store"}) == {
        "target": "pro",
        "store": {"type": "s3", "bucket": "jaffle-dbt-ferry-pro", "prefix": "jaffle", "region": "eu-west-1"},
    }
    assert pro.exports.namespace == "dbt_ferry_jaffle_pro" and pro.exports.catalog.type == "glue"
    notes = "\n".join(result.notes)
    assert "write profiles/pro.yml" in notes and "DBT_JAFFLE_PROD_PASSWORD" in notes


def test_no_secret_in_any_file(jaffle: Adoptable) -> None:
    jaffle.init()
    for name, text in jaffle.generated().items():
        assert SECRET not in text, name
    local = (jaffle.root / "profiles" / "local.yml").read_text()
    assert "password: \"{{ env_var('DBT_JAFFLE_PROD_PASSWORD') }}\"" in local
    assert "other" not in local.split("\n", 3)[-1], "only the project's own profile is copied"


def test_init_twice_changes_nothing(jaffle: Adoptable) -> None:
    jaffle.init()
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in jaffle.root.rglob("*") if p.is_file()}
    result = jaffle.init()
    assert not result.changed
    assert {f.action for f in result.files} == {"exists", "unchanged"}
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in jaffle.root.rglob("*") if p.is_file()}
    assert after == before


def test_a_changed_generated_file_is_kept_unless_forced(jaffle: Adoptable) -> None:
    jaffle.init()
    dockerfile = jaffle.root / "deploy" / "ferry" / "Dockerfile"
    pristine = dockerfile.read_text()
    dockerfile.write_text(pristine + "LABEL team=data\n")
    result = jaffle.init()
    kept = [f for f in result.files if f.path == dockerfile]
    assert [(f.action, f.detail) for f in kept] == [("kept", "differs from what init writes; --force rewrites it")]
    assert dockerfile.read_text().endswith("LABEL team=data\n")
    assert not result.changed

    forced = jaffle.init(force=True)
    assert [f.action for f in forced.files if f.path == dockerfile] == ["overwritten"]
    assert dockerfile.read_text() == pristine


def test_force_never_touches_configuration_or_profiles(jaffle: Adoptable) -> None:
    jaffle.root.joinpath("pyproject.toml").write_text(
        """\
# The team's own settings.
[project]
name = "jaffle-analytics"
version = "2.3.0"
dependencies = ["dbt-ferry[job]", "dbt-duckdb"]

[tool.dbt-ferry]
store = { type = "local", path = "/srv/ferry" }

[tool.dbt-ferry.environments.local]
target = "ci"   # theirs
profiles = "profiles/mine.yml"

[tool.ruff]
line-length = 100
"""
    )
    (jaffle.root / "profiles").mkdir()
    (jaffle.root / "profiles" / "mine.yml").write_text("# hand-written\njaffle: {target: ci, outputs: {}}\n")
    original = jaffle.root.joinpath("pyproject.toml").read_text()

    result = jaffle.init("pro", force=True)

    text = jaffle.root.joinpath("pyproject.toml").read_text()
    # The adapter of the prod target is added where the dependencies are; the rest is kept byte for byte and the
    # tables go after it.
    assert text.startswith(original.replace('"dbt-duckdb"]', '"dbt-duckdb", "dbt-postgres"]'))
    data = tomllib.loads(text)
    assert data["project"]["version"] == "2.3.0"
    assert data["tool"]["dbt-ferry"]["store"] == {"type": "local", "path": "/srv/ferry"}
    assert data["tool"]["dbt-ferry"]["environments"]["local"] == {"target": "ci", "profiles": "profiles/mine.yml"}
    assert sorted(data["tool"]["dbt-ferry"]["environments"]) == ["ci", "local", "pro"]
    assert (jaffle.root / "profiles" / "mine.yml").read_text().startswith("# hand-written")
    assert not (jaffle.root / "profiles" / "local.yml").exists()
    outcome = {f.path.name: f.action for f in result.files}
    assert outcome["pyproject.toml"] == "added" and outcome["mine.yml"] == "exists"
    assert [f.detail for f in result.files if f.path.name == "pyproject.toml"] == [
        "dbt-postgres in [project] dependencies; environments ci, pro"
    ]
    # Again, with --force: the configuration is complete, nothing more is added.
    again = jaffle.init("pro", force=True)
    assert jaffle.root.joinpath("pyproject.toml").read_text() == text
    assert not again.changed


def test_an_inline_section_is_refused_and_nothing_is_written(jaffle: Adoptable) -> None:
    pyproject = jaffle.root / "pyproject.toml"
    pyproject.write_text('[project]\nname = "j"\nversion = "1.0"\n\n[tool]\ndbt-ferry = { environments = {} }\n')
    with pytest.raises(ConfigError, match=r"cannot append to .*pyproject\.toml") as info:
        jaffle.init()
    assert "[tool.dbt-ferry.environments.local]" in str(info.value)
    assert sorted(p.name for p in jaffle.root.iterdir()) == ["dbt_project.yml", "local_packages", "models",
                                                              "packages.yml", "pyproject.toml", "seeds"]  # fmt: skip


def test_no_profile_anywhere_is_an_error_naming_where_it_looked(tmp_path: Path) -> None:
    project = write_project(tmp_path / "jaffle", tmp_path / "home")
    (project.home / ".dbt" / "profiles.yml").unlink()
    runner = CliRunner()
    result = runner.invoke(init_cmd, ["--project-dir", str(project.root)], env={"HOME": str(project.home)})
    assert isinstance(result.exception, ConfigError)
    assert result.exception.exit_code == 3
    assert str(result.exception) == (
        f"no dbt profile 'jaffle' to copy into profiles/local.yml for local: no profiles.yml in "
        f"{project.root / 'profiles.yml'}, ~/.dbt/profiles.yml — create the profile (dbt init), or write "
        "profiles/local.yml, then run dbt-ferry init again"
    )
    assert not (project.root / "pyproject.toml").exists()


def test_a_profiles_file_without_the_profile_is_named(tmp_path: Path) -> None:
    project = write_project(tmp_path / "jaffle", tmp_path / "home")
    (project.home / ".dbt" / "profiles.yml").write_text("other:\n  outputs: {}\n")
    with pytest.raises(ConfigError) as info:
        project.init()
    assert info.value.message == (
        "no dbt profile 'jaffle' to copy into profiles/local.yml for local: ~/.dbt/profiles.yml has no profile "
        "'jaffle' (it has: other)"
    )
    # Not needed when the environments' profile files exist already.
    (project.root / "profiles").mkdir()
    for name in ("local", "ci"):
        (project.root / "profiles" / f"{name}.yml").write_text(HOME_PROFILES)
    result = project.init()
    assert {f.path.name: f.action for f in result.files}["local.yml"] == "exists"
    assert (
        'dependencies = ["dbt-ferry[job]>=0.1.0", "dbt-duckdb", "dbt-postgres"]'
        in (project.root / "pyproject.toml").read_text()
    )


def test_profiles_yml_in_the_project_and_a_default_environment(tmp_path: Path) -> None:
    project = write_project(tmp_path / "jaffle", tmp_path / "home")
    (project.home / ".dbt" / "profiles.yml").rename(project.root / "profiles.yml")
    result = init_project(project.root, environ={}, home=project.home, region="us-west-2")
    assert result.environments == ["local", "ci", "pro"]
    assert "a copy of the profile jaffle in profiles.yml" in (project.root / "profiles" / "ci.yml").read_text()
    assert 'bucket = "jaffle-dbt-ferry-pro"' in (project.root / "pyproject.toml").read_text()
    assert 'region = "us-west-2"' in (project.root / "pyproject.toml").read_text()


def test_a_project_inside_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[remote "origin"]\n\turl = git@github.com:acme/data-platform.git\n')
    project = write_project(repo / "analytics" / "jaffle", tmp_path / "home")
    project.init("pro")
    ci = (repo / ".github" / "workflows" / "dbt-ferry-ci.yml").read_text()
    cd = (repo / ".github" / "workflows" / "dbt-ferry-cd.yml").read_text()
    assert "working-directory: analytics/jaffle" in ci
    assert '- "analytics/jaffle/models/**"' in cd and '- "analytics/jaffle/local_packages/jaffle_utils/**"' in cd
    assert '- "analytics/jaffle/deploy/ferry/Dockerfile"' in cd and '- ".github/workflows/dbt-ferry-cd.yml"' in cd
    assert "context: analytics/jaffle/deploy/ferry\n" in cd and "file: analytics/jaffle/deploy/ferry/Dockerfile\n" in cd
    # The job runs in the project folder: the image's tag is the digest of the Dockerfile from there.
    assert 'tag="image-$(cat deploy/ferry/Dockerfile | sha256sum | cut -c1-16)"' in cd
    cloudformation = (project.root / "deploy" / "ferry" / "cloudformation.yaml").read_text()
    assert 'Default: "acme/data-platform"' in cloudformation
    assert not (project.root / ".github").exists()


def test_cli_output(jaffle: Adoptable) -> None:
    runner = CliRunner()
    args = ["--project-dir", str(jaffle.root), "--env", "pro", "--region", "eu-west-1"]
    first = runner.invoke(init_cmd, args, env={"HOME": str(jaffle.home), "DBT_PROFILES_DIR": ""})
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == (f"Set up dbt-ferry for jaffle in {jaffle.root} (profile jaffle; environments local, ci, pro)")
    assert lines[1].split() == ["created", "pyproject.toml", "[project],", "[tool.uv],", "[tool.dbt-ferry]", "with",
                                "environments", "local,", "ci,", "pro"]  # fmt: skip
    assert lines[2].split() == ["created", "profiles/local.yml", "profile", "jaffle", "from", "~/.dbt/profiles.yml"]
    second = runner.invoke(init_cmd, args, env={"HOME": str(jaffle.home), "DBT_PROFILES_DIR": ""})
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0].startswith("Nothing to do: dbt-ferry for jaffle")
    assert "  unchanged   deploy/ferry/Dockerfile" in second.output.splitlines()


def test_environment_names_are_checked(jaffle: Adoptable) -> None:
    with pytest.raises(ConfigError, match="invalid environment name 'Pro!'"):
        jaffle.init("Pro!")


def test_append_keeps_comments_and_proves_the_result() -> None:
    original = "# top\n[tool.other]\nkey = 1 # inline\n"
    table = Table(("tool", "dbt-ferry", "environments", "pro"), {"target": "pro", "store": {"type": "s3"}}, ["c"])
    text = append_tables(original, [table], "pyproject.toml")
    assert text == (
        '# top\n[tool.other]\nkey = 1 # inline\n\n[tool.dbt-ferry.environments.pro]\n# c\ntarget = "pro"\n'
        'store = { type = "s3" }\n'
    )
