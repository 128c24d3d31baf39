"""``dbt-ferry run``: the command a container, a laptop or CI runs."""

from __future__ import annotations

import click
import yaml

from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out
from dbt_ferry.core.constants import ENV_NO_PREFECT
from dbt_ferry.core.names import clean_value
from dbt_ferry.runtime.spec import JobRequest


def _clean(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in (clean_value(v) for v in values) if c)


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


@click.command("run", context_settings={"ignore_unknown_options": False})
@env_option
@project_dir_option
@store_option
@click.option("--version", "version", metavar="V", help="Release to run (default: the channel's).")
@click.option("--target", metavar="T", help="dbt target (default: the environment's).")
@click.option("--select", "-s", "select", multiple=True, metavar="S", help="dbt selection; repeatable.")
@click.option("--exclude", multiple=True, metavar="E", help="dbt exclusion; repeatable.")
@click.option("--selector", metavar="NAME", help="A selector of the project's selectors.yml.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models and seeds from scratch.")
@click.option("--vars", "vars_", metavar="YAML", callback=_vars, help="dbt --vars, a YAML mapping.")
@click.option("--threads", type=click.IntRange(min=1), help="dbt threads (default: the profile's).")
@click.option("--debug", "dbt_debug", is_flag=True, help="Run `dbt debug` before the command.")
@click.option("--docs/--no-docs", default=None, help="Generate and publish docs (default: the environment's).")
@click.option(
    "--no-prefect",
    is_flag=True,
    envvar=ENV_NO_PREFECT,
    help=f"Run the same steps without Prefect: no server, no flow run (also ${ENV_NO_PREFECT}=1).",
)
@click.option("--keep-work-dir", is_flag=True, help="Keep the fetched release after the run, for inspection.")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- DBT_ARGS...]")
def run_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    version: str | None,
    target: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    selector: str | None,
    full_refresh: bool,
    vars_: str | None,
    threads: int | None,
    dbt_debug: bool,
    docs: bool | None,
    no_prefect: bool,
    keep_work_dir: bool,
    dbt_args: tuple[str, ...],
) -> None:
    """Fetch a release, verify it, and run it as a Prefect flow: deps, the dbt command (build by
    default, or what follows --), docs; then publish outputs and notify on failure.

    Exit codes: 0 all passed, 1 a node failed, 2 dbt could not run, 130 interrupted, 143 stopped by
    SIGTERM; dbt-ferry's own failures as listed in dbt-ferry --help.
    """
    from dbt_ferry.runtime.bootstrap import enter_env, prepare
    from dbt_ferry.runtime.job import finish_job

    request = JobRequest(
        environment=clean_value(env) if env else None,
        version=version,
        target=clean_value(target) if target else None,
        select=_clean(select),
        exclude=_clean(exclude),
        selector=clean_value(selector) if selector else None,
        full_refresh=full_refresh,
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
    spec, fetched = prepare(request)
    out.print(
        f"Running {spec.manifest.project} {spec.manifest.version} in {spec.environment.name} "
        f"(target {spec.target or 'default'}, {spec.target_type or 'unknown adapter'})"
    )
    enter_env(spec, fetched)  # does not return when the release brings its own environment
    finish_job(spec)
