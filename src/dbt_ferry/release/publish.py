"""Publish a built release to a store, and move channels.

A release is committed by one conditional write of ``releases/<version>/release.json``. Its
artifacts are uploaded first, under ``releases/<version>/<build_id>/``, a folder named by the
digest of their checksums: two publishers of one version with different content never write
the same key, and the one whose ``release.json`` lands wins. Readers never see half a release.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

from dbt_ferry.core.errors import (
    IntegrityError,
    ReleaseConflictError,
    StoreError,
    StoreNotFoundError,
    StorePreconditionError,
)
from dbt_ferry.core.manifest import Channel, ReleaseManifest
from dbt_ferry.core.names import channel_key, release_prefix
from dbt_ferry.core.store import ArtifactStore, ProgressCallback
from dbt_ferry.release.catalog import artifact_key, manifest_key, parse_manifest, read_manifest
from dbt_ferry.release.package import BuiltRelease
from dbt_ferry.release.trust import ReleaseTrust

log = logging.getLogger(__name__)

#: How many times a promote reads the channel again after another promote wrote it first.
PROMOTE_ATTEMPTS = 20

PublishStatus = Literal["published", "unchanged", "replaced", "uploaded again"]


@dataclass(frozen=True)
class PublishResult:
    manifest: ReleaseManifest
    store_url: str
    status: PublishStatus
    promoted: Channel | None = None


def _existing(store: ArtifactStore, version: str) -> tuple[ReleaseManifest | None, str | None]:
    """The published release of ``version`` and the tag of the very ``release.json`` read (for a conditional
    replace)."""
    if store.size(manifest_key(version)) is None:
        return None, None
    data, tag = store.read_versioned(manifest_key(version))
    return parse_manifest(store, version, data), tag


def _upload_artifacts(
    store: ArtifactStore, built: BuiltRelease, progress: ProgressCallback | None, *, again: bool = False
) -> None:
    """Upload what the store lacks; with ``again``, every artifact (a damaged one has the size it should)."""
    for artifact in built.manifest.artifacts:
        key = artifact_key(built.manifest, artifact.name)
        if not again and store.size(key) == artifact.size:
            # The folder is named by the content digest and uploads are atomic: present means whole.
            if progress:
                progress(artifact.size)
            continue
        store.upload(key, built.path(artifact), progress=progress)


def _build_keys(store: ArtifactStore, manifest: ReleaseManifest) -> list[str]:
    return store.list_keys(f"{release_prefix(manifest.version)}{manifest.build_id}/")


def _conflict(store: ArtifactStore, mine: ReleaseManifest, theirs: ReleaseManifest) -> ReleaseConflictError:
    return ReleaseConflictError(
        f"version {mine.version} is already published in {store.url} with other content "
        f"(published build {theirs.build_id}, created {theirs.created_at:%Y-%m-%d %H:%M}; yours {mine.build_id})",
        "bump the version in pyproject.toml, or pass --force to replace the published release",
    )


def publish_release(
    store: ArtifactStore,
    built: BuiltRelease,
    *,
    environment: str | None = None,
    promote: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    trust: ReleaseTrust | None = None,
) -> PublishResult:
    """Upload ``built`` to ``store``; refuse to change a published version unless ``force``. With ``trust``, the
    release.json written is signed (an unchanged release published unsigned before is signed now)."""
    manifest = trust.sign(built.manifest) if trust is not None else built.manifest
    version = manifest.version
    existing, existing_tag = _existing(store, version)
    status: PublishStatus = "published"
    if existing is not None:
        if existing.build_id == manifest.build_id:
            status = "uploaded again" if force else "unchanged"
            if trust is not None and existing.signature is None:
                store.write_bytes(manifest_key(version), manifest.to_json())
                log.info("signed the published release %s with %s", version, trust.key_id)
        elif not force:
            raise _conflict(store, manifest, existing)
        else:
            status = "replaced"
    try:
        _upload_artifacts(store, built, progress, again=status == "uploaded again")
    except BaseException:
        if status == "published":  # a build folder nobody will ever read: not left behind
            with contextlib.suppress(Exception):
                store.delete(_build_keys(store, manifest))
        raise
    if status == "published":
        try:
            store.write_bytes(manifest_key(version), manifest.to_json(), if_absent=True)
        except StorePreconditionError:
            winner = read_manifest(store, version)
            if winner.build_id != manifest.build_id:
                store.delete(_build_keys(store, manifest))
                raise _conflict(store, manifest, winner) from None
            status = "unchanged"
        else:
            # Guard against stores whose conditional write is not atomic: the manifest read
            # back must be ours, or we lost.
            winner = read_manifest(store, version)
            if winner.build_id != manifest.build_id:
                store.delete(_build_keys(store, manifest))
                raise _conflict(store, manifest, winner)
    elif status == "replaced" and existing is not None:
        try:  # only over the release read above: a concurrent --force that won keeps its build
            store.write_bytes(manifest_key(version), manifest.to_json(), if_match=existing_tag)
        except StorePreconditionError:
            winner = read_manifest(store, version)
            if winner.build_id == manifest.build_id:  # the same build won: nothing to undo
                channel = promote_release(store, environment, version) if promote and environment else None
                return PublishResult(manifest, store.url, status, channel)
            store.delete(_build_keys(store, manifest))
            raise ReleaseConflictError(
                f"version {version} in {store.url} was replaced by another publish while this one uploaded "
                f"(now build {winner.build_id}; yours {manifest.build_id}, removed)",
                "check which build should win, then publish --force again",
            ) from None
        store.delete(_build_keys(store, existing))
        log.warning("replaced published release %s (build %s -> %s)", version, existing.build_id, manifest.build_id)
    channel = promote_release(store, environment, version) if promote and environment else None
    return PublishResult(manifest, store.url, status, channel)


def promote_release(store: ArtifactStore, environment: str, version: str) -> Channel:
    """Point ``environment``'s channel at ``version`` (deploy or rollback) in one conditional write: a promote
    that ran meanwhile makes this one read the channel again, so ``previous`` is always the version replaced."""
    read_manifest(store, version)  # raises with the list of published versions
    key = channel_key(environment)
    for _attempt in range(PROMOTE_ATTEMPTS):
        try:
            data, tag = store.read_versioned(key)
        except StoreNotFoundError:
            current, tag = None, None
        else:
            try:
                current = Channel.from_json(data, f"{store.url}/{key}")
            except IntegrityError as exc:  # a damaged channel is what promote repairs
                log.warning("%s: replacing it", exc)
                current = None
        channel = Channel(version=version, previous=current.version if current else None)
        try:
            store.write_bytes(key, channel.to_json(), if_absent=tag is None, if_match=tag)
        except StorePreconditionError:
            continue  # another promote wrote first
        return channel
    raise StoreError(
        f"{store.url}/{key} changed {PROMOTE_ATTEMPTS} times while promoting {version}: other promotes keep winning",
        "run the command again",
    )
