"""The library face of every command: each CLI command calls exactly one of these."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbt_ferry.config.loader import (
    Overrides,
    ProjectConfig,
    load_project,
    project_dir_from,
    resolve_environment,
    resolve_environment_name,
)
from dbt_ferry.config.models import EnvironmentConfig, ExportsConfig
from dbt_ferry.config.store_url import absolute_store
from dbt_ferry.core.constants import ENV_ENVIRONMENT, ENV_STORE
from dbt_ferry.core.errors import ConfigError, ExportError, FerryError, ReleaseNotFoundError
from dbt_ferry.core.layout import run_prefix
from dbt_ferry.core.manifest import Channel
from dbt_ferry.core.store import ArtifactStore, ProgressCallback
from dbt_ferry.release.catalog import ReleaseEntry, list_releases
from dbt_ferry.release.contents import CodeContents
from dbt_ferry.release.fetch import FetchedRelease, fetch_release
from dbt_ferry.release.package import BuiltRelease, list_contents, package_release
from dbt_ferry.release.publish import PublishResult, promote_release, publish_release
from dbt_ferry.release.trust import release_trust
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage import open_store

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from dbt_ferry.exports.history import History, ModelHistory
    from dbt_ferry.exports.report import ReportResult
    from dbt_ferry.exports.tables import ExportResult
    from dbt_ferry.runtime.prune import PrunePlan
    from dbt_ferry.runtime.report import JobReport
    from dbt_ferry.runtime.state import StateRecord


@dataclass(frozen=True)
class Environment:
    """A resolved environment with its project configuration and opened store."""

    project: ProjectConfig
    config: EnvironmentConfig
    store: ArtifactStore


def open_environment(
    env: str | None,
    project_dir: str | Path | None = None,
    *,
    store: str | None = None,
    target: str | None = None,
) -> Environment:
    name = resolve_environment_name(env)
    if not name:
        raise ConfigError("no environment given", f"pass --env NAME or set {ENV_ENVIRONMENT}")
    project = load_project(project_dir_from(project_dir))
    if not (
        store or os.environ.get(ENV_STORE) or project.pyproject or (project.project_dir / "dbt_project.yml").is_file()
    ):
        raise ConfigError(
            f"{project.project_dir} is not a dbt project (no dbt_project.yml, no pyproject.toml)",
            "run dbt-ferry in your dbt project or pass --project-dir (dbt-ferry init adopts it), or name a --store",
        )
    config = resolve_environment(project, name, Overrides(store=store, target=target))
    return Environment(project, config, open_store(config.store, project.project_dir))


def package(
    project_dir: str | Path | None = None,
    *,
    out: str | Path | None = None,
    with_env: bool = False,
    allow_literal_secrets: bool = False,
) -> BuiltRelease:
    """Build a release of the project into ``out`` (default ``<project>/.ferry/build/<version>``)."""
    project = load_project(project_dir_from(project_dir))
    return package_release(
        project, Path(out) if out else None, with_env=with_env, allow_literal_secrets=allow_literal_secrets
    )


def package_contents(project_dir: str | Path | None = None) -> CodeContents:
    """What ``package`` would put into ``code.tar.zst`` and what it would leave out, and why; writes nothing."""
    return list_contents(load_project(project_dir_from(project_dir)))


def publish(
    env: str | None,
    project_dir: str | Path | None = None,
    *,
    promote: bool = False,
    force: bool = False,
    with_env: bool = False,
    from_dir: str | Path | None = None,
    store: str | None = None,
    progress: ProgressCallback | None = None,
    allow_literal_secrets: bool = False,
) -> PublishResult:
    """Package the project (or take the release built in ``from_dir``) and publish it to ``env``'s store."""
    target = open_environment(env, project_dir, store=store)
    built = (
        BuiltRelease.load(Path(from_dir))
        if from_dir
        else package_release(target.project, with_env=with_env, allow_literal_secrets=allow_literal_secrets)
    )
    return publish_release(
        target.store,
        built,
        environment=target.config.name,
        promote=promote,
        force=force,
        progress=progress,
        trust=release_trust(target.config),
    )


def releases(
    env: str | None, project_dir: str | Path | None = None, *, store: str | None = None
) -> tuple[Environment, list[ReleaseEntry], Channel | None]:
    """Published releases of ``env``'s store, newest first, and ``env``'s channel."""
    target = open_environment(env, project_dir, store=store)
    entries, channel = list_releases(target.store, target.config.name)
    return target, entries, channel


def promote(
    env: str | None, version: str, project_dir: str | Path | None = None, *, store: str | None = None
) -> Channel:
    """Move ``env``'s channel to ``version``: a deploy, or a rollback."""
    target = open_environment(env, project_dir, store=store)
    return promote_release(target.store, target.config.name, version)


def fetch(
    env: str | None,
    dest: str | Path,
    *,
    version: str | None = None,
    project_dir: str | Path | None = None,
    store: str | None = None,
    with_env: bool = True,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> FetchedRelease:
    """Download, verify and extract a release of ``env`` into ``dest``."""
    target = open_environment(env, project_dir, store=store)
    return fetch_release(
        target.store,
        target.config.name,
        Path(dest),
        version=version,
        with_env=with_env,
        cache_dir=Path(cache_dir) if cache_dir else None,
        progress=progress,
        trust=release_trust(target.config),
    )


def state(env: str | None, project_dir: str | Path | None = None, *, store: str | None = None) -> StateRecord:
    """The environment's state record, trusted and checked (each file against its digest); a typed error (exit 5:
    none, 7: not trusted or not intact) says why it cannot be used."""
    import tempfile

    from dbt_ferry.runtime.state import restore_state, state_trust

    target = open_environment(env, project_dir, store=store)
    with tempfile.TemporaryDirectory(prefix="dbt-ferry-state-") as tmp:
        return restore_state(target.store, target.config.name, state_trust(target.config, target.store), Path(tmp))


def prune(
    env: str | None,
    project_dir: str | Path | None = None,
    *,
    keep: int | None = None,
    older_than_days: float | None = None,
    releases: bool = False,
    dry_run: bool = False,
    store: str | None = None,
) -> PrunePlan:
    """Remove ``env``'s runs beyond the ``keep`` newest and/or older than ``older_than_days`` (and with
    ``releases``, releases by the same rule), never what a channel, a state or a retry needs; ``dry_run``: only say."""
    from datetime import timedelta

    from dbt_ferry.runtime.prune import PruneRule, apply_prune, plan_prune

    older = timedelta(days=older_than_days) if older_than_days is not None else None
    rule = PruneRule(keep=keep, older_than=older)
    target = open_environment(env, project_dir, store=store)
    plan = plan_prune(target.store, target.config.name, rule, releases=releases)
    if not dry_run:
        apply_prune(target.store, plan)
    return plan


def run(environment: str | None = None, **options: Any) -> JobReport:
    """Run a release as ``dbt-ferry run`` does, in this Python (which needs ``dbt-ferry[job]`` and the adapter).

    ``options`` are the fields of :class:`~dbt_ferry.runtime.spec.JobRequest` (``version``, ``select``,
    ``dbt_args``, ``store``...). The release's env pack is not used: this interpreter runs the job.
    """
    from dbt_ferry.runtime.bootstrap import job_runtime_available, prepare
    from dbt_ferry.runtime.job import execute

    if not job_runtime_available(prefect=not options.get("no_prefect")):
        raise FerryError("this Python has no dbt-core/prefect to run a job", "install dbt-ferry[job] and your adapter")
    spec, _ = prepare(JobRequest(environment=environment, **options), with_env=False)
    return execute(spec)


def export(
    env: str | None,
    run_dir: str | Path | None = None,
    *,
    invocation_id: str | None = None,
    project_dir: str | Path | None = None,
    store: str | None = None,
) -> ExportResult:
    """(Re-)export one run into the result tables: from a local folder, or from ``runs/<env>/<id>/`` in the store."""
    target = open_environment(env, project_dir, store=store)
    with _tables(target, "write"):
        return _export(target, target.config.exports, run_dir, invocation_id)


@contextmanager
def _tables(target: Environment, doing: str) -> Iterator[None]:
    """Turn whatever the catalog raises into one :class:`ExportError` (exit 10) naming the catalog."""
    from dbt_ferry.exports.catalog import catalog_location

    try:
        yield
    except FerryError:
        raise
    except Exception as exc:
        where = catalog_location(target.config.exports.catalog, target.config.store)
        first = " ".join(str(exc).strip().split("\n", 1)[0].split())  # SQLAlchemy adds the SQL and a link below
        raise ExportError(
            f"could not {doing} the result tables ({where}): {type(exc).__name__}: {first}",
            "check the catalog's address and permissions",
        ) from exc


def _catalog(target: Environment) -> Catalog:
    from dbt_ferry.exports.catalog import open_catalog

    return open_catalog(target.config.exports.catalog, absolute_store(target.config.store, target.project.project_dir))


def _export(
    target: Environment, exports: ExportsConfig, run_dir: str | Path | None, invocation_id: str | None
) -> ExportResult:
    import tempfile

    from dbt_ferry.exports.tables import export_run

    catalog = _catalog(target)
    options: dict[str, Any] = {"environment": target.config.name, "compiled_code": exports.compiled_code}
    if run_dir is not None:
        return export_run(catalog, exports.namespace, Path(run_dir), **options)
    if not invocation_id:
        raise ConfigError("nothing to export", "pass --run-dir DIR or --invocation ID")
    prefix = run_prefix(target.config.name, invocation_id)
    keys = target.store.list_keys(prefix)
    if not keys:
        raise ReleaseNotFoundError(f"no run {invocation_id} in {target.store.url}/{prefix}", "check the invocation id")
    with tempfile.TemporaryDirectory(prefix="dbt-ferry-export-") as tmp:
        for key in keys:
            target.store.download(key, Path(tmp) / key.rsplit("/", 1)[-1])
        return export_run(catalog, exports.namespace, Path(tmp), **options)


def history(
    env: str | None,
    *,
    days: int = 14,
    model: str | None = None,
    project_dir: str | Path | None = None,
    store: str | None = None,
) -> History | ModelHistory:
    """Recent runs, slowest models and what fails in ``env``, from the result tables; with ``model`` (a unique_id
    or a name), that model's last runs instead."""
    from dbt_ferry.exports.history import load_history, load_model_history

    target = open_environment(env, project_dir, store=store)
    namespace = target.config.exports.namespace
    with _tables(target, "read"):
        catalog = _catalog(target)
        if model:
            return load_model_history(catalog, namespace, target.config.name, model, days=days)
        return load_history(catalog, namespace, target.config.name, days=days)


def report(
    env: str | None,
    *,
    days: int = 30,
    out: str | Path | None = None,
    project_dir: str | Path | None = None,
    store: str | None = None,
) -> ReportResult:
    """Write the history report of ``env`` (its runs of the last ``days`` days) to ``out`` (default
    ``history-<env>.html`` in the current directory): one self-contained HTML file; each run links to its
    artifacts in the store."""
    from dbt_ferry.exports.report import save_report, store_runs_url
    from dbt_ferry.exports.report_data import load_report

    target = open_environment(env, project_dir, store=store)
    name = target.config.name
    dest = Path(out) if out is not None else Path(f"history-{name}.html")
    started = time.perf_counter()
    with _tables(target, "read"):
        rule = target.config.notify.regressions
        data = load_report(_catalog(target), target.config.exports.namespace, name, days=days, rule=rule)
    runs_url = store_runs_url(absolute_store(target.config.store, target.project.project_dir), name)
    try:
        return save_report(data, dest, runs_url=runs_url, started=started)
    except OSError as exc:
        raise FerryError(f"could not write {dest}: {exc.strerror or exc}", "give --out a writable path") from exc
