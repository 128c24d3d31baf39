"""Signatures with an AWS KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``): the private key never leaves KMS.

The job signs the record of the state it publishes; whoever may use the key (``kms:Sign``) can vouch for state,
whoever may only write the bucket cannot. Every botocore error stops here and becomes a :class:`StoreError`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Final, Literal

import botocore.exceptions
from botocore.config import Config

from dbt_ferry.core.errors import StoreError
from dbt_ferry.storage.aws_session import aws_session

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

ALGORITHM: Final[Literal["ECDSA_SHA_256"]] = "ECDSA_SHA_256"
#: KMS signs RAW messages of at most 4096 bytes (a record of a few digests is far below).
MAX_MESSAGE = 4096
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)


class KmsKey:
    def __init__(self, key_id: str, region: str | None = None) -> None:
        self.key_id = key_id
        self._region = region
        self._client: KMSClient | None = None

    @property
    def client(self) -> KMSClient:
        if self._client is None:
            self._client = aws_session(self._region).client("kms", config=_CONFIG)
        return self._client

    def sign(self, message: bytes) -> tuple[str, str]:
        """``(key ARN, base64 signature)`` of ``message``."""
        self._check(message)
        try:
            answer = self.client.sign(KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=ALGORITHM)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise StoreError(
                f"KMS could not sign with {self.key_id}: {exc}", "grant the role kms:Sign on the key"
            ) from None
        return str(answer["KeyId"]), base64.b64encode(answer["Signature"]).decode()

    def verify(self, message: bytes, signature: str) -> bool:
        """Whether ``signature`` (base64) is this key's over ``message``."""
        self._check(message)
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            return False
        try:
            answer = self.client.verify(
                KeyId=self.key_id, Message=message, MessageType="RAW", Signature=raw, SigningAlgorithm=ALGORITHM
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "KMSInvalidSignatureException":
                return False
            raise StoreError(
                f"KMS could not verify with {self.key_id}: {exc}", "grant the role kms:Verify on the key"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(
                f"KMS could not verify with {self.key_id}: {exc}", "check the network and region"
            ) from None
        return bool(answer["SignatureValid"])

    @staticmethod
    def _check(message: bytes) -> None:
        if len(message) > MAX_MESSAGE:  # pragma: no cover - a state record is a few hundred bytes
            raise StoreError(f"a message of {len(message)} bytes is too long for KMS (at most {MAX_MESSAGE})")
