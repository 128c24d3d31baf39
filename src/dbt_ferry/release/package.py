"""Build a release from a dbt project: code bundle, profiles, lock, optional env pack, release.json."""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbt_ferry.config.loader import ADOPT_COMMAND, ProjectConfig, resolve_environment
from dbt_ferry.config.models import EnvironmentConfig
from dbt_ferry.core.archive import write_archive
from dbt_ferry.core.checksums import CHUNK_SIZE, chunk_digests, sha256_file
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.core.manifest import MANIFEST_NAME, Artifact, ArtifactKind, Chunks, ReleaseManifest, build_id
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.release.contents import CodeContents, plan_contents
from dbt_ferry.release.project import ProjectInfo, read_project
from dbt_ferry.release.secrets import check_profiles

log = logging.getLogger(__name__)

CODE_ARCHIVE = "code.tar.zst"
#: Above this, the local packages from outside the project that ship with it are worth a warning.
OUTSIDE_PACKAGES_WARN_BYTES = 50 * 1024 * 1024


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


def _artifact(directory: Path, name: str, kind: ArtifactKind, **extra: str) -> Artifact:
    path = directory / name
    return Artifact(name=name, kind=kind, size=path.stat().st_size, sha256=sha256_file(path), **extra)


def _profiles(root: Path, environments: dict[str, EnvironmentConfig]) -> dict[str, Path]:
    profiles: dict[str, Path] = {}
    for name, env in environments.items():
        path = root / env.profiles_path()
        if path.is_file():
            profiles[name] = path
        else:
            log.warning("environment %s has no profile file %s; it cannot run this release", name, path)
    return profiles


def _contents(root: Path, environments: dict[str, EnvironmentConfig], profiles: dict[str, Path]) -> CodeContents:
    resolved_root = root.resolve()
    skip: dict[str, str] = {}
    for name, path in sorted(profiles.items()):
        resolved = path.resolve()
        if resolved_root in resolved.parents:
            skip.setdefault(
                resolved.relative_to(resolved_root).as_posix(), f"ships as the release's profiles/{name}.yml"
            )
    project_profiles = root / "profiles.yml"
    skip.setdefault("profiles.yml", "a local profile: the fetch writes the environment's profile here instead")
    profile_files = [*profiles.values(), *([project_profiles] if project_profiles.is_file() else [])]
    patterns = next(iter(environments.values())).package.exclude if environments else ()
    return plan_contents(root, skip=skip, exclude=patterns, profiles=tuple(profile_files))


def _environments(config: ProjectConfig) -> dict[str, EnvironmentConfig]:
    return {name: resolve_environment(config, name, environ={}) for name in config.environment_names}


def list_contents(config: ProjectConfig) -> CodeContents:
    """What ``code.tar.zst`` of the project would hold and leave out, and why; writes nothing."""
    environments = _environments(config)
    return _contents(config.project_dir, environments, _profiles(config.project_dir, environments))


def _warn_outside_size(contents: CodeContents) -> None:
    size = sum(p.size for p in contents.packages)
    if size > OUTSIDE_PACKAGES_WARN_BYTES:
        log.warning(
            "the local dbt packages from outside the project add %.1f MB to the release (%s); "
            "a .gitignore or .dbtignore in them, or [tool.dbt-ferry.package] exclude, can leave out what dbt "
            "does not need",
            size / 1024 / 1024,
            ", ".join(f"{p.local}: {p.size / 1024 / 1024:.1f} MB" for p in contents.packages),
        )


def package_release(
    config: ProjectConfig, out: Path | None = None, *, with_env: bool = False, allow_literal_secrets: bool = False
) -> BuiltRelease:
    """Build the release of the project described by ``config`` into ``out``.

    ``out`` defaults to ``<project>/.ferry/build/<version>``; it is replaced whole. Profiles with literal secrets
    are refused unless ``allow_literal_secrets``.
    """
    info: ProjectInfo = read_project(config)
    root = info.root
    environments = _environments(config)
    profiles = _profiles(root, environments)
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
    check_profiles(profiles, allow=allow_literal_secrets)
    contents = _contents(root, environments, profiles)
    contents.check()
    _warn_outside_size(contents)
    out = (out or root / ".ferry" / "build" / info.version).absolute()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "profiles").mkdir(parents=True)
    try:
        write_archive(contents.entries(), staging / CODE_ARCHIVE)
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
            packed = _artifact(staging, pack.name, "env", python=pack.python, platform=pack.platform)
            chunks = Chunks(size=CHUNK_SIZE, sha256=chunk_digests(staging / pack.name))
            artifacts.append(packed.model_copy(update={"chunks": chunks}))  # streamed at fetch: checked piece by piece
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
