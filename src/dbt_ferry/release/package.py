"""Build a release from a dbt project: code bundle, profiles, lock, optional env pack, release.json."""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbt_ferry.config.loader import ADOPT_COMMAND, ProjectConfig, resolve_environment
from dbt_ferry.core.archive import Entry, write_archive
from dbt_ferry.core.checksums import sha256_file
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.core.manifest import MANIFEST_NAME, Artifact, ArtifactKind, ReleaseManifest, build_id
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.release.project import ProjectInfo, local_packages, read_project

log = logging.getLogger(__name__)

CODE_ARCHIVE = "code.tar.zst"
#: Directories never shipped: build output, installed packages, virtualenvs, VCS and tool caches.
EXCLUDED_DIRS = frozenset(
    {
        "target", "logs", "dbt_packages", ".venv", "venv", ".git", ".hg", "__pycache__", ".ferry",
        "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".tox",
    }
)  # fmt: skip
EXCLUDED_FILES = ("*.duckdb", "*.duckdb.wal", "*.pyc", ".user.yml", ".DS_Store", "*.tmp")


@dataclass(frozen=True)
class BuiltRelease:
    """A release on local disk, ready to publish: ``directory`` holds the artifacts and release.json."""

    directory: Path
    manifest: ReleaseManifest

    def path(self, artifact: Artifact) -> Path:
        return self.directory / artifact.name

    @classmethod
    def load(cls, directory: Path) -> BuiltRelease:
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ProjectError(f"{directory} holds no {MANIFEST_NAME}", "give the --out folder of dbt-ferry package")
        manifest = ReleaseManifest.from_json(manifest_path.read_bytes(), str(manifest_path))
        return cls(directory, manifest)


def _excluded(relative: str, name: str, is_dir: bool, patterns: tuple[str, ...]) -> bool:
    if is_dir and name in EXCLUDED_DIRS:
        return True
    if not is_dir and any(fnmatch.fnmatch(name, p) for p in EXCLUDED_FILES):
        return True
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p.rstrip("/")) for p in patterns)


def code_entries(root: Path, skip: set[str], patterns: tuple[str, ...] = ()) -> list[Entry]:
    """The project's files to ship, relative to ``root``, minus ``skip`` and the exclusions."""
    root = root.resolve()
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        keep = []
        for name in sorted(dirnames):
            relative = name if rel_dir == "." else f"{rel_dir}/{name}"
            path = here / name
            if _excluded(relative, name, True, patterns):
                continue
            if path.is_symlink():
                filenames.append(name)  # archived as a link, not walked
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            relative = name if rel_dir == "." else f"{rel_dir}/{name}"
            path = here / name
            if relative in skip or _excluded(relative, name, False, patterns):
                continue
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if root not in target.parents:
                    raise ProjectError(
                        f"{relative} is a link to {target}, outside the project",
                        "replace the link by the file, or exclude it with [tool.dbt-ferry.package] exclude",
                    )
            elif not path.is_file():
                continue  # sockets, fifos: nothing to ship
            entries.append(Entry(relative, path))
    return entries


def _check_local_packages(root: Path) -> None:
    resolved = root.resolve()
    for package in local_packages(root):
        if package != resolved and resolved not in package.parents:
            raise ProjectError(
                f"the local dbt package {package} lies outside the project {resolved}",
                "move it inside the project folder so that it ships with the release",
            )


def _artifact(directory: Path, name: str, kind: ArtifactKind, **extra: str) -> Artifact:
    path = directory / name
    return Artifact(name=name, kind=kind, size=path.stat().st_size, sha256=sha256_file(path), **extra)


def package_release(config: ProjectConfig, out: Path | None = None, *, with_env: bool = False) -> BuiltRelease:
    """Build the release of the project described by ``config`` into ``out``.

    ``out`` defaults to ``<project>/.ferry/build/<version>``; it is replaced whole.
    """
    info: ProjectInfo = read_project(config)
    root = info.root
    _check_local_packages(root)
    environments = {name: resolve_environment(config, name, environ={}) for name in config.environment_names}
    profiles: dict[str, Path] = {}
    for name, env in environments.items():
        path = root / env.profiles_path()
        if path.is_file():
            profiles[name] = path
        else:
            log.warning("environment %s has no profile file %s; it cannot run this release", name, path)
    if not profiles:
        adopt = (
            ""
            if config.configured
            else f"run {ADOPT_COMMAND} (it copies your dbt profile into profiles/local.yml and profiles/ci.yml), or "
        )
        raise ProjectError(
            f"no profile file found for any environment in {root}",
            f"{adopt}write profiles/<env>.yml for each environment (or set the environment's 'profiles' path)",
        )
    out = (out or root / ".ferry" / "build" / info.version).absolute()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "profiles").mkdir(parents=True)
    try:
        resolved_root = root.resolve()
        skip = {
            p.relative_to(resolved_root).as_posix()
            for p in (x.resolve() for x in profiles.values())
            if resolved_root in p.parents
        }
        patterns = next(iter(environments.values())).package.exclude if environments else ()
        write_archive(code_entries(root, skip, patterns), staging / CODE_ARCHIVE)
        artifacts = [_artifact(staging, CODE_ARCHIVE, "code")]
        for name, path in sorted(profiles.items()):
            shutil.copyfile(path, staging / "profiles" / f"{name}.yml")
            artifacts.append(_artifact(staging, f"profiles/{name}.yml", "profile", environment=name))
        if info.lock_file is not None:
            shutil.copyfile(info.lock_file, staging / info.lock_file.name)
            artifacts.append(_artifact(staging, info.lock_file.name, "lock"))
        if with_env:
            from dbt_ferry.release.envpack import build_env_pack

            pack = build_env_pack(info, staging)
            artifacts.append(_artifact(staging, pack.name, "env", python=pack.python, platform=pack.platform))
        manifest = ReleaseManifest(
            project=info.name,
            version=info.version,
            build_id=build_id(artifacts),
            created_at=datetime.now(UTC),
            git_commit=info.git_commit,
            git_dirty=info.git_dirty,
            dbt_version=info.dbt_version,
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            dbt_ferry_version=DBT_FERRY_VERSION,
            aws_accounts={n: e.aws_account_id for n, e in environments.items() if e.aws_account_id},
            artifacts=tuple(artifacts),
        )
        (staging / MANIFEST_NAME).write_bytes(manifest.to_json())
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("packaged %s %s into %s", info.name, info.version, out)
    return BuiltRelease(out, manifest)
