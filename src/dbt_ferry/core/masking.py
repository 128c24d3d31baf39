"""Secret ``--vars``: which values are secret, and masking them in what the job publishes.

A var is secret when its name (at any depth of the mapping) starts with ``DBT_ENV_SECRET_`` — dbt's own prefix
for secret environment variables — or matches one of the environment's ``secret_vars`` globs; case does not
matter. Every value under a secret name is secret. The job runs dbt with the real values; everything it
publishes or records (``ferry.json``, the ``invocations`` table, the history, run artifacts, ``dbt.log``, the
state, the Prefect flow run's parameters, the logs it forwards) holds ``*`` in their place, one per character, so
that binary files (dbt's parse cache) keep their structure.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

#: dbt's prefix of secret environment variables, taken for var names too.
SECRET_PREFIX = "DBT_ENV_SECRET_"  # noqa: S105 - a name prefix, not a password
#: Values shorter than this are not masked in free text (a "1" would mask every digit); their var still is.
MIN_MASKED_LENGTH = 4


def is_secret_name(name: str, patterns: Sequence[str] = ()) -> bool:
    lowered = name.lower()
    return lowered.startswith(SECRET_PREFIX.lower()) or any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _walk(value: Any, patterns: Sequence[str], found: list[str], *, secret: bool) -> Any:
    if isinstance(value, dict):
        return {
            k: _walk(v, patterns, found, secret=secret or is_secret_name(str(k), patterns)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_walk(v, patterns, found, secret=secret) for v in value]
    if secret and value is not None and not isinstance(value, bool):
        found.append(str(value))
        return "*" * len(str(value))
    return value


def mask_mapping(
    mapping: dict[str, Any] | None, patterns: Sequence[str] = ()
) -> tuple[dict[str, Any] | None, list[str]]:
    """``mapping`` with every secret value replaced by stars, and the secret values (as text)."""
    if mapping is None:
        return None, []
    found: list[str] = []
    masked = _walk(mapping, patterns, found, secret=False)
    return masked, found


def mask_vars(vars_yaml: str | None, patterns: Sequence[str] = ()) -> tuple[str | None, list[str]]:
    """``--vars`` YAML with the secret values replaced by stars (unchanged when none is secret), and those values."""
    if not vars_yaml:
        return vars_yaml, []
    mapping = yaml.safe_load(vars_yaml)
    if not isinstance(mapping, dict):
        return vars_yaml, []
    masked, found = mask_mapping(mapping, patterns)
    if not found:
        return vars_yaml, []
    return yaml.safe_dump(masked, default_flow_style=True, sort_keys=False).strip(), found


def _forms(value: str) -> set[bytes]:
    """The ways ``value`` appears in a file: as it is, JSON-escaped, YAML/Python-quoted."""
    escaped = json.dumps(value)[1:-1]
    return {form.encode() for form in (value, escaped, repr(value)[1:-1]) if len(form) >= MIN_MASKED_LENGTH}


def scrub_text(text: str, values: Sequence[str]) -> str:
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) >= MIN_MASKED_LENGTH:
            text = text.replace(value, "*" * len(value))
    return text


def scrub_file(path: Path, values: Sequence[str]) -> bool:
    """Replace each secret value in ``path`` by as many stars as it has bytes, in place; whether any was found."""
    forms = sorted({form for value in set(values) for form in _forms(value)}, key=len, reverse=True)
    if not forms:
        return False
    data = path.read_bytes()
    scrubbed = data
    for form in forms:
        scrubbed = scrubbed.replace(form, b"*" * len(form))
    if scrubbed == data:
        return False
    path.write_bytes(scrubbed)
    return True
