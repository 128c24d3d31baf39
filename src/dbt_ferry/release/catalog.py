"""Reading the store's releases and channels: manifests, versions, the channel pointer."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from dbt_ferry.core.errors import IntegrityError, ReleaseNotFoundError, StoreNotFoundError
from dbt_ferry.core.manifest import MANIFEST_NAME, Channel, ReleaseManifest
from dbt_ferry.core.names import channel_key, release_prefix, version_sort_key
from dbt_ferry.core.store import ArtifactStore


def manifest_key(version: str) -> str:
    return f"{release_prefix(version)}{MANIFEST_NAME}"


def artifact_key(manifest: ReleaseManifest, name: str) -> str:
    return f"{release_prefix(manifest.version)}{manifest.build_id}/{name}"


log = logging.getLogger(__name__)
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_!-]*")


def published_versions(store: ArtifactStore) -> list[str]:
    """Published versions, newest first."""
    versions = []
    for key in store.list_keys("releases/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == MANIFEST_NAME:
            versions.append(parts[1])
    return sorted(versions, key=version_sort_key, reverse=True)


def _listing(store: ArtifactStore) -> str:
    versions = published_versions(store)
    if versions:
        return f"published versions: {', '.join(versions)}"
    missing = store.missing()
    return f"nothing is published there yet ({missing})" if missing else "nothing is published there yet"


def read_manifest(store: ArtifactStore, version: str) -> ReleaseManifest:
    if not _VERSION.fullmatch(version):  # a path, a URL, an empty string: never a key of the store
        raise ReleaseNotFoundError(f"{version!r} is not a release version", _listing(store))
    key = manifest_key(version)
    try:
        data = store.read_bytes(key)
    except StoreNotFoundError:
        raise ReleaseNotFoundError(f"version {version} not found in {store.url}", _listing(store)) from None
    return parse_manifest(store, version, data)


def parse_manifest(store: ArtifactStore, version: str, data: bytes) -> ReleaseManifest:
    """``release.json`` of ``version`` as read from ``store``: valid, and describing that version."""
    key = manifest_key(version)
    manifest = ReleaseManifest.from_json(data, f"{store.url}/{key}")
    if manifest.version != version:
        raise IntegrityError(
            f"{store.url}/{key} describes version {manifest.version}, not {version}", "publish the release again"
        )
    return manifest


def read_channel(store: ArtifactStore, environment: str) -> Channel | None:
    key = channel_key(environment)
    try:
        data = store.read_bytes(key)
    except StoreNotFoundError:
        return None
    return Channel.from_json(data, f"{store.url}/{key}")


def channel_version(store: ArtifactStore, environment: str) -> str:
    channel = read_channel(store, environment)
    if channel is None:
        missing = store.missing()
        hint = (
            f"promote one with: dbt-ferry promote --env {environment} VERSION ({_listing(store)})"
            if published_versions(store)
            else f"nothing is published there yet, {missing}: dbt-ferry publish --env {environment} --promote, "
            "or check --store and the environment's store"
            if missing
            else f"nothing is published there yet: dbt-ferry publish --env {environment} --promote"
        )
        raise ReleaseNotFoundError(f"no release is promoted in environment {environment} ({store.url})", hint)
    return channel.version


@dataclass(frozen=True)
class ReleaseEntry:
    version: str
    current: bool
    manifest: ReleaseManifest | None
    #: Why ``manifest`` could not be read (a damaged release.json): the others are listed all the same.
    problem: str | None = None


def list_releases(store: ArtifactStore, environment: str) -> tuple[list[ReleaseEntry], Channel | None]:
    """The releases of ``store``, newest first, and ``environment``'s channel; a release or a channel that cannot
    be read is reported as such, never a reason not to list the others."""
    try:
        channel = read_channel(store, environment)
    except IntegrityError as exc:
        log.warning("%s", exc)
        channel = None
    entries = []
    for version in published_versions(store):
        current = channel is not None and channel.version == version
        try:
            entries.append(ReleaseEntry(version, current, read_manifest(store, version)))
        except (IntegrityError, ReleaseNotFoundError) as exc:
            entries.append(ReleaseEntry(version, current, None, exc.message))
    return entries, channel
