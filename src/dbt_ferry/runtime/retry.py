"""``dbt-ferry retry``: a failed run's ``target/`` back from the store, in a fresh work directory, for ``dbt retry``.

On Fargate every run is a new container: what ``dbt retry`` reads (the failed run's ``run_results.json``, which
holds the command, its selection and vars, and each node's status) comes from ``runs/<env>/<invocation_id>/``.
The release is the one that run ran (its ``ferry.json``), so the same SQL is retried.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.core.errors import FerryError, ReleaseNotFoundError, StoreNotFoundError
from dbt_ferry.core.layout import last_failed_key, run_prefix
from dbt_ferry.core.runinfo import RUN_INFO_NAME
from dbt_ferry.core.store import ArtifactStore

log = logging.getLogger(__name__)

#: The run ``dbt-ferry retry`` takes when no ``--run`` is given: the environment's last failed one.
LAST_FAILED = "last"
#: What ``dbt retry`` reads from the failed run (the manifest only speeds up its parse).
RETRY_FILES = ("run_results.json", "manifest.json")


@dataclass(frozen=True)
class RetriedRun:
    invocation_id: str
    release_version: str | None
    command: str | None


def _json(store: ArtifactStore, key: str) -> dict[str, object]:
    data = json.loads(store.read_bytes(key))
    if not isinstance(data, dict):
        raise ValueError(f"{key} does not hold a JSON object")
    return data


def find_run(store: ArtifactStore, environment: str, wanted: str) -> RetriedRun:
    """The run to retry: ``wanted`` (an invocation id), or the environment's last failed run (``last``)."""
    if wanted == LAST_FAILED:
        try:
            wanted = str(_json(store, last_failed_key(environment))["invocation_id"])
        except StoreNotFoundError:
            raise ReleaseNotFoundError(
                f"no failed run of {environment} in {store.url} to retry", "pass --run INVOCATION_ID"
            ) from None
        except (FerryError, ValueError, KeyError) as exc:
            raise ReleaseNotFoundError(
                f"{store.url}/{last_failed_key(environment)} cannot be read: {exc}", "pass --run INVOCATION_ID"
            ) from None
    prefix = run_prefix(environment, wanted)
    try:
        info = _json(store, prefix + RUN_INFO_NAME)
    except StoreNotFoundError:
        raise ReleaseNotFoundError(
            f"no run {wanted} of {environment} in {store.url}/{prefix}", "check the invocation id (dbt-ferry history)"
        ) from None
    except ValueError as exc:
        raise ReleaseNotFoundError(f"{store.url}/{prefix}{RUN_INFO_NAME} cannot be read: {exc}") from None
    version = info.get("release_version")
    command = info.get("command")
    return RetriedRun(wanted, str(version) if version else None, str(command) if command else None)


def restore_run(store: ArtifactStore, environment: str, run: RetriedRun, target: Path) -> None:
    """Put the failed run's ``run_results.json`` (and manifest) into ``target/``, where ``dbt retry`` reads it."""
    prefix = run_prefix(environment, run.invocation_id)
    target.mkdir(parents=True, exist_ok=True)
    for name in RETRY_FILES:
        try:
            store.download(prefix + name, target / name)
        except StoreNotFoundError:
            if name == "run_results.json":
                raise ReleaseNotFoundError(
                    f"run {run.invocation_id} of {environment} left no run_results.json in {store.url}/{prefix}",
                    "dbt could not run then: run the job again instead of retrying it",
                ) from None
    log.info("retrying run %s (%s) of release %s", run.invocation_id, run.command, run.release_version)
