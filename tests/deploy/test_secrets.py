"""The warehouse's secrets: init lists every env_var() of the profiles, the stack takes an ARN for each variable a
cloud environment's profile reads and the task definition passes it as a container secret, readable by the
execution role alone, and init prints the one command that stores each."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from dbt_ferry.deploy import layout
from tests.deploy.conftest import HOME_PROFILES_WITH_PRO, REGION, Adoptable, write_project
from tests.deploy.template_eval import ACCOUNT, Resolver
from tests.deploy.test_cloudformation_stack import create_stack, outputs_of, parse

PASSWORD_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:jaffle/pro/DBT_JAFFLE_PRO_PASSWORD-AbCdEf"
USER_ARN = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/jaffle/pro/JAFFLE_PRO_USER"
ATTRIBUTES = {
    "Repository.Arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/jaffle-dbt-ferry-pro",
    "Repository.RepositoryUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/jaffle-dbt-ferry-pro",
    "LogGroup.Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/dbt-ferry/jaffle/pro:*",
    "LogGroup": "/dbt-ferry/jaffle/pro",
    "ExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/execution",
    "TaskRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/task",
    "StateKey.Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
    "ReleaseKey.Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-1111-1111-1111-111111111111",
}


@pytest.fixture
def adopted(tmp_path: Path) -> tuple[Adoptable, list[str]]:
    project = write_project(tmp_path / "jaffle", tmp_path / "home", HOME_PROFILES_WITH_PRO)
    return project, project.init("pro").notes


def test_init_lists_every_variable_of_every_profile(adopted: tuple[Adoptable, list[str]]) -> None:
    project, notes = adopted
    profile = (project.root / "profiles" / "pro.yml").read_text(encoding="utf-8")
    assert "s3cr3t-pro" not in profile and "env_var('DBT_JAFFLE_PRO_PASSWORD')" in profile
    listed = [n for n in notes if " reads the variables " in n]
    assert listed == [
        "local (profiles/local.yml, target dev) reads the variables JAFFLE_DUCKDB (optional)",
        "ci (profiles/ci.yml, target ci) reads the variables JAFFLE_DUCKDB (optional)",
        "pro (profiles/pro.yml, target pro) reads the variables JAFFLE_PRO_USER, DBT_JAFFLE_PRO_PASSWORD, "
        "JAFFLE_PRO_PORT (optional)",
    ]
    commands = [n for n in notes if n.startswith("store pro's ")]
    assert commands[0] == (
        "store pro's JAFFLE_PRO_USER once: aws secretsmanager create-secret --region eu-west-1 --name "
        'jaffle/pro/JAFFLE_PRO_USER --secret-string "$JAFFLE_PRO_USER" (or aws ssm put-parameter --region eu-west-1 '
        '--type SecureString --name /jaffle/pro/JAFFLE_PRO_USER --value "$JAFFLE_PRO_USER"), and deploy the stack '
        "with JaffleProUserSecretArn=<its ARN>"
    )
    assert [c.split(" once:")[0] for c in commands] == [
        "store pro's JAFFLE_PRO_USER",
        "store pro's DBT_JAFFLE_PRO_PASSWORD",
        "store pro's JAFFLE_PRO_PORT (optional: the profile has a default)",
    ]
    # Before the stack: its deploy command takes the ARNs.
    stack_note = next(i for i, n in enumerate(notes) if n.startswith("on AWS: deploy"))
    assert all(notes.index(c) < stack_note for c in commands)
    template = (project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8")
    assert (
        "#     JaffleProUserSecretArn=arn:... DbtJaffleProPasswordSecretArn=arn:... JaffleProPortSecretArn=arn:..."
        in template
    )


def test_the_task_gets_exactly_the_secrets_given(adopted: tuple[Adoptable, list[str]]) -> None:
    project, _ = adopted
    template = parse((project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8"))
    parameters = template["Parameters"]
    assert {"JaffleProUserSecretArn", "JaffleProPortSecretArn", "DbtJaffleProPasswordSecretArn"} <= set(parameters)
    assert parameters["DbtJaffleProPasswordSecretArn"]["Default"] == ""

    network = {"VpcId": "vpc-1", "SubnetIds": "subnet-1", "SecurityGroupIds": "sg-1", "GitHubRepository": "a/b"}
    given = Resolver(
        template,
        {**network, "DbtJaffleProPasswordSecretArn": PASSWORD_ARN, "JaffleProUserSecretArn": USER_ARN},
        ATTRIBUTES,
    )
    task = given.resource("TaskDefinition")
    assert task is not None
    [container] = task["Properties"]["ContainerDefinitions"]
    assert container["Secrets"] == [
        {"Name": "JAFFLE_PRO_USER", "ValueFrom": USER_ARN},
        {"Name": "DBT_JAFFLE_PRO_PASSWORD", "ValueFrom": PASSWORD_ARN},
    ]
    execution = given.resource("ExecutionRole")
    assert execution is not None
    statements = {s["Sid"]: s for s in execution["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["ReadSecrets"]["Resource"] == [USER_ARN, PASSWORD_ARN]
    assert statements["ReadSecrets"]["Action"] == ["secretsmanager:GetSecretValue", "ssm:GetParameters"]
    # The task role never reads a secret: ECS resolves them with the execution role before the container starts.
    task_role = given.resource("TaskRole")
    assert task_role is not None
    assert "secretsmanager" not in str(task_role) and "ssm:" not in str(task_role)

    none = Resolver(template, network, ATTRIBUTES)
    task = none.resource("TaskDefinition")
    execution = none.resource("ExecutionRole")
    assert task is not None and execution is not None
    assert "Secrets" not in task["Properties"]["ContainerDefinitions"][0]
    assert "ReadSecrets" not in str(execution)


def test_the_pattern_takes_secrets_manager_and_ssm_arns_only(adopted: tuple[Adoptable, list[str]]) -> None:
    import re

    project, _ = adopted
    template = parse((project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8"))
    pattern = re.compile(template["Parameters"]["DbtJaffleProPasswordSecretArn"]["AllowedPattern"])
    for good in ("", PASSWORD_ARN, USER_ARN, f"arn:aws-us-gov:ssm:us-gov-west-1:{ACCOUNT}:parameter/x"):
        assert pattern.fullmatch(good), good
    for bad in ("hunter2", "jaffle/pro/DBT_JAFFLE_PRO_PASSWORD", f"arn:aws:s3:::bucket/{ACCOUNT}", PASSWORD_ARN + " "):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_the_stack_with_secrets_is_created(aws: str, adopted: tuple[Adoptable, list[str]]) -> None:
    project, _ = adopted
    body = (project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8")
    stack = create_stack(body, DbtJaffleProPasswordSecretArn=PASSWORD_ARN, JaffleProUserSecretArn=USER_ARN)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    ecs = boto3.client("ecs")
    definition = ecs.describe_task_definition(taskDefinition=outputs_of(stack)["TaskDefinitionArn"])
    # moto gap: its CloudFormation resolves HasSecrets (an Fn::Or of conditions) to false and registers no
    # secrets; what real CloudFormation passes is checked above, from the template itself.
    assert "secrets" not in definition["taskDefinition"]["containerDefinitions"][0]
