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
from dbt_ferry.core.checksums import ChunkVerifyingReader, HashingReader, sha256_file
from dbt_ferry.core.constants import ENV_CACHE_DIR
from dbt_ferry.core.errors import IntegrityError, ReleaseNotFoundError, StoreError
from dbt_ferry.core.manifest import MANIFEST_NAME, Artifact, ReleaseManifest
from dbt_ferry.core.store import ArtifactStore, ProgressCallback
from dbt_ferry.release.catalog import artifact_key, channel_version, read_manifest
from dbt_ferry.release.envpack import current_platform, current_python, env_changed, unpack_env
from dbt_ferry.release.package import CODE_ARCHIVE
from dbt_ferry.release.trust import ReleaseTrust

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
        "none of it was used; publish the release again with --force, or fetch another version",
    )


def _stream_verified(
    store: ArtifactStore,
    manifest: ReleaseManifest,
    artifact: Artifact,
    progress: ProgressCallback | None,
) -> Callable[[Path], None]:
    """The env pack into a staging folder, only verified bytes decompressed: with piecewise digests, streamed from
    the store through zstd, each piece checked before any byte of it is used; without (a release of an older
    dbt-ferry), downloaded whole and verified first. The whole sha256 is checked as well."""

    def extract(staging: Path) -> None:
        if artifact.chunks is None:
            pack = staging.parent / f".{staging.name}.pack"
            try:
                _download_verified(store, manifest, artifact, pack, progress)
                extract_archive(pack, staging)
            finally:
                pack.unlink(missing_ok=True)
            return
        chunks = artifact.chunks

        def piece_mismatch(index: int, actual: str) -> IntegrityError:
            start = index * chunks.size
            wanted = chunks.sha256[index][:16] + "…" if index < len(chunks.sha256) else "no more bytes"
            return IntegrityError(
                f"artifact {artifact.name} of release {manifest.version} is corrupt from byte {start:,}: chunk "
                f"{index + 1} of {len(chunks.sha256)} has sha256 {actual[:16]}…, not {wanted}",
                "none of it was used; publish the release again with --force, or fetch another version",
            )

        with store.open_read(artifact_key(manifest, artifact.name)) as raw:
            reader = HashingReader(ChunkVerifyingReader(raw, chunks.size, chunks.sha256, piece_mismatch), progress)  # type: ignore[arg-type]
            extract_zstd_stream(reader, staging)  # type: ignore[arg-type]
            reader.drain()
        if reader.hexdigest() != artifact.sha256 or reader.size != artifact.size:
            raise _mismatch(manifest, artifact, reader.hexdigest(), reader.size)

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


def _discard(env_dir: Path) -> None:
    """Move a changed cached env aside (a job may still run from it), then remove it."""
    aside = env_dir.with_name(f".{env_dir.name}.changed-{os.getpid()}")
    try:
        env_dir.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _discard_shipped_profile(path: Path) -> None:
    """A ``profiles.yml`` the code archive holds (releases of older packagers): a file, a link or even a folder,
    the environment's profile replaces it, and is never written through a link."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


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
    trust: ReleaseTrust | None = None,
) -> FetchedRelease:
    """Fetch ``version`` (default: the channel's) for ``environment`` into ``dest``.

    Every artifact is downloaded and verified before anything is extracted. ``dest`` ends up
    holding the dbt project with the environment's ``profiles.yml`` at its root, or does not
    exist at all. The env pack, if the release has one, goes to the cache, keyed by its sha256.
    """
    dest = dest.absolute()
    if dest.is_symlink():  # the release goes where the link points: the link itself stays
        dest = Path(os.path.realpath(dest))
    _check_dest(dest)
    if version is not None and not version.strip():
        raise ReleaseNotFoundError("the release version given is empty", "give one, or none for the channel's")
    version = version or channel_version(store, environment)
    manifest = read_manifest(store, version)
    if trust is not None:
        trust.check(manifest, store.url)  # before any artifact is downloaded
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
                changed = env_changed(env_dir)
                if changed is None:
                    log.info("env pack %s already unpacked in %s", env_pack.name, env_dir)
                    env_pack = None  # warm cache, as it was unpacked: nothing to download
                else:
                    log.warning("the cached env pack in %s is not as it was unpacked (%s): unpacking it again",
                                env_dir, changed)  # fmt: skip
                    _discard(env_dir)
        for artifact in files:
            path = downloads / hashlib.sha256(artifact.name.encode()).hexdigest()[:16]
            _download_verified(store, manifest, artifact, path, progress)
            local[artifact.name] = path
        tree = work / "tree"
        extract_archive(local[CODE_ARCHIVE], tree)
        _discard_shipped_profile(tree / "profiles.yml")
        shutil.copyfile(local[f"profiles/{environment}.yml"], tree / "profiles.yml")
        (tree / "profiles.yml").chmod(0o600)  # connection settings: the job's user's only
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
