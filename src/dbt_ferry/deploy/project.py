"""What ``init`` needs to know about an existing dbt project: its name, profile, folders and repository."""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dbt_ferry.core.errors import ProjectError
from dbt_ferry.release.project import local_packages

#: dbt_project.yml keys naming folders, with dbt's defaults.
_PATH_KEYS: dict[str, tuple[str, ...]] = {
    "model-paths": ("models",),
    "seed-paths": ("seeds",),
    "test-paths": ("tests",),
    "analysis-paths": ("analyses",),
    "macro-paths": ("macros",),
    "snapshot-paths": ("snapshots",),
    "docs-paths": (),
    "asset-paths": (),
}
_GITHUB_REMOTE = re.compile(r"github\.com[:/]+(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class DbtProject:
    """A dbt project on disk, as ``init`` sees it."""

    root: Path
    name: str
    profile: str
    folders: tuple[str, ...]
    local_packages: tuple[str, ...]
    repo_root: Path
    github_repository: str | None = None

    @property
    def slug(self) -> str:
        """The name as AWS and Kubernetes take it: lower-case letters, digits and dashes."""
        return slug(self.name)

    @property
    def ident(self) -> str:
        """The name as Glue and Prefect variables take it: lower-case letters, digits and underscores."""
        return ident(self.name)

    @property
    def path_in_repo(self) -> str:
        """The project's folder relative to the repository root (``.`` when it is the root)."""
        return self.root.relative_to(self.repo_root).as_posix()


def slug(text: str, limit: int = 30) -> str:
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return value or "dbt"


def ident(text: str) -> str:
    value = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return value if value and not value[0].isdigit() else f"p_{value}"


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}", "fix the syntax") from None
    return data if isinstance(data, dict) else {}


def read_dbt_project(root: Path) -> DbtProject:
    """Read ``dbt_project.yml`` and the repository around ``root``."""
    path = root / "dbt_project.yml"
    if not path.is_file():
        raise ProjectError(f"no dbt_project.yml in {root}", "run from the dbt project or pass --project-dir")
    data = _yaml_mapping(path)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{path} has no name", "set name: in dbt_project.yml")
    profile = data.get("profile") or name
    folders: list[str] = []
    for key, default in _PATH_KEYS.items():
        value = data.get(key, list(default))
        for folder in [value] if isinstance(value, str) else value or []:
            text = str(folder).strip("/")
            if text and text not in folders:
                folders.append(text)
    resolved = root.resolve()
    packages = []
    for package in local_packages(root):
        if package == resolved or resolved in package.parents:
            packages.append(package.relative_to(resolved).as_posix())
    repo_root, repository = find_repository(resolved)
    return DbtProject(
        root=resolved,
        name=name,
        profile=str(profile),
        folders=tuple(folders),
        local_packages=tuple(p for p in packages if p != "."),
        repo_root=repo_root,
        github_repository=repository,
    )


def find_repository(root: Path) -> tuple[Path, str | None]:
    """The git work tree holding ``root`` (``root`` itself when there is none) and its GitHub OWNER/REPO."""
    for candidate in (root, *root.parents):
        git = candidate / ".git"
        if git.exists():
            return candidate, _github_origin(git)
    return root, None


def _github_origin(git: Path) -> str | None:
    """OWNER/REPO of the ``origin`` remote, read from ``.git/config`` (no git binary needed)."""
    config_path = git / "config"
    if git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = git.read_text(encoding="utf-8", errors="replace").strip()
        if not text.startswith("gitdir:"):
            return None
        config_path = (git.parent / text.split(":", 1)[1].strip()) / "config"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(config_path, encoding="utf-8")
    except configparser.Error:
        return None
    url = parser.get('remote "origin"', "url", fallback="").strip()
    match = _GITHUB_REMOTE.search(url)
    return match["repo"] if match else None
