"""The project's dbt profile: where dbt finds it, and copies of it per environment with no secret in them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Keys whose literal value is a credential; a copy reads them from an environment variable instead.
_SECRET_KEYS = frozenset(
    {"password", "pass", "passwd", "private_key", "private_key_id", "api_key", "apikey", "client_secret", "secret",
     "token", "access_token", "refresh_token", "auth_token", "sas_token", "passphrase", "private_key_passphrase",
     "aws_secret_access_key", "aws_session_token", "connection_string"}
)  # fmt: skip
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_passphrase")

#: dbt adapter type → the package providing it, where the name is not ``dbt-<type>``.
_ADAPTER_PACKAGES = {
    "athena": "dbt-athena",
    "glue": "dbt-glue",
    "sqlserver": "dbt-sqlserver",
    "synapse": "dbt-synapse",
    "fabric": "dbt-fabric",
    "spark": "dbt-spark",
    "databricks": "dbt-databricks",
}


@dataclass(frozen=True)
class SourceProfile:
    """The project's profile as dbt would find it."""

    path: Path
    name: str
    profile: dict[str, Any]

    @property
    def default_target(self) -> str | None:
        target = self.profile.get("target")
        return str(target) if target else None

    @property
    def outputs(self) -> dict[str, Any]:
        outputs = self.profile.get("outputs")
        return outputs if isinstance(outputs, dict) else {}

    @property
    def adapter_type(self) -> str | None:
        output = self.outputs.get(self.default_target or "") or next(iter(self.outputs.values()), None)
        kind = output.get("type") if isinstance(output, dict) else None
        return str(kind) if kind else None

    @property
    def adapter_types(self) -> list[str]:
        """The adapter type of every target, the default target's first, each once (Jinja ones left out)."""
        kinds = [self.adapter_type, *(o.get("type") for o in self.outputs.values() if isinstance(o, dict))]
        return list(dict.fromkeys(str(k) for k in kinds if k and "{{" not in str(k)))


def candidate_files(project_dir: Path, environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where dbt looks for profiles.yml, in its order: $DBT_PROFILES_DIR, the project, ~/.dbt."""
    found = []
    if environ.get("DBT_PROFILES_DIR"):
        found.append(Path(environ["DBT_PROFILES_DIR"]).expanduser() / "profiles.yml")
    found += [project_dir / "profiles.yml", home / ".dbt" / "profiles.yml"]
    return found


@dataclass(frozen=True)
class ProfileLookup:
    """Where dbt would find the project's profile: the profile, or why it is not there."""

    source: SourceProfile | None
    searched: tuple[Path, ...]
    problem: str | None = None


def find_profile(project_dir: Path, profile: str, environ: Mapping[str, str], home: Path) -> ProfileLookup:
    """The profile named ``profile`` in the first profiles.yml dbt would read (dbt reads one file, not several).

    Nothing is raised here: the profile is needed only when a profile file has to be written."""
    searched = tuple(candidate_files(project_dir, environ, home))
    for path in searched:
        if not path.is_file():
            continue
        where = display_path(path, home)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            return ProfileLookup(None, searched, f"{where} is not valid YAML ({exc})")
        entry = data.get(profile) if isinstance(data, dict) else None
        if not isinstance(entry, dict):
            known = ", ".join(sorted(map(str, data))) if isinstance(data, dict) else ""
            return ProfileLookup(None, searched, f"{where} has no profile {profile!r} (it has: {known or 'none'})")
        return ProfileLookup(SourceProfile(path, profile, entry), searched)
    return ProfileLookup(None, searched)


def read_profile_file(path: Path, profile: str) -> SourceProfile | None:
    """An environment's existing profiles file, when it holds ``profile``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    entry = data.get(profile) if isinstance(data, dict) else None
    return SourceProfile(path, profile, entry) if isinstance(entry, dict) else None


def _is_secret(key: str) -> bool:
    name = key.lower()
    return name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _variable(profile: str, path: list[str]) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(["DBT", profile, *path]).upper()).strip("_")


def scrub_secrets(profile: str, entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of ``entry`` whose literal credentials read environment variables; returns it and
    ``{where: variable}`` for each value replaced. Values already using ``env_var()`` are kept."""
    replaced: dict[str, str] = {}

    def walk(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            clean = {}
            for key, value in node.items():
                here = [*path, str(key)]
                literal = value is not None and not (isinstance(value, str) and ("env_var(" in value or not value))
                if _is_secret(str(key)) and literal and not isinstance(value, dict | list):
                    variable = _variable(profile, here[1:] if here[0] == "outputs" else here)
                    replaced[".".join(here)] = variable
                    clean[key] = f"{{{{ env_var('{variable}') }}}}"
                else:
                    clean[key] = walk(value, here)
            return clean
        if isinstance(node, list):
            return [walk(item, [*path, str(i)]) for i, item in enumerate(node)]
        return node

    return walk(entry, []), replaced


#: ``env_var('NAME')`` or ``env_var("NAME", default)`` in a profile value; group 2 is set when there is a default.
_ENV_VAR = re.compile(r"""env_var\(\s*(['"])([^'"]+)\1\s*(,)?""")


@dataclass(frozen=True)
class ProfileVariable:
    """An environment variable a dbt target reads with ``env_var()``."""

    name: str
    #: The profile gives a default (``env_var('X', 'y')``): dbt runs without it.
    optional: bool


def target_variables(entry: dict[str, Any], target: str | None) -> list[ProfileVariable]:
    """The variables ``target`` (default: the profile's own) of a profile ``entry`` reads, each once, in order.

    dbt renders only the target it runs, so the other targets' variables are not needed there."""
    outputs = entry.get("outputs")
    name = target or entry.get("target")
    output = outputs.get(name) if isinstance(outputs, dict) and isinstance(name, str) else None
    found: dict[str, bool] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            for match in _ENV_VAR.finditer(node):
                found[match[2]] = found.get(match[2], True) and bool(match[3])

    walk(entry.get("target"))
    walk(output)
    return [ProfileVariable(key, optional) for key, optional in found.items()]


def render_profile_file(source: SourceProfile, environment: str, note: str) -> tuple[str, dict[str, str]]:
    """The text of ``profiles/<env>.yml``: the project's profile alone, credentials read from variables."""
    entry, replaced = scrub_secrets(source.name, source.profile)
    lines = [
        f"# dbt profile of the environment {environment} (written by `dbt-ferry init`: {note}).",
        "# No credentials in this file: dbt reads them from environment variables with env_var().",
    ]
    for where, variable in sorted(replaced.items()):
        lines.append(f"#   {where}: set {variable}")
    body = yaml.dump(
        {source.name: entry}, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return "\n".join(lines) + "\n" + body, replaced


class _Dumper(yaml.SafeDumper):
    """Jinja in a value (``{{ env_var('X') }}``) is written in double quotes, as people write it."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "{{" in value or "'" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def adapter_package(adapter_type: str | None) -> str | None:
    if not adapter_type:
        return None
    return _ADAPTER_PACKAGES.get(adapter_type, f"dbt-{adapter_type}")


def display_path(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return os.fspath(path)
