"""The stack of ``deploy/ferry/cloudformation.yaml`` (as ``dbt-ferry init`` writes it), created on the moto server.

What moto 5.2's CloudFormation can create (moto/cloudformation/parsing.py, ``resource_class_from_type``) of the
template's resource types:

* supported: AWS::S3::Bucket, AWS::ECR::Repository, AWS::ECS::Cluster, AWS::ECS::TaskDefinition,
  AWS::ECS::Service, AWS::Logs::LogGroup, AWS::IAM::Role (ExecutionRole, TaskRole, DeployRole, SchedulerRole,
  the worker's two), AWS::SQS::Queue, AWS::Events::Rule, AWS::KMS::Key, AWS::KMS::Alias;
* not supported: AWS::S3::BucketPolicy, AWS::Glue::Database, AWS::IAM::OIDCProvider, AWS::Scheduler::Schedule,
  AWS::SQS::QueuePolicy.

moto skips an unsupported resource with a warning and still completes the stack, so the full template with its
defaults (no schedule) reaches CREATE_COMPLETE; the Glue database is then missing and so is its output
``ResultsDatabase``. With a schedule, the output ``ScheduleArn`` (``!GetAtt Schedule.Arn``) makes moto fail
(a 500: it looks up a resource class that does not exist), so that stack is created from the template with the
unsupported resources and the outputs naming them removed (:func:`without_unsupported`).

moto does not check what real CloudFormation would refuse (parameter patterns, IAM policy grammar): that is
cfn-lint's job (test_linters.py).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Any

import boto3
import botocore.exceptions
import pytest
from cfnlint.decode import decode_str

from dbt_ferry.deploy import layout
from tests.deploy.conftest import Adoptable

pytestmark = [
    pytest.mark.integration,
    # moto's own warning for each resource it skips (the list above).
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

MOTO_SUPPORTED = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::ECR::Repository",
        "AWS::ECS::Cluster",
        "AWS::ECS::TaskDefinition",
        "AWS::ECS::Service",
        "AWS::Logs::LogGroup",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::SQS::Queue",
        "AWS::Events::Rule",
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
    }
)
MOTO_UNSUPPORTED = frozenset(
    {
        "AWS::S3::BucketPolicy",
        "AWS::Glue::Database",
        "AWS::Athena::WorkGroup",
        "AWS::IAM::OIDCProvider",
        "AWS::Scheduler::Schedule",
        "AWS::SQS::QueuePolicy",
    }
)
ACCOUNT, REGION = "123456789012", "eu-west-1"
STACK = "jaffle-pro"  # <project slug>-<env>, as the template's deploy commands name it
NOTIFY_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:jaffle-notify-AbCdEf"


def parse(text: str) -> dict[str, Any]:
    """The template as data; cfn-lint's loader takes the intrinsic tags (!Ref, !Sub, !If...) in long form."""
    template, problems = decode_str(text)
    assert not problems, problems
    return json.loads(json.dumps(template))  # plain dicts and lists


def template_of(project: Adoptable) -> str:
    project.init("pro")
    return (project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8")


def _names(value: Any) -> set[str]:
    """Every logical id a piece of template refers to (Ref, GetAtt, ${X} and ${X.Attr} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= {name.split(".")[0] for name in _sub_names(text)}
            found |= _names(item)
    elif isinstance(value, list):
        for item in value:
            found |= _names(item)
    return found


def _sub_names(text: str) -> list[str]:
    return re.findall(r"\$\{([^!}][^}]*)\}", text)


def without_unsupported(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The template without the resources moto cannot create, and without the outputs naming them."""
    resources = template["Resources"]
    dropped = sorted(name for name, res in resources.items() if res["Type"] in MOTO_UNSUPPORTED)
    kept = {name: res for name, res in resources.items() if name not in dropped}
    outputs = {name: out for name, out in template.get("Outputs", {}).items() if not _names(out) & set(dropped)}
    return {**template, "Resources": kept, "Outputs": outputs}, dropped


def network() -> tuple[str, str, str]:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="dbt-ferry", Description="tasks", VpcId=vpc)["GroupId"]
    return vpc, subnet, group


def create_stack(body: str, stack: str = STACK, **parameters: str) -> dict[str, Any]:
    """Create ``stack`` on the emulator with a fresh VPC, subnet and security group; its description."""
    vpc, subnet, group = network()
    values = {"VpcId": vpc, "SubnetIds": subnet, "SecurityGroupIds": group, "GitHubRepository": "acme/jaffle"}
    values.update(parameters)
    client = boto3.client("cloudformation")
    client.create_stack(
        StackName=stack,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    description: dict[str, Any] = client.describe_stacks(StackName=stack)["Stacks"][0]
    description["subnet"], description["group"], description["vpc"] = subnet, group, vpc
    return description


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def physical_ids(stack: str = STACK) -> dict[str, tuple[str, str]]:
    client = boto3.client("cloudformation")
    summaries = client.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {s["LogicalResourceId"]: (s["ResourceType"], s.get("PhysicalResourceId", "")) for s in summaries}


def test_the_documented_moto_support_matches_moto(jaffle: Adoptable) -> None:
    from moto.cloudformation.parsing import resource_class_from_type

    types = {resource["Type"] for resource in parse(template_of(jaffle))["Resources"].values()}
    assert types == MOTO_SUPPORTED | MOTO_UNSUPPORTED
    assert {t for t in types if resource_class_from_type(t) is not None} == MOTO_SUPPORTED


def test_full_template_creates_the_supported_resources(aws: str, jaffle: Adoptable) -> None:
    stack = create_stack(template_of(jaffle), NotifySecretArn=NOTIFY_SECRET)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = outputs_of(stack)
    ids = physical_ids()
    # Created: every supported resource has a physical id; moto lists the skipped ones without one.
    created = {name: kind for name, (kind, physical) in ids.items() if physical}
    assert created == {
        "StoreBucket": "AWS::S3::Bucket",
        "Repository": "AWS::ECR::Repository",
        "Cluster": "AWS::ECS::Cluster",
        "LogGroup": "AWS::Logs::LogGroup",
        "ExecutionRole": "AWS::IAM::Role",
        "TaskRole": "AWS::IAM::Role",
        "TaskDefinition": "AWS::ECS::TaskDefinition",
        "DeployRole": "AWS::IAM::Role",
        "StateReaderRole": "AWS::IAM::Role",
        "StateKey": "AWS::KMS::Key",
        "StateKeyAlias": "AWS::KMS::Alias",
        "ReleaseKey": "AWS::KMS::Key",
        "ReleaseKeyAlias": "AWS::KMS::Alias",
    }
    # The state key: asymmetric, for signatures; the alias trust.state_key names; the task role may sign with it.
    # (moto gap: its CloudFormation keeps the KeyPolicy as a mapping, on which its KMS then fails with a 500 in
    # every call that checks the policy, DescribeKey and Sign included; the listings do not check it.)
    kms = boto3.client("kms")
    key_id = outputs["StateKeyArn"].rsplit("/", 1)[-1]
    assert key_id in {k["KeyId"] for k in kms.list_keys()["Keys"]}
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/jaffle-dbt-ferry-pro-state"] == key_id
    with pytest.raises(botocore.exceptions.ClientError, match="500"):
        kms.describe_key(KeyId=key_id)

    repositories = boto3.client("ecr").describe_repositories(repositoryNames=["jaffle-dbt-ferry-pro"])
    assert repositories["repositories"][0]["repositoryUri"] == outputs["RepositoryUri"]
    assert repositories["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
    assert outputs["RepositoryUri"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/jaffle-dbt-ferry-pro"

    ecs = boto3.client("ecs")
    cluster = ecs.describe_clusters(clusters=["jaffle-pro"])["clusters"][0]
    assert (cluster["clusterArn"], cluster["status"]) == (outputs["ClusterArn"], "ACTIVE")

    definition = ecs.describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]
    assert definition["family"] == "jaffle-pro"
    [container] = definition["containerDefinitions"]
    assert container["name"] == "dbt-ferry"
    # The image CD builds from the Dockerfile init wrote: the tag cd.yml computes with `cat … | sha256sum`.
    dockerfile = (jaffle.root / "deploy/ferry/Dockerfile").read_bytes()
    assert container["image"] == f"{outputs['RepositoryUri']}:image-{hashlib.sha256(dockerfile).hexdigest()[:16]}"
    assert container["stopTimeout"] == 60
    assert "command" not in container  # the image's entrypoint `dbt-ferry run`, dbt build by default
    # moto keeps the !If ... AWS::NoValue of PrefectApiUrl as a null entry.
    assert {e["name"]: e["value"] for e in container["environment"] if e} == {
        "DBT_FERRY_ENV": "pro",
        "DBT_FERRY_STORE": "s3://jaffle-dbt-ferry-pro/jaffle",
        "DBT_FERRY_RELEASE_KEY": outputs["ReleaseKeyArn"],  # releases are checked with the key CD signs with
    }
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/dbt-ferry/jaffle/pro",
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "dbt-ferry",
        },
    }
    assert definition["memory"] == "2048"
    # moto's AWS::ECS::TaskDefinition registers only Family, ContainerDefinitions, Volumes and Memory: no
    # NetworkMode (bridge), RequiresCompatibilities, Cpu, roles, RuntimePlatform. And it resolves
    # HasSecrets (an Fn::Or of Conditions) to false, so the secret is not there either. Real CloudFormation
    # does all of it; these asserts say when moto starts to.
    assert (definition["networkMode"], definition["compatibilities"]) == ("bridge", ["EC2"])
    assert "executionRoleArn" not in definition and "taskRoleArn" not in definition
    assert "secrets" not in container

    iam = boto3.client("iam")
    for output in ("ExecutionRoleArn", "TaskRoleArn", "DeployRoleArn"):
        role = iam.get_role(RoleName=outputs[output].rsplit("/", 1)[-1])["Role"]
        assert role["Arn"] == outputs[output]
    task_role = iam.get_role(RoleName=outputs["TaskRoleArn"].rsplit("/", 1)[-1])["Role"]
    [trust] = task_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    policies = iam.list_role_policies(RoleName=task_role["RoleName"])["PolicyNames"]
    assert policies == ["dbt-ferry-job"]

    [group] = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/dbt-ferry/jaffle/pro")["logGroups"]
    assert (group["logGroupName"], group["retentionInDays"]) == (outputs["LogGroupName"], 30)

    assert json.loads(outputs["NetworkConfiguration"]) == {
        "subnets": [stack["subnet"]],
        "securityGroups": [stack["group"]],
        "assignPublicIp": "DISABLED",
    }
    assert outputs["StoreUrl"] == "s3://jaffle-dbt-ferry-pro/jaffle"
    boto3.client("s3").head_bucket(Bucket="jaffle-dbt-ferry-pro")

    # Not created by moto: the Glue database (and its output), the bucket policy, the OIDC provider.
    assert "ResultsDatabase" not in outputs
    glue = boto3.client("glue")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_database(Name="dbt_ferry_jaffle_pro")
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_a_scheduled_stack_needs_the_unsupported_resources_removed(aws: str, jaffle: Adoptable) -> None:
    template, dropped = without_unsupported(parse(template_of(jaffle)))
    assert dropped == ["AthenaWorkGroup", "GitHubOidcProvider", "ModelsDatabase", "ObserverQueuePolicy",
                       "ResultsDatabase", "Schedule", "StoreBucketPolicy"]  # fmt: skip
    assert "ScheduleArn" not in template["Outputs"] and "ResultsDatabase" not in template["Outputs"]
    stack = create_stack(
        json.dumps(template),
        ScheduleExpression="cron(0 6 * * ? *)",
        GitHubOidcProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    created = {name for name, (_, physical) in physical_ids().items() if physical}
    assert "SchedulerRole" in created  # HasSchedule holds: the role EventBridge Scheduler would use
    assert {"Cluster", "TaskDefinition", "Repository", "LogGroup", "TaskRole", "ExecutionRole"} <= created
    assert set(outputs_of(stack)) >= {"ClusterArn", "TaskDefinitionArn", "NetworkConfiguration"}


def test_the_prefect_worker_service_and_its_observer_queue(aws: str, jaffle: Adoptable) -> None:
    api_key = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prefect-api-key-AbCdEf"
    stack = create_stack(
        template_of(jaffle),
        PrefectWorker="service",
        PrefectApiUrl="https://prefect.internal.example/api",
        PrefectApiKeySecretArn=api_key,
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = outputs_of(stack)
    created = {name for name, (_, physical) in physical_ids().items() if physical}
    worker = {"ObserverQueue", "ObserverDeadLetterQueue", "TaskStateRule", "WorkerExecutionRole", "WorkerTaskRole"}
    assert worker | {"WorkerTaskDefinition", "WorkerService"} <= created
    assert "ObserverQueuePolicy" not in created  # moto gap: AWS::SQS::QueuePolicy (see the top of this file)

    # The queue the observer reads, named as prefect-aws expects (<work pool>-ecs-events), with its dead letters.
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="dbt-ferry-pro-ecs-events")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
    assert outputs["ObserverQueueName"] == "dbt-ferry-pro-ecs-events"

    # The rule: every task-state change of this cluster, to the queue.
    events = boto3.client("events")
    [rule] = [r for r in events.list_rules()["Rules"] if r["Name"].startswith(STACK)]
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [outputs["ClusterArn"]]},
    }
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == attributes["QueueArn"]

    # The worker: a service of one task polling the pool, its observer pointed at the queue.
    ecs = boto3.client("ecs")
    [service] = ecs.describe_services(cluster=outputs["ClusterArn"], services=[outputs["WorkerServiceName"]])[
        "services"
    ]
    assert service["desiredCount"] == 1
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    [container] = definition["containerDefinitions"]
    assert container["image"] == "prefecthq/prefect-aws:0.7-python3.12"
    assert container["command"] == ["prefect", "worker", "start", "--pool", "dbt-ferry-pro", "--type", "ecs",
                                    "--with-healthcheck"]  # fmt: skip
    environment = {e["name"]: e["value"] for e in container["environment"] if e}
    assert environment["PREFECT_API_URL"] == "https://prefect.internal.example/api"
    assert environment["PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME"] == "dbt-ferry-pro-ecs-events"

    # Least privilege: the job's task definition family in this cluster, its two roles, this queue.
    iam = boto3.client("iam")
    role = next(r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{STACK}-WorkerTaskRole"))
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="prefect-ecs-worker")["PolicyDocument"]
    if isinstance(document, str):  # moto gap: its CloudFormation keeps an inline policy as a Python repr
        document = ast.literal_eval(document)
    statements = {st["Sid"]: st for st in document["Statement"]}
    assert statements["RunTheJob"]["Action"] == "ecs:RunTask"
    assert statements["RunTheJob"]["Resource"].endswith(":task-definition/jaffle-pro:*")
    assert statements["RunTheJob"]["Condition"] == {"ArnEquals": {"ecs:cluster": outputs["ClusterArn"]}}
    assert sorted(statements["PassTheJobRoles"]["Resource"]) == sorted(
        [outputs["ExecutionRoleArn"], outputs["TaskRoleArn"]]
    )
    assert statements["ObserveTaskStates"]["Resource"] == attributes["QueueArn"]
    assert not any(st["Resource"] == "*" and "ecs:RunTask" in st["Action"] for st in document["Statement"])


def test_without_a_prefect_api_no_worker_runs(aws: str, jaffle: Adoptable) -> None:
    stack = create_stack(template_of(jaffle), PrefectWorker="service")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    created = {name for name, (_, physical) in physical_ids().items() if physical}
    assert {"ObserverQueue", "TaskStateRule"} <= created  # the queue and rule are there for a worker to come
    assert not {"WorkerService", "WorkerTaskDefinition", "WorkerTaskRole"} & created


@pytest.mark.parametrize(("days", "expected"), [(None, 90), ("30", 30), ("0", None), ("", None)])
def test_runs_expire_after_run_retention_days(jaffle: Adoptable, days: str | None, expected: int | None) -> None:
    from tests.deploy.template_eval import Resolver

    network = {"VpcId": "vpc-1", "SubnetIds": "subnet-1", "SecurityGroupIds": "sg-1", "GitHubRepository": "a/b"}
    parameters = network if days is None else {**network, "RunRetentionDays": days}
    bucket = Resolver(parse(template_of(jaffle)), parameters).resource("StoreBucket")
    assert bucket is not None
    if expected is None:  # 0 or empty: runs are kept forever, no lifecycle rule at all
        assert "LifecycleConfiguration" not in bucket["Properties"]
        return
    # Only the store's runs: releases, channels, state, docs and tables never expire.
    assert bucket["Properties"]["LifecycleConfiguration"] == {
        "Rules": [
            {
                "Id": "expire-runs",
                "Status": "Enabled",
                "Prefix": "jaffle/runs/",
                "ExpirationInDays": str(expected),
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            }
        ]
    }


def test_moto_creates_the_bucket_without_its_lifecycle_rule(aws: str, jaffle: Adoptable) -> None:
    stack = create_stack(template_of(jaffle), RunRetentionDays="90")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    # moto gap: its AWS::S3::Bucket takes BucketEncryption and Tags only (moto/s3/models.py,
    # create_from_cloudformation_json), so the rule is checked from the template above.
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        boto3.client("s3").get_bucket_lifecycle_configuration(Bucket="jaffle-dbt-ferry-pro")
