"""What a job is asked to do (``JobRequest``) and the fully resolved job (``JobSpec``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dbt_ferry.config.models import EnvironmentConfig, StoreConfig
from dbt_ferry.core.manifest import ReleaseManifest

#: Exit code of a job stopped by SIGTERM (128 + 15, as a shell reports it).
EXIT_TERMINATED = 143


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobRequest(_Frozen):
    """The options of ``dbt-ferry run``, as given (``None``: not given)."""

    environment: str | None = None
    version: str | None = None
    target: str | None = None
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    full_refresh: bool = False
    vars: str | None = None
    threads: int | None = Field(default=None, ge=1)
    debug: bool = False
    docs: bool | None = None
    dbt_args: tuple[str, ...] = ()
    project_dir: str | None = None
    store: str | None = None
    work_dir: str | None = None
    keep_work_dir: bool = False


class JobSpec(_Frozen):
    """A job ready to run: the release is fetched, the environment resolved."""

    request: JobRequest
    environment: EnvironmentConfig
    store: StoreConfig
    project_dir: str
    work_root: str
    manifest: ReleaseManifest
    channel_release: bool
    target: str | None
    target_type: str | None
    cleanup: bool = True
    #: The descriptor holding the work directory's lock (inherited across the re-exec), released at the end.
    lock_fd: int | None = None

    @property
    def project_path(self) -> Path:
        return Path(self.project_dir)

    @property
    def command(self) -> tuple[str, ...]:
        """The dbt command to run, without selection flags: ``build`` or what followed ``--``."""
        return self.request.dbt_args or ("build",)

    @property
    def has_selection(self) -> bool:
        args = set(self.request.dbt_args)
        return bool(self.request.select or self.request.exclude or args & {"-s", "--select", "--exclude", "--selector"})

    @property
    def docs_enabled(self) -> bool:
        if self.environment.ci:
            return False
        wanted = self.environment.docs if self.request.docs is None else self.request.docs
        return wanted and not self.has_selection

    @property
    def run_name(self) -> str:
        return f"{self.manifest.project}-{self.environment.name}-{self.manifest.version}"

    def tags(self) -> list[str]:
        tags = [
            "dbt-ferry",
            f"env:{self.environment.name}",
            f"version:{self.manifest.version}",
            f"dbt:{self.manifest.dbt_version or 'unknown'}",
        ]
        if self.target:
            tags.append(f"target:{self.target}")
        if self.target_type:
            tags.append(f"target_type:{self.target_type}")
        tags += [f"select:{s}" for s in self.request.select]
        tags += [f"exclude:{e}" for e in self.request.exclude]
        if self.request.full_refresh:
            tags.append("full_refresh")
        return tags
