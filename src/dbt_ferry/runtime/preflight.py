"""Checks that take milliseconds, made before anything slow (the env pack, the Prefect server, dbt's start).

Each refusal is one line with the exit code dbt gives for the same mistake (2): a selection with a method dbt does
not know, or a state method without a state; a target the profile does not have; an adapter the job's Python does
not hold; a dbt-core outside the supported range. None of them imports dbt.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from dbt_ferry.core.errors import DbtUsageError
from dbt_ferry.core.version import DBT_CORE_SUPPORTED, dbt_core_supported
from dbt_ferry.runtime.spec import JobRequest

#: dbt's node selection methods (``dbt.graph.selector_methods.MethodName``, the same from 1.9 to 1.11).
SELECTOR_METHODS = frozenset(
    {
        "fqn", "tag", "group", "access", "source", "path", "file", "package", "config", "test_name", "test_type",
        "resource_type", "state", "exposure", "metric", "result", "source_status", "version", "semantic_model",
        "saved_query", "unit_test",
    }
)  # fmt: skip
#: Methods that compare with a previous state (``--state``), which dbt refuses to run without one.
STATE_METHODS = frozenset({"state", "result", "source_status"})
#: dbt's selector grammar: graph operators around ``method[.args]:value`` or a bare value.
_ATOM = re.compile(r"\A@?(\d*\+)?((?P<method>[\w.]+):)?(?P<value>.*?)(\+\d*)?\Z")


def _atoms(expressions: Iterable[str]) -> Iterable[str]:
    for expression in expressions:
        for union in expression.split():
            yield from (atom for atom in union.split(",") if atom)


def check_selection(request: JobRequest) -> None:
    """``--select`` / ``--exclude`` as dbt would parse them: known methods, and a state for the state methods."""
    has_state = bool(
        request.state or request.state_from or request.defer_to or request.retry_of
        or any(arg in ("--state", "--defer-state") or arg.startswith("--state=") for arg in request.dbt_args)
    )  # fmt: skip
    for flag, expressions in (("--select", request.select), ("--exclude", request.exclude)):
        for atom in _atoms(expressions):
            match = _ATOM.match(atom)
            method = (match.group("method") or "") if match else ""
            base = method.split(".", 1)[0]
            if method and base not in SELECTOR_METHODS:
                raise DbtUsageError(
                    f"{flag} {atom!r}: dbt has no selection method {base!r}",
                    f"use one of {', '.join(sorted(SELECTOR_METHODS))}",
                )
            if base in STATE_METHODS and not has_state:
                raise DbtUsageError(
                    f"{flag} {atom!r} compares with a previous state, and none is given",
                    "add --state-from ENV (that environment's last successful state) or --state DIR",
                )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def check_target(project_dir: Path, target: str | None, *, where: str) -> tuple[str | None, str | None]:
    """The target dbt will use and its adapter type, from the release's ``profiles.yml``; an unknown one is refused.

    ``where`` names the profile file for the message (``profiles/<env>.yml`` of the release). Values dbt renders
    itself (``{{ env_var(...) }}``) are not judged here.
    """
    profile_name = str(_read_yaml(project_dir / "dbt_project.yml").get("profile") or "")
    profiles = _read_yaml(project_dir / "profiles.yml")
    profile = profiles.get(profile_name)
    if not isinstance(profile, dict):
        if not profiles or "{{" in profile_name:
            return target, None
        raise DbtUsageError(
            f"the profile {profile_name!r} of dbt_project.yml is not in {where} (it has {', '.join(sorted(profiles))})",
            "name the profile in the environment's profile file, then package and publish again",
        )
    outputs = profile.get("outputs")
    outputs = outputs if isinstance(outputs, dict) else {}
    chosen = target or profile.get("target")
    if not isinstance(chosen, str) or "{{" in chosen:
        return target, None
    output = outputs.get(chosen)
    if not isinstance(output, dict):
        raise DbtUsageError(
            f"the target {chosen!r} is not in the profile {profile_name!r} of {where}",
            f"pass one of its targets with --target: {', '.join(sorted(map(str, outputs))) or 'it has none'}",
        )
    kind = output.get("type")
    return chosen, kind if isinstance(kind, str) and "{{" not in kind else None


def site_dirs(env_dir: Path | None) -> list[str]:
    """Where the job's Python finds packages: the env pack's site-packages, else this interpreter's path."""
    if env_dir is None:
        return [entry for entry in sys.path if entry]
    return [str(path) for path in sorted(env_dir.glob("lib/python*/site-packages"))]


def check_adapter(adapter_type: str | None, paths: Sequence[str]) -> None:
    """The target's adapter is installed where the job runs (``dbt/adapters/<type>/``), looked up without importing."""
    if not adapter_type:
        return
    if any((Path(entry) / "dbt" / "adapters" / adapter_type / "__init__.py").is_file() for entry in paths):
        return
    raise DbtUsageError(
        f"the target's adapter {adapter_type!r} is not installed where the job runs",
        f"add its package (dbt-{adapter_type}) to the project's dependencies, lock, and package again",
    )


def check_dbt_version(paths: Sequence[str]) -> str | None:
    """The dbt-core the job runs with, refused outside :data:`DBT_CORE_SUPPORTED` (``None``: not installed there)."""
    found = next(iter(metadata.distributions(name="dbt-core", path=list(paths))), None)
    if found is None:
        return None
    version = found.version
    if not dbt_core_supported(version):
        raise DbtUsageError(
            f"dbt-core {version} is not supported: dbt-ferry runs dbt-core {DBT_CORE_SUPPORTED}",
            f"lock a dbt-core {DBT_CORE_SUPPORTED} in the project (e.g. uv add 'dbt-core{DBT_CORE_SUPPORTED}')",
        )
    return version
