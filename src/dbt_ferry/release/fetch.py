"""Fetch a release: download, verify every checksum, then extract safely — all or nothing."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.core.archive import extract_archive, extract_zstd_stream
from dbt_ferry.core.checksums import HashingReader, sha256_file
from dbt_ferry.core.constants import ENV_CACHE_DIR
from dbt_ferry.core.errors import IntegrityError, ReleaseNotFoundError, StoreError
from dbt_ferry.core.manifest import MANIFEST_NAME, Artifact, ReleaseManifest
from dbt_ferry.core.store import ArtifactStore, ProgressCallback
from dbt_ferry.release.catalog import artifact_key, channel_version, read_manifest
from dbt_ferry.release.envpack import current_platform, current_python, unpack_env
from dbt_ferry.release.package import CODE_ARCHIVE

log = logging.getLogger(__name__)

#: Where the fetched release's manifest is kept inside the destination.
PROVENANCE = ".dbt-ferry/release.json"


@dataclass(frozen=True)
class FetchedRelease:
    manifest: ReleaseManifest
    environment: str
    project_dir: Path
    profiles_dir: Path
    env_dir: Path | None


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CACHE_DIR):
        return Path(env[ENV_CACHE_DIR]).expanduser().absolute()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbt-ferry"


def _select(manifest: ReleaseManifest, environment: str, with_env: bool) -> tuple[list[Artifact], Artifact | None]:
    code = manifest.artifact(CODE_ARCHIVE)
    if code is None:
        raise IntegrityError(f"release {manifest.version} has no {CODE_ARCHIVE}", "publish it again")
    profile = manifest.artifact(f"profiles/{environment}.yml")
    if profile is None:
        known = ", ".join(manifest.environments) or "none"
        raise ReleaseNotFoundError(
            f"release {manifest.version} has no profile for environment {environment}",
            f"it was packaged with profiles for: {known}; add profiles for {environment} and publish a new version",
        )
    env_pack = None
    if with_env:
        wanted = (current_python(), current_platform())
        env_pack = next((a for a in manifest.of_kind("env") if (a.python, a.platform) == wanted), None)
        if env_pack is None and manifest.of_kind("env"):
            built_for = ", ".join(f"Python {a.python} on {a.platform}" for a in manifest.of_kind("env"))
            raise IntegrityError(
                f"release {manifest.version} has no env pack for Python {wanted[0]} on {wanted[1]} "
                f"(it has: {built_for})",
                "package the release on the same Python and platform as the image (the CD workflow does)",
            )
    return [code, profile], env_pack


def _mismatch(manifest: ReleaseManifest, artifact: Artifact, actual: str, actual_size: int) -> IntegrityError:
    return IntegrityError(
        f"artifact {artifact.name} of release {manifest.version} is corrupt: expected sha256 "
        f"{artifact.sha256} ({artifact.size} bytes), got {actual} ({actual_size} bytes)",
        "nothing was extracted; publish the release again with --force, or fetch another version",
    )


def _stream_verified(
    store: ArtifactStore,
    manifest: ReleaseManifest,
    artifact: Artifact,
    progress: ProgressCallback | None,
) -> Callable[[Path], None]:
    """Download, decompress and extract in one pass into a staging folder; verify the whole download's
    sha256 before returning (the caller discards the folder on any error, so nothing unverified is used)."""

    def extract(staging: Path) -> None:
        with store.open_read(artifact_key(manifest, artifact.name)) as raw:
            reader = HashingReader(raw, progress)
            failure: IntegrityError | None = None
            try:
                extract_zstd_stream(reader, staging)  # type: ignore[arg-type]
            except IntegrityError as exc:
                failure = exc
            reader.drain()
        if reader.hexdigest() != artifact.sha256 or reader.size != artifact.size:
            raise _mismatch(manifest, artifact, reader.hexdigest(), reader.size)
        if failure is not None:
            raise failure

    return extract


def _download_verified(
    store: ArtifactStore,
    manifest: ReleaseManifest,
    artifact: Artifact,
    dest: Path,
    progress: ProgressCallback | None,
) -> None:
    store.download(artifact_key(manifest, artifact.name), dest, progress=progress)
    actual_size = dest.stat().st_size
    actual = sha256_file(dest)
    if actual != artifact.sha256 or actual_size != artifact.size:
        raise _mismatch(manifest, artifact, actual, actual_size)


def _check_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StoreError(f"{dest} exists and is not empty", "fetch into a new or empty folder")


def fetch_release(
    store: ArtifactStore,
    environment: str,
    dest: Path,
    *,
    version: str | None = None,
    with_env: bool = True,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> FetchedRelease:
    """Fetch ``version`` (default: the channel's) for ``environment`` into ``dest``.

    Every artifact is downloaded and verified before anything is extracted. ``dest`` ends up
    holding the dbt project with the environment's ``profiles.yml`` at its root, or does not
    exist at all. The env pack, if the release has one, goes to the cache, keyed by its sha256.
    """
    dest = dest.absolute()
    _check_dest(dest)
    version = version or channel_version(store, environment)
    manifest = read_manifest(store, version)
    files, env_pack = _select(manifest, environment, with_env)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetch-", dir=dest.parent))
    try:
        downloads = work / "downloads"
        downloads.mkdir()
        local: dict[str, Path] = {}
        env_dir = None
        if env_pack is not None:
            env_dir = (cache_dir or default_cache_dir()) / "envs" / env_pack.sha256
            if (env_dir / "pyvenv.cfg").is_file():
                log.info("env pack %s already unpacked in %s", env_pack.name, env_dir)
                env_pack = None  # warm cache: nothing to download
        for artifact in files:
            path = downloads / hashlib.sha256(artifact.name.encode()).hexdigest()[:16]
            _download_verified(store, manifest, artifact, path, progress)
            local[artifact.name] = path
        tree = work / "tree"
        extract_archive(local[CODE_ARCHIVE], tree)
        shutil.copyfile(local[f"profiles/{environment}.yml"], tree / "profiles.yml")
        (tree / PROVENANCE).parent.mkdir(parents=True, exist_ok=True)
        (tree / PROVENANCE).write_bytes(manifest.to_json())
        if env_pack is not None and env_dir is not None:
            # The env pack streams from the store through zstd into the cache's staging folder.
            extract = _stream_verified(store, manifest, env_pack, progress)
            unpack_env(extract, env_dir, env_pack.python or current_python())
        if dest.exists():
            dest.rmdir()
        tree.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("fetched %s %s for %s into %s", manifest.project, manifest.version, environment, dest)
    return FetchedRelease(manifest, environment, dest, dest, env_dir)


__all__ = ["MANIFEST_NAME", "FetchedRelease", "default_cache_dir", "fetch_release"]
