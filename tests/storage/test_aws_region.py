"""The region as AWS's own tools find it: given, then AWS_REGION, then AWS_DEFAULT_REGION, then the profile."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from dbt_ferry.storage.aws_session import aws_region
from dbt_ferry.storage.kms import KmsKey
from dbt_ferry.storage.s3 import S3Store


def test_precedence() -> None:
    both = {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert aws_region("ap-south-1", both) == "ap-south-1"
    assert aws_region(None, both) == "eu-central-1"
    assert aws_region(None, {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"
    assert aws_region(None, {"AWS_REGION": ""}) is None  # botocore then reads the profile


def test_the_store_and_the_state_key_work_with_only_aws_region(
    bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    store = S3Store(bucket, "shop")
    store.write_bytes("channels/pro.json", b"{}")
    assert store.list_keys("channels/") == ["channels/pro.json"]
    kms = KmsKey(key)
    _, signature = kms.sign(b"state")
    assert kms.verify(b"state", signature)


def test_with_no_region_anywhere_the_buckets_own_is_used(
    aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No flag, no variable, no profile: the store asks S3 where its bucket is, and the KMS key (like every client
    made after it) is called in that region too."""
    import dbt_ferry.storage.aws_session as aws_session_module

    s3 = boto3.client("s3", region_name="eu-central-1")
    s3.create_bucket(Bucket="far-away", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    key = boto3.client("kms", region_name="eu-central-1").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr(aws_session_module, "_learned", None)
    assert boto3.session.Session().region_name is None
    store = S3Store("far-away", "shop")
    store.write_bytes("channels/pro.json", b"{}")
    assert store.region == "eu-central-1"
    assert s3.get_object(Bucket="far-away", Key="shop/channels/pro.json")["Body"].read() == b"{}"
    kms = KmsKey(key["KeyMetadata"]["KeyId"])
    _, signature = kms.sign(b"state")
    assert kms.verify(b"state", signature)
