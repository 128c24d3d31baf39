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


class ReleaseManifest(_Frozen):
    """What ``release.json`` holds: who built what, and every artifact's size and checksum."""

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
                f"{where} is not a valid release manifest: {exc.errors()[0]['msg']}",
                "publish the release again with --force",
            ) from None


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
