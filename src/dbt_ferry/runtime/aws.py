"""AWS helpers for the runtime: who am I (STS)."""

from __future__ import annotations

import botocore.exceptions
from botocore.config import Config

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.storage.aws_session import aws_session


def caller_account_id() -> str:
    """The AWS account id of the current credentials, from STS GetCallerIdentity."""
    try:
        client = aws_session().client(
            "sts", config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
        )
        return str(client.get_caller_identity()["Account"])
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            "no environment given, and no AWS credentials to detect it from the account id",
            "pass --env NAME or set DBT_FERRY_ENV",
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ConfigError(
            f"no environment given, and the AWS account id could not be read: {exc}",
            "pass --env NAME or set DBT_FERRY_ENV",
        ) from None
