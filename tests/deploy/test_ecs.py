"""``dbt-ferry ecs run`` against the ECS/CloudFormation emulator (moto server over HTTP).

How moto 5.2 runs a Fargate task (moto/ecs/models.py), and so what these tests can truthfully check:

* ``run_task`` answers a RUNNING task; with ``networkMode: awsvpc`` it needs ``securityGroups`` in the
  awsvpcConfiguration, a real subnet, and a VPC with DNS hostnames (else it fails with a 500); the task
  definition's containers need ``memory`` (the template's container has none: moto cannot run the stack's own
  task definition, ``run_task`` answers a 500).
* A task is a ``ManagedState`` (model ``ecs::task``, default transition ``manual`` ``times=1``): every
  ``describe_tasks`` moves it one step, RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED, with an
  empty stoppedReason. ``stop_task`` sets STOPPED at once, with the reason given.
* Its container always reports ``exitCode: 0`` (``Container.exitCode = 0``, never anything else) and
  ``lastStatus: PENDING``. A non-zero code and a stopped task without a code (``CannotPullContainerError``)
  cannot be produced by moto; :func:`task_outcome` / :func:`exit_code_of` are checked on task descriptions
  shaped as ECS gives them instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from dbt_ferry.cli.ecs import ecs_group
from dbt_ferry.cli.main import cli
from dbt_ferry.deploy.ecs import (
    EcsError,
    EcsRunRequest,
    EcsTaskStoppedError,
    EcsWaitTimeoutError,
    container_command,
    exit_code_of,
    run_ecs_task,
    task_outcome,
)
from tests.conftest import run_cli
from tests.deploy.conftest import Adoptable
from tests.deploy.test_cloudformation_stack import create_stack, network, outputs_of, template_of

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "eu-west-1"


@dataclass(frozen=True)
class Fargate:
    cluster: str
    task_definition: str
    subnet: str
    security_group: str

    def flags(self) -> list[str]:
        return [
            "--cluster",
            self.cluster,
            "--task-definition",
            self.task_definition,
            "--subnet",
            self.subnet,
            "--security-group",
            self.security_group,
        ]


def register_task_definition(family: str = "jaffle-pro") -> str:
    answer = boto3.client("ecs").register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "dbt-ferry",
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/jaffle-dbt-ferry-pro:latest",
                "memory": 512,  # moto adds the containers' memory up, and fails without it
                "essential": True,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/dbt-ferry/jaffle/pro",
                        "awslogs-region": REGION,
                        "awslogs-stream-prefix": "dbt-ferry",
                    },
                },
            }
        ],
    )
    return answer["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def fargate(aws: str) -> Fargate:
    cluster = boto3.client("ecs").create_cluster(clusterName="jaffle-pro")["cluster"]["clusterArn"]
    _, subnet, group = network()
    return Fargate(cluster, register_task_definition(), subnet, group)


@pytest.fixture
def ecs_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dbt-ferry ecs`` on the real top-level group and its error handler."""
    monkeypatch.setitem(cli.commands, "ecs", ecs_group)
    # The in-process moto server's logs (access log; notes on the stack resources it skips) are not the
    # command's output; once a Prefect test has put its console handler on the root logger (bound to an
    # earlier test's captured stderr) they would even print logging errors.
    for name in ("werkzeug", "moto"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", True)
    for name in ("DBT_FERRY_ENV", "DBT_FERRY_DEBUG", "DBT_FERRY_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)


run = run_cli


def describe(cluster: str, arn: str) -> dict[str, Any]:
    task: dict[str, Any] = boto3.client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    return task


@pytest.fixture
def tasks_wait_for_stop_task(aws: str) -> Iterator[None]:
    """Tasks stay RUNNING until ``stop_task`` (moto's state manager; the reset does not undo it)."""
    body = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
    requests.post(f"{aws}/moto-api/state-manager/set-transition", json=body, timeout=10).raise_for_status()
    try:
        yield
    finally:
        requests.post(
            f"{aws}/moto-api/state-manager/unset-transition", json={"model_name": "ecs::task"}, timeout=10
        ).raise_for_status()


# -- the command's arguments -----------------------------------------------------------------------------


def test_container_command() -> None:
    assert container_command("1.2.0", ["build", "--full-refresh"]) == [
        "--version",
        "1.2.0",
        "--",
        "build",
        "--full-refresh",
    ]
    assert container_command(None, ["run", "-s", "orders"]) == ["--", "run", "-s", "orders"]
    assert container_command("1.2.0", []) == ["--version", "1.2.0"]
    assert container_command(None, []) == []


# -- run -----------------------------------------------------------------------------------------------


def test_run_prints_the_task_arn_and_overrides_the_command(
    fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "ecs", "run", "--env", "pro", *fargate.flags(), "--version", "1.2.0", "--", "build", "--full-refresh"
    )
    assert (code, err) == (0, "")
    arn, logs = out.splitlines()
    assert arn.startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/jaffle-pro/")
    task_id = arn.rsplit("/", 1)[-1]
    assert logs == f"  logs: /dbt-ferry/jaffle/pro dbt-ferry/dbt-ferry/{task_id}"
    task = describe(fargate.cluster, arn)
    assert task["overrides"]["containerOverrides"] == [
        {"name": "dbt-ferry", "command": ["--version", "1.2.0", "--", "build", "--full-refresh"]}
    ]
    assert (task["taskDefinitionArn"], task["clusterArn"]) == (fargate.task_definition, fargate.cluster)
    assert (task["launchType"], task["startedBy"]) == ("FARGATE", "dbt-ferry ecs run")
    subnet = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}["subnetId"]
    assert subnet == fargate.subnet


def test_run_without_arguments_keeps_the_images_command(
    fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ecs", "run", "--env", "pro", *fargate.flags())
    assert code == 0
    task = describe(fargate.cluster, out.splitlines()[0])
    assert task["overrides"]["containerOverrides"] == [{"name": "dbt-ferry"}]


@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_run_takes_the_stack_outputs(
    aws: str, jaffle: Adoptable, ecs_cli: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = create_stack(template_of(jaffle))
    outputs = outputs_of(stack)
    # moto cannot run the stack's own task definition (no container memory, no awsvpc: see
    # test_cloudformation_stack.py); the variable points at a runnable one, the rest comes from the stack.
    runnable = register_task_definition("jaffle-pro-runnable")
    monkeypatch.setenv("DBT_FERRY_ECS_TASK_DEFINITION", runnable)
    code, out, err = run(capsys, "ecs", "run", "--env", "pro", "--project-dir", str(jaffle.root), "--", "test")
    assert (code, err) == (0, "")
    task = describe(outputs["ClusterArn"], out.splitlines()[0])
    assert (task["clusterArn"], task["taskDefinitionArn"]) == (outputs["ClusterArn"], runnable)
    subnet = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}["subnetId"]
    assert subnet == stack["subnet"]
    assert task["overrides"]["containerOverrides"] == [{"name": "dbt-ferry", "command": ["--", "test"]}]


# -- wait ----------------------------------------------------------------------------------------------


def test_wait_exits_with_the_exit_code_moto_reports(
    fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto moves the task one state per describe_tasks, to STOPPED after four, with exit code 0."""
    code, out, err = run(capsys, "ecs", "run", "--env", "pro", *fargate.flags(), "--wait", "--poll-interval", "0.01")
    assert (code, err) == (0, "")
    arn = out.splitlines()[0]
    assert out.splitlines()[-1] == f"task {arn.rsplit('/', 1)[-1]} stopped — exit code 0"


def test_wait_for_a_task_someone_stops(
    fargate: Fargate, tasks_wait_for_stop_task: None, ecs_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ecs = boto3.client("ecs")
    stopped: list[str] = []

    def stop_it() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            arns = ecs.list_tasks(cluster=fargate.cluster)["taskArns"]
            if arns:
                time.sleep(0.3)  # let the CLI see it RUNNING a few times
                ecs.stop_task(cluster=fargate.cluster, task=arns[0], reason="Stopped by the test")
                stopped.append(arns[0])
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_it)
    stopper.start()
    try:
        code, out, err = run(
            capsys,
            "ecs",
            "run",
            "--env",
            "pro",
            *fargate.flags(),
            "--wait",
            "--poll-interval",
            "0.05",
            "--timeout",
            "30",
        )
    finally:
        stopper.join()
    assert (code, err) == (0, "")
    arn = out.splitlines()[0]
    assert stopped == [arn]
    assert out.splitlines()[-1] == f"task {arn.rsplit('/', 1)[-1]} stopped — exit code 0 (Stopped by the test)"


def test_wait_gives_up_after_the_timeout(
    fargate: Fargate, tasks_wait_for_stop_task: None, ecs_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, out, err = run(
        capsys, "ecs", "run", "--env", "pro", *fargate.flags(), "--wait", "--poll-interval", "0.05", "--timeout", "0.5"
    )
    assert time.monotonic() - started < 10
    arn = out.splitlines()[0]
    assert code == EcsWaitTimeoutError.exit_code == 13
    assert err == (
        f"Error: task {arn} is still RUNNING after 0.5 s — it goes on running; follow it with aws ecs describe-tasks "
        f"--cluster {fargate.cluster} --tasks {arn}, or wait longer with --timeout\n"
    )
    assert describe(fargate.cluster, arn)["lastStatus"] == "RUNNING"


# A stopped task as ECS describes it when the image cannot be pulled: no exit code on the container.
PULL_FAILURE: dict[str, Any] = {
    "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/jaffle-pro/0123456789abcdef0123456789abcdef",
    "lastStatus": "STOPPED",
    "stopCode": "TaskFailedToStart",
    "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
    "containers": [{"name": "dbt-ferry", "lastStatus": "STOPPED", "reason": "CannotPullContainerError"}],
}


def test_a_task_stopped_without_an_exit_code() -> None:
    outcome = task_outcome(PULL_FAILURE, "dbt-ferry")  # type: ignore[arg-type]
    assert outcome.exit_code is None
    with pytest.raises(EcsTaskStoppedError) as caught:
        exit_code_of(outcome)
    assert caught.value.exit_code == 12
    assert str(caught.value) == (
        f"task {PULL_FAILURE['taskArn']} stopped without an exit code: TaskFailedToStart; "
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found; "
        "CannotPullContainerError — see the task's stopped reason and logs (image pull, secrets, subnets' route "
        "to ECR and S3)"
    )


def test_a_failed_dbt_run_is_the_containers_exit_code() -> None:
    task = {
        **PULL_FAILURE,
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
    }
    task["containers"] = [{"name": "sidecar", "exitCode": 0}, {"name": "dbt-ferry", "exitCode": 1}]
    assert exit_code_of(task_outcome(task, "dbt-ferry")) == 1  # type: ignore[arg-type]


# -- errors --------------------------------------------------------------------------------------------


def test_unknown_cluster(fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    flags = fargate.flags()
    flags[1] = "nope"
    code, out, err = run(capsys, "ecs", "run", "--env", "pro", *flags)
    assert (code, out) == (EcsError.exit_code, "")
    assert code == 11
    assert err == (
        f"Error: cannot run the task definition {fargate.task_definition} in the cluster nope: "
        "Cluster not found. (ClusterNotFoundException)\n"
    )


def test_unknown_task_definition(fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    flags = fargate.flags()
    flags[3] = "nope:7"
    code, _, err = run(capsys, "ecs", "run", "--env", "pro", *flags)
    assert code == 11
    assert err == (
        "Error: cannot describe the task definition nope:7: Unable to describe task definition. (ClientException) "
        "— pass --task-definition, or check the stack's TaskDefinitionArn output\n"
    )


def test_no_stack(aws: str, jaffle: Adoptable, ecs_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ecs", "run", "--env", "pro", "--project-dir", str(jaffle.root))
    assert code == 11
    assert err == (
        "Error: cannot read the CloudFormation stack jaffle-pro: Stack with id jaffle-pro does not exist "
        "(ValidationError) — deploy deploy/ferry/cloudformation.yaml as jaffle-pro, or pass --stack "
        "($DBT_FERRY_ECS_STACK) or --cluster, --task-definition, --subnet and --security-group\n"
    )


def test_no_environment(ecs_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ecs", "run", "--cluster", "c")
    assert (code, err) == (3, "Error: no environment given — pass --env NAME or set DBT_FERRY_ENV\n")


def test_library_call(fargate: Fargate) -> None:
    seen: list[str] = []
    result = run_ecs_task(
        EcsRunRequest(
            environment="pro",
            version="1.2.0",
            cluster=fargate.cluster,
            task_definition=fargate.task_definition,
            subnets=(fargate.subnet,),
            security_groups=(fargate.security_group,),
            wait=True,
            poll_interval=0.01,
        ),
        on_started=lambda task: seen.append(task.arn),
        environ={},
    )
    assert seen == [result.task.arn]
    assert result.target.stack is None  # everything was given: the stack was not read
    assert result.outcome is not None and result.outcome.exit_code == 0
    assert result.task.command == ("--version", "1.2.0")


def test_run_with_only_aws_region_set(
    fargate: Fargate, ecs_cli: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What cd.yml and the Kubernetes manifests forward: AWS_REGION alone (botocore reads AWS_DEFAULT_REGION)."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # no profile region to fall back on
    code, out, err = run(capsys, "ecs", "run", "--env", "pro", *fargate.flags())
    assert (code, err) == (0, "")
    assert out.startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/jaffle-pro/")
