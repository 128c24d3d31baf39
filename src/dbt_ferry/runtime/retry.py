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

from dbt_ferry.core.errors import ConfigError, FerryError, ReleaseNotFoundError, StoreNotFoundError
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


def check_masked_vars(target: Path, vars_yaml: str | None, patterns: tuple[str, ...]) -> None:
    """``dbt retry`` runs with the failed run's ``--vars``, as its ``run_results.json`` holds them: the secret ones
    were published masked, so they must be given again (``--vars``, which ``dbt retry`` takes over the old)."""
    import yaml

    from dbt_ferry.core.masking import mask_mapping

    try:
        old = json.loads((target / "run_results.json").read_text(encoding="utf-8")).get("args", {}).get("vars")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(old, str):
        old = yaml.safe_load(old) if old.strip() else None
    if not isinstance(old, dict):
        return
    given = yaml.safe_load(vars_yaml) if vars_yaml else None
    missing = []
    for key, value in old.items():
        secret = mask_mapping({key: value}, patterns)[1]
        if secret and all(set(v) == {"*"} for v in secret) and not (isinstance(given, dict) and key in given):
            missing.append(str(key))
    if missing:
        raise ConfigError(
            f"the run's secret --vars were kept masked ({', '.join(missing)}): dbt retry would run with stars",
            "give them again: dbt-ferry retry ... --vars '{" + ", ".join(f"{k}: ..." for k in missing) + "}'",
        )
