"""What dbt-ferry knows of a job beyond dbt's own artifacts; saved as ``ferry.json`` beside them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

RUN_INFO_NAME = "ferry.json"


class RunInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    project: str
    environment: str
    release_version: str | None = None
    git_commit: str | None = None
    dbt_version: str | None = None
    adapter_type: str | None = None
    target: str | None = None
    command: str | None = None
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    full_refresh: bool = False
    vars: str | None = None
    threads: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    exit_code: int | None = None
    prefect_flow_run_id: str | None = None
    #: The invocation this one retried (``dbt-ferry retry``).
    retry_of: str | None = None

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()
