"""Publish what a job leaves behind to the store: docs, the run's artifacts, the state for slim CI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dbt_ferry.core.errors import FerryError
from dbt_ferry.core.layout import docs_key, last_failed_key, run_prefix, timing_key
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.runtime.state import StateOrigin, publish_state
from dbt_ferry.runtime.uploads import FailedUploads

RUN_FILES = ("run_results.json", "manifest.json", "sources.json", "catalog.json", "ferry.json", "timing.html")


@dataclass
class PublishedOutputs:
    docs: str | None = None
    timing: str | None = None
    run_prefix: str | None = None
    state: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Uploads that failed (keys): what a reader of the store will miss from this run.
    lost: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Publication:
    """What a run publishes beyond its own artifacts (``runs/<env>/<id>/``)."""

    #: A fully successful, unselected run of the channel's release: it is the environment's docs, timing chart
    #: and state (with how its state is signed). Every other run keeps its docs and chart in its own folder.
    environment: StateOrigin | None = None
    #: A failed run: ``runs/<env>/last-failed.json`` names it, for ``dbt-ferry retry``.
    failed: bytes | None = None


def publish_outputs(
    store: ArtifactStore,
    environment: str,
    project_dir: Path,
    invocation_id: str,
    publication: Publication,
) -> PublishedOutputs:
    """Upload what exists; a missing file is skipped, a failing upload is recorded, never raised."""
    target = project_dir / "target"
    published = PublishedOutputs()

    failed = FailedUploads()

    def put(source: Path, key: str) -> bool:
        try:
            store.upload(key, source)
        except FerryError as exc:
            failed.add(key, exc)
            return False
        return True

    prefix = run_prefix(environment, invocation_id)
    for name in RUN_FILES:
        if (target / name).is_file() and put(target / name, prefix + name):
            published.run_prefix = prefix
            if name == "timing.html":
                published.timing = prefix + name
    dbt_log = project_dir / "logs" / "dbt.log"
    if dbt_log.is_file() and put(dbt_log, prefix + "dbt.log"):
        published.run_prefix = prefix
    docs = target / "static_index.html"
    whole = publication.environment is not None
    if docs.is_file():
        key = docs_key(environment) if whole else prefix + "index.html"
        if put(docs, key):
            published.docs = key
    chart = target / "timing.html"
    if whole and chart.is_file() and put(chart, timing_key(environment)):
        published.timing = timing_key(environment)
    if publication.environment is not None:
        origin = publication.environment
        written = publish_state(
            store, environment, target, trust=origin.trust, release_version=origin.release_version,
            build_id=origin.build_id, invocation_id=invocation_id, project_dir=project_dir, failed=failed,
        )  # fmt: skip
        published.state, published.problems = written.keys, published.problems + written.problems
    if publication.failed is not None:
        try:
            store.write_bytes(last_failed_key(environment), publication.failed)
        except FerryError as exc:
            failed.add(last_failed_key(environment), exc)
    problem = failed.problem()
    if problem is not None:
        published.problems.append(problem)
    published.lost = failed.keys
    return published
