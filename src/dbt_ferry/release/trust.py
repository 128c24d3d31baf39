"""Who published a release: ``release.json`` signed with the environment's ``trust.release_key``.

Checksums prove that the artifacts are the ones ``release.json`` lists; only a signature proves that
``release.json`` is the publisher's. With ``trust.release_key`` (an AWS KMS asymmetric key that the CD role may
sign with and the task role may only verify with), ``publish`` signs the manifest and every fetch — the job's
included — refuses a release that is not signed with that key. Without it, releases are trusted by their
checksums alone, as in a local store.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbt_ferry.config.models import EnvironmentConfig, S3StoreConfig
from dbt_ferry.core.errors import FerryError, IntegrityError
from dbt_ferry.core.manifest import ReleaseManifest, Signature


@dataclass(frozen=True)
class ReleaseTrust:
    """Sign and check releases with one KMS key."""

    key_id: str
    region: str | None = None

    def sign(self, manifest: ReleaseManifest) -> ReleaseManifest:
        from dbt_ferry.storage.kms import ALGORITHM, KmsKey

        key, value = KmsKey(self.key_id, self.region).sign(manifest.payload())
        return manifest.model_copy(update={"signature": Signature(key=key, algorithm=ALGORITHM, value=value)})

    def check(self, manifest: ReleaseManifest, where: str) -> None:
        """Raise :class:`IntegrityError` unless ``manifest`` carries a valid signature of this key."""
        from dbt_ferry.storage.kms import ALGORITHM, KmsKey

        hint = f"publish it again where trust.release_key ({self.key_id}) signs it (the CD workflow's role)"
        signature = manifest.signature
        if signature is None:
            raise IntegrityError(f"release {manifest.version} in {where} is not signed, and {self.key_id} is required",
                                 hint)  # fmt: skip
        if signature.algorithm != ALGORITHM:
            raise IntegrityError(f"release {manifest.version} in {where} is signed with {signature.algorithm}, not "
                                 f"{ALGORITHM}", hint)  # fmt: skip
        try:
            valid = KmsKey(self.key_id, self.region).verify(manifest.payload(), signature.value)
        except FerryError as exc:
            raise IntegrityError(f"the signature of release {manifest.version} in {where} could not be checked: "
                                 f"{exc.message}", exc.hint) from None  # fmt: skip
        if not valid:
            raise IntegrityError(
                f"release {manifest.version} in {where} is not signed by {self.key_id}: its release.json was "
                "changed after it was published, or signed with another key",
                hint,
            )


def release_trust(environment: EnvironmentConfig) -> ReleaseTrust | None:
    """The environment's release key, or ``None`` (checksums only)."""
    key = environment.trust.release_key
    if not key:
        return None
    region = environment.store.region if isinstance(environment.store, S3StoreConfig) else None
    return ReleaseTrust(key, region)
