"""The job's parameters in the user's words: what a Prefect deployment run (or a UI form) may set.

The Prefect flow's signature mirrors :class:`RunParameters` field by field (a test keeps them equal), so the
deployment's parameter schema is this one. A parameter given to a flow run overrides what the container's
command line says; one not given leaves it as it is.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbt_ferry.core.errors import ConfigError

if TYPE_CHECKING:
    from dbt_ferry.runtime.spec import JobRequest

#: The dbt commands a job may run (``init`` and ``clean`` make no sense in a fetched release).
DBT_COMMANDS = (
    "build", "clone", "compile", "debug", "deps", "docs", "list", "ls", "parse", "retry", "run",
    "run-operation", "seed", "show", "snapshot", "source", "test",
)  # fmt: skip
COMMAND_PATTERN = r"^\s*(" + "|".join(DBT_COMMANDS) + r")(\s.*)?$"

Command = Annotated[str, Field(pattern=COMMAND_PATTERN)]
Threads = Annotated[int, Field(ge=1, le=1024)]


class RunParameters(BaseModel):
    """A deployment run's parameters. Selections are strings as dbt takes them (``"tag:daily fct_orders+"``), so
    ``--param select=tag:daily`` works from Prefect's CLI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: Command = "build"
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    full_refresh: bool = False
    vars: dict[str, Any] | None = None
    threads: Threads | None = None
    target: str | None = None
    version: str | None = None
    docs: bool | None = None
    retry_of: str | None = None

    @classmethod
    def parse(cls, values: Mapping[str, Any], where: str) -> RunParameters:
        """Validate parameters from outside (a flow run); a bad one is a one-line configuration error."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(
                f"invalid parameters of {where}: {problems}",
                "fix the deployment's parameters (see `dbt-ferry run --help`)",
            ) from None

    @classmethod
    def of_request(cls, request: JobRequest, version: str | None) -> RunParameters:
        """The parameters a hand-started job shows in Prefect: what it was asked to do."""
        return cls(
            command=shlex.join(request.dbt_args) if request.dbt_args else "build",
            select=" ".join(request.select) or None,
            exclude=" ".join(request.exclude) or None,
            selector=request.selector,
            full_refresh=request.full_refresh,
            vars=request.vars_mapping,
            threads=request.threads,
            target=request.target,
            version=version,
            docs=request.docs,
            retry_of=request.retry_of,
        )

    def apply_to(self, request: JobRequest, given: Mapping[str, Any]) -> JobRequest:
        """``request`` with the parameters that were ``given`` laid over it."""
        update: dict[str, Any] = {}
        for name in given:
            value = getattr(self, name)
            if name == "command":
                update.setdefault("dbt_args", tuple(shlex.split(value)))
            elif name == "retry_of":
                update[name] = value
                if value:
                    update["dbt_args"] = ("retry",)  # a retry runs `dbt retry`, whatever the command
            elif name == "vars":
                update[name] = (
                    yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip() if value else None
                )
            elif name in ("select", "exclude"):
                update[name] = tuple(value.split()) if value else ()  # space-separated, as dbt takes them
            else:
                update[name] = value
        return request.model_copy(update=update)


def _yaml(mapping: dict[str, Any]) -> str:
    """A mapping as dbt's ``--vars`` takes it (one line of YAML)."""
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False).strip()
