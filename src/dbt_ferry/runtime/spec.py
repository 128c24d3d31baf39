"""What a job is asked to do (``JobRequest``) and the fully resolved job (``JobSpec``)."""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dbt_ferry.config.models import EnvironmentConfig, StoreConfig
from dbt_ferry.core.manifest import ReleaseManifest
from dbt_ferry.runtime.invoker import DbtOptions

#: Flags of a dbt command (given after ``--``) that make it a selected, partial run.
_SELECTING_FLAGS = frozenset(
    {"-s", "--select", "--exclude", "--selector", "-m", "--models", "--resource-type", "--resource-types", "--empty"}
)


#: dbt's selection methods that compare with a state (``+state:modified+``, ``source_status:fresher+``).
_STATE_METHOD = re.compile(r"(?:^|[^A-Za-z0-9_])(?:state|source_status):")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobRequest(_Frozen):
    """The options of ``dbt-ferry run``, as given (``None``: not given)."""

    environment: str | None = None
    version: str | None = None
    target: str | None = None
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    full_refresh: bool = False
    #: dbt ``--vars``: YAML text of a mapping.
    vars: str | None = None
    threads: int | None = Field(default=None, ge=1)
    debug: bool = False
    docs: bool | None = None
    dbt_args: tuple[str, ...] = ()
    project_dir: str | None = None
    store: str | None = None
    work_dir: str | None = None
    keep_work_dir: bool = False
    #: Run without Prefect (no server, no flow run), the same steps in this process.
    no_prefect: bool = False
    # dbt's own flags for the command, with dbt's meaning.
    fail_fast: bool = False
    warn_error: bool = False
    empty: bool = False
    resource_types: tuple[str, ...] = ()
    indirect_selection: Literal["eager", "cautious", "buildable", "empty"] | None = None
    defer: bool = False
    #: dbt's ``--state``: a folder on this machine.
    state: str | None = None
    #: Another environment whose state (from its store) is the job's ``--state``; ``defer_to`` adds ``--defer``.
    state_from: str | None = None
    defer_to: str | None = None
    #: ``dbt seed`` / ``dbt source freshness`` before the command (None: the environment's ``seed`` / ``freshness``).
    seed: bool | None = None
    freshness: bool | None = None
    #: Build only what changed since the environment's last successful state (None: the environment's
    #: ``state_aware``).
    state_aware: bool | None = None
    #: The invocation a ``dbt retry`` job retries (``dbt-ferry retry``).
    retry_of: str | None = None

    @field_validator("vars")
    @classmethod
    def _vars_are_a_mapping(cls, value: str | None) -> str | None:
        """``--vars`` as dbt takes it: YAML text of a mapping, kept as given (dates stay dates for dbt)."""
        if value is None or not value.strip():
            return None
        parsed = yaml.safe_load(value)
        if parsed is not None and not isinstance(parsed, dict):
            raise ValueError("vars must be a YAML mapping, e.g. '{start_date: 2024-01-01}'")
        return value

    @property
    def vars_mapping(self) -> dict[str, Any] | None:
        """``vars`` as data (what a Prefect flow run shows as its parameter)."""
        return yaml.safe_load(self.vars) if self.vars else None


class ChangedSince(_Frozen):
    """The state a state-aware run compares with: the environment's last fully successful run."""

    release_version: str
    invocation_id: str
    created_at: datetime
    #: The state holds that run's ``sources.json``: ``source_status:fresher+`` can compare with it.
    sources: bool


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
    #: The Prefect flow run this job runs as (a deployment's run, started by a worker); None: a new one.
    flow_run_id: str | None = None
    #: Where the state of ``state_from``/``defer_to`` was restored (the command's ``--state``).
    state_dir: str | None = None
    #: The invocation this job retries (``dbt-ferry retry``), once resolved from the store.
    retry_of: str | None = None
    #: A state-aware run: the environment's own last successful state it compares with (in ``state_dir``).
    changed_since: ChangedSince | None = None
    #: A state-aware run that builds everything, and why (no state yet, or one that cannot be used).
    state_aware_fallback: str | None = None

    @property
    def project_path(self) -> Path:
        return Path(self.project_dir)

    @property
    def secret_values(self) -> list[str]:
        """The values of the secret ``--vars`` (``DBT_ENV_SECRET_*``, the environment's ``secret_vars``)."""
        from dbt_ferry.core.masking import mask_vars

        return mask_vars(self.request.vars, self.environment.secret_vars)[1]

    @property
    def command(self) -> tuple[str, ...]:
        """The dbt command to run, without the job's selection: ``build``, what followed ``--``, or ``build``
        with what followed ``--`` when that starts with a flag (``-- --fail-fast``)."""
        args = self.request.dbt_args
        if not args:
            return ("build",)
        return ("build", *args) if args[0].startswith("-") else args

    @property
    def dbt_options(self) -> DbtOptions:
        request = self.request
        return DbtOptions(
            select=request.select,
            exclude=request.exclude,
            selector=request.selector,
            resource_types=request.resource_types,
            indirect_selection=request.indirect_selection,
            fail_fast=request.fail_fast,
            warn_error=request.warn_error,
            empty=request.empty,
            defer=request.defer or bool(request.defer_to),
            state=self.state_dir or request.state,
        )

    @property
    def command_text(self) -> str:
        """The dbt command as one would type it (``run-operation hello --args '{name: x}'``)."""
        return shlex.join(self.command)

    @property
    def has_selection(self) -> bool:
        request = self.request
        flags = {arg.partition("=")[0] for arg in request.dbt_args}
        return bool(
            request.select or request.exclude or request.selector or request.resource_types or request.empty
            or flags & _SELECTING_FLAGS
        )  # fmt: skip

    @property
    def selects_by_state(self) -> bool:
        """Whether the selection compares with a state (``state:modified+``, ``source_status:fresher+``)."""
        if self.changed_since is not None:
            return True
        selections = (*self.request.select, *_flag_values(self.request.dbt_args, ("-s", "--select")))
        return any(_STATE_METHOD.search(selection) for selection in selections)

    @property
    def run_name(self) -> str:
        """``shop-pro-1.4.0-build``: project, environment, version and the dbt command."""
        return f"{self.manifest.project}-{self.environment.name}-{self.manifest.version}-{self.command[0]}"

    def tags(self) -> list[str]:
        request = self.request
        tags = [
            "dbt-ferry",
            f"env:{self.environment.name}",
            f"version:{self.manifest.version}",
            f"dbt:{self.manifest.dbt_version or 'unknown'}",
            f"command:{self.command[0]}",
        ]
        if self.target:
            tags.append(f"target:{self.target}")
        if self.target_type:
            tags.append(f"target_type:{self.target_type}")
        tags += [f"select:{s}" for s in (*request.select, *_flag_values(request.dbt_args, ("-s", "--select")))]
        tags += [f"exclude:{e}" for e in (*request.exclude, *_flag_values(request.dbt_args, ("--exclude",)))]
        selectors = [request.selector] if request.selector else []
        tags += [f"selector:{s}" for s in (*selectors, *_flag_values(request.dbt_args, ("--selector",)))]
        if request.full_refresh or "--full-refresh" in request.dbt_args:
            tags.append("full_refresh")
        return list(dict.fromkeys(tags))


def _flag_values(args: tuple[str, ...], flags: tuple[str, ...]) -> list[str]:
    """The values given to ``flags`` in a dbt command line (``--select a b --exclude c`` → ``a``, ``b``)."""
    values: list[str] = []
    taking = False
    for arg in args:
        if arg.startswith("-"):
            name, _, inline = arg.partition("=")
            taking = name in flags
            if taking and inline:
                values.append(inline)
        elif taking:
            values.append(arg)
    return values
