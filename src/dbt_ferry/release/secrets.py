"""Literal secrets in the profiles a release ships: refused, because release artifacts are read by whoever may
read the store (and every fetch writes them out).

A profile value is a secret by its key (``password``, ``token``, ``private_key``, ``…_secret`` and the like); it is
literal when it is not rendered by dbt (no ``{{ … }}``), so ``{{ env_var('DBT_PRO_PASSWORD') }}`` — what
``dbt-ferry init`` writes — passes, and ``password: hunter2`` does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from dbt_ferry.core.errors import ProjectError

SECRET_KEYS = frozenset(
    {
        "password", "pass", "passphrase", "secret", "client_secret", "token", "access_token", "refresh_token",
        "private_key", "private_key_passphrase", "keyfile_json", "aws_secret_access_key", "api_key", "auth_token",
    }
)  # fmt: skip
SECRET_SUFFIXES = ("_password", "_secret", "_token", "_private_key")


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_KEYS or lowered.endswith(SECRET_SUFFIXES)


def _literals(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if _is_secret(str(key)) and isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                if text and "{{" not in text:
                    yield here
            else:
                yield from _literals(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _literals(item, f"{where}[{index}]")


def literal_secrets(path: Path) -> list[str]:
    """The dotted paths (``shop.outputs.pro.password``) of literal secret values in a profiles file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # dbt says what is wrong with it when it reads it
    return list(_literals(data, ""))


def check_profiles(profiles: Mapping[str, Path], *, allow: bool) -> None:
    """Refuse a release whose profiles hold literal secrets, unless ``allow``."""
    if allow:
        return
    for environment, path in sorted(profiles.items()):
        found = literal_secrets(path)
        if found:
            name = found[0].rsplit(".", 1)[-1].upper()
            raise ProjectError(
                f"{path.name} of environment {environment} holds a literal secret ({', '.join(found)}): it would be "
                "published in clear with the release",
                f"write {{{{ env_var('DBT_{environment.upper()}_{name}') }}}} instead and set that variable where "
                "the job runs (dbt-ferry init does this), or pass --allow-literal-secrets",
            )
