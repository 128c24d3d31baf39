"""An environment's state: what its last fully successful run of the channel's release left for later runs.

``state/<env>/`` holds dbt's ``manifest.json`` (for ``--state``/``--defer`` and slim CI), ``sources.json`` (for
``source_status:fresher+``) and ``partial_parse.msgpack`` (dbt's parse cache, restored so that dbt re-parses only
what changed), and ``state.json``, their record: the release and run that wrote them, the project folder they
were made in, and each file's size and sha256 — written last, so it is the commit point.

State is written by jobs and read by later jobs, so what is in it runs: a parse cache holds every model's SQL.
Nothing of it is used unless its record is trusted and every file matches its digest (checked on the bytes read,
before dbt sees them):

- with ``trust.state_key`` (an AWS KMS asymmetric key), the record is signed by the job that writes it and
  verified before use: who may only write the bucket cannot make a job run other SQL;
- a local store is a folder of this machine's user, as trusted as the releases in it: digests alone;
- state in any other store, unsigned, is not used (the job parses from scratch and says why).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbt_ferry.config.models import EnvironmentConfig, S3StoreConfig
from dbt_ferry.core.checksums import sha256_file
from dbt_ferry.core.errors import FerryError, IntegrityError, ReleaseNotFoundError, StoreNotFoundError
from dbt_ferry.core.layout import state_prefix
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.runtime.uploads import FailedUploads
from dbt_ferry.storage.local import LocalStore

log = logging.getLogger(__name__)

RECORD = "state.json"
PARSE_CACHE = "partial_parse.msgpack"
#: What a successful full run leaves in ``state/<env>/``, besides its record.
STATE_FILES = ("manifest.json", "sources.json", PARSE_CACHE)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileDigest(_Frozen):
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Signature(_Frozen):
    key: str
    algorithm: str
    value: str


class StateRecord(_Frozen):
    format: Literal[1] = 1
    environment: str
    release_version: str
    build_id: str
    invocation_id: str
    project_dir: str
    created_at: datetime
    files: dict[str, FileDigest]
    signature: Signature | None = None

    def payload(self) -> bytes:
        """What the signature is over: the record without it, as canonical JSON."""
        data = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


class StateTrust(Protocol):
    def sign(self, payload: bytes) -> Signature | None:
        """A signature of ``payload``, or None when state is not signed here."""
        ...

    def doubt(self, record: StateRecord) -> str | None:
        """None when ``record`` may be used; else why not, in words."""
        ...


class LocalTrust:
    """A local store: the folder of this machine's user, as trusted as the releases in it."""

    def sign(self, payload: bytes) -> Signature | None:
        return None

    def doubt(self, record: StateRecord) -> str | None:
        return None


@dataclass
class Untrusted:
    """Unsigned state in a shared store: never used."""

    where: str

    def sign(self, payload: bytes) -> Signature | None:
        return None

    def doubt(self, record: StateRecord) -> str | None:
        return f"state in {self.where} is used only when signed — set trust.state_key (a KMS key) for the environment"


class KmsTrust:
    """State signed with a KMS key by the job that writes it, verified before use."""

    def __init__(self, key_id: str, region: str | None = None) -> None:
        from dbt_ferry.storage.kms import ALGORITHM, KmsKey

        self._key = KmsKey(key_id, region)
        self._algorithm = ALGORITHM

    def sign(self, payload: bytes) -> Signature | None:
        key, value = self._key.sign(payload)
        return Signature(key=key, algorithm=self._algorithm, value=value)

    def doubt(self, record: StateRecord) -> str | None:
        if record.signature is None:
            return f"its record is not signed, and {self._key.key_id} is required"
        if record.signature.algorithm != self._algorithm:
            return f"its record is signed with {record.signature.algorithm}, not {self._algorithm}"
        try:
            valid = self._key.verify(record.payload(), record.signature.value)
        except FerryError as exc:
            return f"its signature could not be checked: {exc}"
        return None if valid else f"its record's signature is not one of {self._key.key_id}"


def state_trust(environment: EnvironmentConfig, store: ArtifactStore) -> StateTrust:
    """How the environment's state is trusted: its KMS key, else a local store's digests, else not at all."""
    if environment.trust.state_key:
        region = environment.store.region if isinstance(environment.store, S3StoreConfig) else None
        return KmsTrust(environment.trust.state_key, region)
    if isinstance(store, LocalStore):
        return LocalTrust()
    return Untrusted(store.url)


# -- writing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateOrigin:
    """Who writes the state: the release the run ran, and how the record is signed."""

    trust: StateTrust
    release_version: str
    build_id: str


@dataclass
class PublishedState:
    keys: list[str]
    problems: list[str]


def publish_state(
    store: ArtifactStore,
    environment: str,
    target: Path,
    *,
    trust: StateTrust,
    release_version: str,
    build_id: str,
    invocation_id: str,
    project_dir: Path,
    failed: FailedUploads,
) -> PublishedState:
    """Upload the state files ``target`` holds, then their record (signed when the trust signs); an upload that
    fails goes into ``failed``."""
    prefix = state_prefix(environment)
    published = PublishedState([], [])
    digests: dict[str, FileDigest] = {}
    for name in STATE_FILES:
        path = target / name
        if not path.is_file():
            continue
        digest = FileDigest(size=path.stat().st_size, sha256=sha256_file(path))
        try:
            store.upload(prefix + name, path)
        except FerryError as exc:
            failed.add(prefix + name, exc)
            continue
        digests[name] = digest
        published.keys.append(prefix + name)
    record = StateRecord(
        environment=environment, release_version=release_version, build_id=build_id, invocation_id=invocation_id,
        project_dir=str(project_dir), created_at=datetime.now(UTC), files=digests,
    )  # fmt: skip
    try:
        record = record.model_copy(update={"signature": trust.sign(record.payload())})
    except FerryError as exc:
        published.problems.append(f"the state's record was not signed (later runs will not use it): {exc}")
    try:
        store.write_bytes(prefix + RECORD, (record.model_dump_json(indent=2) + "\n").encode())
        published.keys.append(prefix + RECORD)
    except FerryError as exc:
        failed.add(prefix + RECORD, exc)
    return published


# -- reading -----------------------------------------------------------------------------------------------


def load_record(store: ArtifactStore, environment: str, trust: StateTrust) -> StateRecord:
    """The environment's state record, trusted; a one-line error says why there is none to use."""
    key = state_prefix(environment) + RECORD
    where = f"{store.url}/{key}"
    try:
        record = StateRecord.model_validate_json(store.read_bytes(key))
    except StoreNotFoundError:
        raise ReleaseNotFoundError(
            f"{environment} has no state in {store.url} (no {key})",
            f"a fully successful, unselected `dbt build` of {environment}'s channel release publishes it",
        ) from None
    except (ValidationError, ValueError) as exc:
        raise IntegrityError(f"{where} is not a state record: {' '.join(str(exc).split())[:300]}") from None
    doubt = trust.doubt(record)
    if doubt is not None:
        raise IntegrityError(f"the state of {environment} is not trusted: {doubt}")
    return record


def read_record(store: ArtifactStore, environment: str, trust: StateTrust) -> StateRecord | None:
    """The environment's trusted state record, or None (the reason is logged, unless there is no state at all)."""
    try:
        return load_record(store, environment, trust)
    except ReleaseNotFoundError:
        return None
    except FerryError as exc:
        log.warning("the state of %s is not used: %s", environment, exc.message)
        return None


def restore_file(store: ArtifactStore, record: StateRecord, name: str, dest: Path) -> bool:
    """Download one state file to ``dest`` only if its bytes match the record; False (and nothing) otherwise."""
    digest = record.files.get(name)
    if digest is None:
        return False
    key = state_prefix(record.environment) + name
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=dest.parent)
    os.close(fd)
    staged = Path(tmp)
    try:
        store.download(key, staged)
        size, sha256 = staged.stat().st_size, sha256_file(staged)
        if (size, sha256) != (digest.size, digest.sha256):
            log.warning(
                "%s/%s does not match its record (%d bytes, sha256 %s; recorded %d, %s): not used",
                store.url, key, size, sha256[:12], digest.size, digest.sha256[:12],
            )  # fmt: skip
            return False
        staged.replace(dest)
        return True
    except FerryError as exc:
        log.warning("%s/%s not restored: %s", store.url, key, exc)
        return False
    finally:
        staged.unlink(missing_ok=True)


def restore_state(store: ArtifactStore, environment: str, trust: StateTrust, dest: Path) -> StateRecord:
    """The environment's state for ``--state``: its ``manifest.json`` (and ``sources.json``) verified into ``dest``
    (a new folder); a one-line error when there is none to use."""
    record = load_record(store, environment, trust)
    if "manifest.json" not in record.files:
        raise ReleaseNotFoundError(f"the state of {environment} in {store.url} has no manifest.json")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "sources.json"):
        if name in record.files and not restore_file(store, record, name, dest / name):
            raise IntegrityError(
                f"{store.url}/{state_prefix(environment)}{name} does not match the state's record",
                f"the next fully successful run of {environment} publishes it again",
            )
    return record


def restore_parse_cache(store: ArtifactStore, environment: str, project_dir: Path, trust: StateTrust) -> bool:
    """Put the last successful run's parse cache into ``target/`` when it is trusted, intact and was made at this
    very path (dbt reads seed files through the path it recorded); False when it is not restored."""
    record = read_record(store, environment, trust)
    if record is None or record.project_dir != str(project_dir):
        return False
    return restore_file(store, record, PARSE_CACHE, project_dir / "target" / PARSE_CACHE)
