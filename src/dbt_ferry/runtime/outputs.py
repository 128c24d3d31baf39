"""Publish what a job leaves behind to the store: docs, the run's artifacts, the state for slim CI."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dbt_ferry.core.errors import FerryError, StoreNotFoundError
from dbt_ferry.core.store import ArtifactStore

log = logging.getLogger(__name__)

RUN_FILES = ("run_results.json", "manifest.json", "sources.json", "catalog.json", "ferry.json", "timing.html")
#: The last fully successful run's manifest (for --state/--defer) and dbt's parse cache (restored before the
#: next run, so that dbt re-parses only what changed; dbt falls back to a full parse by itself when the
#: profile, the vars or its own version differ).
STATE_FILES = ("manifest.json", "partial_parse.msgpack")
PARSE_CACHE = "partial_parse.msgpack"
PARSE_CACHE_INFO = "partial_parse.json"


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


def state_prefix(environment: str) -> str:
    return f"state/{environment}/"


def publish_outputs(
    store: ArtifactStore,
    environment: str,
    project_dir: Path,
    invocation_id: str,
    *,
    docs: bool,
    state: bool,
    timing: bool = False,
) -> PublishedOutputs:
    """Upload what exists; a missing file is skipped, a failing upload is recorded, never raised."""
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
    if state:
        for name in STATE_FILES:
            if (target / name).is_file() and put(target / name, state_prefix(environment) + name):
                published.state.append(state_prefix(environment) + name)
        if state_prefix(environment) + PARSE_CACHE in published.state:
            info = json.dumps({"project_dir": str(project_dir)}).encode()
            try:
                store.write_bytes(state_prefix(environment) + PARSE_CACHE_INFO, info)
            except FerryError as exc:
                published.problems.append(f"could not publish the parse cache's location: {exc}")
    return published


def restore_parse_cache(store: ArtifactStore, environment: str, project_dir: Path) -> bool:
    """Put the last successful run's ``partial_parse.msgpack`` into ``target/``; False when there is none.

    Only a cache made by a project at this very path is reused (dbt reads seed files through the path it
    recorded); ``state/<env>/partial_parse.json`` says where it was made.
    """
    key = state_prefix(environment) + PARSE_CACHE
    target = project_dir / "target"
    try:
        where = json.loads(store.read_bytes(state_prefix(environment) + PARSE_CACHE_INFO))
        if where.get("project_dir") != str(project_dir):
            return False
        target.mkdir(parents=True, exist_ok=True)
        store.download(key, target / PARSE_CACHE)
    except StoreNotFoundError:
        return False
    except (FerryError, ValueError, AttributeError) as exc:
        log.warning("parse cache not restored (a full parse follows): %s", exc)
        (target / PARSE_CACHE).unlink(missing_ok=True)
        return False
    return True
