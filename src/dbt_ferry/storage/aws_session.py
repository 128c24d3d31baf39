"""The AWS session every boto3 caller uses, with the region found the way AWS's own tools find it.

botocore reads ``AWS_DEFAULT_REGION`` and the profile's ``region``, but not ``AWS_REGION`` — the variable that
GitHub's ``configure-aws-credentials``, ECS and Lambda set. dbt-ferry takes, in order: the region given (a flag,
a store's ``region``), ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then whatever botocore finds (the profile).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import boto3

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def aws_region(given: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The region to ask boto3 for (``None``: let botocore find one in the profile)."""
    env = os.environ if environ is None else environ
    return given or next((env[name] for name in REGION_VARIABLES if env.get(name)), None)


def aws_session(region: str | None = None) -> boto3.session.Session:
    return boto3.session.Session(region_name=aws_region(region))
