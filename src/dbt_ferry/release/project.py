"""What a dbt project says about itself: name, release version, lock file, git commit, local packages."""

from __future__ import annotations

import logging
import os
import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from dbt_ferry.config.loader import ADOPT_COMMAND, ProjectConfig
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.core.names import parse_version
from dbt_ferry.core.version import DBT_CORE_SUPPORTED, dbt_core_supported
from dbt_ferry.release import dbt_packages

log = logging.getLogger(__name__)

LOCK_FILES = ("uv.lock", "poetry.lock")


@dataclass(frozen=True)
class ProjectInfo:
    root: Path
    name: str
    version: str
    lock_file: Path | None
    git_commit: str | None
    git_dirty: bool | None
    dbt_version: str | None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}", "fix the syntax") from None
    return data if isinstance(data, dict) else {}


def _version(config: ProjectConfig) -> str:
    data = config.pyproject_data
    if config.pyproject is None:
        raise ProjectError(
            f"no pyproject.toml in {config.project_dir}",
            f"run {ADOPT_COMMAND} to adopt the project (it writes pyproject.toml with [project] version and "
            '[tool.dbt-ferry]), or create one with [project] name and version (e.g. version = "0.1.0")',
        )
    project = data.get("project", {})
    poetry = data.get("tool", {}).get("poetry", {})
    raw = project.get("version") or poetry.get("version")
    if not raw:
        dynamic = "version" in project.get("dynamic", [])
        adopt = not config.configured and "project" not in data and "poetry" not in data.get("tool", {})
        raise ProjectError(
            f"{config.pyproject} sets no release version"
            + (" (it is dynamic, which dbt-ferry cannot read)" if dynamic else ""),
            (f"run {ADOPT_COMMAND} to adopt the project (it adds [project] and [tool.dbt-ferry]), or " if adopt else "")
            + 'set [project] version = "X.Y.Z" (or [tool.poetry] version)',
        )
    parse_version(str(raw))
    return str(raw)


def _lock_dependency_version(lock: Path, package: str) -> str | None:
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    for entry in data.get("package", []):
        if isinstance(entry, dict) and entry.get("name") == package:
            version = entry.get("version")
            return str(version) if version else None
    return None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def read_project(config: ProjectConfig) -> ProjectInfo:
    root = config.project_dir
    dbt_project = root / "dbt_project.yml"
    if not dbt_project.is_file():
        raise ProjectError(f"no dbt_project.yml in {root}", "run from the dbt project or pass --project-dir")
    dbt_name = _read_yaml(dbt_project).get("name")
    data = config.pyproject_data
    name = data.get("project", {}).get("name") or data.get("tool", {}).get("poetry", {}).get("name") or dbt_name
    if not name:
        raise ProjectError(f"cannot tell the project's name from {root}", "set [project] name")
    version = _version(config)
    lock = next((root / n for n in LOCK_FILES if (root / n).is_file()), None)
    dbt_version = _lock_dependency_version(lock, "dbt-core") if lock else None
    if dbt_version is None:
        try:
            dbt_version = metadata.version("dbt-core")
        except metadata.PackageNotFoundError:
            dbt_version = None
    if dbt_version is not None and not dbt_core_supported(dbt_version):
        where = f"the project's {lock.name}" if lock else "this Python"
        raise ProjectError(
            f"{where} has dbt-core {dbt_version}: dbt-ferry runs dbt-core {DBT_CORE_SUPPORTED}",
            f"lock a dbt-core {DBT_CORE_SUPPORTED} (e.g. uv add 'dbt-core{DBT_CORE_SUPPORTED}'), then package again",
        )
    commit = _git(root, "rev-parse", "HEAD")
    dirty = None
    if commit:
        status = _git(root, "status", "--porcelain", "--", ".")
        dirty = bool(status) if status is not None else None
    elif os.environ.get("GITHUB_SHA"):
        # Packaged inside the runtime image (no git there) by the CD workflow: the commit that triggered it.
        commit = os.environ["GITHUB_SHA"]
    return ProjectInfo(
        root=root,
        name=str(name),
        version=version,
        lock_file=lock,
        git_commit=commit,
        git_dirty=dirty,
        dbt_version=dbt_version,
    )


def local_packages(root: Path) -> list[Path]:
    """Directories of the project's ``local:`` dbt packages, resolved."""
    return [package.path for package in dbt_packages.local_packages(root)]
