"""The Python packages a project needs to run under dbt-ferry, and adding the ones it lacks.

What is needed: ``dbt-ferry[job]`` and the adapter of every target of the project's dbt profile (dev on
DuckDB and pro on Postgres need both). Where they go depends on what manages the project's dependencies:

- ``[project] dependencies`` of pyproject.toml (uv, pip, hatch, Poetry 2): ``init`` adds the missing ones to
  that array as text, so comments, order and formatting stay; the result is parsed again to prove that it
  holds the old data plus the new requirements, else the command is printed instead;
- ``[tool.poetry.dependencies]``: not edited; ``poetry add …`` is printed;
- a ``requirements.txt`` and no ``[project]`` table: not edited; ``pip install …`` is printed.

A requirement already there under any version or extras is not added again (names compared normalised), nor
one that an extra of dbt-ferry already there brings (``dbt-ferry[job,duckdb]`` brings dbt-duckdb).
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement

from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.deploy.profiles import SourceProfile, adapter_package
from dbt_ferry.deploy.pyproject import toml_value

Manager = Literal["uv", "poetry", "pip"]
REQUIREMENTS_TXT = "requirements.txt"
_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_HEADER = re.compile(r"^[ \t]*\[(\[)?[ \t]*([^\]\n]*?)[ \t]*\]\]?[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_DEPENDENCIES_KEY = re.compile(r"^[ \t]*(?:dependencies|\"dependencies\"|'dependencies')[ \t]*=[ \t]*", re.MULTILINE)


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str | None:
    """The normalised name of a PEP 508 requirement (``dbt-Ferry[job]>=1`` → ``dbt-ferry``)."""
    match = _NAME.match(requirement)
    return normalise(match[1]) if match else None


def required_packages(source: SourceProfile | None) -> list[str]:
    """``dbt-ferry[job]>=<this version>``, then the adapter of every target of the profile, each once."""
    adapters = (adapter_package(kind) for kind in (source.adapter_types if source else ()))
    return list(dict.fromkeys([f"dbt-ferry[job]>={DBT_FERRY_VERSION}", *filter(None, adapters)]))


def missing(required: Iterable[str], present: Iterable[str]) -> list[str]:
    """The requirements of ``required`` whose name is not among ``present``'s (or what their extras bring)."""
    names: set[str | None] = set()
    for requirement in present:
        names.add(requirement_name(requirement))
        names.update(_brought_by_extras(requirement))
    return [r for r in required if requirement_name(r) not in names]


def _brought_by_extras(requirement: str) -> set[str]:
    """The packages a dbt-ferry requirement's extras bring, as dbt-ferry's own metadata declares them."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return set()
    if normalise(parsed.name) != "dbt-ferry" or not parsed.extras:
        return set()
    return {name for extra in parsed.extras for name in _extra_packages().get(normalise(extra), ())}


@functools.cache
def _extra_packages() -> dict[str, frozenset[str]]:
    """dbt-ferry's extras → the packages each brings (``duckdb`` → dbt-duckdb)."""
    try:
        declared = metadata.requires("dbt-ferry") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - dbt-ferry runs this, so it is installed
        return {}
    extras: dict[str, set[str]] = {}
    for text in declared:
        parsed = Requirement(text)
        match = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", str(parsed.marker or ""))
        if match:
            extras.setdefault(normalise(match[1]), set()).add(normalise(parsed.name))
    return {extra: frozenset(names) for extra, names in extras.items()}


@dataclass(frozen=True)
class DependencyPlan:
    """What ``init`` does about the project's dependencies."""

    manager: Manager
    #: pyproject.toml's text as it was ("" when there is none).
    original: str
    #: pyproject.toml's text with the requirements added (the original text when none were).
    text: str
    #: The requirements added to ``[project] dependencies``.
    added: tuple[str, ...] = ()
    #: The command that adds the requirements init could not add itself, for the tool that manages them.
    command: str | None = None


def plan_dependencies(root: Path, original: str, data: Mapping[str, Any], required: Sequence[str]) -> DependencyPlan:
    """Add the ``required`` packages the project lacks, or say how. ``data`` is ``original`` parsed; a project
    without ``[project]`` (and without Poetry) gets one from ``init`` with every requirement in it."""
    project = data.get("project")
    poetry = data.get("tool", {}).get("poetry")
    requirements_txt = root / REQUIREMENTS_TXT
    if not isinstance(project, dict) and isinstance(poetry, dict):
        declared = poetry.get("dependencies")
        todo = missing(required, declared if isinstance(declared, dict) else ())
        return DependencyPlan("poetry", original, original, command=_command("poetry", todo))
    if not isinstance(project, dict) and requirements_txt.is_file():
        todo = missing(required, _requirements_txt(requirements_txt))
        return DependencyPlan("pip", original, original, command=_command("pip", todo))
    if not isinstance(project, dict):
        return DependencyPlan("uv", original, original)  # init writes [project] with every requirement in it
    manager: Manager = "poetry" if isinstance(poetry, dict) or (root / "poetry.lock").is_file() else "uv"
    declared = project.get("dependencies", [])
    todo = missing(required, declared if isinstance(declared, list) else ())
    if not todo:
        return DependencyPlan(manager, original, original)
    if "dependencies" in project.get("dynamic", ()):
        if requirements_txt.is_file():
            todo = missing(required, _requirements_txt(requirements_txt))
            return DependencyPlan("pip", original, original, command=_command("pip", todo))
        listed = ", ".join(todo)
        return DependencyPlan(
            manager, original, original, command=f"add {listed} to the project's (dynamic) dependencies"
        )
    text = add_dependencies(original, todo)
    if text is None:
        return DependencyPlan(manager, original, original, command=_command(manager, todo))
    return DependencyPlan(manager, original, text, added=tuple(todo))


def _command(manager: Manager, requirements: Sequence[str]) -> str | None:
    if not requirements:
        return None
    args = " ".join(shlex.quote(r) for r in requirements)
    if manager == "pip":
        return f"pip install {args}, and add {' and '.join(requirements)} to {REQUIREMENTS_TXT}"
    return f"{manager} add {args}"


def _requirements_txt(path: Path) -> list[str]:
    """The requirements of a requirements.txt (options, includes and comments left out)."""
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        text = line.split(" #", 1)[0].strip()
        if text and not text.startswith(("#", "-")):
            found.append(text)
    return found


# -- adding to [project] dependencies, as text -----------------------------------------------------------


def add_dependencies(original: str, requirements: Sequence[str]) -> str | None:
    """``original`` with ``requirements`` appended to ``[project] dependencies`` (the key added when missing),
    everything else as it was; ``None`` when the file is not of a shape this can edit safely."""
    span = _project_span(original)
    if span is None:
        return None
    start, end = span
    key = _DEPENDENCIES_KEY.search(original, start, end)
    text: str | None
    if key is None:
        text = _insert_key(original, start, end, requirements)
    elif original.startswith("[", key.end()):
        text = _append_to_array(original, key.end(), requirements)
    else:
        return None
    return text if text is not None and _holds(original, text, requirements) else None


def _project_span(text: str) -> tuple[int, int] | None:
    """Where the ``[project]`` table's keys are: from after its header line to the next header."""
    headers = list(_HEADER.finditer(text))
    for index, header in enumerate(headers):
        if not header[1] and header[2].strip("\"'") == "project":
            end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
            return min(header.end() + 1, len(text)), end
    return None


def _quoted(requirements: Sequence[str]) -> list[str]:
    return [toml_value(r) for r in requirements]


def _insert_key(text: str, start: int, end: int, requirements: Sequence[str]) -> str:
    """A ``dependencies`` line after the table's last line of keys (before blank lines and the comments of
    the next table)."""
    lines = text[start:end].splitlines(keepends=True)
    offset = start
    at = start
    for line in lines:
        offset += len(line)
        if line.strip() and not line.lstrip().startswith("#"):
            at = offset
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    line = f"dependencies = [{', '.join(_quoted(requirements))}]\n"
    return text[:at] + prefix + line + text[at:]


def _append_to_array(text: str, opening: int, requirements: Sequence[str]) -> str | None:
    scanned = _scan_array(text, opening)
    if scanned is None:
        return None
    closing, last, comma = scanned
    items = _quoted(requirements)
    if last is None:  # an empty array
        if "#" in text[opening:closing]:
            return None
        return text[: opening + 1] + ", ".join(items) + text[closing:]
    if "\n" not in text[last:closing]:  # the last item and the bracket on one line
        return text[:last] + ", " + ", ".join(items) + text[closing:]
    line_start = text.rfind("\n", 0, last) + 1
    indent = re.match(r"[ \t]*", text[line_start:])
    lines = ",\n".join(f"{indent[0] if indent else ''}{item}" for item in items) + (",\n" if comma else "\n")
    line_end = text.index("\n", last) + 1
    text = text[:line_end] + lines + text[line_end:]
    return text if comma else text[:last] + "," + text[last:]


def _scan_array(text: str, opening: int) -> tuple[int, int | None, bool] | None:
    """The array whose ``[`` is at ``opening``: the index of its ``]``, the end of its last item, and whether
    a comma follows that item; ``None`` when it holds anything but strings."""
    i, depth, last, comma = opening + 1, 1, None, False
    while i < len(text):
        char = text[i]
        if char == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if char in "\"'":
            end = _string_end(text, i)
            if end is None:
                return None
            i = end
            if depth == 1:
                last, comma = i, False
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i, last, comma
            if depth == 1:
                last, comma = i + 1, False
        elif char == "," and depth == 1:
            comma = True
        elif not char.isspace() and char != ",":
            return None
        i += 1
    return None


def _string_end(text: str, start: int) -> int | None:
    """The index after the TOML string starting at ``start`` (basic or literal, one-line or multi-line)."""
    quote = text[start]
    delimiter = quote * 3 if text.startswith(quote * 3, start) else quote
    i = start + len(delimiter)
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text.startswith(delimiter, i):
            return i + len(delimiter)
        if text[i] == "\n" and len(delimiter) == 1:
            return None
        i += 1
    return None


def _holds(original: str, text: str, requirements: Sequence[str]) -> bool:
    """``text`` says what ``original`` says, plus ``requirements`` at the end of ``[project] dependencies``."""
    try:
        before, after = tomllib.loads(original), tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    expected = copy.deepcopy(before)
    project = expected["project"]
    project["dependencies"] = [*project.get("dependencies", []), *requirements]
    return after == expected
