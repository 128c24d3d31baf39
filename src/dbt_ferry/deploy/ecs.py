"""``dbt-ferry ecs run``: start a one-off Fargate task of an environment's stack, and optionally wait for it.

The task runs the image's entrypoint, ``dbt-ferry run``; the container's command is overridden with the
arguments of this run (``--version 1.2.0 -- build --full-refresh``). Where the task runs comes, highest first,
from the arguments, the ``DBT_FERRY_ECS_*`` environment variables below, then the Outputs of the environment's
CloudFormation stack (``<project>-<env>``, as ``dbt-ferry init`` names it in deploy/ferry/cloudformation.yaml):
``ClusterArn``, ``TaskDefinitionArn`` and ``NetworkConfiguration``. The stack is read only when something is
missing. Every botocore exception stops here and becomes an :class:`EcsError`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from botocore.config import Config

from dbt_ferry.config.loader import project_dir_from
from dbt_ferry.core.constants import ENV_ENVIRONMENT
from dbt_ferry.core.errors import ConfigError, ProjectError
from dbt_ferry.core.names import check_environment_name
from dbt_ferry.deploy.ecs_settings import (  # noqa: F401 - re-exported for callers of this module
    CONTAINER_NAME,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ECS_ENVIRONMENT_VARIABLES,
    ECS_EXIT_CODES,
    ENV_ECS_CLUSTER,
    ENV_ECS_SECURITY_GROUPS,
    ENV_ECS_STACK,
    ENV_ECS_SUBNETS,
    ENV_ECS_TASK_DEFINITION,
    STARTED_BY,
    EcsError,
    EcsTaskStoppedError,
    EcsWaitTimeoutError,
)
from dbt_ferry.deploy.layout import STACK_TEMPLATE
from dbt_ferry.deploy.project import read_dbt_project, slug
from dbt_ferry.storage.aws_session import aws_session

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_ecs.type_defs import ContainerOverrideTypeDef, TaskOverrideTypeDef, TaskTypeDef

log = logging.getLogger(__name__)

CLIENT_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@dataclass(frozen=True)
class EcsRunRequest:
    """What ``dbt-ferry ecs run`` was asked; ``None`` and empty values come from the environment or the stack."""

    environment: str | None = None
    version: str | None = None
    dbt_args: tuple[str, ...] = ()
    cluster: str | None = None
    task_definition: str | None = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool | None = None
    stack: str | None = None
    region: str | None = None
    project_dir: str | Path | None = None
    wait: bool = False
    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL


@dataclass(frozen=True)
class EcsTarget:
    """Where the task runs, resolved."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool
    stack: str | None = None


@dataclass(frozen=True)
class StartedTask:
    arn: str
    cluster: str
    container: str
    command: tuple[str, ...]
    log_group: str | None = None
    log_stream: str | None = None

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TaskOutcome:
    """A stopped task: its container's exit code, and why ECS says it stopped."""

    arn: str
    exit_code: int | None
    stop_code: str | None = None
    stopped_reason: str | None = None
    container_reason: str | None = None


@dataclass(frozen=True)
class EcsRunResult:
    target: EcsTarget
    task: StartedTask
    outcome: TaskOutcome | None = None


def container_command(version: str | None, dbt_args: Sequence[str]) -> list[str]:
    """The arguments of the image's ``dbt-ferry run`` entrypoint; empty keeps the image's default (build)."""
    command = ["--version", version] if version else []
    if dbt_args:
        command += ["--", *dbt_args]
    return command


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def default_stack_name(environment: str, project_dir: str | Path | None, environ: Mapping[str, str]) -> str:
    """``<project>-<env>``: the stack name of the deploy commands in deploy/ferry/cloudformation.yaml."""
    try:
        project = read_dbt_project(project_dir_from(project_dir, environ))
    except ProjectError as exc:
        raise ProjectError(
            f"cannot name the stack of {environment}: {exc.message}",
            f"run from the dbt project, pass --project-dir, or name the stack with --stack (${ENV_ECS_STACK})",
        ) from None
    return f"{project.slug}-{slug(environment, limit=31)}"


# -- botocore errors -----------------------------------------------------------------------------------


@contextmanager
def _aws_errors(action: str, hint: str | None = None) -> Iterator[None]:
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise EcsError(
            f"no AWS credentials found to {action}",
            "configure credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a role)",
        ) from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise EcsError(
            f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')} to {action}",
            "check the network, AWS_ENDPOINT_URL and the region",
        ) from None
    except botocore.exceptions.ClientError as exc:
        error: dict[str, Any] = dict(exc.response.get("Error", {}))
        code = str(error.get("Code", "")) or "error"
        message = " ".join(str(error.get("Message") or "").split()) or str(exc)
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            hint = "grant the caller ecs:RunTask, ecs:DescribeTasks, iam:PassRole and cloudformation:DescribeStacks"
        elif code in ("InvalidAccessKeyId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException"):
            hint = "refresh the AWS credentials"
        raise EcsError(f"cannot {action}: {message} ({code})", hint) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise EcsError(f"cannot {action}: {exc}", hint) from None


def _session(region: str | None) -> boto3.session.Session:
    with _aws_errors("open an AWS session"):
        return aws_session(region)


# -- where the task runs -------------------------------------------------------------------------------


def stack_outputs(client: CloudFormationClient, stack: str) -> dict[str, str]:
    with _aws_errors(
        f"read the CloudFormation stack {stack}",
        f"deploy {STACK_TEMPLATE} as {stack}, or pass --stack (${ENV_ECS_STACK}) or --cluster, "
        "--task-definition, --subnet and --security-group",
    ):
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    if not stacks:  # pragma: no cover - CloudFormation answers ValidationError instead
        raise EcsError(f"the CloudFormation stack {stack} does not exist")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputKey" in o}


def resolve_target(
    request: EcsRunRequest,
    environment: str,
    cloudformation: Callable[[], CloudFormationClient],
    environ: Mapping[str, str],
) -> EcsTarget:
    """Arguments, then ``DBT_FERRY_ECS_*``, then the stack's Outputs (read only when something is missing)."""
    cluster = request.cluster or environ.get(ENV_ECS_CLUSTER) or None
    task_definition = request.task_definition or environ.get(ENV_ECS_TASK_DEFINITION) or None
    subnets = request.subnets or _split(environ.get(ENV_ECS_SUBNETS))
    groups = request.security_groups or _split(environ.get(ENV_ECS_SECURITY_GROUPS))
    public = request.assign_public_ip
    stack = None
    if not (cluster and task_definition and subnets and groups):
        stack = (
            request.stack or environ.get(ENV_ECS_STACK) or default_stack_name(environment, request.project_dir, environ)
        )
        outputs = stack_outputs(cloudformation(), stack)
        network = _network_output(outputs.get("NetworkConfiguration"), stack)
        cluster = cluster or outputs.get("ClusterArn")
        task_definition = task_definition or outputs.get("TaskDefinitionArn")
        subnets = subnets or tuple(network.get("subnets") or ())
        groups = groups or tuple(network.get("securityGroups") or ())
        if public is None:
            public = network.get("assignPublicIp") == "ENABLED"
        missing = [
            what
            for what, value in (
                ("ClusterArn (--cluster)", cluster),
                ("TaskDefinitionArn (--task-definition)", task_definition),
                ("subnets (--subnet)", subnets),
                ("security groups (--security-group)", groups),
            )
            if not value
        ]
        if missing:
            raise EcsError(
                f"the CloudFormation stack {stack} has no " + ", ".join(missing),
                f"pass them as options, or deploy the stack from {STACK_TEMPLATE}",
            )
    if not (cluster and task_definition):  # pragma: no cover - the check above covers it
        raise EcsError("no cluster or task definition to run")
    return EcsTarget(cluster, task_definition, tuple(subnets), tuple(groups), bool(public), stack)


def _network_output(text: str | None, stack: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise EcsError(f"the NetworkConfiguration output of the stack {stack} is not a JSON object: {text[:200]}")
    return value


# -- running and waiting -------------------------------------------------------------------------------


def _container(client: ECSClient, target: EcsTarget) -> tuple[str, str | None, str | None]:
    """The container to override, and its CloudWatch log group and stream prefix."""
    with _aws_errors(
        f"describe the task definition {target.task_definition}",
        "pass --task-definition, or check the stack's TaskDefinitionArn output",
    ):
        definition = client.describe_task_definition(taskDefinition=target.task_definition)["taskDefinition"]
    containers = definition.get("containerDefinitions", [])
    chosen = next((c for c in containers if c.get("name") == CONTAINER_NAME), None)
    chosen = chosen or next((c for c in containers if c.get("essential", True)), None)
    if chosen is None or "name" not in chosen:
        raise EcsError(f"the task definition {target.task_definition} has no container")
    logging_ = chosen.get("logConfiguration")
    options: Mapping[str, str] = (logging_.get("options") or {}) if logging_ else {}
    return chosen["name"], options.get("awslogs-group"), options.get("awslogs-stream-prefix")


def start_task(client: ECSClient, target: EcsTarget, command: Sequence[str]) -> StartedTask:
    container, log_group, stream_prefix = _container(client, target)
    override: ContainerOverrideTypeDef = {"name": container}
    if command:
        override["command"] = list(command)
    overrides: TaskOverrideTypeDef = {"containerOverrides": [override]}
    with _aws_errors(f"run the task definition {target.task_definition} in the cluster {target.cluster}"):
        answer = client.run_task(
            cluster=target.cluster,
            taskDefinition=target.task_definition,
            launchType="FARGATE",
            platformVersion="LATEST",
            count=1,
            startedBy=STARTED_BY,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(target.subnets),
                    "securityGroups": list(target.security_groups),
                    "assignPublicIp": "ENABLED" if target.assign_public_ip else "DISABLED",
                }
            },
            overrides=overrides,
        )
    tasks = answer.get("tasks", [])
    if not tasks or "taskArn" not in tasks[0]:
        reasons = "; ".join(
            " ".join(filter(None, (f.get("reason"), f.get("detail"), f.get("arn")))) for f in answer.get("failures", [])
        )
        raise EcsError(
            f"ECS started no task in {target.cluster}: {reasons or 'no reason given'}",
            "check the subnets, security groups and the cluster's Fargate capacity",
        )
    arn = tasks[0]["taskArn"]
    stream = f"{stream_prefix}/{container}/{arn.rsplit('/', 1)[-1]}" if log_group and stream_prefix else None
    return StartedTask(arn, target.cluster, container, tuple(command), log_group, stream)


def task_outcome(task: TaskTypeDef, container: str) -> TaskOutcome:
    """The outcome of a STOPPED task as ``describe_tasks`` gives it."""
    containers = task.get("containers", [])
    chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else None)
    return TaskOutcome(
        arn=task.get("taskArn", ""),
        exit_code=chosen.get("exitCode") if chosen else None,
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason") or None,
        container_reason=(chosen.get("reason") or None) if chosen else None,
    )


def exit_code_of(outcome: TaskOutcome) -> int:
    """The container's exit code; a task stopped without one raises :class:`EcsTaskStoppedError`."""
    if outcome.exit_code is not None:
        return outcome.exit_code
    why = "; ".join(filter(None, (outcome.stop_code, outcome.stopped_reason, outcome.container_reason)))
    raise EcsTaskStoppedError(
        f"task {outcome.arn} stopped without an exit code: {why or 'ECS gave no reason'}",
        "see the task's stopped reason and logs (image pull, secrets, subnets' route to ECR and S3)",
    )


def wait_for_task(
    client: ECSClient,
    task: StartedTask,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TaskOutcome:
    """Poll ``describe_tasks`` every ``poll_interval`` seconds until the task is STOPPED, at most ``timeout``."""
    deadline = clock() + timeout
    status = "unknown"
    while True:
        with _aws_errors(f"describe the task {task.arn}"):
            answer = client.describe_tasks(cluster=task.cluster, tasks=[task.arn])
        tasks = answer.get("tasks", [])
        if not tasks:
            reasons = "; ".join(f.get("reason", "") for f in answer.get("failures", []))
            raise EcsError(f"ECS no longer knows the task {task.arn}: {reasons or 'no reason given'}")
        status = tasks[0].get("lastStatus", "unknown")
        log.debug("task %s is %s", task.task_id, status)
        if status == "STOPPED":
            return task_outcome(tasks[0], task.container)
        remaining = deadline - clock()
        if remaining <= 0:
            raise EcsWaitTimeoutError(
                f"task {task.arn} is still {status} after {timeout:g} s",
                f"it goes on running; follow it with aws ecs describe-tasks --cluster {task.cluster} "
                f"--tasks {task.arn}, or wait longer with --timeout",
            )
        sleep(min(poll_interval, remaining))


def run_ecs_task(
    request: EcsRunRequest,
    *,
    on_started: Callable[[StartedTask], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> EcsRunResult:
    """Start a one-off Fargate task of the environment's stack; with ``request.wait``, wait for it to stop.

    ``on_started`` is called as soon as ECS accepted the task (the CLI prints its ARN there).
    """
    env = os.environ if environ is None else environ
    environment = request.environment or env.get(ENV_ENVIRONMENT)
    if not environment:
        raise ConfigError("no environment given", f"pass --env NAME or set {ENV_ENVIRONMENT}")
    check_environment_name(environment)
    if request.timeout <= 0 or request.poll_interval <= 0:
        raise ConfigError("the timeout and the poll interval must be positive numbers of seconds")
    session = _session(request.region)

    def cloudformation() -> CloudFormationClient:
        with _aws_errors("create a CloudFormation client"):
            return session.client("cloudformation", config=CLIENT_CONFIG)

    target = resolve_target(request, environment, cloudformation, env)
    with _aws_errors("create an ECS client"):
        ecs: ECSClient = session.client("ecs", config=CLIENT_CONFIG)
    started = start_task(ecs, target, container_command(request.version, request.dbt_args))
    log.info("started %s in %s", started.arn, target.cluster)
    if on_started is not None:
        on_started(started)
    if not request.wait:
        return EcsRunResult(target, started)
    outcome = wait_for_task(ecs, started, timeout=request.timeout, poll_interval=request.poll_interval)
    return EcsRunResult(target, started, outcome)
