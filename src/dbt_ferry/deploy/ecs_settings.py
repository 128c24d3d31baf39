"""Settings of ``dbt-ferry ecs run`` that the CLI needs without importing boto3: variables, exit codes."""

from __future__ import annotations

from dbt_ferry.core.errors import FerryError

ENV_ECS_STACK = "DBT_FERRY_ECS_STACK"
ENV_ECS_CLUSTER = "DBT_FERRY_ECS_CLUSTER"
ENV_ECS_TASK_DEFINITION = "DBT_FERRY_ECS_TASK_DEFINITION"
ENV_ECS_SUBNETS = "DBT_FERRY_ECS_SUBNETS"
ENV_ECS_SECURITY_GROUPS = "DBT_FERRY_ECS_SECURITY_GROUPS"

#: What each variable does, for ``--help`` and the README.
ECS_ENVIRONMENT_VARIABLES: dict[str, str] = {
    ENV_ECS_STACK: "CloudFormation stack of `ecs run` (default: <project>-<env>)",
    ENV_ECS_CLUSTER: "ECS cluster of `ecs run` (default: the stack's ClusterArn output)",
    ENV_ECS_TASK_DEFINITION: "task definition of `ecs run` (default: the stack's TaskDefinitionArn output)",
    ENV_ECS_SUBNETS: "subnets of `ecs run`, comma-separated (default: the stack's NetworkConfiguration output)",
    ENV_ECS_SECURITY_GROUPS: "security groups of `ecs run`, comma-separated (default: the stack's output)",
}

#: The container the template defines; another task definition's first essential container is used instead.
CONTAINER_NAME = "dbt-ferry"
STARTED_BY = "dbt-ferry ecs run"
DEFAULT_POLL_INTERVAL = 6.0
#: Three hours, the hard limit of a Kubernetes run (deploy/kit.py ACTIVE_DEADLINE).
DEFAULT_TIMEOUT = 3 * 3600.0


class EcsError(FerryError):
    """ECS or CloudFormation refused or could not be reached: unknown cluster, stack or task definition,
    credentials, a task that could not be placed."""

    exit_code = 11


class EcsTaskStoppedError(EcsError):
    """The task stopped without an exit code of its container (image pull failure, resources, stopped by hand)."""

    exit_code = 12


class EcsWaitTimeoutError(EcsError):
    """``--wait`` gave up before the task stopped; the task goes on running."""

    exit_code = 13


#: The exit codes this module adds to dbt-ferry's (core/errors.py ``EXIT_CODES``); a run with ``--wait`` exits
#: with the container's own code otherwise.
ECS_EXIT_CODES: dict[int, str] = {
    EcsError.exit_code: "ECS or CloudFormation error (unknown cluster, stack or task definition; credentials)",
    EcsTaskStoppedError.exit_code: "the ECS task stopped without a container exit code (see its stopped reason)",
    EcsWaitTimeoutError.exit_code: "ecs run --wait timed out; the task is still running",
}
