"""The project's dbt packages file (``packages.yml`` or ``dependencies.yml``) and ``package-lock.yml``: the
``local:`` packages it lists, and the same files rewritten so that packages from outside the project are found
inside the bundle.

``dbt deps`` installs from ``package-lock.yml`` only while its ``sha1_hash`` is the hash of the packages file's
entries; otherwise it resolves the packages again. The hash is dbt's ``_create_sha1_hash``: the sha1 of the sorted
JSON dumps of each entry as dbt's contract serialises it. It is computed here the same way, and trusted only when
it reproduces the lock's own hash from the original file; if it does not, the lock keeps its hash (dbt re-resolves,
exactly as it would have with the original project).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dbt_ferry.core.errors import ProjectError

log = logging.getLogger(__name__)

PACKAGES_FILES = ("packages.yml", "dependencies.yml")
LOCK_FILE = "package-lock.yml"
LOCK_HASH_KEY = "sha1_hash"


@dataclass(frozen=True)
class LocalPackage:
    #: The path as written in the packages file.
    local: str
    #: Where it is, resolved from the project folder.
    path: Path


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}", "fix the syntax") from None
    return data if isinstance(data, dict) else {}


def packages_file(root: Path) -> Path | None:
    """The project's packages file: ``packages.yml``, else ``dependencies.yml`` (dbt reads one of them)."""
    return next((root / n for n in PACKAGES_FILES if (root / n).is_file()), None)


def _entries(data: dict[str, Any]) -> list[Any]:
    packages = data.get("packages")
    return packages if isinstance(packages, list) else []


def local_packages(root: Path) -> list[LocalPackage]:
    """The ``local:`` packages of every packages file of the project, in their order, resolved.

    A path written with Jinja (``{{ env_var(...) }}``) is dbt's to render at run time: it is skipped here.
    """
    found: list[LocalPackage] = []
    for name in PACKAGES_FILES:
        path = root / name
        if not path.is_file():
            continue
        for entry in _entries(read_yaml(path)):
            local = entry.get("local") if isinstance(entry, dict) else None
            if not isinstance(local, str) or not local:
                continue
            if "{{" in local or "{%" in local:
                log.warning("%s: local package %r is rendered by dbt; dbt-ferry packages it as it is", name, local)
                continue
            found.append(LocalPackage(local, (root / local).resolve()))
    return found


def _contract(entry: dict[str, Any]) -> dict[str, Any] | None:
    """An entry as dbt's package contract serialises it (``to_dict``), or ``None`` for one this does not know."""
    unrendered = dict(entry)
    if any("{{" in str(value) or "{%" in str(value) for value in entry.values()):
        return None
    out: dict[str, Any]
    if "local" in entry:
        out = {"local": entry["local"]}
    elif "package" in entry:
        out = {
            "package": entry["package"],
            "version": entry.get("version"),
            "install_prerelease": entry.get("install_prerelease", entry.get("install-prerelease", False)),
        }
    elif "git" in entry:
        out = {
            "git": entry["git"],
            "revision": entry.get("revision"),
            "warn-unpinned": entry.get("warn-unpinned"),
            "subdirectory": entry.get("subdirectory"),
        }
    elif "tarball" in entry:
        out = {"tarball": entry["tarball"], "name": entry.get("name")}
    else:
        return None
    if entry.get("name") is not None:
        out["name"] = entry["name"]
    out["unrendered"] = unrendered
    return out


def lock_hash(entries: list[Any]) -> str | None:
    """dbt's ``sha1_hash`` of the packages file's entries, or ``None`` when an entry is not understood."""
    dumps = []
    for entry in entries:
        contract = _contract(entry) if isinstance(entry, dict) else None
        if contract is None:
            return None
        dumps.append(json.dumps(contract, sort_keys=True))
    return hashlib.sha1("\n".join(sorted(dumps)).encode("utf-8"), usedforsecurity=False).hexdigest()


def _relocated(entries: list[Any], moves: dict[str, str]) -> list[Any]:
    out = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("local") in moves:
            entry = {**entry, "local": moves[entry["local"]]}
        out.append(entry)
    return out


def _dump(data: dict[str, Any], header: str) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return f"{header}\n{text}".encode()


def rewrite(root: Path, moves: dict[str, str]) -> dict[str, bytes]:
    """The packages file (and ``package-lock.yml``) with each ``local:`` path of ``moves`` replaced.

    ``moves`` maps a path as written to its place in the bundle; returns file name → new content.
    """
    if not moves:
        return {}
    source = packages_file(root)
    if source is None:
        return {}
    header = "# Rewritten by dbt-ferry: local packages from outside the project are in the bundle's _ferry_packages/."
    data = read_yaml(source)
    original = _entries(data)
    entries = _relocated(original, moves)
    rewritten = {source.name: _dump({**data, "packages": entries}, header)}
    lock_path = root / LOCK_FILE
    if lock_path.is_file():
        lock = read_yaml(lock_path)
        new_lock = {**lock, "packages": _relocated(_entries(lock), moves)}
        previous = lock.get(LOCK_HASH_KEY)
        if previous is not None and lock_hash(original) == previous:
            new_lock[LOCK_HASH_KEY] = lock_hash(entries)
        elif previous is not None:
            log.info("%s: its sha1_hash is not the packages file's (dbt deps resolves the packages again)", LOCK_FILE)
        rewritten[LOCK_FILE] = _dump(new_lock, header)
    return rewritten
