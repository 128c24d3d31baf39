"""``dbt-ferry run``: the command a container, a laptop or CI runs."""

from __future__ import annotations

import sys

import click

from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out
from dbt_ferry.core.names import clean_value
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobRequest, JobSpec


def _clean(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in (clean_value(v) for v in values) if c)


@click.command("run", context_settings={"ignore_unknown_options": False})
@env_option
@project_dir_option
@store_option
@click.option("--version", "version", metavar="V", help="Release to run (default: the channel's).")
@click.option("--target", metavar="T", help="dbt target (default: the environment's).")
@click.option("--select", "-s", "select", multiple=True, metavar="S", help="dbt selection; repeatable.")
@click.option("--exclude", multiple=True, metavar="E", help="dbt exclusion; repeatable.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models and seeds from scratch.")
@click.option("--vars", "vars_yaml", metavar="YAML", help="dbt --vars, a YAML dictionary.")
@click.option("--threads", type=click.IntRange(min=1), help="dbt threads (default: the profile's).")
@click.option("--debug", "dbt_debug", is_flag=True, help="Run `dbt debug` before the command.")
@click.option("--docs/--no-docs", default=None, help="Generate and publish docs (default: the environment's).")
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
    full_refresh: bool,
    vars_yaml: str | None,
    threads: int | None,
    dbt_debug: bool,
    docs: bool | None,
    keep_work_dir: bool,
    dbt_args: tuple[str, ...],
) -> None:
    """Fetch a release, verify it, and run it as a Prefect flow: deps, the dbt command (build by
    default, or what follows --), docs; then publish outputs and notify on failure.

    Exit codes: 0 all passed, 1 a node failed, 2 dbt could not run, 143 stopped by SIGTERM;
    dbt-ferry's own failures as listed in dbt-ferry --help.
    """
    from dbt_ferry.runtime.bootstrap import enter_env, prepare

    request = JobRequest(
        environment=clean_value(env) if env else None,
        version=version,
        target=clean_value(target) if target else None,
        select=_clean(select),
        exclude=_clean(exclude),
        full_refresh=full_refresh,
        vars=clean_value(vars_yaml) if vars_yaml else None,
        threads=threads,
        debug=dbt_debug,
        docs=docs,
        dbt_args=tuple(clean_value(a) for a in dbt_args),
        project_dir=project_dir,
        store=store,
        keep_work_dir=keep_work_dir,
    )
    spec, fetched = prepare(request)
    out.print(
        f"Running {spec.manifest.project} {spec.manifest.version} in {spec.environment.name} "
        f"(target {spec.target or 'default'}, {spec.target_type or 'unknown adapter'})"
    )
    enter_env(spec, fetched)  # does not return when the release brings its own environment
    finish_job(spec)


def render_report(spec: JobSpec, report: JobReport) -> None:
    out.print(f"{report.outcome} — exit code {report.exit_code}")
    if report.summary is not None:
        elapsed = f" in {report.summary.elapsed:.1f} s" if report.summary.elapsed is not None else ""
        out.print(f"  nodes: {report.summary.counts_line()}{elapsed}")
        for node in report.summary.failures[:10]:
            message = " ".join((node.message or "").split())[:200]
            out.print(f"  ✗ {node.unique_id} [{node.status}] {message}")
    if report.error:
        out.print(f"  error: {report.error}")
    if report.docs:
        out.print(f"  docs: {report.store_url}/{report.docs}")
    if report.timing:
        out.print(f"  timing chart: {report.store_url}/{report.timing}")
    if report.run_prefix:
        out.print(f"  run artifacts: {report.store_url}/{report.run_prefix}")
    if report.exported:
        out.print("  result tables: " + ", ".join(f"{t} +{n}" for t, n in report.exported.items()))
    for problem in report.problems:
        out.print(f"  problem: {problem}")
    if report.flow_run_url:
        out.print(f"  Prefect flow run: {report.flow_run_url}")
    elif report.flow_run_id:
        out.print(f"  Prefect flow run id: {report.flow_run_id}")


def finish_job(spec: JobSpec) -> None:
    """Run the job in this interpreter, print the outcome, and exit with the job's code."""
    from dbt_ferry.runtime.job import execute

    report = execute(spec)
    render_report(spec, report)
    sys.exit(report.exit_code)
