"""What ships in code.tar.zst of an existing project: its .gitignore files and .dbtignore, links that would break,
warehouse files of any name, and `dbt-ferry package --list` telling each reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.release.package import CODE_ARCHIVE, list_contents, package_release
from tests.conftest import run_cli
from tests.release.layouts import package_repository, write_tree
from tests.release.test_package import members


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The integration_tests project of a small dbt package (any project would do)."""
    return package_repository(tmp_path)[1]


def shipped(project: Path, out: Path) -> set[str]:
    return set(members(package_release(load_project(project), out=out).directory / CODE_ARCHIVE))


def reasons(project: Path) -> dict[str, str]:
    return {item.path: item.reason for item in list_contents(load_project(project)).left_out}


def duckdb_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.execute("create table t as select 42 as answer")
    return path


def sqlite_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("create table t (a)")
    connection.commit()
    connection.close()
    return path


# --- links -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["target-base/", "target-base", "/target-base"])
def test_an_ignored_dangling_link_is_neither_shipped_nor_checked(project: Path, tmp_path: Path, line: str) -> None:
    (project / "target-base").symlink_to("/Users/someone/work/state/target-base")
    with pytest.raises(ProjectError, match="target-base is a link to /Users/someone/work/state/target-base, which"):
        package_release(load_project(project), out=tmp_path / "refused")
    write_tree(project, {".gitignore": f"target/\n{line}\n"})
    assert "target-base" not in shipped(project, tmp_path / "out")
    assert reasons(project)["target-base"] == f".gitignore:2 {line}"


def test_an_unignored_dangling_link_stops_packaging_with_a_hint(project: Path, tmp_path: Path) -> None:
    (project / "models" / "gone.sql").symlink_to("nowhere/gone.sql")
    with pytest.raises(ProjectError) as caught:
        package_release(load_project(project), out=tmp_path / "out")
    assert caught.value.message == "models/gone.sql is a link to nowhere/gone.sql, which does not exist"
    hint = caught.value.hint or ""
    assert ".gitignore" in hint and "replace the link" in hint
    assert caught.value.exit_code == 4
    assert not (tmp_path / "out").exists()


def test_an_ignored_link_outside_the_project_does_not_block(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project / "shared").symlink_to(outside)
    with pytest.raises(ProjectError, match=r"shared is a link to .*elsewhere, outside the project"):
        package_release(load_project(project), out=tmp_path / "out")
    (project / ".dbtignore").write_text("shared/\n")
    assert "shared" not in shipped(project, tmp_path / "out")


def test_a_link_to_a_path_left_out_is_refused(project: Path, tmp_path: Path) -> None:
    write_tree(project, {"scratch/raw.sql": "select 1\n", ".gitignore": "scratch/\n"})
    (project / "models" / "raw.sql").symlink_to("../scratch/raw.sql")
    with pytest.raises(ProjectError, match=r"models/raw.sql is a link to .*, which is left out \(.gitignore:1"):
        package_release(load_project(project), out=tmp_path / "out")


def test_an_absolute_link_inside_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    (project / "models" / "alias.sql").symlink_to(project / "models" / "doubled.sql")
    with pytest.raises(ProjectError, match=r"models/alias\.sql is an absolute link"):
        package_release(load_project(project), out=tmp_path / "out")


# --- ignore files --------------------------------------------------------------------------------------


def test_gitignore_negation_and_nested_gitignore(project: Path, tmp_path: Path) -> None:
    write_tree(
        project,
        {
            ".gitignore": "target/\n*.csv\n!seeds/keep.csv\n",
            "seeds/keep.csv": "a\n1\n",
            "seeds/big_export.csv": "a\n2\n",
            "models/.gitignore": "*.sql\n!doubled.sql\n",
            "models/wip.sql": "select 1\n",
            "models/staging/.gitignore": "!*.sql\n",
            "models/staging/kept.sql": "select 2\n",
        },
    )
    names = shipped(project, tmp_path / "out")
    assert {"seeds/keep.csv", "models/doubled.sql", "models/.gitignore", "models/staging/kept.sql"} <= names
    assert not names & {"seeds/big_export.csv", "models/wip.sql"}
    why = reasons(project)
    assert why["seeds/big_export.csv"] == ".gitignore:2 *.csv"
    assert why["models/wip.sql"] == "models/.gitignore:1 *.sql"


def test_dbtignore_leaves_paths_out(project: Path, tmp_path: Path) -> None:
    write_tree(
        project,
        {
            ".dbtignore": "# dbt's own ignore file\nanalyses/drafts/\n*.draft.sql\n",
            "analyses/drafts/a.sql": "select 1\n",
            "analyses/kept.sql": "select 1\n",
            "models/next.draft.sql": "select 1\n",
        },
    )
    names = shipped(project, tmp_path / "out")
    assert {"analyses/kept.sql", ".dbtignore"} <= names
    assert not [n for n in names if "draft" in n]
    why = reasons(project)
    assert why["analyses/drafts/"] == ".dbtignore:2 analyses/drafts/"
    assert why["models/next.draft.sql"] == ".dbtignore:3 *.draft.sql"


def test_ignoring_dbt_project_yml_is_refused(project: Path, tmp_path: Path) -> None:
    (project / ".gitignore").write_text("*.yml\n")
    with pytest.raises(ProjectError, match=r"dbt_project.yml is left out \(.gitignore:1 \*.yml\)"):
        package_release(load_project(project), out=tmp_path / "out")


def test_ignoring_a_local_package_inside_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    write_tree(project, {"vendor/inner/dbt_project.yml": "name: inner\nversion: '1.0'\nconfig-version: 2\n"})
    (project / "packages.yml").write_text("packages:\n  - local: ../\n  - local: vendor/inner\n")
    (project / ".gitignore").write_text("vendor/\n")
    with pytest.raises(ProjectError, match=r"local dbt package vendor/inner is left out \(.gitignore:1 vendor/\)"):
        package_release(load_project(project), out=tmp_path / "out")


# --- warehouse files -------------------------------------------------------------------------------------


def test_no_warehouse_file_ships_whatever_its_name(project: Path, tmp_path: Path) -> None:
    duckdb_file(project / "duck.db")
    (project / "duck.db.wal").write_bytes(b"wal")
    sqlite_file(project / "cache" / "state.bin")
    (project / "cache" / "state.bin-journal").write_bytes(b"journal")
    write_tree(project, {"data/wh.anything": "not a database by its bytes", "data/notes.db": "a text file"})
    with (project / "profiles" / "local.yml").open("a") as handle:
        handle.write("    other:\n      type: duckdb\n      path: ./data/wh.anything\n")
    names = shipped(project, tmp_path / "out")
    assert not names & {"duck.db", "duck.db.wal", "cache/state.bin", "cache/state.bin-journal", "data/wh.anything"}
    assert "data/notes.db" in names  # a .db by its name only is not a database
    why = reasons(project)
    assert why["duck.db"] == "warehouse file (DuckDB, by its content)"
    assert why["duck.db.wal"] == "warehouse file (beside the database duck.db)"
    assert why["cache/state.bin"] == "warehouse file (SQLite, by its content)"
    assert why["data/wh.anything"] == "warehouse file (path of target other in profiles/local.yml)"


def test_a_profile_path_through_env_var_is_taken_at_its_default(project: Path, tmp_path: Path) -> None:
    write_tree(project, {"layout.duckdb.bak": "x", "layout.duckdb": ""})  # the profile's default: layout.duckdb
    assert reasons(project)["layout.duckdb"] == "fixed exclusion (*.duckdb)"
    (project / "profiles" / "local.yml").write_text(
        (project / "profiles" / "local.yml").read_text().replace("layout.duckdb", "wh/layout.data")
    )
    write_tree(project, {"wh/layout.data": ""})
    assert reasons(project)["wh/layout.data"] == "warehouse file (path of target local in profiles/local.yml)"


# --- package --list ------------------------------------------------------------------------------------


def test_package_list_shows_what_ships_and_why_the_rest_does_not(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb_file(project / "duck.db")
    write_tree(project, {"target/run/x.sql": "x", ".dbtignore": "notes/\n", "notes/a.md": "a", "notes/b.md": "b"})
    (project / "target-base").symlink_to("/Users/someone/target-base")
    write_tree(project, {".gitignore": "target/\ntarget-base/\n"})
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.dbt-ferry.package]\nexclude = ["models/schema.yml"]\n')
    before = sorted(p.relative_to(project.parent).as_posix() for p in project.parent.rglob("*"))

    code, out, err = run_cli(capsys, "package", "--list", "--project-dir", str(project))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"code.tar.zst of {project}: 11 files, ")
    assert any(line.split()[:1] == ["dbt_project.yml"] for line in lines)
    (packages_line,) = [line for line in lines if line.lstrip().startswith("packages.yml ")]
    assert packages_line.endswith("(rewritten: local ../ → _ferry_packages/tiny_pkg)")
    assert f"Local package ../ ({project.parent}) ships as _ferry_packages/tiny_pkg/: 5 files, " in out
    left = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[lines.index("Left out (8):") + 1 :]}
    assert left == {
        "duck.db": "warehouse file (DuckDB, by its content)",
        "models/schema.yml": "[tool.dbt-ferry.package] exclude 'models/schema.yml'",
        "notes/": ".dbtignore:1 notes/",
        "profiles/local.yml": "ships as the release's profiles/local.yml",
        "target/": "fixed exclusion (target/)",  # the folder once, not each file under it
        "target-base": ".gitignore:2 target-base/",
        "_ferry_packages/tiny_pkg/integration_tests/": "the project itself: it is the bundle's root",
        "_ferry_packages/tiny_pkg/scratch/": "../.gitignore:4 scratch/",  # the package's own .gitignore
    }
    assert sorted(p.relative_to(project.parent).as_posix() for p in project.parent.rglob("*")) == before


def test_package_list_shows_what_stops_packaging_and_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "models" / "gone.sql").symlink_to("nowhere.sql")
    code, out, err = run_cli(capsys, "package", "--list", "--project-dir", str(project))
    assert code == 4
    assert "Stops packaging (1):\n  models/gone.sql is a link to nowhere.sql, which does not exist — " in out
    assert err.startswith("Error: models/gone.sql is a link to nowhere.sql, which does not exist — add it to")
    assert not (project / ".ferry").exists()


def test_package_list_takes_no_out(project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "package", "--list", "--out", str(tmp_path / "x"), "--project-dir", str(project))
    assert code == 2 and "--list writes nothing" in err
