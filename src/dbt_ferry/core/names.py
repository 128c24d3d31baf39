"""Names and versions: environments, releases, store keys."""

from __future__ import annotations

import re
from collections.abc import Mapping

from packaging.version import InvalidVersion, Version

from dbt_ferry.core.errors import ConfigError, ProjectError

_ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def check_environment_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise ConfigError(
            f"invalid environment name {name!r}",
            "use lower-case letters, digits, '-' and '_', starting with a letter",
        )
    return name


def parse_version(text: str) -> Version:
    """A release version: PEP 440, normalised (``1.0`` and ``1.0.0`` are distinct strings but equal)."""
    try:
        return Version(text)
    except InvalidVersion:
        raise ProjectError(
            f"release version {text!r} is not a valid version", "use a PEP 440 version such as 1.4.0"
        ) from None


def version_sort_key(text: str) -> tuple[int, Version | str]:
    """Sort key putting valid versions in version order and anything else first."""
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def clean_value(value: str) -> str:
    """Strip one layer of stray quotes and whitespace, as ECS command overrides often carry."""
    value = value.strip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        value = value[1:-1].strip()
    return value


def release_prefix(version: str) -> str:
    return f"releases/{version}/"


def channel_key(environment: str) -> str:
    return f"channels/{environment}.json"


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_variables(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` by the variable's value: secrets stay in the environment, not in files."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not environ.get(name):
            raise ConfigError(f"${{{name}}} is used in the configuration but not set", f"set {name}")
        return environ[name]

    return _VARIABLE.sub(value, text)
