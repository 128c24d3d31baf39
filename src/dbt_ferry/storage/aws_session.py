"""The AWS session every boto3 caller uses, with the region found the way AWS's own tools find it.

botocore reads ``AWS_DEFAULT_REGION`` and the profile's ``region``, but not ``AWS_REGION`` — the variable that
GitHub's ``configure-aws-credentials``, ECS and Lambda set. dbt-ferry takes, in order: the region given (a flag,
a store's ``region``), ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then whatever botocore finds (the profile), and
last the region of the store's bucket: an S3 store with no region from any of these asks S3 where its bucket is
(:func:`bucket_region`) and every later client of the process takes that one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import boto3
import botocore.exceptions

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
#: The region of the store's bucket, once an S3 store had to ask (no region given, in the environment or profile).
_learned: str | None = None


def aws_region(given: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The region to ask boto3 for (``None``: let botocore find one in the profile)."""
    env = os.environ if environ is None else environ
    return given or next((env[name] for name in REGION_VARIABLES if env.get(name)), None)


def aws_session(region: str | None = None) -> boto3.session.Session:
    session = boto3.session.Session(region_name=aws_region(region))
    if session.region_name is None and _learned:
        session = boto3.session.Session(region_name=_learned)
    return session


def bucket_region(session: boto3.session.Session, bucket: str, config: object = None) -> str | None:
    """Where ``bucket`` is, as S3 says in any answer to a HeadBucket (``x-amz-bucket-region``, on a 403 or a 301
    too); remembered for the clients made after it. ``None`` when S3 does not say."""
    global _learned
    client = session.client("s3", region_name="us-east-1", config=config)  # type: ignore[call-overload]
    try:
        headers = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    except botocore.exceptions.ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region") or None
    if region:
        _learned = region
    return region
