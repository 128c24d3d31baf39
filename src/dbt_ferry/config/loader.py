"""The one place that decides configuration precedence.

Highest first: CLI flag, ``DBT_FERRY_*`` environment variable, environment overlay
(``[tool.dbt-ferry.environments.<name>]``), base section (``[tool.dbt-ferry]``), default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dbt_ferry.config.models import ENVIRONMENT_KEYS, EnvironmentConfig, StoreConfig
from dbt_ferry.config.store_url import parse_store_url
from dbt_ferry.core.constants import ENV_ENVIRONMENT, ENV_PROJECT_DIR, ENV_RELEASE_KEY, ENV_STORE, ENV_TARGET
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.names import check_environment_name, clean_value

SECTION = "tool.dbt-ferry"
DEFAULT_ENVIRONMENTS = ("local", "ci")
#: The command that adopts a project dbt-ferry has no configuration of (no pyproject.toml, no [tool.dbt-ferry]).
ADOPT_COMMAND = "dbt-ferry init"


@dataclass(frozen=True)
class ProjectConfig:
    """The ``[tool.dbt-ferry]`` section of a project, not yet resolved for one environment."""

    project_dir: Path
    pyproject: Path | None
    base: Mapping[str, Any] = field(default_factory=dict)
    environments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pyproject_data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.pyproject) if self.pyproject else f"{self.project_dir} (no pyproject.toml)"

    @property
    def configured(self) -> bool:
        """Whether the project has a ``[tool.dbt-ferry]`` section (``dbt-ferry init`` writes one)."""
        tool = self.pyproject_data.get("tool", {})
        return isinstance(tool, Mapping) and "dbt-ferry" in tool

    @property
    def environment_names(self) -> list[str]:
        return sorted(self.environments) if self.environments else list(DEFAULT_ENVIRONMENTS)


@dataclass(frozen=True)
class Overrides:
    """Values from CLI flags; ``None`` means not given. ``store`` is a URL as typed, or a store already resolved
    (the job lays the store it fetched from over the release's configuration, its region included)."""

    store: str | StoreConfig | None = None
    target: str | None = None


def project_dir_from(flag: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    raw = flag if flag is not None else env.get(ENV_PROJECT_DIR) or "."
    return Path(raw).expanduser().absolute()


def load_project(project_dir: Path) -> ProjectConfig:
    """Read ``pyproject.toml`` in ``project_dir``; a missing file gives an empty configuration."""
    pyproject = project_dir / "pyproject.toml"
    if not pyproject.is_file():
        return ProjectConfig(project_dir=project_dir, pyproject=None)
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}", "fix the syntax") from None
    section = data.get("tool", {}).get("dbt-ferry", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{SECTION} in {pyproject} must be a table")
    base = {k: v for k, v in section.items() if k != "environments"}
    envs = section.get("environments", {})
    if not isinstance(envs, dict) or not all(isinstance(v, dict) for v in envs.values()):
        raise ConfigError(
            f"{SECTION}.environments in {pyproject} must hold one table per environment",
            "write [tool.dbt-ferry.environments.<name>] sections",
        )
    for name in envs:
        _check_env_name(name, pyproject)
    return ProjectConfig(
        project_dir=project_dir, pyproject=pyproject, base=base, environments=envs, pyproject_data=data
    )


def _check_env_name(name: str, where: Path) -> None:
    try:
        check_environment_name(name)
    except ConfigError as exc:
        raise ConfigError(f"{SECTION}.environments.{name} in {where}: {exc.message}", exc.hint) from None


def _merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two tables; a ``store`` table is replaced whole when its ``type`` changes."""
    merged = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            if key in ("store", "catalog") and value.get("type", current.get("type")) != current.get("type"):
                merged[key] = dict(value)
            else:
                merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def resolve_environment_name(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    raw = flag or env.get(ENV_ENVIRONMENT)
    return clean_value(raw) if raw else None


def resolve_environment(
    project: ProjectConfig,
    name: str,
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
) -> EnvironmentConfig:
    """Resolve one environment of ``project`` with full precedence, validated once."""
    env = os.environ if environ is None else environ
    overrides = overrides or Overrides()
    name = clean_value(name)
    check_environment_name(name)
    store_override = overrides.store or env.get(ENV_STORE)
    if project.environments and name not in project.environments:
        known = ", ".join(project.environment_names)
        raise ConfigError(
            f"environment {name!r} is not configured in {project.source}",
            f"configured environments: {known}",
        )
    if not project.environments and name not in DEFAULT_ENVIRONMENTS and not store_override:
        adopt = "" if project.configured else f"run {ADOPT_COMMAND} --env {name} (it adds the environment), or "
        raise ConfigError(
            f"environment {name!r} is not configured in {project.source}",
            f"{adopt}add [{SECTION}.environments.{name}], use one of {', '.join(DEFAULT_ENVIRONMENTS)}, "
            f"or set {ENV_STORE}",
        )
    overlay = project.environments.get(name, {})
    merged = _merge({"ci": name == "ci"}, project.base)
    merged = _merge(merged, overlay)
    target = overrides.target or env.get(ENV_TARGET)
    if target:
        merged["target"] = clean_value(target)
    release_key = env.get(ENV_RELEASE_KEY)
    if release_key and clean_value(release_key):  # the container's own setting: the release cannot unset it
        merged["trust"] = {**merged.get("trust", {}), "release_key": clean_value(release_key)}
    store: StoreConfig | None = None
    if store_override:
        store = parse_store_url(store_override) if isinstance(store_override, str) else store_override
        merged.pop("store", None)
    merged["name"] = name
    try:
        config = EnvironmentConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, project, name, overlay) from None
    if store is not None:
        config = config.model_copy(update={"store": store})
    return config


def _config_error(exc: ValidationError, project: ProjectConfig, name: str, overlay: Mapping[str, Any]) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        # A discriminated union adds the chosen tag to the location; drop it.
        loc = [p for p in loc if p not in ("local", "s3", "sql", "glue", "rest")]
        head = loc[0] if loc else ""
        section = f"{SECTION}.environments.{name}" if head in overlay else SECTION
        if head and head not in ENVIRONMENT_KEYS and error["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(ENVIRONMENT_KEYS | {"environments"}))
            problems.append(f"{section}.{'.'.join(loc)}: unknown key (allowed: {allowed})")
        else:
            problems.append(f"{section}.{'.'.join(loc)}: {error['msg']}")
    return ConfigError(
        f"invalid configuration in {project.source}: " + "; ".join(problems),
        "fix the key named above (see the configuration reference in the README)",
    )
