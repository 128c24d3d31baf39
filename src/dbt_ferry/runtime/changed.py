"""State-aware runs: build only what changed since the environment's last successful state.

As dbt Cloud's state-aware orchestration does, with dbt's own selectors: the command selects ``state:modified+``
against the environment's state (``state/<env>/``, the last fully successful run's manifest), and
``source_status:fresher+`` against that run's ``sources.json`` once ``dbt source freshness`` has run in this one.
A state-aware run that succeeds becomes the environment's state, so the next one compares with it. Without a
usable state (the first run, a damaged or untrusted one) everything is built, and the run says why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dbt_ferry.core.errors import IntegrityError, ReleaseNotFoundError
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.runtime.spec import ChangedSince, JobSpec
from dbt_ferry.runtime.state import restore_state, state_trust

log = logging.getLogger(__name__)

#: The commands a state-aware run narrows (their results become the environment's state).
STATE_AWARE_COMMANDS = frozenset({"build", "run"})
#: What the state-aware command always selects; ``source_status:fresher+`` joins when both freshness results exist.
MODIFIED = "state:modified+"
FRESHER = "source_status:fresher+"
#: The resources ``build`` runs, as counted in the run's line.
_BUILT_TYPES = frozenset({"model", "seed", "snapshot", "test"})


def state_aware_wanted(spec: JobSpec) -> bool:
    """Asked for (``--state-aware`` or the environment's ``state_aware``), for a ``build`` or ``run`` of the
    whole project: a selection, a state of its own, a retry or CI keep their own meaning."""
    request = spec.request
    wanted = spec.environment.state_aware if request.state_aware is None else request.state_aware
    if not wanted or spec.command[0] not in STATE_AWARE_COMMANDS or spec.environment.ci or spec.retry_of:
        return False
    return not (spec.has_selection or request.state or spec.state_dir)  # state_dir: --state-from, --defer-to


def compare_with_own_state(spec: JobSpec, store: ArtifactStore, work_root: Path) -> JobSpec:
    """``spec`` made state-aware: the environment's own state restored (verified, trusted) as its ``--state``;
    without one to use, the run builds everything and says why."""
    if not state_aware_wanted(spec):
        return spec
    name = spec.environment.name
    dest = work_root / f"state-{name}"
    try:
        record = restore_state(store, name, state_trust(spec.environment, store), dest)
    except (ReleaseNotFoundError, IntegrityError) as exc:
        reason = f"{exc.message} — everything is built"
        log.warning("state-aware: %s", reason)
        return spec.model_copy(update={"state_aware_fallback": reason})
    changed = ChangedSince(
        release_version=record.release_version,
        invocation_id=record.invocation_id,
        created_at=record.created_at,
        sources="sources.json" in record.files,
    )
    log.info("state-aware: comparing with the state of release %s, run %s", changed.release_version,
             changed.invocation_id)  # fmt: skip
    return spec.model_copy(update={"changed_since": changed, "state_dir": str(dest)})


def state_aware(spec: JobSpec) -> bool:
    """Whether the job is a state-aware run (narrowed to what changed, or everything with the reason why)."""
    return spec.changed_since is not None or spec.state_aware_fallback is not None


def state_selection(spec: JobSpec) -> tuple[str, ...]:
    """What the state-aware command selects: ``state:modified+``, and ``source_status:fresher+`` when the state
    and this run both have freshness results (dbt refuses the method otherwise); () when not state-aware."""
    if spec.changed_since is None:
        return ()
    fresher = spec.changed_since.sources and (spec.project_path / "target" / "sources.json").is_file()
    return (MODIFIED, FRESHER) if fresher else (MODIFIED,)


def state_aware_line(spec: JobSpec, results: dict[str, Any] | None, manifest: dict[str, Any] | None) -> str | None:
    """What a state-aware run built and what it left alone, and why, in one line (summary, notification)."""
    if spec.state_aware_fallback is not None:
        return f"state-aware: {spec.state_aware_fallback}"
    changed = spec.changed_since
    if changed is None:
        return None
    nodes = (manifest or {}).get("nodes") or {}
    total = {uid for uid, node in nodes.items() if isinstance(node, dict) and node.get("resource_type") in _BUILT_TYPES}
    ran = {r.get("unique_id") for r in (results or {}).get("results") or [] if isinstance(r, dict)}
    built = len(total & ran)
    has_sources = bool((manifest or {}).get("sources"))
    why = " or downstream of a fresher source" if has_sources and FRESHER in state_selection(spec) else ""
    since = f"release {changed.release_version}, run {changed.invocation_id}, {changed.created_at:%Y-%m-%d %H:%M} UTC"
    return (
        f"state-aware: built {built:,} of {len(total):,} models, seeds, snapshots and tests — changed since the "
        f"state of {since}{why}; {len(total) - built:,} unchanged, not run"
    )
