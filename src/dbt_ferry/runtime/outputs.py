"""Publish what a job leaves behind to the store: docs, the run's artifacts, the state for slim CI."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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


#: Uploads of a run's files at once: S3 answers each PUT in tens of milliseconds, and a run has up to ten.
_UPLOAD_THREADS = 4


def _upload_all(store: ArtifactStore, uploads: list[tuple[Path, str]]) -> dict[str, FerryError | None]:
    """Each ``(source, key)`` uploaded, several at a time; each key's error, or None, in the order given."""

    def put(source: Path, key: str) -> FerryError | None:
        try:
            store.upload(key, source)
        except FerryError as exc:
            return exc
        return None

    if len(uploads) <= 1:
        return {key: put(source, key) for source, key in uploads}
    with ThreadPoolExecutor(max_workers=_UPLOAD_THREADS, thread_name_prefix="dbt-ferry-upload") as pool:
        futures = {key: pool.submit(put, source, key) for source, key in uploads}
        return {key: future.result() for key, future in futures.items()}


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
    prefix = run_prefix(environment, invocation_id)
    whole = publication.environment is not None
    docs_at = docs_key(environment) if whole else prefix + "index.html"
    uploads = [(target / name, prefix + name) for name in RUN_FILES]
    uploads += [(project_dir / "logs" / "dbt.log", prefix + "dbt.log"), (target / "static_index.html", docs_at)]
    if whole:
        uploads.append((target / "timing.html", timing_key(environment)))
    done = _upload_all(store, [(source, key) for source, key in uploads if source.is_file()])
    for key, error in done.items():
        if error is not None:
            failed.add(key, error)
    went_up = {key for key, error in done.items() if error is None}
    if any(key.startswith(prefix) and key != docs_at for key in went_up):
        published.run_prefix = prefix
    for key in (prefix + "timing.html", timing_key(environment)):  # the environment's chart, when it is
        if key in went_up:
            published.timing = key
    if docs_at in went_up:
        published.docs = docs_at
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
