"""Warehouse files — never shipped: told by their first bytes, or named by a ``path`` in the project's profiles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

#: What DuckDB and SQLite write next to a database: it goes wherever the database goes.
SIDECAR_SUFFIXES = (".wal", "-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of a DuckDB file, after the header's checksum
#: ``{{ env_var('NAME', 'default') }}``: the default is where a profile points when NAME is unset.
_ENV_VAR = re.compile(r"""\{\{\s*env_var\(\s*(['"])[^'"]*\1\s*,\s*(['"])(?P<default>[^'"]*)\2\s*\)\s*\}\}""")
#: Profile values that name no local file: in-memory databases, MotherDuck, URLs.
_NOT_A_FILE = re.compile(r"^(?::memory:|md:|motherduck:|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def sniff(path: Path) -> str | None:
    """``"DuckDB"`` or ``"SQLite"`` when the file's first bytes say it is one, else ``None``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head == _SQLITE_MAGIC:
        return "SQLite"
    if len(head) >= 12 and head[8:12] == _DUCKDB_MAGIC:
        return "DuckDB"
    return None


def _rendered(value: str) -> str | None:
    """The value with each ``env_var`` call replaced by its default; ``None`` when Jinja is left over."""
    text = _ENV_VAR.sub(lambda m: m.group("default"), value)
    return None if "{{" in text or "{%" in text else text


def _target_paths(target: dict[str, Any]) -> list[str]:
    """The database files a dbt target writes: DuckDB's ``path`` and ``attach`` paths, SQLite's schema files."""
    found: list[Any] = [target.get("path")]
    attach = target.get("attach")
    if isinstance(attach, list):
        found += [a.get("path") for a in attach if isinstance(a, dict)]
    schemas = target.get("schemas_and_paths")
    if isinstance(schemas, dict):
        found += list(schemas.values())
    return [value for value in found if isinstance(value, str) and value.strip()]


def profile_paths(profiles: list[Path], project_root: Path) -> dict[Path, str]:
    """Every warehouse file the profiles point at (any profile, any target), resolved, with the reason to tell.

    Relative paths are taken from the project folder, where dbt runs; a path given through ``env_var`` is taken at
    its default. A file's sidecars (``.wal``, ``-journal``...) come along.
    """
    found: dict[Path, str] = {}
    for profile_file in profiles:
        try:
            data = yaml.safe_load(profile_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # the profile's own errors are dbt's to report
        if not isinstance(data, dict):
            continue
        for profile in data.values():
            outputs = profile.get("outputs") if isinstance(profile, dict) else None
            if not isinstance(outputs, dict):
                continue
            for target_name, target in outputs.items():
                if not isinstance(target, dict):
                    continue
                for raw in _target_paths(target):
                    value = _rendered(raw)
                    if value is None or _NOT_A_FILE.match(value):
                        continue
                    path = Path(value).expanduser()
                    resolved = (path if path.is_absolute() else project_root / path).resolve()
                    why = f"path of target {target_name} in {_shown(profile_file, project_root)}"
                    for candidate in (resolved, *(Path(f"{resolved}{s}") for s in SIDECAR_SUFFIXES)):
                        found.setdefault(candidate, why)
    return found


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
