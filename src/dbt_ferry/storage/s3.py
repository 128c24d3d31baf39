"""A store in an S3 bucket under a prefix, through boto3.

Endpoints follow boto3's standard settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``), so any
S3-compatible server works. Uploads are multipart and concurrent; throttling and 5xx answers are
retried with backoff. Every read is one streamed GET that resumes where it broke off (a connection reset, a
stalled body): the rest of the same object version (``Range`` + ``If-Match`` on its ETag), up to
:data:`RESUMES` times. A whole-object GET asks S3 for the object's checksum (``ChecksumMode``), which botocore
checks; a read that got fewer bytes than the object has is an error, never a short answer. Every botocore
exception stops here and becomes a :class:`StoreError`.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from dbt_ferry.core.checksums import sha256_file
from dbt_ferry.core.constants import ENV_S3_READ_TIMEOUT
from dbt_ferry.core.errors import ConfigError, StoreError, StoreNotFoundError, StorePreconditionError
from dbt_ferry.core.store import ProgressCallback
from dbt_ferry.storage.aws_session import aws_session, bucket_region

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_MB = 1024 * 1024
#: How often one read resumes after its body broke off, and the pause before each (seconds, doubling).
RESUMES = 5
RESUME_PAUSE = 0.2
#: The object metadata holding the sha256 of what dbt-ferry wrote; a read checks the bytes against it.
SHA256_METADATA = "dbt-ferry-sha256"
#: How often a read whose bytes do not match the object's checksum is made again (a damaged transfer).
VERIFIED_READS = 3
_BROKEN_BODY: tuple[type[BaseException], ...] = (
    OSError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.IncompleteReadError,
)
#: Seconds a read waits for the next bytes, unless ``DBT_FERRY_S3_READ_TIMEOUT`` says otherwise.
READ_TIMEOUT = 60.0
TRANSFER = TransferConfig(
    multipart_threshold=32 * _MB,
    multipart_chunksize=16 * _MB,
    max_concurrency=8,
    use_threads=True,
)
CLIENT_CONFIG = Config(
    retries={"max_attempts": 6, "mode": "standard"},
    connect_timeout=5,
    read_timeout=READ_TIMEOUT,
    max_pool_connections=16,
)


def read_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a read waits for S3's next bytes (``DBT_FERRY_S3_READ_TIMEOUT``, else 60)."""
    raw = (os.environ if environ is None else environ).get(ENV_S3_READ_TIMEOUT, "").strip()
    if not raw:
        return READ_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 3600:
        raise ConfigError(f"{ENV_S3_READ_TIMEOUT}={raw!r} is not a number of seconds", "set it to one, e.g. 60")
    return seconds


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", region: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region
        self._client: S3Client | None = None
        self._client_lock = threading.RLock()  # re-entered when connecting fails and the error names the endpoint
        self._bucket_seen = False

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Store({self.url})"

    @property
    def client(self) -> S3Client:
        with self._client_lock:  # the job uploads a run's files from several threads: one client for all
            if self._client is None:
                with self._errors("connect"):
                    session = aws_session(self.region)
                    config = CLIENT_CONFIG.merge(Config(read_timeout=read_timeout()))
                    if session.region_name is None:  # none given, in the environment or the profile: the bucket's
                        self.region = bucket_region(session, self.bucket, config)
                        session = aws_session(self.region)
                    self._client = session.client("s3", config=config)
            return self._client

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        where = f"s3://{self.bucket}/{self._key(key)}" if key is not None else self.url
        try:
            yield
        except botocore.exceptions.NoCredentialsError:
            raise StoreError(
                f"no AWS credentials found to {action} {where}",
                "configure credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a task role)",
            ) from None
        except (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError):
            endpoint = self.client.meta.endpoint_url
            raise StoreError(
                f"the S3 endpoint {endpoint} did not answer in time to {action} {where}, after retries",
                f"check the network to it, or raise {ENV_S3_READ_TIMEOUT} on a slow link",
            ) from None
        except botocore.exceptions.EndpointConnectionError as exc:
            raise StoreError(
                f"cannot reach the S3 endpoint {exc.kwargs.get('endpoint_url', '')} to {action} {where}",
                "check the network, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 and the region",
            ) from None
        except botocore.exceptions.ClientError as exc:
            raise self._client_error(exc, action, where) from None
        except boto3.exceptions.S3UploadFailedError as exc:
            # The transfer manager wraps the service's answer; map the original.
            cause = exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise self._client_error(cause, action, where) from None
            raise StoreError(f"cannot {action} {where}: {exc}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"cannot {action} {where}: {exc}") from None

    def _client_error(self, exc: botocore.exceptions.ClientError, action: str, where: str) -> StoreError:
        error: dict[str, Any] = dict(exc.response.get("Error", {}))
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return StoreError(f"bucket {self.bucket} does not exist", "create it, or fix the store's bucket name")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return StoreNotFoundError(f"{where} does not exist")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (412,):
            return StorePreconditionError(f"{where} already exists, or changed since it was read")
        if code in ("AccessDenied", "403", "Forbidden") or status == 403:
            return _AccessDenied(
                f"access denied to {action} {where}",
                "grant the role s3:GetObject/PutObject/ListBucket on the store prefix",
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return StoreError(f"AWS rejected the credentials ({code}) to {action} {where}", "refresh them")
        message = error.get("Message") or code or str(exc)
        return StoreError(f"cannot {action} {where}: {message}")

    def read_bytes(self, key: str) -> bytes:
        return self.read_versioned(key)[0]

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        for attempt in range(1, VERIFIED_READS + 1):
            try:
                body = _Body(self, key)
                with io.BufferedReader(body, buffer_size=_MB) as stream:
                    return stream.read(), body.etag
            except _DamagedRead:
                if attempt == VERIFIED_READS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {"IfMatch": if_match} if if_match else {}
        metadata = {SHA256_METADATA: hashlib.sha256(data).hexdigest()}
        with self._errors("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, Metadata=metadata, **extra)

    def upload(self, key: str, source: Path, *, progress: ProgressCallback | None = None) -> None:
        extra = {"Metadata": {SHA256_METADATA: sha256_file(source)}}
        with self._errors("upload", key):
            self.client.upload_file(
                str(source), self.bucket, self._key(key), ExtraArgs=extra, Config=TRANSFER, Callback=progress
            )

    def download(self, key: str, dest: Path, *, progress: ProgressCallback | None = None) -> None:
        for attempt in range(1, VERIFIED_READS + 1):
            try:
                with self.open_read(key) as stream, dest.open("wb") as out:
                    while chunk := stream.read(_MB):
                        out.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
                return
            except _DamagedRead:
                dest.unlink(missing_ok=True)
                if attempt == VERIFIED_READS:
                    raise

    def _get(self, key: str, *, start: int = 0, etag: str | None = None) -> dict[str, Any]:
        """One GET of ``key``: whole (with S3's checksum checked), or from ``start`` of the version ``etag``."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start:
            args.update(Range=f"bytes={start}-", IfMatch=etag)
        else:
            args["ChecksumMode"] = "ENABLED"
        try:
            with self._errors("read", key):
                return cast(dict[str, Any], self.client.get_object(**args))
        except StoreNotFoundError:
            self._check_bucket()
            raise
        except _AccessDenied:
            self._absent_or_denied(key)
            raise

    def open_read(self, key: str) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(_Body(self, key), buffer_size=_MB))

    def size(self, key: str) -> int | None:
        try:
            with self._errors("inspect", key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except StoreNotFoundError:
            self._check_bucket()
            return None
        except _AccessDenied:
            try:
                self._absent_or_denied(key)
            except StoreNotFoundError:
                return None
            raise
        return int(head["ContentLength"])

    def _absent_or_denied(self, key: str) -> None:
        """S3 answers 403, not 404, for a missing key when the role may not list it — and a role whose
        s3:ListBucket holds only with an ``s3:prefix`` condition (the generated task role's) may not, for a GET has
        no prefix. Listing exactly that key tells: absent is :class:`StoreNotFoundError`; present, or a listing
        refused too, leaves the access denial as it is."""
        full = self._key(key)
        try:
            answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            return
        if not any(obj.get("Key") == full for obj in answer.get("Contents", [])):
            raise StoreNotFoundError(f"s3://{self.bucket}/{full} does not exist") from None

    def _check_bucket(self) -> None:
        """A HEAD 404 carries no error code: ask (once per store) whether the bucket itself exists.

        With a listing of the store's prefix, not HeadBucket: a role whose s3:ListBucket holds only for the store's
        prefix (``s3:prefix``, as the generated task role's) may make it, and a missing bucket is NoSuchBucket."""
        if self._bucket_seen:
            return
        try:
            with self._errors("inspect", ""):
                self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)
        except StoreNotFoundError:
            raise StoreError(
                f"bucket {self.bucket} does not exist", "create it, or fix the store's bucket name"
            ) from None
        self._bucket_seen = True

    def list_keys(self, prefix: str) -> list[str]:
        # A prefix names a folder, as on the local store: "a" lists a/..., never ab/...
        folder = prefix.strip("/")
        full = self._key(folder + "/") if folder else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._errors("list", prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def missing(self) -> str | None:
        return None  # a bucket that is not there is an error of every call (StoreNotFoundError)

    def delete(self, keys: list[str]) -> None:
        with self._errors("delete"):
            for start in range(0, len(keys), 1000):
                batch: list[ObjectIdentifierTypeDef] = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
                if batch:
                    answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                    errors = answer.get("Errors") or []
                    if errors:  # Quiet mode reports only the keys it could not delete
                        first = errors[0]
                        raise StoreError(
                            f"cannot delete {len(errors)} of {len(batch)} keys in {self.url}, e.g. "
                            f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip(),
                            "check the role's s3:DeleteObject permission on these keys",
                        )


class _AccessDenied(StoreError):
    """S3 refused the request (403)."""


class _DamagedRead(StoreError):
    """The bytes read do not match the object's checksum (S3's own, or the sha256 dbt-ferry wrote with it)."""


class _Body(io.RawIOBase):
    """An S3 object's body as a file object: it resumes where the stream broke off, and its errors are store
    errors. It ends only at the object's length; a body that ends early is a broken stream too."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._store = store
        self._key = key
        answer = store._get(key)
        self._body: Any = answer["Body"]
        self._etag = str(answer.get("ETag", ""))
        self._length = int(answer.get("ContentLength", 0))
        self._expected = (answer.get("Metadata") or {}).get(SHA256_METADATA)
        self._digest = hashlib.sha256()
        self._offset = 0
        self._resumes = 0

    def readable(self) -> bool:
        return True

    @property
    def etag(self) -> str:
        return self._etag

    def _resume(self, exc: BaseException) -> None:
        where = f"s3://{self._store.bucket}/{self._store._key(self._key)}"
        endpoint = self._store.client.meta.endpoint_url
        if self._resumes >= RESUMES:
            raise StoreError(
                f"the read of {where} from {endpoint} broke off at byte {self._offset:,} of {self._length:,}, "
                f"{RESUMES} resumes did not get the rest: {' '.join(str(exc).split()) or type(exc).__name__}",
                "check the network to the S3 endpoint, then run the command again",
            ) from None
        time.sleep(RESUME_PAUSE * 2**self._resumes)
        self._resumes += 1
        self._body.close()
        try:
            self._body = self._store._get(self._key, start=self._offset, etag=self._etag)["Body"]
        except StorePreconditionError:
            raise StoreError(
                f"{where} changed while it was read (its ETag is no longer {self._etag})", "run the command again"
            ) from None

    def readinto(self, buffer: Any) -> int:
        while self._offset < self._length:
            try:
                data = self._body.read(min(len(buffer), self._length - self._offset))
                if not data:
                    raise botocore.exceptions.IncompleteReadError(
                        actual_bytes=self._offset, expected_bytes=self._length
                    )
            except StoreError:
                raise
            except _BROKEN_BODY as exc:
                self._resume(exc)
                continue
            except botocore.exceptions.BotoCoreError as exc:  # S3's checksum of the whole object did not match
                raise _DamagedRead(f"the bytes read of {self._where()} do not match its checksum: {exc}") from None
            buffer[: len(data)] = data
            self._offset += len(data)
            self._digest.update(data)
            if self._offset == self._length and self._expected and self._digest.hexdigest() != self._expected:
                raise _DamagedRead(
                    f"the bytes read of {self._where()} do not match the sha256 it was written with",
                    "run the command again; if it persists, the object is damaged: publish it again",
                )
            return len(data)
        return 0

    def _where(self) -> str:
        return f"s3://{self._store.bucket}/{self._store._key(self._key)}"

    def close(self) -> None:
        self._body.close()
        super().close()
