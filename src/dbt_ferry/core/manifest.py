"""The release manifest (``release.json``) and the channel pointer."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dbt_ferry.core.errors import IntegrityError

MANIFEST_NAME = "release.json"
FORMAT_VERSION = 1

ArtifactKind = Literal["code", "env", "profile", "lock"]
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Chunks(_Frozen):
    """The sha256 of each ``size``-byte piece of an artifact (the last may be shorter), in order: a reader checks
    each piece before it uses any byte of it, so a stream is verified as it goes, not only at its end."""

    size: int = Field(gt=0)
    sha256: tuple[str, ...]


class Artifact(_Frozen):
    """One file of a release, named by its path inside the release."""

    name: str
    kind: ArtifactKind
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    environment: str | None = None
    python: str | None = None
    platform: str | None = None
    #: Piecewise digests of an artifact that is streamed (the env pack).
    chunks: Chunks | None = None

    @model_validator(mode="after")
    def _chunks_cover_the_artifact(self) -> Artifact:
        if self.chunks is not None:
            expected = max(1, -(-self.size // self.chunks.size))
            if len(self.chunks.sha256) != expected or not all(_SHA256.fullmatch(d) for d in self.chunks.sha256):
                raise ValueError(f"{self.name}: {len(self.chunks.sha256)} chunk digests for {expected} chunks")
        return self


class Signature(_Frozen):
    """A signature over a record's canonical JSON (the record without its signature)."""

    key: str
    algorithm: str
    value: str


_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*")
_ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


class ReleaseManifest(_Frozen):
    """What ``release.json`` holds: who built what, and every artifact's size and checksum.

    Read strictly: besides its shape, every field must make sense (a commit is hex, an account id 12 digits, a
    profile artifact names its environment, the ``build_id`` is the digest of the artifacts it lists), so that a
    changed byte is refused rather than believed. What it cannot prove without a signature is who wrote it:
    with ``trust.release_key``, ``signature`` does (:mod:`dbt_ferry.release.trust`).
    """

    format: int = FORMAT_VERSION
    project: str
    version: str
    build_id: str
    created_at: datetime
    git_commit: str | None = None
    git_dirty: bool | None = None
    dbt_version: str | None = None
    python_version: str
    dbt_ferry_version: str
    #: environment name -> AWS account id, so that a container can tell its environment from STS.
    aws_accounts: dict[str, str] = Field(default_factory=dict)
    artifacts: tuple[Artifact, ...]
    #: The publisher's signature over :meth:`payload`, with ``trust.release_key``.
    signature: Signature | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ReleaseManifest:
        _check(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.project), f"project name {self.project!r}")
        _check(_pep440(self.version), f"version {self.version!r}")
        _check(re.fullmatch(r"[0-9a-f]{16}", self.build_id), f"build_id {self.build_id!r}")
        _check(self.git_commit is None or re.fullmatch(r"[0-9a-f]{7,64}", self.git_commit), "git_commit")
        _check(self.dbt_version is None or _pep440(self.dbt_version), f"dbt_version {self.dbt_version!r}")
        _check(re.fullmatch(r"3\.\d{1,2}", self.python_version), f"python_version {self.python_version!r}")
        _check(_pep440(self.dbt_ferry_version), f"dbt_ferry_version {self.dbt_ferry_version!r}")
        for name, account in self.aws_accounts.items():
            _check(_ENV_NAME.fullmatch(name) and re.fullmatch(r"\d{12}", account), f"aws_accounts entry {name!r}")
        names = [a.name for a in self.artifacts]
        _check(len(names) == len(set(names)), "artifact names (one appears twice)")
        for artifact in self.artifacts:
            _check(_ARTIFACT_NAME.fullmatch(artifact.name) and ".." not in artifact.name.split("/"),
                   f"artifact name {artifact.name!r}")  # fmt: skip
            if artifact.kind == "profile":
                env = artifact.environment or ""
                _check(_ENV_NAME.fullmatch(env) and artifact.name == f"profiles/{env}.yml",
                       f"profile artifact {artifact.name!r}")  # fmt: skip
            if artifact.kind == "env":
                _check(artifact.python and artifact.platform, f"env pack {artifact.name!r} (python, platform)")
        _check(self.build_id == build_id(self.artifacts), f"build_id {self.build_id} (not that of its artifacts)")
        return self

    def payload(self) -> bytes:
        """What a signature is over: the manifest without its signature, as canonical JSON."""
        data = self.model_dump(mode="json", exclude={"signature"}, exclude_none=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def of_kind(self, kind: ArtifactKind) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == kind]

    @property
    def environments(self) -> list[str]:
        return sorted(a.environment for a in self.of_kind("profile") if a.environment)

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> ReleaseManifest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise IntegrityError(
                f"{where} is not a valid release manifest: {exc.errors()[0]['msg'].removeprefix('Value error, ')}",
                "publish the release again with --force",
            ) from None


def _pep440(text: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _check(ok: object, what: str) -> None:
    if not ok:
        raise ValueError(f"invalid {what}")


def build_id(artifacts: tuple[Artifact, ...] | list[Artifact]) -> str:
    """A short digest of the artifacts' names and checksums: same content, same id."""
    digest = hashlib.sha256()
    for artifact in sorted(artifacts, key=lambda a: a.name):
        digest.update(f"{artifact.name}\0{artifact.sha256}\n".encode())
    return digest.hexdigest()[:16]


class Channel(_Frozen):
    """The per-environment pointer naming the release that runs by default."""

    version: str
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    previous: str | None = None

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Channel:
        try:
            return cls.model_validate(json.loads(data))
        except (ValueError, ValidationError):
            raise IntegrityError(
                f"{where} is not a valid channel pointer", "move it again with dbt-ferry promote"
            ) from None
