"""Publish what a job leaves behind to the store: docs, the run's artifacts, the state for slim CI."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dbt_ferry.core.errors import FerryError
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.runtime.state import StateOrigin, publish_state

log = logging.getLogger(__name__)

RUN_FILES = ("run_results.json", "manifest.json", "sources.json", "catalog.json", "ferry.json", "timing.html")


@dataclass
class PublishedOutputs:
    docs: str | None = None
    timing: str | None = None
    run_prefix: str | None = None
    state: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def docs_key(environment: str) -> str:
    return f"docs/{environment}/index.html"


def timing_key(environment: str) -> str:
    return f"docs/{environment}/timing.html"


def run_prefix(environment: str, invocation_id: str) -> str:
    return f"runs/{environment}/{invocation_id}/"


def publish_outputs(
    store: ArtifactStore,
    environment: str,
    project_dir: Path,
    invocation_id: str,
    *,
    docs: bool,
    state: StateOrigin | None = None,
    timing: bool = False,
) -> PublishedOutputs:
    """Upload what exists; a missing file is skipped, a failing upload is recorded, never raised. ``state``: also
    the environment's state (after a fully successful run of the channel's release), with its record."""
    target = project_dir / "target"
    published = PublishedOutputs()

    def put(source: Path, key: str) -> bool:
        try:
            store.upload(key, source)
        except FerryError as exc:
            published.problems.append(f"could not publish {source.name} to {key}: {exc}")
            log.error("could not publish %s to %s: %s", source, key, exc)
            return False
        return True

    prefix = run_prefix(environment, invocation_id)
    for name in RUN_FILES:
        if (target / name).is_file():
            put(target / name, prefix + name)
            published.run_prefix = prefix
    dbt_log = project_dir / "logs" / "dbt.log"
    if dbt_log.is_file() and put(dbt_log, prefix + "dbt.log"):
        published.run_prefix = prefix
    if docs and (target / "static_index.html").is_file() and put(target / "static_index.html", docs_key(environment)):
        published.docs = docs_key(environment)
    if timing and (target / "timing.html").is_file() and put(target / "timing.html", timing_key(environment)):
        published.timing = timing_key(environment)
    if state is not None:
        written = publish_state(
            store, environment, target, trust=state.trust, release_version=state.release_version,
            build_id=state.build_id, invocation_id=invocation_id, project_dir=project_dir,
        )  # fmt: skip
        published.state, published.problems = written.keys, published.problems + written.problems
    return published
