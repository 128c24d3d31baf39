"""The task role of the generated stack lets a real job do everything it does, and hardly more.

A job of the example project runs twice against the S3 store on the moto server (the second run reads the signed
state the first one wrote), with the environment's state key in KMS and its result tables in Glue. The moto
server's recorder keeps every request it got — boto3's and pyarrow's (the Iceberg data files) — and each is
checked, as the IAM action it needs with its resource ARN (and the ``s3:prefix`` of a listing), against the task
role's statements as the template resolves them for this stack (:mod:`tests.deploy.iam_eval`). A call the role
does not allow fails the test; what the role allows and no call used is a known list.

Why not moto's own IAM enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``)? It is basic: moto checks actions and
resources of the caller's policies, but not S3's implicit ListBucket for HeadBucket, not ``s3:prefix`` and most
condition keys, and KMS and Glue resources only partly; and its CloudFormation drops the task definition's roles
(test_cloudformation_stack.py). So the recording is real, and the evaluation is this test's own, strict one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from dbt_ferry.config.loader import load_project
from dbt_ferry.deploy import layout
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.release.trust import ReleaseTrust
from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage.s3 import S3Store
from tests.deploy.conftest import Adoptable
from tests.deploy.iam_eval import Call, calls_of, evaluate
from tests.deploy.template_eval import ACCOUNT, REGION, Resolver
from tests.deploy.test_cloudformation_stack import parse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX, ENV, DATABASE = "shop", "pro", "dbt_ferry_shop_pro"
ALIAS = "alias/shop-dbt-ferry-pro-state"
RELEASE_ALIAS = "alias/shop-dbt-ferry-pro-release"

#: Granted and not used by these runs, each for a reason.
KNOWN_UNUSED = {
    # When --env is not given, the job finds its environment from the account id (aws_account_id).
    ("WhoAmI", "sts:GetCallerIdentity", "*"),
    # Multipart uploads (above 32 MiB) that fail are aborted; nothing here is that large.
    *(("WriteOutputs", "s3:AbortMultipartUpload", f"arn:aws:s3:::{{bucket}}/{PREFIX}/{d}/*")
      for d in ("runs", "state", "docs", "tables")),
    # `dbt-ferry retry` reads the failed run (runs/<env>/last-failed.json and its artifacts); these runs passed.
    ("ReadOutputs", "s3:GetObject", f"arn:aws:s3:::{{bucket}}/{PREFIX}/runs/*"),
    # Glue lists or reads the tables only in `history`/`report`, not in a job.
    ("ResultTables", "glue:GetTables", "arn:aws:glue:eu-west-1:123456789012:catalog"),
    ("ResultTables", "glue:GetTables", f"arn:aws:glue:eu-west-1:123456789012:database/{DATABASE}"),
    ("ResultTables", "glue:GetTables", f"arn:aws:glue:eu-west-1:123456789012:table/{DATABASE}/*"),
}  # fmt: skip


def _task_role_statements(
    project: Adoptable, bucket: str, key_arn: str, release_key_arn: str = ""
) -> list[dict[str, object]]:
    project.init(ENV)
    template = parse((project.root / layout.STACK_TEMPLATE).read_text(encoding="utf-8"))
    resolver = Resolver(
        template,
        {
            "ProjectName": "shop",
            "EnvironmentName": ENV,
            "StoreBucketName": bucket,
            "StorePrefix": PREFIX,
            "ResultsDatabaseName": DATABASE,
            "VpcId": "vpc-1",
            "SubnetIds": "subnet-1",
            "SecurityGroupIds": "sg-1",
            "GitHubRepository": "acme/shop",
        },
        {"StateKey.Arn": key_arn, "ReleaseKey.Arn": release_key_arn},
    )
    role = resolver.resource("TaskRole")
    assert role is not None
    assert "ManagedPolicyArns" not in role["Properties"]  # ExtraTaskPolicyArns empty: none attached
    [policy] = role["Properties"]["Policies"]
    statements: list[dict[str, object]] = policy["PolicyDocument"]["Statement"]
    return statements


def _run(url: str, container: Path, tmp_path: Path) -> JobReport:
    request = JobRequest(
        environment=ENV, store=url, project_dir=str(container), work_dir=str(tmp_path / "work"), no_prefect=True
    )
    spec, _ = prepare(request, cache_dir=tmp_path / "cache")
    return execute(spec)


def _one_request_at_a_time(monkeypatch: pytest.MonkeyPatch, recorder: Any) -> None:
    """moto's recorder appends each request to its file in two writes and without a lock, so concurrent requests
    (the job uploads a run's files four at a time) interleave their lines. A gap of moto's, recorded here: the
    recording is made one request at a time."""
    lock = threading.Lock()
    record = recorder._record_request

    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return record(*args, **kwargs)

    monkeypatch.setattr(recorder, "_record_request", one_at_a_time)


def test_a_job_needs_no_permission_the_task_role_lacks(
    aws: str, bucket: str, shop: Path, tmp_path: Path, jaffle: Adoptable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    release_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName=RELEASE_ALIAS, TargetKeyId=release_key["KeyId"])
    # What the stack creates: the Glue database of the result tables.
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f'\n[tool.dbt-ferry.environments.pro.trust]\nstate_key = "{ALIAS}"\nrelease_key = "{RELEASE_ALIAS}"\n'
        + f'\n[tool.dbt-ferry.environments.pro.exports]\nnamespace = "{DATABASE}"\n'
    )
    built = package_release(load_project(shop), tmp_path / "build")
    # The deploy role's doing, signed with the release key (as `dbt-ferry publish` does with trust.release_key).
    publish_release(S3Store(bucket, PREFIX), built, environment=ENV, promote=True, trust=ReleaseTrust(RELEASE_ALIAS))

    from moto.moto_api import recorder

    monkeypatch.setattr(recorder, "_location", str(tmp_path / "recording.jsonl"))
    _one_request_at_a_time(monkeypatch, recorder)
    requests.post(f"{aws}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
    requests.post(f"{aws}/moto-api/recorder/start-recording", timeout=10).raise_for_status()
    container = tmp_path / "container"
    container.mkdir()
    try:
        first = _run(f"s3://{bucket}/{PREFIX}", container, tmp_path)
        second = _run(f"s3://{bucket}/{PREFIX}", container, tmp_path)
    finally:
        requests.post(f"{aws}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
    assert (first.exit_code, second.exit_code) == (0, 0), (first, second)
    assert first.state and second.state

    recording = (tmp_path / "recording.jsonl").read_text()
    key_arns = {ALIAS: key["Arn"], key["KeyId"]: key["Arn"], RELEASE_ALIAS: release_key["Arn"],
                release_key["KeyId"]: release_key["Arn"]}  # fmt: skip
    calls = calls_of(recording, region=REGION, account=ACCOUNT, key_arns=key_arns)
    actions = {c.action for c in calls}
    # The run did what a run does: read the release and the state, write outputs, sign and verify, export.
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "kms:Sign", "kms:Verify"} <= actions, actions
    assert {"glue:GetTable", "glue:CreateTable", "glue:UpdateTable"} & actions, actions
    assert "s3:DeleteObject" not in actions  # a job deletes nothing

    assert any(c.action == "kms:Verify" and c.resource == release_key["Arn"] for c in calls)  # the release checked
    verdict = evaluate(_task_role_statements(jaffle, bucket, key["Arn"], release_key["Arn"]), calls)
    assert verdict.denied == [], "the task role lacks:\n" + "\n".join(map(str, verdict.denied))
    known = {(sid, action, resource.format(bucket=bucket)) for sid, action, resource in KNOWN_UNUSED}
    print("granted, not used by a run:", *verdict.unused, sep="\n  ")  # noqa: T201 - the report the brief asks for
    assert set(verdict.unused) == known


def test_the_evaluator_refuses_what_the_role_lacks() -> None:
    bucket = "b"
    statements = [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/shop/releases/*",
        },
        {
            "Sid": "List",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": "shop/*"}},
        },
    ]
    verdict = evaluate(
        statements,
        [
            Call("s3:GetObject", f"arn:aws:s3:::{bucket}/shop/releases/1.0.0/release.json"),
            Call("s3:GetObject", f"arn:aws:s3:::{bucket}/other/releases/x"),
            Call("s3:PutObject", f"arn:aws:s3:::{bucket}/shop/releases/x"),
            Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", "shop/runs/"),
            Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", "elsewhere/"),
            Call("s3:ListBucket", f"arn:aws:s3:::{bucket}"),  # HeadBucket, a listing of the whole bucket
        ],
    )
    assert verdict.denied == [
        Call("s3:GetObject", f"arn:aws:s3:::{bucket}/other/releases/x"),
        Call("s3:PutObject", f"arn:aws:s3:::{bucket}/shop/releases/x"),
        Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", "elsewhere/"),
        Call("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
    ]
    assert verdict.unused == []
    with pytest.raises(ValueError, match="StringLikeIfExists"):
        evaluate([{**statements[1], "Condition": {"StringLikeIfExists": {"s3:prefix": "shop/*"}}}], [statements and
                  Call("s3:ListBucket", f"arn:aws:s3:::{bucket}")])  # fmt: skip
