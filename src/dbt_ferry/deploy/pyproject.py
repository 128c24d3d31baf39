"""Add ``[tool.dbt-ferry]`` (and, when there is none, ``[project]``) to a project's pyproject.toml.

Nothing already in the file is rewritten: new tables are appended as text, so comments, order and formatting
stay as they are, and the result is parsed again to prove that it holds exactly the old data plus the new.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_ferry.core.errors import ConfigError


@dataclass(frozen=True)
class Table:
    """One TOML table to append: its dotted name, its keys, and comment lines before/after the keys."""

    name: tuple[str, ...]
    values: Mapping[str, Any]
    comments: Sequence[str] = ()
    trailing: Sequence[str] = ()

    def header(self) -> str:
        return "[" + ".".join(_key(part) for part in self.name) + "]"

    def text(self) -> str:
        lines = [self.header(), *(f"# {c}" for c in self.comments)]
        lines += [f"{_key(k)} = {toml_value(v)}" for k, v in self.values.items()]
        lines += [f"# {c}" for c in self.trailing]
        return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def toml_value(value: Any) -> str:
    """A TOML value (inline tables and arrays on one line); JSON string escapes are valid TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")  # pragma: no cover - a bug


def _set(data: dict[str, Any], path: tuple[str, ...], values: Mapping[str, Any]) -> None:
    node = data
    for part in path:
        node = node.setdefault(part, {})
    node.update(values)


def append_tables(original: str, tables: Sequence[Table], where: str) -> str:
    """``original`` with ``tables`` appended; refuses when the file could not take them as they are."""
    if not tables:
        return original
    before = tomllib.loads(original)
    text = original
    if text and not text.endswith("\n"):
        text += "\n"
    text += ("\n" if text else "") + "\n".join(table.text() for table in tables)
    expected = copy.deepcopy(before)
    for table in tables:
        _set(expected, table.name, table.values)
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        after = {"<invalid>": str(exc)}
    if after != expected:
        wanted = "\n".join(t.text() for t in tables)
        raise ConfigError(
            f"cannot append to {where} without changing what it says (a table defined inline, with dotted keys, "
            "or twice?)",
            f"add these tables to it yourself:\n{wanted}",
        )
    return text
