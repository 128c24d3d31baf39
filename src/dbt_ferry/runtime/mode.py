"""Whether a job runs as a Prefect flow run, decided without importing Prefect."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from dbt_ferry.runtime.spec import JobSpec

#: Set in every ECS task (Fargate and EC2) and every Kubernetes pod: a container, where a temporary Prefect
#: server would start and vanish with every run.
_ORCHESTRATED = ("ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI", "KUBERNETES_SERVICE_HOST")


def _profile_api_url(environ: Mapping[str, str]) -> str | None:
    """``PREFECT_API_URL`` of the active Prefect profile (``prefect config set``), read without Prefect."""
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    value = profiles.get("profiles", {}).get(name, {}).get("PREFECT_API_URL")
    return str(value) if value else None


def uses_prefect(spec: JobSpec, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the job runs as a Prefect flow run.

    Yes with a Prefect API (``PREFECT_API_URL`` or the active profile's). Without one, a laptop gets a temporary
    local server (its runs show in ``prefect server start``'s UI later); a CI environment, a CI runner (``CI``
    set) or a container under ECS or Kubernetes run the very same steps without Prefect, since a temporary
    server there costs seconds and memory and keeps nothing. ``--no-prefect`` never uses Prefect.
    """
    env = os.environ if environ is None else environ
    if spec.request.no_prefect:
        return False
    if spec.flow_run_id or env.get("PREFECT_API_URL") or _profile_api_url(env):
        return True
    if spec.environment.ci or env.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return not any(env.get(name) for name in _ORCHESTRATED)
