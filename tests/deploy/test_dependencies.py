"""Adding the packages a project lacks to ``[project] dependencies``, as text, or saying which command does it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dbt_ferry.deploy.dependencies import add_dependencies, missing, plan_dependencies, required_packages
from dbt_ferry.deploy.profiles import SourceProfile

NEW = ["dbt-ferry[job]>=0.1.0", "dbt-postgres"]
HEAD = '[project]\nname = "j"\nversion = "1"\n'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            HEAD + 'dependencies = [\n    # the laptop\n    "dbt-duckdb>=1.9",  # pinned\n'
            '    "sqlfluff"\n]\n\n[tool.ruff]\nline-length = 100\n',
            HEAD + 'dependencies = [\n    # the laptop\n    "dbt-duckdb>=1.9",  # pinned\n'
            '    "sqlfluff",\n    "dbt-ferry[job]>=0.1.0",\n    "dbt-postgres"\n]\n\n[tool.ruff]\nline-length = 100\n',
            id="multi-line, no trailing comma",
        ),
        pytest.param(
            HEAD + 'dependencies = [\n  "a",\n  "b",\n]\noptional-dependencies = {x = ["c"]}\n',
            HEAD + 'dependencies = [\n  "a",\n  "b",\n  "dbt-ferry[job]>=0.1.0",\n'
            '  "dbt-postgres",\n]\noptional-dependencies = {x = ["c"]}\n',
            id="multi-line, trailing comma",
        ),
        pytest.param(
            HEAD + "dependencies = ['a', 'b',]\n[tool.uv]\npackage = false\n",
            HEAD
            + "dependencies = ['a', 'b', \"dbt-ferry[job]>=0.1.0\", \"dbt-postgres\"]\n[tool.uv]\npackage = false\n",
            id="one line",
        ),
        pytest.param(
            HEAD + "dependencies = []\n",
            HEAD + 'dependencies = ["dbt-ferry[job]>=0.1.0", "dbt-postgres"]\n',
            id="empty",
        ),
        pytest.param(
            HEAD + "\n# the linter\n[tool.ruff]\nx = 1\n",
            HEAD + 'dependencies = ["dbt-ferry[job]>=0.1.0", "dbt-postgres"]\n\n# the linter\n[tool.ruff]\nx = 1\n',
            id="no dependencies key",
        ),
    ],
)
def test_requirements_are_added_as_text(before: str, after: str) -> None:
    assert add_dependencies(before, NEW) == after


@pytest.mark.parametrize(
    "text",
    [
        'project = { name = "j", version = "1", dependencies = [] }\n',
        HEAD + "dependencies = [  # comment only\n]\n",
        HEAD + "dependencies = DEPS\n",
    ],
    ids=["inline table", "empty with a comment", "not an array"],
)
def test_a_shape_it_cannot_edit_safely_is_left_alone(text: str) -> None:
    assert add_dependencies(text, NEW) is None


def test_a_project_it_cannot_edit_gets_the_command_instead(tmp_path: Path) -> None:
    text = 'project = { name = "j", version = "1", dependencies = ["dbt-duckdb"] }\n'
    plan = plan_dependencies(tmp_path, text, tomllib.loads(text), ["dbt-ferry[job]>=0.1.0", "dbt-duckdb"])
    assert (plan.text, plan.added, plan.command) == (text, (), "uv add 'dbt-ferry[job]>=0.1.0'")


def test_names_are_compared_normalised_and_extras_count() -> None:
    required = ["dbt-ferry[job]>=0.1.0", "dbt-duckdb", "dbt-postgres"]
    assert missing(required, ["DBT_Postgres>=1.8", "dbt.duckdb"]) == ["dbt-ferry[job]>=0.1.0"]
    # dbt-ferry's duckdb extra brings dbt-duckdb; a dbt-ferry without the job extra is still dbt-ferry.
    assert missing(required, ["dbt-ferry[job,duckdb]"]) == ["dbt-postgres"]
    assert missing(required, ["dbt-ferry"]) == ["dbt-duckdb", "dbt-postgres"]


def test_every_target_adapter_is_required_once() -> None:
    profile = {
        "target": "pro",
        "outputs": {
            "dev": {"type": "duckdb"},
            "ci": {"type": "duckdb"},
            "pro": {"type": "postgres"},
            "lake": {"type": "athena"},
            "odd": {"type": "{{ env_var('ADAPTER') }}"},
        },
    }
    source = SourceProfile(Path("profiles.yml"), "jaffle", profile)
    assert required_packages(source) == ["dbt-ferry[job]>=0.1.0", "dbt-postgres", "dbt-duckdb", "dbt-athena"]
    assert required_packages(None) == ["dbt-ferry[job]>=0.1.0"]
