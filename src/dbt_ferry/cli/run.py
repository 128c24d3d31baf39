"""``dbt-ferry run`` and ``dbt-ferry retry``: the job, as a container, a laptop or CI runs it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import error, out
from dbt_ferry.core.constants import ENV_NO_PREFECT
from dbt_ferry.core.errors import EXIT_TERMINATED
from dbt_ferry.core.names import clean_value
from dbt_ferry.runtime.spec import JobRequest


def _clean(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in (clean_value(v) for v in values) if c)


def _optional(value: str | None) -> str | None:
    return clean_value(value) if value else None


def _vars(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--vars`` as dbt takes it: a YAML (or JSON) mapping; anything else is refused here, not after the fetch."""
    if value is None or not clean_value(value):
        return None
    text = clean_value(value)
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a YAML mapping, e.g. '{start_date: 2024-01-01}'")
    return text


def _job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What every job takes: where it runs, which release, how it reports."""
    for option in reversed(
        (
            env_option,
            project_dir_option,
            store_option,
            click.option("--target", "-t", metavar="T", help="dbt target (default: the environment's)."),
            click.option("--vars", "vars_", metavar="YAML", callback=_vars, help="dbt --vars, a YAML mapping."),
            click.option("--threads", type=click.IntRange(min=1), help="dbt threads (default: the profile's)."),
            click.option(
                "--no-prefect",
                is_flag=True,
                envvar=ENV_NO_PREFECT,
                help=f"Run the same steps without Prefect: no server, no flow run (also ${ENV_NO_PREFECT}=1).",
            ),
            click.option("--keep-work-dir", is_flag=True, help="Keep the fetched release after the run."),
        )
    ):
        func = option(func)
    return func


class _Stopped(BaseException):
    """SIGTERM while the release is fetched: unwinds like Ctrl-C, so that nothing half-written stays."""


@contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """Until the job takes over its signals: SIGTERM (ECS stopping the task) unwinds the fetch and exits 143."""

    def stop(signum: int, frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except _Stopped:
        error("stopped by SIGTERM while the release was fetched; nothing of it was left half-written")
        sys.exit(EXIT_TERMINATED)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_job(request: JobRequest) -> None:
    from dbt_ferry.runtime.bootstrap import enter_env, prepare
    from dbt_ferry.runtime.job import finish_job

    with _stopped_by_sigterm():
        spec, fetched = prepare(request)
    out.print(
        f"Running {spec.manifest.project} {spec.manifest.version} in {spec.environment.name} "
        f"(target {spec.target or 'default'}, {spec.target_type or 'unknown adapter'})"
    )
    enter_env(spec, fetched)  # does not return when the release brings its own environment
    finish_job(spec)


@click.command("run", context_settings={"ignore_unknown_options": False})
@_job_options
@click.option("--version", "version", metavar="V", help="Release to run (default: the channel's).")
@click.option("--select", "-s", "select", multiple=True, metavar="S", help="dbt --select; repeatable.")
@click.option("--exclude", multiple=True, metavar="E", help="dbt --exclude; repeatable.")
@click.option("--selector", metavar="NAME", help="A selector of the project's selectors.yml.")
@click.option("--resource-type", "resource_types", multiple=True, metavar="TYPE", help="dbt --resource-type.")
@click.option(
    "--indirect-selection",
    type=click.Choice(["eager", "cautious", "buildable", "empty"]),
    help="dbt --indirect-selection (which tests a selection takes along).",
)
@click.option("--full-refresh", "-f", is_flag=True, help="Rebuild incremental models and seeds from scratch.")
@click.option("--fail-fast", "-x", is_flag=True, help="dbt --fail-fast: stop at the first failure.")
@click.option("--warn-error", is_flag=True, help="dbt --warn-error: warnings fail the run.")
@click.option("--empty", is_flag=True, help="dbt --empty: build with no rows (a dry run of the SQL).")
@click.option("--defer", is_flag=True, help="dbt --defer (with --state, or --defer-to).")
@click.option("--state", type=click.Path(file_okay=False), help="dbt --state: a folder on this machine.")
@click.option("--state-from", metavar="ENV", help="The state of environment ENV, from its store, as --state (slim CI).")
@click.option("--defer-to", metavar="ENV", help="The state of ENV as --state, with --defer (slim CI).")
@click.option("--seed/--no-seed", default=None, help="Run dbt seed before the command (default: the environment's).")
@click.option(
    "--freshness/--no-freshness",
    default=None,
    help="Run dbt source freshness before the command (default: the environment's).",
)
@click.option(
    "--state-aware/--no-state-aware",
    default=None,
    help="Build only what changed since the environment's last successful state (default: the environment's).",
)
@click.option("--debug", "dbt_debug", is_flag=True, help="Run `dbt debug` first (dbt's own --debug logs: -- --debug).")
@click.option("--docs/--no-docs", default=None, help="Generate and publish docs (default: the environment's).")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- DBT_ARGS...]")
def run_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    target: str | None,
    vars_: str | None,
    threads: int | None,
    no_prefect: bool,
    keep_work_dir: bool,
    version: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    selector: str | None,
    resource_types: tuple[str, ...],
    indirect_selection: str | None,
    full_refresh: bool,
    fail_fast: bool,
    warn_error: bool,
    empty: bool,
    defer: bool,
    state: str | None,
    state_from: str | None,
    defer_to: str | None,
    seed: bool | None,
    freshness: bool | None,
    state_aware: bool | None,
    dbt_debug: bool,
    docs: bool | None,
    dbt_args: tuple[str, ...],
) -> None:
    """Fetch a release, verify it, and run it as a Prefect flow: deps, the dbt command (build by
    default, or what follows --; flags after -- alone are added to build), docs; then publish outputs
    and notify on failure. dbt-ferry's --version is the release's and its --debug runs `dbt debug`;
    dbt's own --version and --debug go after --.

    Exit codes: 0 all passed, 1 a node failed, 2 dbt could not run, 130 interrupted, 143 stopped by
    SIGTERM (or cancelled from Prefect); dbt-ferry's own failures as listed in dbt-ferry --help.
    """
    _run_job(
        JobRequest(
            environment=_optional(env),
            version=version,
            target=_optional(target),
            select=_clean(select),
            exclude=_clean(exclude),
            selector=_optional(selector),
            resource_types=_clean(resource_types),
            indirect_selection=indirect_selection,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            warn_error=warn_error,
            empty=empty,
            defer=defer,
            state=state,
            state_from=_optional(state_from),
            defer_to=_optional(defer_to),
            seed=seed,
            freshness=freshness,
            state_aware=state_aware,
            vars=vars_,
            threads=threads,
            debug=dbt_debug,
            docs=docs,
            dbt_args=tuple(clean_value(a) for a in dbt_args),
            project_dir=project_dir,
            store=store,
            keep_work_dir=keep_work_dir,
            no_prefect=no_prefect,
        )
    )


@click.command("retry")
@_job_options
@click.option(
    "--run",
    "run_id",
    metavar="INVOCATION_ID",
    help="The run to retry (default: the environment's last failed run).",
)
def retry_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    target: str | None,
    vars_: str | None,
    threads: int | None,
    no_prefect: bool,
    keep_work_dir: bool,
    run_id: str | None,
) -> None:
    """Retry a failed run in a fresh work directory: its release is fetched again, its run_results.json comes
    back from the store, and `dbt retry` runs only the nodes that failed or were skipped. Published and
    exported as a new invocation that names the one it retried.

    Exit codes as for dbt-ferry run; 5 when there is no such run (or no failed run to retry).
    """
    from dbt_ferry.runtime.retry import LAST_FAILED

    _run_job(
        JobRequest(
            environment=_optional(env),
            target=_optional(target),
            vars=vars_,
            threads=threads,
            dbt_args=("retry",),
            retry_of=_optional(run_id) or LAST_FAILED,
            project_dir=project_dir,
            store=store,
            keep_work_dir=keep_work_dir,
            no_prefect=no_prefect,
        )
    )
