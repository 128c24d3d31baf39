"""The first half of a job: resolve the environment, fetch the release, enter its environment.

Needs only dbt-ferry's bootstrap dependencies (no dbt, no Prefect): this is what the container
image runs before it hands over to the release's packed Python.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dbt_ferry.config.loader import (
    Overrides,
    ProjectConfig,
    load_project,
    project_dir_from,
    resolve_environment,
    resolve_environment_name,
)
from dbt_ferry.config.models import EnvironmentConfig
from dbt_ferry.config.store_url import absolute_store, parse_store_url
from dbt_ferry.core.constants import ENV_ENVIRONMENT, ENV_STORE, ENV_WORK_DIR
from dbt_ferry.core.errors import ConfigError, FerryError, ReleaseNotFoundError
from dbt_ferry.core.names import clean_value
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.release.catalog import published_versions, read_channel, read_manifest
from dbt_ferry.release.fetch import FetchedRelease, fetch_release
from dbt_ferry.release.trust import release_trust
from dbt_ferry.runtime.changed import compare_with_own_state
from dbt_ferry.runtime.flow_run import FlowRunRecord, PrefectApi, is_worker_default_command, worker_flow_run
from dbt_ferry.runtime.mode import uses_prefect
from dbt_ferry.runtime.parameters import RunParameters
from dbt_ferry.runtime.preflight import check_adapter, check_dbt_version, check_selection, check_target, site_dirs
from dbt_ferry.runtime.retry import check_masked_vars, find_run, restore_run
from dbt_ferry.runtime.spec import JobRequest, JobSpec
from dbt_ferry.runtime.state import restore_parse_cache, restore_state, state_trust
from dbt_ferry.runtime.workdir import WorkDir, acquire_work_dir, release_work_dir
from dbt_ferry.storage import open_store

log = logging.getLogger(__name__)


def _accounts_from_store(store: ArtifactStore) -> dict[str, str]:
    versions = published_versions(store)
    return read_manifest(store, versions[0]).aws_accounts if versions else {}


def detect_environment(project: ProjectConfig, store: ArtifactStore | None) -> str:
    """Match the AWS account id of the current credentials against the configured environments."""
    from dbt_ferry.runtime.aws import caller_account_id

    accounts: dict[str, str] = {}
    for name in project.environments:
        account = resolve_environment(project, name, environ={}).aws_account_id
        if account:
            accounts[name] = account
    where = project.source
    if not accounts and store is not None:
        accounts = _accounts_from_store(store)
        where = f"the newest release in {store.url}"
    if not accounts:
        raise ConfigError(
            "no environment given, and no environment has an aws_account_id to detect it",
            f"pass --env NAME, set {ENV_ENVIRONMENT}, or set aws_account_id per environment",
        )
    account = caller_account_id()
    matches = sorted(name for name, value in accounts.items() if value == account)
    if len(matches) != 1:
        known = ", ".join(f"{n}={a}" for n, a in sorted(accounts.items()))
        problem = "no environment" if not matches else f"several environments ({', '.join(matches)})"
        raise ConfigError(
            f"{problem} configured for AWS account {account} (in {where}: {known})",
            f"pass --env NAME or set {ENV_ENVIRONMENT}",
        )
    log.info("environment %s detected from AWS account %s", matches[0], account)
    return matches[0]


def with_flow_run(request: JobRequest, flow_run: FlowRunRecord) -> JobRequest:
    """The request of a deployment's run: the container's arguments, with the flow run's parameters over them.

    A worker's own default command (``prefect flow-run execute``, when the deployment sets none) arrives as the
    arguments of the image's entrypoint ``dbt-ferry run``: it means the flow run's parameters alone.
    """
    if is_worker_default_command(request.dbt_args):
        request = request.model_copy(update={"dbt_args": ()})
    given = flow_run.parameters
    parameters = RunParameters.parse(given, where=f"the Prefect flow run {flow_run.name!r}")
    return parameters.apply_to(request, given)


def prepare(
    request: JobRequest, *, cache_dir: Path | None = None, with_env: bool = True, adopt_flow_run: bool = True
) -> tuple[JobSpec, FetchedRelease]:
    """Resolve, fetch and verify; return the job spec ready to run (``with_env``: also the env pack).

    Started by a Prefect worker (``PREFECT__FLOW_RUN_ID``), the job takes the flow run's parameters and runs as
    that flow run; when it cannot start, the flow run is marked Failed with the error (``adopt_flow_run``).
    """
    adopted = worker_flow_run(os.environ) if adopt_flow_run else None
    if adopted is None:
        return _prepare(request, cache_dir=cache_dir, with_env=with_env, flow_run_id=None)
    api, flow_run = adopted
    try:
        return _prepare(
            with_flow_run(request, flow_run), cache_dir=cache_dir, with_env=with_env, flow_run_id=flow_run.id
        )
    except FerryError as exc:
        _fail(api, flow_run.id, exc)
        raise


def _fail(api: PrefectApi, flow_run_id: str, exc: FerryError) -> None:
    log.info("marking the Prefect flow run %s Failed: %s", flow_run_id, exc)
    api.fail_flow_run(flow_run_id, f"dbt-ferry could not start the job: {exc} (exit code {exc.exit_code})")


def fail_started_flow_run(spec: JobSpec, exc: FerryError) -> None:
    """The job of a deployment's flow run cannot go on: say so on the flow run (never raises)."""
    api = PrefectApi.from_environ(os.environ)
    if spec.flow_run_id and api is not None:
        _fail(api, spec.flow_run_id, exc)


def _prepare(
    request: JobRequest, *, cache_dir: Path | None, with_env: bool, flow_run_id: str | None
) -> tuple[JobSpec, FetchedRelease]:
    check_selection(request)  # a mistake in the command line is told before anything is fetched
    local = load_project(project_dir_from(request.project_dir))
    store_url = request.store or os.environ.get(ENV_STORE)
    name = resolve_environment_name(request.environment)
    if not name:
        probe_store = open_store(parse_store_url(store_url)) if store_url else None
        name = detect_environment(local, probe_store)
    overrides = Overrides(store=store_url, target=request.target)
    env = resolve_environment(local, name, overrides)
    store_config = absolute_store(env.store, local.project_dir)
    store = open_store(store_config)
    channel = read_channel(store, name)
    if request.version is not None and not clean_value(request.version):
        raise ReleaseNotFoundError("the release version given is empty", "give one, or none for the channel's")
    version = clean_value(request.version) if request.version else None
    retried = find_run(store, name, request.retry_of) if request.retry_of else None
    if retried is not None:
        version = version or retried.release_version  # the same SQL as the run that failed
    work = acquire_work_dir(name, store.url, request.work_dir or os.environ.get(ENV_WORK_DIR))
    work_root = work.path
    try:
        trust = release_trust(env)
        fetched = fetch_release(
            store, name, work_root / "project", version=version, cache_dir=cache_dir, with_env=with_env, trust=trust
        )
        # The release's own configuration is authoritative from here on; flags and variables still win.
        released = load_project(fetched.project_dir)
        final_env: EnvironmentConfig = resolve_environment(
            released, name, Overrides(store=store_url or store_config, target=request.target)
        )
        released_trust = release_trust(final_env)
        if released_trust is not None and released_trust != trust:
            released_trust.check(fetched.manifest, store.url)  # the release asks for a signature: it must have it
        state_dir = _other_state(request, released, work_root)
        target, target_type = check_target(
            fetched.project_dir, final_env.target, where=f"profiles/{name}.yml of release {fetched.manifest.version}"
        )
        paths = site_dirs(fetched.env_dir)
        if check_dbt_version(paths) is not None:  # else: no dbt here, which enter_env tells
            check_adapter(target_type, paths)
        if retried is not None:
            restore_run(store, name, retried, fetched.project_dir / "target")
            check_masked_vars(fetched.project_dir / "target", request.vars, final_env.secret_vars)
    except BaseException:
        _abandon(work)
        raise
    if work.stable and restore_parse_cache(store, name, fetched.project_dir, state_trust(final_env, store)):
        log.info("restored dbt's parse cache from %s", store.url)
    spec = JobSpec(
        request=request,
        environment=final_env,
        store=store_config,
        project_dir=str(fetched.project_dir),
        work_root=str(work_root),
        manifest=fetched.manifest,
        channel_release=channel is not None and channel.version == fetched.manifest.version,
        target=target,
        target_type=target_type,
        cleanup=not request.keep_work_dir,
        lock_fd=work.lock_fd,
        flow_run_id=flow_run_id,
        state_dir=str(state_dir) if state_dir else None,
        retry_of=retried.invocation_id if retried else None,
    )
    try:
        spec = compare_with_own_state(spec, store, work_root)
    except BaseException:
        _abandon(work)
        raise
    return spec, fetched


def _abandon(work: WorkDir) -> None:
    """A job that cannot start: its half-made work folder removed, its lock released."""
    import shutil

    shutil.rmtree(work.path, ignore_errors=True)
    release_work_dir(work.lock_fd)


def _other_state(request: JobRequest, released: ProjectConfig, work_root: Path) -> Path | None:
    """``--state-from ENV`` / ``--defer-to ENV``: ENV's state from ENV's own store (as the release configures it),
    verified into the work directory, for the command's ``--state``."""
    other = request.defer_to or request.state_from
    if not other:
        return None
    if request.defer_to and request.state_from and request.defer_to != request.state_from:
        raise ConfigError("--defer-to and --state-from name two environments", "give one of them")
    if request.state:
        raise ConfigError(f"--state and the state of {other} both given", "give one of them")
    environment = resolve_environment(released, other, environ={})  # its own store, whatever overrides ours
    store = open_store(absolute_store(environment.store, released.project_dir))
    dest = work_root / f"state-{other}"
    record = restore_state(store, other, state_trust(environment, store), dest)
    log.info("using the state of %s from %s (release %s, run %s)", other, store.url, record.release_version,
             record.invocation_id)  # fmt: skip
    return dest


def job_runtime_available(*, prefect: bool = True) -> bool:
    """Whether this interpreter can run the job itself (dbt importable, and Prefect when the job uses it)."""
    import importlib.util

    # Top-level names only: finding "dbt.cli.main" would import dbt, whose tracker configures the root logger.
    needed = ("dbt", "prefect") if prefect else ("dbt",)
    return all(importlib.util.find_spec(m) is not None for m in needed)


def enter_env(spec: JobSpec, fetched: FetchedRelease) -> None:
    """Continue in the release's packed Python: write the spec, then exec. Returns only when not needed."""
    if fetched.env_dir is None:
        if not job_runtime_available(prefect=uses_prefect(spec)):
            error = FerryError(
                f"release {spec.manifest.version} has no env pack, and this Python has no dbt-core/prefect",
                "publish the release with --with-env, or install dbt-ferry[job] and your dbt adapter here",
            )
            fail_started_flow_run(spec, error)
            raise error
        return
    env_dir = fetched.env_dir
    if Path(sys.prefix).resolve() == env_dir.resolve():
        return
    python = env_dir / "bin" / "python"
    spec_file = Path(spec.work_root) / "job.json"
    descriptor = os.open(spec_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds --vars
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(spec.model_dump_json())
    log.info("continuing in the release's environment %s", env_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [str(python), "-m", "dbt_ferry.runtime.job", str(spec_file)])  # noqa: S606
