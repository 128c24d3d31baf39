"""Athena first-class: `init --adapter athena` (or a profile with an athena target) writes dbt-athena profiles whose
work group, Glue database and S3 locations are the stack's, and dbt-athena itself loads them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.deploy import init_project, layout
from tests.deploy.conftest import GOLDEN_ENVIRONMENTS, HOME_PROFILES, REGION, Adoptable, write_project
from tests.deploy.test_cloudformation_stack import parse

ATHENA_HOME_PROFILES = HOME_PROFILES.replace(
    "    prod:\n      type: postgres",
    "    analytics:\n      type: athena\n      region_name: eu-west-1\n      database: awsdatacatalog\n"
    "      schema: jaffle_dev\n      s3_staging_dir: s3://dev-results/\n      threads: 8\n"
    "    prod:\n      type: postgres",
)


def _init(project: Adoptable, adapter: str | None = "athena") -> None:
    init_project(
        project.root, environments=GOLDEN_ENVIRONMENTS, region=REGION, adapter=adapter, environ={}, home=project.home
    )


def _profile(root: Path, env: str) -> dict[str, object]:
    data = yaml.safe_load((root / "profiles" / f"{env}.yml").read_text())
    output: dict[str, object] = data["jaffle"]["outputs"][env]
    assert data["jaffle"]["target"] == env
    return output


def test_each_cloud_environment_gets_a_dbt_athena_profile_matching_the_stack(jaffle: Adoptable) -> None:
    _init(jaffle)
    assert _profile(jaffle.root, "pro") == {
        "type": "athena",
        "region_name": REGION,
        "database": "awsdatacatalog",
        "schema": "jaffle_pro",
        "work_group": "jaffle-dbt-ferry-pro",
        "s3_staging_dir": "s3://jaffle-dbt-ferry-pro/jaffle/athena/results/",
        "s3_data_dir": "s3://jaffle-dbt-ferry-pro/jaffle/athena/data/",
        "s3_data_naming": "schema_table_unique",
        "threads": 4,
    }
    assert _profile(jaffle.root, "snd")["work_group"] == "jaffle-dbt-ferry-snd"
    assert "dbt-athena" in (jaffle.root / "pyproject.toml").read_text()
    # The stack (written for pro, the last environment) creates what the profile names.
    text = (jaffle.root / layout.STACK_TEMPLATE).read_text()
    template = parse(text)
    assert template["Parameters"]["Warehouse"]["Default"] == "athena"
    assert template["Parameters"]["ModelsDatabaseName"]["Default"] == "jaffle_pro"
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]
    assert workgroup["WorkGroupConfiguration"]["EnforceWorkGroupConfiguration"] is True
    result = workgroup["WorkGroupConfiguration"]["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert "Warehouse=athena ModelsDatabaseName=jaffle_snd" in text  # the deploy command of snd


def test_a_profile_with_an_athena_target_is_enough_and_keeps_its_settings(tmp_path: Path) -> None:
    project = write_project(tmp_path / "jaffle", tmp_path / "home", ATHENA_HOME_PROFILES)
    _init(project, adapter=None)
    output = _profile(project.root, "pro")
    assert (output["type"], output["threads"], output["schema"]) == ("athena", 8, "jaffle_pro")


def test_without_athena_the_stack_leaves_the_warehouse_to_extra_policies(jaffle: Adoptable) -> None:
    _init(jaffle, adapter=None)
    template = parse((jaffle.root / layout.STACK_TEMPLATE).read_text())
    assert template["Parameters"]["Warehouse"]["Default"] == "other"
    assert not (jaffle.root / "profiles" / "pro.yml").exists()  # init says to write it


def test_another_adapter_is_refused_in_one_line(jaffle: Adoptable) -> None:
    with pytest.raises(ConfigError, match="init writes the cloud profiles for athena only"):
        _init(jaffle, adapter="snowflake")
    assert not (jaffle.root / "pyproject.toml").exists()


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_the_athena_stack_on_moto_gives_the_task_role_the_dbt_athena_policy(aws: str, jaffle: Adoptable) -> None:
    """moto creates the role and its policy; the work group and the Glue database are among the types it cannot
    create (test_cloudformation_stack.py), so their names are checked in the policy it stores."""
    import json

    import boto3

    from tests.deploy.test_cloudformation_stack import create_stack, physical_ids

    _init(jaffle)
    stack = create_stack((jaffle.root / layout.STACK_TEMPLATE).read_text())
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    created = {name for name, (_, physical) in physical_ids().items() if physical}
    assert {"TaskRole", "TaskRoleAthenaPolicy"} <= created
    assert not {"AthenaWorkGroup", "ModelsDatabase"} & created  # moto gap: AWS::Athena::WorkGroup, AWS::Glue::Database
    iam = boto3.client("iam")
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if "TaskRole" in r["RoleName"])
    assert "dbt-athena" in iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName="dbt-athena")["PolicyDocument"]
    text = json.dumps(document)
    # moto gap: the work group it skipped is left unresolved in the policy (AWS resolves its Ref to the name).
    assert "workgroup/${AthenaWorkGroup}" in text and "database/jaffle_pro_*" in text
    assert "arn:aws:s3:::jaffle-dbt-ferry-pro/jaffle/athena/*" in text


@pytest.mark.slow
@pytest.mark.integration
def test_dbt_athena_needs_no_permission_the_task_role_lacks(aws: str, jaffle: Adoptable, tmp_path: Path) -> None:
    """dbt-athena loads the profile init wrote and parses the project without a connection; then `dbt build`
    against the moto server: every request is recorded
    and checked against the task role's statements (its own and the dbt-athena policy, as the template resolves them).

    moto gap: its Athena runs no SQL and answers every query with no rows. The seed (uploaded to S3, its table
    created in Glue) and the table model (built under a temporary name and swapped in, in Glue and S3) are built;
    the two data tests error ("Internal Error": dbt reads one row of failures). Should moto answer them one day,
    the counts below change and this test says so."""
    import boto3
    import requests
    from moto.moto_api import recorder

    from tests.deploy.iam_eval import _listed, calls_of, evaluate
    from tests.deploy.template_eval import ACCOUNT, Resolver
    from tests.deploy.template_eval import REGION as EVAL_REGION

    _init(jaffle)
    bucket, work_group, schema = "jaffle-dbt-ferry-pro", "jaffle-dbt-ferry-pro", "jaffle_pro"
    # What the stack creates: the bucket, the work group (enforcing its result location), the models' database.
    boto3.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    boto3.client("athena").create_work_group(
        Name=work_group, Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{bucket}/jaffle/athena/results/"},
                                        "EnforceWorkGroupConfiguration": True},
    )  # fmt: skip
    boto3.client("glue").create_database(DatabaseInput={"Name": schema})
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy2(jaffle.root / "profiles" / "pro.yml", profiles / "profiles.yml")
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": str(profiles)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([dbt, "--no-use-colors", *args], cwd=jaffle.root, env=env, capture_output=True,
                              text=True, check=False, timeout=300)  # fmt: skip

    for args in (["deps"], ["debug", "--config-dir"], ["parse", "--target", "pro"]):  # no connection yet
        done = run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    manifest = (jaffle.root / "target" / "manifest.json").read_text()
    assert '"adapter_type": "athena"' in manifest
    assert '"schema": "jaffle_pro"' in manifest  # the models go to the stack's Glue database
    recorder._location = str(tmp_path / "recording.jsonl")  # type: ignore[attr-defined]
    requests.post(f"{aws}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
    requests.post(f"{aws}/moto-api/recorder/start-recording", timeout=10).raise_for_status()
    try:
        done = run("build", "--target", "pro")
    finally:
        requests.post(f"{aws}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
    # The seed and the model are built; the two tests error on moto's empty answer (the gap above).
    assert "OK loaded seed file jaffle_pro.raw_orders" in done.stdout, done.stdout
    assert "OK created sql table model jaffle_pro.orders" in done.stdout, done.stdout
    assert "PASS=2 WARN=0 ERROR=2 SKIP=1" in done.stdout, done.stdout
    assert done.stdout.count("  Internal Error") == 2, done.stdout

    calls = calls_of((tmp_path / "recording.jsonl").read_text(), region=EVAL_REGION, account=ACCOUNT, key_arns={})
    actions = {c.action for c in calls}
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution", "glue:GetTables"} <= actions, actions
    assert all(c.resource.endswith(f"workgroup/{work_group}") for c in calls if c.action.startswith("athena:Start"))
    template = parse((jaffle.root / layout.STACK_TEMPLATE).read_text())
    resolver = Resolver(
        template,
        {"StoreBucketName": bucket, "StorePrefix": "jaffle", "VpcId": "vpc-1", "SubnetIds": "subnet-1",
         "SecurityGroupIds": "sg-1", "GitHubRepository": "acme/jaffle"},
        {"StateKey.Arn": "arn:k", "ReleaseKey.Arn": "arn:r", "AthenaWorkGroup": work_group, "TaskRole": "task-role"},
    )  # fmt: skip
    role, athena_policy = resolver.resource("TaskRole"), resolver.resource("TaskRoleAthenaPolicy")
    assert role is not None and athena_policy is not None
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    statements += athena_policy["Properties"]["PolicyDocument"]["Statement"]
    verdict = evaluate(statements, calls)
    assert verdict.denied == [], "the task role lacks:\n" + "\n".join(map(str, verdict.denied))
    sids = {st["Sid"] for st in athena_policy["Properties"]["PolicyDocument"]["Statement"]}
    granted = {(st.get("Sid", ""), a, r) for st in statements for a in _listed(st["Action"])
               for r in _listed(st["Resource"])}  # fmt: skip
    used = {(sid, action) for sid, action, _ in granted - set(verdict.unused)}
    unused = sorted({(sid, action) for sid, action, _ in verdict.unused if sid in sids} - used)
    # The report the issue asks for: what the dbt-athena policy grants and this build did not call. Incremental and
    # partitioned models, a custom schema and a cancelled query use some; Athena's own reads and writes of the data
    # and results (made with the caller's permissions) the others, and moto's Athena makes none.
    print("dbt-athena policy, granted and not used by this build:", *unused, sep="\n  ")  # noqa: T201
    assert ("AthenaQueries", "athena:StartQueryExecution") not in unused


@pytest.mark.parametrize(("days", "rules"), [("90", ["expire-runs", "expire-athena-results"]),
                                             ("0", ["expire-athena-results"])])  # fmt: skip
def test_athenas_query_results_expire_after_a_week_never_the_data(
    jaffle: Adoptable, days: str, rules: list[str]
) -> None:
    from tests.deploy.template_eval import Resolver

    _init(jaffle)
    parameters = {"VpcId": "vpc-1", "SubnetIds": "subnet-1", "SecurityGroupIds": "sg-1", "GitHubRepository": "a/b",
                  "RunRetentionDays": days}  # fmt: skip
    bucket = Resolver(parse((jaffle.root / layout.STACK_TEMPLATE).read_text()), parameters).resource("StoreBucket")
    assert bucket is not None
    found = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [rule["Id"] for rule in found] == rules
    (results,) = [rule for rule in found if rule["Id"] == "expire-athena-results"]
    assert (results["Prefix"], results["ExpirationInDays"]) == ("jaffle/athena/results/", 7)


def test_the_cli_flag_writes_the_athena_profiles(
    jaffle: Adoptable, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt_ferry.cli.main import main

    monkeypatch.setenv("HOME", str(jaffle.home))
    monkeypatch.setenv("DBT_PROFILES_DIR", "")
    main(["init", "--project-dir", str(jaffle.root), "--env", "pro", "--region", REGION, "--adapter", "athena"])
    out = capsys.readouterr().out
    assert "created     profiles/pro.yml" in out and "dbt-athena profile jaffle (work group jaffle-dbt-ferry-pro" in out
    assert _profile(jaffle.root, "pro")["work_group"] == "jaffle-dbt-ferry-pro"
    assert "write profiles/pro.yml" not in out
