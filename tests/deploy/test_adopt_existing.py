"""``init`` on projects that already have their own files: a uv project, a Poetry project, a requirements.txt, a
Dockerfile and CI workflow of their own, the kit of an older init; and what publish says before any init.

Each project is the jaffle project of conftest.py, with the files below written next to it and a profile whose
targets use two adapters (dev on DuckDB, pro on Postgres).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dbt_ferry.deploy import InitResult, init_project, layout
from tests.conftest import run_cli
from tests.deploy.conftest import REGION, Adoptable, write_project

TWO_ADAPTERS = """\
jaffle:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: jaffle.duckdb
    pro:
      type: postgres
      host: db.example.com
      user: jaffle
      password: "{{ env_var('JAFFLE_PRO_PASSWORD') }}"
      port: 5432
      dbname: jaffle
      schema: analytics
"""

UV_PYPROJECT = """\
# The analytics of the jaffle shop.
[project]
name = "jaffle-analytics"
version = "2.3.0"
requires-python = ">=3.11"
dependencies = [
    # what runs dbt on a laptop
    "dbt-duckdb>=1.9",  # pinned by the data team
    "sqlfluff>=3"
]

[dependency-groups]
dev = ["pytest>=8"]

[tool.uv]
package = false  # a dbt project
"""
UV_LOCK = 'version = 1\nrequires-python = ">=3.11"\n# (the project\'s own lock, as uv wrote it)\n'

POETRY_PYPROJECT = """\
[tool.poetry]
name = "jaffle"
version = "1.4.0"
description = "The jaffle shop's dbt project."
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
dbt-duckdb = "^1.9"  # the laptop's adapter

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
"""

OWN_DOCKERFILE = 'FROM python:3.12-slim\nCOPY . /app\nCMD ["python", "-m", "app"]\n'
OWN_CI = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n"
OWN_PREFECT = "name: the-team\ndeployments: []\n"


@pytest.fixture
def project(tmp_path: Path) -> Adoptable:
    adoptable = write_project(tmp_path / "jaffle", tmp_path / "home")
    (adoptable.home / ".dbt" / "profiles.yml").write_text(TWO_ADAPTERS, encoding="utf-8")
    return adoptable


def _init(project: Adoptable, *, force: bool = False) -> InitResult:
    return init_project(project.root, environments=("pro",), force=force, region=REGION, environ={}, home=project.home)


def _snapshot(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_uv_project_gets_dbt_ferry_and_every_adapter_once(project: Adoptable) -> None:
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(UV_PYPROJECT, encoding="utf-8")
    (project.root / "uv.lock").write_text(UV_LOCK, encoding="utf-8")

    result = _init(project)

    text = pyproject.read_text(encoding="utf-8")
    edited = UV_PYPROJECT.replace(
        '    "sqlfluff>=3"\n]', '    "sqlfluff>=3",\n    "dbt-ferry[job]>=0.1.0",\n    "dbt-postgres"\n]'
    )
    assert text.startswith(edited + "\n[tool.dbt-ferry]\n"), "comments and order kept, the tables after them"
    data = tomllib.loads(text)
    assert data["project"]["dependencies"] == [
        "dbt-duckdb>=1.9",
        "sqlfluff>=3",
        "dbt-ferry[job]>=0.1.0",
        "dbt-postgres",
    ]
    assert data["dependency-groups"] == {"dev": ["pytest>=8"]} and data["tool"]["uv"] == {"package": False}
    assert "project" in data and data["project"]["version"] == "2.3.0"
    assert (project.root / "uv.lock").read_text(encoding="utf-8") == UV_LOCK, (
        "init never locks (that needs the network)"
    )
    (outcome,) = [f for f in result.files if f.path == pyproject]
    assert (outcome.action, outcome.detail) == (
        "added",
        "dbt-ferry[job]>=0.1.0, dbt-postgres in [project] dependencies; [tool.dbt-ferry] with environments local, ci, "
        "pro",
    )
    assert result.notes[:1] == [
        "lock the new dependencies: uv lock (the workflows and `dbt-ferry package --with-env` install from uv.lock)"
    ]
    assert "try it: uv run dbt-ferry publish --env local --promote && uv run dbt-ferry run --env local" in result.notes
    schedule = next(n for n in result.notes if n.startswith("schedule it with Prefect"))
    assert "uv run prefect deploy --prefect-file deploy/ferry/prefect.yaml --name jaffle-local" in schedule

    before = _snapshot(project.root)
    again = _init(project)
    assert _snapshot(project.root) == before
    assert not again.changed
    assert not any("uv lock" in note for note in again.notes), "nothing new to lock"


def test_a_requirement_present_under_another_spelling_is_not_added_again(project: Adoptable) -> None:
    pyproject = project.root / "pyproject.toml"
    original = '[project]\nname = "j"\nversion = "1.0"\ndependencies = ["DBT_Postgres>=1.8", "dbt-ferry[job,duckdb]"]\n'
    pyproject.write_text(original, encoding="utf-8")
    result = _init(project)
    assert pyproject.read_text(encoding="utf-8").startswith(original + "\n[tool.dbt-ferry]\n")
    assert not any(n.startswith(("add the packages", "lock the new")) for n in result.notes)


def test_a_poetry_project_is_told_the_command_and_its_dependencies_are_left_alone(project: Adoptable) -> None:
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(POETRY_PYPROJECT, encoding="utf-8")
    lock = project.root / "poetry.lock"
    lock.write_text("# poetry's lock\n", encoding="utf-8")

    result = _init(project)

    text = pyproject.read_text(encoding="utf-8")
    assert text.startswith(POETRY_PYPROJECT + "\n[tool.dbt-ferry]\n"), "only dbt-ferry's own tables are appended"
    data = tomllib.loads(text)
    assert data["tool"]["poetry"] == tomllib.loads(POETRY_PYPROJECT)["tool"]["poetry"]
    assert "project" not in data, "the release version stays Poetry's"
    assert lock.read_text(encoding="utf-8") == "# poetry's lock\n"
    assert result.notes[:2] == [
        "add the packages it needs: poetry add 'dbt-ferry[job]>=0.1.0' dbt-postgres",
        "the workflows (dbt-ferry-ci.yml, dbt-ferry-cd.yml) install with uv: move the project to uv (uv lock) or "
        "adapt them",
    ]
    assert "try it: poetry run dbt-ferry publish --env local --promote && poetry run dbt-ferry run --env local" in (
        result.notes
    )
    before = _snapshot(project.root)
    assert not _init(project).changed
    assert _snapshot(project.root) == before


def test_a_requirements_txt_is_not_edited(project: Adoptable) -> None:
    requirements = project.root / "requirements.txt"
    requirements.write_text("dbt-duckdb==1.9.1  # the laptop's\n# lint\nsqlfluff\n-r more.txt\n", encoding="utf-8")
    before = requirements.read_bytes()

    result = _init(project)

    assert requirements.read_bytes() == before
    data = tomllib.loads((project.root / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["dependencies"] == ["dbt-ferry[job]>=0.1.0", "dbt-duckdb", "dbt-postgres"]
    assert result.notes[:2] == [
        "add the packages it needs: pip install 'dbt-ferry[job]>=0.1.0' dbt-postgres, and add dbt-ferry[job]>=0.1.0 "
        "and dbt-postgres to requirements.txt",
        "lock the dependencies: uv add -r requirements.txt (its requirements go to [project] dependencies and "
        "uv.lock; the workflows and `dbt-ferry package --with-env` install from uv.lock, not from requirements.txt)",
    ]
    assert "try it: dbt-ferry publish --env local --promote && dbt-ferry run --env local" in result.notes


def test_the_projects_own_dockerfile_and_workflows_are_never_touched(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    project = write_project(repo, tmp_path / "home")
    own = {
        repo / "Dockerfile": OWN_DOCKERFILE,
        repo / ".github" / "workflows" / "ci.yml": OWN_CI,
        repo / ".github" / "workflows" / "cd.yml": OWN_CI.replace("name: ci", "name: cd"),
        repo / "prefect.yaml": OWN_PREFECT,
        repo / "deploy" / "cloudformation.yaml": "AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\n",
    }
    for path, text in own.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    mtimes = {path: path.stat().st_mtime_ns for path in own}

    first = _init(project, force=True)
    written = {f.path.relative_to(repo).as_posix(): f.action for f in first.files}
    assert {name: action for name, action in written.items() if "ferry" in name} == {
        "deploy/ferry/Dockerfile": "created",
        ".github/workflows/dbt-ferry-ci.yml": "created",
        "deploy/ferry/prefect.yaml": "created",
        ".github/workflows/dbt-ferry-cd.yml": "created",
        "deploy/ferry/cloudformation.yaml": "created",
        "deploy/ferry/k8s/job.yaml": "created",
        "deploy/ferry/k8s/cronjob.yaml": "created",
    }
    assert not {p.relative_to(repo).as_posix() for p in own} & set(written)
    assert not any("older dbt-ferry init" in note for note in first.notes), "the project's own files are not init's"

    # --force rewrites a kit file that was changed, and nothing else.
    kit_dockerfile = repo / layout.DOCKERFILE
    pristine = kit_dockerfile.read_text(encoding="utf-8")
    kit_dockerfile.write_text(pristine + "LABEL team=data\n", encoding="utf-8")
    forced = _init(project, force=True)
    assert [f.action for f in forced.files if f.path == kit_dockerfile] == ["overwritten"]
    assert kit_dockerfile.read_text(encoding="utf-8") == pristine
    for path, text in own.items():
        assert path.read_text(encoding="utf-8") == text, path
        assert path.stat().st_mtime_ns == mtimes[path], path

    # Every reference inside the kit follows it to its place.
    cd = (repo / layout.CD_WORKFLOW).read_text(encoding="utf-8")
    assert "context: deploy/ferry\n" in cd and "file: deploy/ferry/Dockerfile\n" in cd
    assert "cat deploy/ferry/Dockerfile | sha256sum" in cd and '- "deploy/ferry/Dockerfile"' in cd
    assert '- "Dockerfile"' not in cd and '- ".github/workflows/dbt-ferry-cd.yml"' in cd
    assert "group: dbt-ferry-cd-" in cd and "name: dbt-ferry-cd\n" in cd
    ci = (repo / layout.CI_WORKFLOW).read_text(encoding="utf-8")
    assert "group: dbt-ferry-ci-" in ci and "name: dbt-ferry-ci\n" in ci, "no clash with the project's own ci"
    prefect = (repo / layout.PREFECT_FILE).read_text(encoding="utf-8")
    assert "#   prefect deploy --prefect-file deploy/ferry/prefect.yaml --name jaffle-local\n" in prefect
    assert "#   prefect deploy --prefect-file deploy/ferry/prefect.yaml --all\n" in prefect
    stack = (repo / layout.STACK_TEMPLATE).read_text(encoding="utf-8")
    assert "--template-file deploy/ferry/cloudformation.yaml --stack-name jaffle-pro" in stack
    assert "named in .github/workflows/dbt-ferry-cd.yml" in stack
    job = (repo / layout.K8S_JOB).read_text(encoding="utf-8")
    assert "kubectl apply -f deploy/ferry/k8s/job.yaml\n" in job


def test_the_kit_of_an_older_init_is_left_alone_and_named(jaffle: Adoptable) -> None:
    old = {
        "Dockerfile": "# The dbt-ferry runtime image of jaffle (written by `dbt-ferry init`).\nFROM python:3.11\n",
        "deploy/cloudformation.yaml": (
            'AWSTemplateFormatVersion: "2010-09-09"\nDescription: >-\n  dbt-ferry runtime of the dbt project jaffle '
            "(written by dbt-ferry init).\nResources: {}\n"
        ),
        ".github/workflows/ci.yml": "# Continuous integration of jaffle (written by `dbt-ferry init`).\nname: ci\n",
    }
    for name, text in old.items():
        (jaffle.root / name).parent.mkdir(parents=True, exist_ok=True)
        (jaffle.root / name).write_text(text, encoding="utf-8")
    result = jaffle.init()
    for name, text in old.items():
        assert (jaffle.root / name).read_text(encoding="utf-8") == text
    assert result.notes[-1] == (
        "Dockerfile, deploy/cloudformation.yaml, .github/workflows/ci.yml: written by an older dbt-ferry init and left "
        "as they are; the kit is now in deploy/ferry/ and .github/workflows/dbt-ferry-ci.yml, "
        ".github/workflows/dbt-ferry-cd.yml: remove the old files (git rm Dockerfile deploy/cloudformation.yaml "
        ".github/workflows/ci.yml) so that CI and CD do not run twice"
    )


def test_publish_before_init_says_to_run_it(project: Adoptable, capsys: pytest.CaptureFixture[str]) -> None:
    root = project.root
    code, _, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(root))
    assert (code, err) == (
        4,
        f"Error: no pyproject.toml in {root} — run dbt-ferry init to adopt the project (it writes pyproject.toml "
        "with [project] version and [tool.dbt-ferry]), or create one with [project] name and version (e.g. version = "
        '"0.1.0")\n',
    )
    (root / "pyproject.toml").write_text('[project]\nname = "jaffle"\nversion = "1.0.0"\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "publish", "--env", "pro", "--project-dir", str(root))
    assert (code, err) == (
        3,
        f"Error: environment 'pro' is not configured in {root / 'pyproject.toml'} — run dbt-ferry init --env pro "
        "(it adds the environment), or add [tool.dbt-ferry.environments.pro], use one of local, ci, or set "
        "DBT_FERRY_STORE\n",
    )
    code, _, err = run_cli(capsys, "package", "--project-dir", str(root))
    assert code == 4
    assert err.splitlines()[-1] == (
        f"Error: no profile file found for any environment in {root} — run dbt-ferry init (it copies your dbt "
        "profile into profiles/local.yml and profiles/ci.yml), or write profiles/<env>.yml for each environment (or "
        "set the environment's 'profiles' path)"
    )
    # Once init ran, the same commands go further.
    _init(project)
    code, out, err = run_cli(capsys, "package", "--project-dir", str(root))
    assert (code, err) == (0, "")
    assert out.startswith("Packaged jaffle 1.0.0 [build ")
