"""``dbt-ferry prune``: remove an environment's old runs (and, on request, releases) from any store.

Never removed, whatever the rule: the run ``dbt-ferry retry`` would take (``runs/<env>/last-failed.json``), the run
that wrote the environment's state, a release a channel points at or would roll back to (``previous``), a release
any environment's state or last failed run was made with, and anything that cannot be dated. A run's age is its
``ferry.json``'s ``started_at``; a release's is its ``release.json``'s ``created_at``. Releases go ``release.json``
first, so a reader never finds half a release.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dbt_ferry.core.errors import ConfigError, FerryError, StoreNotFoundError
from dbt_ferry.core.layout import last_failed_key, runs_prefix, state_prefix
from dbt_ferry.core.manifest import MANIFEST_NAME, ReleaseManifest
from dbt_ferry.core.names import release_prefix, version_sort_key
from dbt_ferry.core.runinfo import RUN_INFO_NAME, RunInfo
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.release.catalog import published_versions, read_channel


@dataclass(frozen=True)
class PruneRule:
    """Keep the ``keep`` newest; of the others, remove those older than ``older_than`` (both: both must hold)."""

    keep: int | None = None
    older_than: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep is None and self.older_than is None:
            raise ConfigError("prune needs a rule", "pass --keep N, --older-than DAYS, or both")
        if self.keep is not None and self.keep < 0:
            raise ConfigError(f"--keep {self.keep} is negative", "give 0 or more")

    def removes(self, dated: list[tuple[str, datetime]], now: datetime) -> list[str]:
        """Which of ``dated`` (name, time) go: beyond the newest ``keep`` and older than ``older_than``."""
        ordered = sorted(dated, key=lambda item: item[1], reverse=True)
        beyond = ordered[self.keep :] if self.keep is not None else ordered
        if self.older_than is None:
            return [name for name, _ in beyond]
        return [name for name, when in beyond if now - when > self.older_than]


@dataclass
class PrunePlan:
    environment: str
    runs: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    #: What is kept although the rule would remove it, with why.
    protected: dict[str, str] = field(default_factory=dict)
    kept_runs: int = 0
    keys: list[str] = field(default_factory=list)


def _read_json(store: ArtifactStore, key: str) -> dict[str, object] | None:
    try:
        data = json.loads(store.read_bytes(key))
    except (StoreNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _environments(store: ArtifactStore) -> set[str]:
    names = set()
    for prefix in ("channels/", "state/", "runs/"):
        for key in store.list_keys(prefix):
            part = key[len(prefix) :].split("/", 1)[0]
            names.add(part.removesuffix(".json") if prefix == "channels/" else part)
    return names


def _needed_runs(store: ArtifactStore, environment: str) -> dict[str, str]:
    needed = {}
    failed = _read_json(store, last_failed_key(environment))
    if failed and failed.get("invocation_id"):
        needed[str(failed["invocation_id"])] = "the last failed run (dbt-ferry retry)"
    state = _read_json(store, state_prefix(environment) + "state.json")
    if state and state.get("invocation_id"):
        needed[str(state["invocation_id"])] = "the run of the environment's state"
    return needed


def _needed_releases(store: ArtifactStore) -> dict[str, str]:
    needed: dict[str, str] = {}
    for environment in sorted(_environments(store)):
        channel = read_channel(store, environment) if store.size(f"channels/{environment}.json") else None
        if channel is not None:
            needed.setdefault(channel.version, f"the channel of {environment}")
            if channel.previous:
                needed.setdefault(channel.previous, f"the rollback target of {environment}")
        state = _read_json(store, state_prefix(environment) + "state.json")
        if state and state.get("release_version"):
            needed.setdefault(str(state["release_version"]), f"the state of {environment}")
        failed = _read_json(store, last_failed_key(environment))
        if failed and failed.get("invocation_id"):
            info = _read_json(store, f"{runs_prefix(environment)}{failed['invocation_id']}/{RUN_INFO_NAME}")
            if info and info.get("release_version"):
                needed.setdefault(str(info["release_version"]), f"the last failed run of {environment}")
    return needed


def plan_prune(
    store: ArtifactStore, environment: str, rule: PruneRule, *, releases: bool = False, now: datetime | None = None
) -> PrunePlan:
    """What :func:`apply_prune` would remove from ``store``: nothing is changed here."""
    now = now or datetime.now(UTC)
    plan = PrunePlan(environment)
    by_run: dict[str, list[str]] = defaultdict(list)
    prefix = runs_prefix(environment)
    for key in store.list_keys(prefix):
        rest = key[len(prefix) :]
        if "/" in rest:
            by_run[rest.split("/", 1)[0]].append(key)
    needed = _needed_runs(store, environment)
    dated = []
    for invocation in sorted(by_run):
        raw = _read_json(store, f"{prefix}{invocation}/{RUN_INFO_NAME}")
        try:
            started = RunInfo.model_validate(raw).started_at if raw else None
        except ValueError:
            started = None
        if started is None:
            plan.protected[invocation] = "cannot be dated (no readable ferry.json)"
            continue
        dated.append((invocation, _aware(started)))
    for invocation in rule.removes(dated, now):
        if invocation in needed:
            plan.protected[invocation] = needed[invocation]
            continue
        plan.runs.append(invocation)
        plan.keys += by_run[invocation]
    plan.kept_runs = len(by_run) - len(plan.runs)
    if releases:
        _plan_releases(store, rule, now, plan)
    return plan


def _plan_releases(store: ArtifactStore, rule: PruneRule, now: datetime, plan: PrunePlan) -> None:
    needed = _needed_releases(store)
    dated = []
    for version in published_versions(store):
        data = store.read_bytes(release_prefix(version) + MANIFEST_NAME)
        try:
            dated.append((version, _aware(ReleaseManifest.from_json(data, version).created_at)))
        except FerryError:
            plan.protected[version] = "cannot be dated (release.json unreadable)"
    for version in sorted(rule.removes(dated, now), key=version_sort_key):
        if version in needed:
            plan.protected[version] = needed[version]
            continue
        plan.releases.append(version)
        keys = store.list_keys(release_prefix(version))
        manifest = release_prefix(version) + MANIFEST_NAME
        plan.keys += [manifest, *(k for k in keys if k != manifest)]  # the release is gone once release.json is


def apply_prune(store: ArtifactStore, plan: PrunePlan) -> None:
    """Remove what ``plan`` lists: the releases' ``release.json`` first (then they are no longer releases), then the
    rest."""
    manifests = [release_prefix(version) + MANIFEST_NAME for version in plan.releases]
    if manifests:
        store.delete(manifests)
    first = set(manifests)
    rest = [key for key in plan.keys if key not in first]
    for start in range(0, len(rest), 500):
        store.delete(rest[start : start + 500])
