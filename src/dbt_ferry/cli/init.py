"""``dbt-ferry init``: adopt an existing dbt project."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dbt_ferry.cli.options import project_dir_option
from dbt_ferry.console import out
from dbt_ferry.deploy.init import DEFAULT_CLOUD_ENVIRONMENT, InitResult, init_project


def _shown(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def render_result(result: InitResult) -> None:
    verb = "Set up" if result.changed else "Nothing to do:"
    out.print(
        f"{verb} dbt-ferry for {result.project} in {result.project_dir} "
        f"(profile {result.profile}; environments {', '.join(result.environments)})"
    )
    width = max((len(_shown(f.path, result.project_dir)) for f in result.files), default=0)
    for outcome in result.files:
        detail = f"  {outcome.detail}" if outcome.detail else ""
        out.print(f"  {outcome.action:<11} {_shown(outcome.path, result.project_dir):<{width}}{detail}".rstrip())
    if result.notes:
        out.print("Next:")
        for note in result.notes:
            out.print(f"  - {note}")


@click.command("init")
@project_dir_option
@click.option(
    "--env",
    "environments",
    multiple=True,
    metavar="NAME",
    help=f"A cloud environment to add (S3 store, dbt target NAME); repeatable. Default: {DEFAULT_CLOUD_ENVIRONMENT}. "
    "local and ci are always added.",
)
@click.option("--region", metavar="REGION", help="AWS region of the cloud environments (default: $AWS_REGION).")
@click.option(
    "--ferry-source",
    "ferry_source",
    metavar="SOURCE",
    help="Where the project and its image install dbt-ferry from: index (the package index), a wheel FILE.whl "
    "(copied into deploy/ferry/wheels/), or git+URL[@REV]. Default: what [tool.uv.sources] says, else index.",
)
@click.option(
    "--adapter",
    type=click.Choice(["athena"]),
    help="Write a dbt-athena profile for each cloud environment without one (work group, Glue database, S3 "
    "locations of the stack); also done when the profile has an athena target.",
)
@click.option(
    "--force", is_flag=True, help="Rewrite the kit's files that differ from the templates (never any other file)."
)
def init_cmd(
    project_dir: str | None,
    environments: tuple[str, ...],
    region: str | None,
    ferry_source: str | None,
    adapter: str | None,
    force: bool,
) -> None:
    """Adopt a dbt project: [tool.dbt-ferry] and the packages it lacks in pyproject.toml, profiles/<env>.yml,
    and the deployment kit in deploy/ferry/ (Dockerfile, prefect.yaml, CloudFormation, Kubernetes jobs) and
    .github/workflows/dbt-ferry-ci.yml, dbt-ferry-cd.yml.

    Existing configuration, profiles and the project's own files are never changed; run again, init changes
    nothing.
    """
    result = init_project(
        project_dir, environments=environments, force=force, region=region, ferry=ferry_source, adapter=adapter
    )
    render_result(result)
