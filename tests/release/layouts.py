"""Small dbt projects laid out as real ones are, written by the tests: a dbt package repository with its
``integration_tests/`` project (``local: ../``), and a monorepo whose projects share a local package."""

from __future__ import annotations

from pathlib import Path

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"

[tool.dbt-ferry]
store = {{ type = "local", path = ".ferry/store" }}

[tool.dbt-ferry.environments.local]
target = "local"
"""

PROFILE = """\
{profile}:
  target: local
  outputs:
    local:
      type: duckdb
      path: "{{{{ env_var('LAYOUT_DUCKDB', 'layout.duckdb') }}}}"
      threads: 1
"""

#: A dbt package: a macro and a model, used by the projects that install it.
PACKAGE = {
    "dbt_project.yml": 'name: tiny_pkg\nversion: "1.0.0"\nconfig-version: 2\nprofile: tiny_pkg\n',
    "macros/double.sql": "{% macro double(column) %}({{ column }} * 2){% endmacro %}\n",
    "models/pkg_numbers.sql": "{{ config(materialized='table') }}\nselect 1 as n union all select 2 as n\n",
    "README.md": "# tiny_pkg\n",
    ".gitignore": "target/\ndbt_packages/\nlogs/\nscratch/\n",
    "scratch/notes.txt": "not for the release\n",
}

#: A project using the package: a model calling its macro on its model, and a test.
PROJECT = {
    "dbt_project.yml": (
        'name: tiny_pkg_integration_tests\nversion: "1.0.0"\nconfig-version: 2\nprofile: integration_tests\n'
        "models:\n  tiny_pkg_integration_tests:\n    +materialized: table\n"
    ),
    "models/doubled.sql": "select n, {{ tiny_pkg.double('n') }} as doubled from {{ ref('pkg_numbers') }}\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: doubled\n    columns:\n      - name: doubled\n"
        "        data_tests: [not_null, unique]\n"
    ),
    ".gitignore": "target/\ndbt_packages/\nlogs/\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_project(root: Path, packages: str) -> Path:
    write_tree(root, PROJECT)
    write_tree(
        root,
        {
            "packages.yml": packages,
            "pyproject.toml": PYPROJECT.format(name=root.name.replace("_", "-")),
            "profiles/local.yml": PROFILE.format(profile="integration_tests"),
        },
    )
    return root


def package_repository(base: Path) -> tuple[Path, Path]:
    """``tiny_pkg/`` with its ``integration_tests/`` project installing it with ``local: ../``."""
    repo = base / "tiny_pkg"
    write_tree(repo, PACKAGE)
    project = write_project(repo / "integration_tests", "packages:\n  - local: ../\n")
    return repo, project


def monorepo(base: Path) -> tuple[Path, Path]:
    """``mono/shared/tiny_pkg`` and the project ``mono/projects/sales`` installing it with a relative path."""
    package = base / "mono" / "shared" / "tiny_pkg"
    write_tree(package, PACKAGE)
    project = write_project(base / "mono" / "projects" / "sales", "packages:\n  - local: ../../shared/tiny_pkg\n")
    return package, project


#: What the code bundle of either layout holds.
BUNDLE = {
    ".gitignore",
    "dbt_project.yml",
    "models/doubled.sql",
    "models/schema.yml",
    "packages.yml",
    "pyproject.toml",
    "_ferry_packages/tiny_pkg/.gitignore",
    "_ferry_packages/tiny_pkg/README.md",
    "_ferry_packages/tiny_pkg/dbt_project.yml",
    "_ferry_packages/tiny_pkg/macros/double.sql",
    "_ferry_packages/tiny_pkg/models/pkg_numbers.sql",
}
