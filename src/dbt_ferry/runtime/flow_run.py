"""The Prefect flow run a worker started this job for, read before Prefect is importable.

A Prefect worker (ECS, process, Kubernetes) starts the container with ``PREFECT__FLOW_RUN_ID`` and the API's
address. The image holds dbt-ferry's bootstrap only, so the bootstrap reads the flow run's parameters (which
release, which selection) over Prefect's REST API with the standard library, and marks the run Failed when the
job cannot start (no release, no store, bad parameters); the job itself then runs *as* that flow run.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_ferry.core.errors import ConfigError

log = logging.getLogger(__name__)

ENV_FLOW_RUN_ID = "PREFECT__FLOW_RUN_ID"
ENV_API_URL = "PREFECT_API_URL"
ENV_API_KEY = "PREFECT_API_KEY"
ENV_API_AUTH_STRING = "PREFECT_API_AUTH_STRING"
#: What a Prefect worker puts in the container's command when the deployment sets none (ECS:
#: ``prefect flow-run execute``; process: ``python -m prefect.engine``). The image's entrypoint is
#: ``dbt-ferry run``, so they arrive as its arguments and mean "run the flow run's own parameters".
WORKER_DEFAULT_COMMANDS = (("prefect", "flow-run", "execute"), ("python", "-m", "prefect.engine"))
_TIMEOUT = 15.0


@dataclass(frozen=True)
class FlowRunRecord:
    id: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    deployment_id: str | None = None
    state_type: str | None = None


def is_worker_default_command(args: tuple[str, ...]) -> bool:
    return any(args[: len(command)] == command for command in WORKER_DEFAULT_COMMANDS)


class PrefectApi:
    """Just enough of Prefect's REST API for the bootstrap: read a flow run, set its state."""

    def __init__(self, url: str, *, api_key: str | None = None, auth_string: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth_string:
            self._headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        elif api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PrefectApi | None:
        url = environ.get(ENV_API_URL)
        if not url:
            return None
        return cls(url, api_key=environ.get(ENV_API_KEY), auth_string=environ.get(ENV_API_AUTH_STRING))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the configured Prefect API, http(s)
            f"{self.url}{path}", data=data, headers=self._headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise ConfigError(
                f"the Prefect API at {self.url} answered {exc.code} to {method} {path}",
                f"check {ENV_API_URL} and {ENV_API_KEY}",
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"the Prefect API at {self.url} cannot be reached: {exc}", f"check {ENV_API_URL}"
            ) from None
        return json.loads(text) if text else None

    def read_flow_run(self, flow_run_id: str) -> FlowRunRecord:
        data = self._call("GET", f"/flow_runs/{flow_run_id}")
        state = data.get("state") or {}
        return FlowRunRecord(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            parameters=dict(data.get("parameters") or {}),
            deployment_id=data.get("deployment_id"),
            state_type=state.get("type"),
        )

    def fail_flow_run(self, flow_run_id: str, message: str) -> None:
        """Mark the flow run Failed with ``message`` (the job could not start); never raises."""
        body = {"state": {"type": "FAILED", "name": "Failed", "message": message[:5000]}, "force": True}
        try:
            self._call("POST", f"/flow_runs/{flow_run_id}/set_state", body)
        except ConfigError as exc:
            log.warning("could not mark the Prefect flow run %s Failed: %s", flow_run_id, exc)


def worker_flow_run(environ: Mapping[str, str]) -> tuple[PrefectApi, FlowRunRecord] | None:
    """The flow run a Prefect worker started this process for, or None when started by hand."""
    flow_run_id = environ.get(ENV_FLOW_RUN_ID)
    if not flow_run_id:
        return None
    api = PrefectApi.from_environ(environ)
    if api is None:
        raise ConfigError(
            f"{ENV_FLOW_RUN_ID} is set (a Prefect worker started this job) but {ENV_API_URL} is not",
            f"give the worker's container {ENV_API_URL} (and {ENV_API_KEY} for Prefect Cloud)",
        )
    return api, api.read_flow_run(flow_run_id)
