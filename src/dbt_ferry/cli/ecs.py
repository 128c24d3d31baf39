"""``dbt-ferry ecs``: run a release as a one-off task on the environment's ECS cluster."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from dbt_ferry.cli.options import env_option, project_dir_option
from dbt_ferry.console import out
from dbt_ferry.core.names import clean_value
from dbt_ferry.deploy.ecs_settings import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ECS_ENVIRONMENT_VARIABLES,
    ECS_EXIT_CODES,
    ENV_ECS_CLUSTER,
    ENV_ECS_SECURITY_GROUPS,
    ENV_ECS_STACK,
    ENV_ECS_SUBNETS,
    ENV_ECS_TASK_DEFINITION,
)

if TYPE_CHECKING:
    from dbt_ferry.deploy.ecs import EcsRunResult, StartedTask

_EPILOG = (
    "\b\nEnvironment variables:\n"
    + "\n".join(f"  {name:<30} {text}" for name, text in ECS_ENVIRONMENT_VARIABLES.items())
    + "\n\n\b\nExit codes (besides those of dbt-ferry --help):\n"
    + "\n".join(f"  {code:<3} {text}" for code, text in ECS_EXIT_CODES.items())
)


@click.group("ecs")
def ecs_group() -> None:
    """Run releases on the environment's ECS cluster (the stack of deploy/ferry/cloudformation.yaml)."""


def _started(task: StartedTask) -> None:
    out.print(task.arn)
    if task.log_group and task.log_stream:
        out.print(f"  logs: {task.log_group} {task.log_stream}")


def render_outcome(result: EcsRunResult) -> int:
    """Print how the task ended; the container's exit code (raises when it has none)."""
    outcome = result.outcome
    if outcome is None:
        return 0
    reason = "; ".join(filter(None, (outcome.stop_code, outcome.stopped_reason)))
    from dbt_ferry.deploy.ecs import exit_code_of

    code = exit_code_of(outcome)
    out.print(f"task {result.task.task_id} stopped — exit code {code}" + (f" ({reason})" if reason else ""))
    return code


@ecs_group.command("run", epilog=_EPILOG)
@env_option
@project_dir_option
@click.option("--version", "version", metavar="V", help="Release to run (default: the environment's channel).")
@click.option("--cluster", metavar="C", help=f"ECS cluster (default: ${ENV_ECS_CLUSTER}, then the stack's ClusterArn).")
@click.option(
    "--task-definition",
    metavar="TD",
    help=f"Task definition (default: ${ENV_ECS_TASK_DEFINITION}, then the stack's TaskDefinitionArn).",
)
@click.option(
    "--subnet",
    "subnets",
    multiple=True,
    metavar="S",
    help=f"Subnet of the task; repeatable (default: ${ENV_ECS_SUBNETS}, then the stack's NetworkConfiguration).",
)
@click.option(
    "--security-group",
    "security_groups",
    multiple=True,
    metavar="G",
    help=f"Security group of the task; repeatable (default: ${ENV_ECS_SECURITY_GROUPS}, then the stack's).",
)
@click.option(
    "--assign-public-ip/--no-assign-public-ip",
    default=None,
    help="Give the task a public IP (default: the stack's AssignPublicIp, else no).",
)
@click.option(
    "--stack", metavar="NAME", help=f"CloudFormation stack (default: ${ENV_ECS_STACK}, then <project>-<env>)."
)
@click.option("--region", metavar="REGION", help="AWS region (default: $AWS_REGION / $AWS_DEFAULT_REGION).")
@click.option("--wait", is_flag=True, help="Wait for the task to stop and exit with its container's exit code.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: give up after this long (the task goes on running).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_POLL_INTERVAL,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: seconds between two looks at the task.",
)
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- DBT_ARGS...]")
def run_cmd(
    env: str | None,
    project_dir: str | None,
    version: str | None,
    cluster: str | None,
    task_definition: str | None,
    subnets: tuple[str, ...],
    security_groups: tuple[str, ...],
    assign_public_ip: bool | None,
    stack: str | None,
    region: str | None,
    wait: bool,
    timeout: float,
    poll_interval: float,
    dbt_args: tuple[str, ...],
) -> None:
    """Start a one-off Fargate task running `dbt-ferry run` with these arguments (dbt build by default, or
    what follows --) and print its ARN. With --wait, wait for it and exit with its container's exit code.
    """
    from dbt_ferry.deploy.ecs import EcsRunRequest, run_ecs_task

    request = EcsRunRequest(
        environment=clean_value(env) if env else None,
        version=clean_value(version) if version else None,
        dbt_args=tuple(clean_value(a) for a in dbt_args),
        cluster=cluster,
        task_definition=task_definition,
        subnets=subnets,
        security_groups=security_groups,
        assign_public_ip=assign_public_ip,
        stack=stack,
        region=region,
        project_dir=project_dir,
        wait=wait,
        timeout=timeout,
        poll_interval=poll_interval,
    )
    code = render_outcome(run_ecs_task(request, on_started=_started))
    if code:
        sys.exit(code)
