"""The generated files pass the real linters and validators, with no finding at all.

Each tool runs from .venv/bin (installed from PyPI with the dev group) and works offline. Two layouts are
checked: the project at the root of its repository (the golden files) and a project in a sub-folder of a
GitHub repository (working-directory, path filters and the OIDC subject change).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dbt_ferry.deploy import init_project, layout
from tests.deploy.conftest import BIN, HOME_PROFILES_WITH_PRO, Adoptable, write_project


def lint(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, env=env)


@pytest.fixture(scope="module")
def kits(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """(project root, repository root) after init, for both layouts; each tool runs once over all of them."""
    base = tmp_path_factory.mktemp("kits")
    at_root = write_project(base / "jaffle", base / "home")
    repo = base / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[remote "origin"]\n\turl = https://github.com/acme/data.git\n')
    # Its profile has a target pro: the stack takes the secrets of profiles/pro.yml (parameters, conditions).
    nested = write_project(repo / "dbt" / "jaffle_shop", base / "home-pro", HOME_PROFILES_WITH_PRO)
    for project in (at_root, nested):
        Adoptable(project.root, project.home).init("snd", "pro")
    # On Athena: the work group, the models' database and the task role's dbt-athena policy are in the stack.
    athena = write_project(base / "athena" / "jaffle", base / "home-athena")
    init_project(athena.root, environments=["pro"], region="eu-west-1", adapter="athena", environ={},
                 home=athena.home)  # fmt: skip
    return [(at_root.root, at_root.root), (nested.root, repo), (athena.root, athena.root)]


def test_hadolint(kits: list[tuple[Path, Path]]) -> None:
    done = lint(BIN / "hadolint", "--no-color", *(root / layout.DOCKERFILE for root, _ in kits), cwd=kits[0][0])
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_check_jsonschema_github_workflows(kits: list[tuple[Path, Path]]) -> None:
    workflows = [repo / name for _, repo in kits for name in (layout.CI_WORKFLOW, layout.CD_WORKFLOW)]
    done = lint(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows, cwd=kits[0][1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


def test_check_jsonschema_dependabot(kits: list[tuple[Path, Path]]) -> None:
    files = [repo / layout.DEPENDABOT for _, repo in kits]
    done = lint(BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", *files, cwd=kits[0][1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_offline_has_no_finding(kits: list[tuple[Path, Path]], persona: str) -> None:
    folders = [repo / ".github" for _, repo in kits]
    done = lint(BIN / "zizmor", "--offline", "--no-progress", f"--persona={persona}", *folders, cwd=kits[0][1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout, done.stdout


def test_cfn_lint_including_informational_checks(kits: list[tuple[Path, Path]]) -> None:
    templates = [root / layout.STACK_TEMPLATE for root, _ in kits]
    done = lint(BIN / "cfn-lint", "--include-checks", "I", "--", *templates, cwd=kits[0][0])
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_kubernetes_validate_strict(kits: list[tuple[Path, Path]]) -> None:
    manifests = [root / name for root, _ in kits for name in (layout.K8S_JOB, layout.K8S_CRONJOB)]
    done = lint(BIN / "kubernetes-validate", "--strict", *manifests, cwd=kits[0][0])
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == 4 * len(kits), done.stdout  # a service account and the job (or cron job) in each file


def test_dbt_ferrys_own_release_workflow() -> None:
    """.github/workflows/release.yml (trusted publishing to PyPI): valid, no zizmor finding, and the actions it
    shares with the kit pinned as the kit pins them."""
    from dbt_ferry.deploy.render import ACTION_PINS, UV_VERSION
    from tests.conftest import REPO

    release = REPO / ".github" / "workflows" / "release.yml"
    done = lint(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", release, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    done = lint(BIN / "zizmor", "--offline", "--no-progress", "--persona=auditor", REPO / ".github", cwd=REPO)
    assert (done.returncode, "No findings to report" in done.stdout) == (0, True), done.stdout + done.stderr
    text = release.read_text()
    assert f"actions/checkout@{ACTION_PINS['checkout_pin']}" in text
    assert f"astral-sh/setup-uv@{ACTION_PINS['setup_uv_pin']}" in text
    assert f'version: "{UV_VERSION}"' in text
    assert "id-token: write" in text and "password" not in text  # trusted publishing: no stored token
