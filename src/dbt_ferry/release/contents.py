"""What goes into ``code.tar.zst``: the project's files and its ``local:`` packages from outside it, each path left
out with the rule that left it out, and what would stop packaging.

The project folder is walked in name order. A path is left out by, in this order: the fixed exclusions (build
output, installed packages, virtualenvs, VCS and tool caches), the environments' profile files (they ship as
artifacts of their own), the ``.gitignore`` files (the folder's and those of the folders above it, up to the project
folder), ``.dbtignore``, ``[tool.dbt-ferry.package] exclude``, and — for files — being a warehouse file: named by a
``path`` of a target in the profiles, or a DuckDB or SQLite database by its first bytes, or a database's sidecar
(``.wal``, ``-journal``...). A folder left out is not walked: nothing under it is shipped or checked.

A ``local:`` package outside the project is walked the same way, with its own ignore files, and ships under
``_ferry_packages/<name>/``; the packages file (and ``package-lock.yml``) ships rewritten to point there. When the
package holds the project (``local: ../`` from ``integration_tests/``), the project's folder and the package's
``integration_tests/`` are left out of its copy.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbt_ferry.core.archive import Entry
from dbt_ferry.core.errors import ProjectError
from dbt_ferry.release import dbt_packages
from dbt_ferry.release.ignore import IgnoreFile, decide
from dbt_ferry.release.warehouse import SIDECAR_SUFFIXES, profile_paths, sniff

#: The bundle's folder for ``local:`` packages from outside the project.
OUTSIDE_PACKAGES_DIR = "_ferry_packages"
#: Directories never shipped: build output, installed packages, virtualenvs, VCS and tool caches.
EXCLUDED_DIRS = frozenset(
    {
        "target", "logs", "dbt_packages", ".venv", "venv", ".git", ".hg", "__pycache__", ".ferry",
        "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".tox",
    }
)  # fmt: skip
EXCLUDED_FILES = ("*.duckdb", "*.duckdb.wal", "*.pyc", ".user.yml", ".DS_Store", "*.tmp")
#: No DuckDB or SQLite database is smaller (SQLite's smallest page): smaller files are not read to tell.
MIN_DATABASE_SIZE = 512
_IGNORE_HINT = "add it to .gitignore (or .dbtignore), or replace the link by what it points to"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Shipped:
    """One member of the bundle: a file or link on disk (``path``), or a file rewritten for it (``data``)."""

    arcname: str
    size: int
    path: Path | None = None
    data: bytes | None = None
    note: str | None = None

    def entry(self) -> Entry:
        return Entry(self.arcname, self.path, self.data)


@dataclass(frozen=True)
class LeftOut:
    """A path (of the bundle; a folder ends with ``/``) that is not shipped, and the rule that left it out."""

    path: str
    reason: str


@dataclass(frozen=True)
class OutsidePackage:
    """A ``local:`` package from outside the project, shipped under ``folder``."""

    local: str
    source: Path
    folder: str
    files: int
    size: int


@dataclass(frozen=True)
class CodeContents:
    root: Path
    shipped: tuple[Shipped, ...]
    left_out: tuple[LeftOut, ...]
    packages: tuple[OutsidePackage, ...]
    #: What stops packaging (a dangling link, a link leaving the project...); the first one is raised.
    problems: tuple[ProjectError, ...]

    @property
    def size(self) -> int:
        return sum(s.size for s in self.shipped)

    def entries(self) -> list[Entry]:
        return [s.entry() for s in self.shipped]

    def check(self) -> None:
        if self.problems:
            raise self.problems[0]


@dataclass
class _Tree:
    """One folder tree to ship: the project, or an outside package under ``prefix``."""

    root: Path
    prefix: str
    #: How its paths are shown to the user: relative to the project (``../macros/x.sql`` for a package).
    shown_prefix: str
    #: Paths (relative to ``root``) left out whatever the ignore files say, with the reason.
    skip: Mapping[str, str]
    exclude: tuple[str, ...]
    warehouses: Mapping[Path, str]
    #: dbt's own ignore file, at the tree's root: applied besides git's, either one leaves a path out.
    dbtignore: IgnoreFile | None = None
    shipped: list[Shipped] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    left_out_dirs: set[str] = field(default_factory=set)
    links: list[tuple[str, Path]] = field(default_factory=list)
    problems: list[ProjectError] = field(default_factory=list)

    def shown(self, relative: str) -> str:
        return f"{self.shown_prefix}{relative}"

    def left_out_reason(self, relative: str) -> str | None:
        """Why ``relative`` or a folder above it is left out, if it is."""
        parts = relative.split("/")
        for depth in range(len(parts), 0, -1):
            reason = self.left_out.get("/".join(parts[:depth]))
            if reason is not None:
                return reason
        return None


def _fixed(name: str, looks_dir: bool) -> str | None:
    if looks_dir and name in EXCLUDED_DIRS:
        return f"fixed exclusion ({name}/)"
    pattern = next((p for p in EXCLUDED_FILES if fnmatch.fnmatch(name, p)), None)
    return f"fixed exclusion ({pattern})" if pattern and not looks_dir else None


def _configured(bundle_path: str, patterns: tuple[str, ...]) -> str | None:
    for p in patterns:
        if fnmatch.fnmatch(bundle_path, p) or fnmatch.fnmatch(bundle_path, p.rstrip("/")):
            return f"[tool.dbt-ferry.package] exclude {p!r}"
    return None


def _warehouse(tree: _Tree, path: Path, size: int) -> str | None:
    why = tree.warehouses.get(path.resolve()) if tree.warehouses else None
    if why is not None:
        return f"warehouse file ({why})"
    kind = sniff(path) if size >= MIN_DATABASE_SIZE else None
    if kind is not None:
        return f"warehouse file ({kind}, by its content)"
    for suffix in SIDECAR_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            base = path.with_name(path.name[: -len(suffix)])
            if base.is_file() and not base.is_symlink() and (base.resolve() in tree.warehouses or sniff(base)):
                return f"warehouse file (beside the database {base.name})"
    return None


def _reason(
    tree: _Tree, path: Path, relative: str, looks_dir: bool, size: int | None, ignores: list[IgnoreFile]
) -> str | None:
    """Why the path is left out, or ``None``; ``size`` is a regular file's (``None`` for anything else)."""
    reason = _fixed(path.name, looks_dir) or tree.skip.get(relative)
    if reason:
        return reason
    for found in (decide(ignores, relative, looks_dir), tree.dbtignore and tree.dbtignore.match(relative, looks_dir)):
        if found and found.ignored:
            return found.describe()
    return _configured(tree.prefix + relative, tree.exclude) or (
        _warehouse(tree, path, size) if size is not None else None
    )


def _looks_like_dir(path: Path) -> bool:
    """A folder, or a link to one, or a link to nothing (which stands for a folder that is not there)."""
    return path.is_dir() or (path.is_symlink() and not path.exists())


def _ignore_file(tree: _Tree, folder: Path, relative: str, name: str) -> IgnoreFile | None:
    path = folder / name
    if not path.is_file() or path.is_symlink():
        return None
    shown = tree.shown(f"{relative}/{name}" if relative else name)
    return IgnoreFile.read(path, shown, relative)


def _walk(tree: _Tree, relative: str, ignores: list[IgnoreFile]) -> None:
    folder = tree.root / relative if relative else tree.root
    here = _ignore_file(tree, folder, relative, ".gitignore")
    if here is not None:
        ignores = [*ignores, here]
    with os.scandir(folder) as scan:
        items = sorted(scan, key=lambda item: item.name)
    for item in items:
        rel = f"{relative}/{item.name}" if relative else item.name
        path = Path(item.path)
        link = item.is_symlink()
        is_dir = not link and item.is_dir(follow_symlinks=False)
        size = item.stat(follow_symlinks=False).st_size if not link and item.is_file(follow_symlinks=False) else None
        looks_dir = is_dir or (link and _looks_like_dir(path))
        reason = _reason(tree, path, rel, looks_dir, size, ignores)
        if reason is not None:
            tree.left_out[rel] = reason
            if is_dir:
                tree.left_out_dirs.add(rel)
            continue
        if is_dir:
            _walk(tree, rel, ignores)
        elif link:
            tree.links.append((rel, path))
            tree.shipped.append(Shipped(tree.prefix + rel, 0, path))
        elif size is not None:
            tree.shipped.append(Shipped(tree.prefix + rel, size, path))
        # sockets, fifos: nothing to ship


def _check_links(tree: _Tree, what: str) -> None:
    for rel, path in tree.links:
        written = os.readlink(path)
        target = Path(os.path.realpath(path))
        shown = tree.shown(rel)
        if os.path.isabs(written) and (target == tree.root or tree.root in target.parents):
            tree.problems.append(
                ProjectError(f"{shown} is an absolute link to {written}", "make it a relative link, or ignore it")
            )
        elif not target.exists():
            tree.problems.append(ProjectError(f"{shown} is a link to {written}, which does not exist", _IGNORE_HINT))
        elif target != tree.root and tree.root not in target.parents:
            tree.problems.append(ProjectError(f"{shown} is a link to {target}, outside {what}", _IGNORE_HINT))
        else:
            reason = tree.left_out_reason(target.relative_to(tree.root).as_posix())
            if reason is not None:
                tree.problems.append(
                    ProjectError(f"{shown} is a link to {target}, which is left out ({reason})", _IGNORE_HINT)
                )


def _package_folder(package: Path, used: set[str]) -> str:
    """``_ferry_packages/<name>``: the package's dbt name (else its folder's name), made unique."""
    name = None
    project_file = package / "dbt_project.yml"
    if project_file.is_file():
        value = dbt_packages.read_yaml(project_file).get("name")
        name = value if isinstance(value, str) and _SAFE_NAME.fullmatch(value) else None
    if name is None:
        name = package.name if _SAFE_NAME.fullmatch(package.name) else "package"
    candidate, count = name, 1
    while candidate in used:
        count += 1
        candidate = f"{name}-{count}"
    used.add(candidate)
    return f"{OUTSIDE_PACKAGES_DIR}/{candidate}"


def _walk_tree(tree: _Tree, what: str) -> None:
    tree.dbtignore = _ignore_file(tree, tree.root, "", ".dbtignore")
    _walk(tree, "", [])
    _check_links(tree, what)
    if "dbt_project.yml" in tree.left_out:
        tree.problems.append(
            ProjectError(
                f"{tree.shown('dbt_project.yml')} is left out ({tree.left_out['dbt_project.yml']})",
                "dbt needs it: take it out of that rule",
            )
        )


def _left_out(tree: _Tree) -> list[LeftOut]:
    return [
        LeftOut(tree.prefix + rel + ("/" if rel in tree.left_out_dirs else ""), reason)
        for rel, reason in tree.left_out.items()
    ]


def _outside_tree(
    root: Path, package: Path, folder: str, exclude: tuple[str, ...], warehouses: Mapping[Path, str]
) -> _Tree:
    skip: dict[str, str] = {}
    if package in root.parents:
        skip[root.relative_to(package).as_posix()] = "the project itself: it is the bundle's root"
    if (package / "integration_tests").is_dir():
        skip.setdefault("integration_tests", "the package's integration_tests")
    shown_prefix = os.path.relpath(package, root) + "/"
    return _Tree(package, folder + "/", shown_prefix, skip, exclude, warehouses)


def plan_contents(
    root: Path,
    *,
    skip: Mapping[str, str] | None = None,
    exclude: tuple[str, ...] = (),
    profiles: tuple[Path, ...] = (),
) -> CodeContents:
    """What the code bundle of the project at ``root`` holds, and what it leaves out and why; writes nothing.

    ``skip`` maps paths relative to ``root`` to the reason they are left out (the profile files); ``exclude`` is
    ``[tool.dbt-ferry.package] exclude`` (globs over the bundle's paths); ``profiles`` are the profile files whose
    targets' ``path`` names warehouse files.
    """
    root = root.resolve()
    warehouses = profile_paths(list(profiles), root)
    project = _Tree(root, "", "", skip or {}, exclude, warehouses)
    _walk_tree(project, "the project")
    shipped, left_out, problems = list(project.shipped), _left_out(project), list(project.problems)
    source = dbt_packages.packages_file(root)
    if source is not None and source.name in project.left_out:
        problems.append(
            ProjectError(f"{source.name} is left out ({project.left_out[source.name]})", "dbt deps needs it")
        )
    packages: list[OutsidePackage] = []
    moves: dict[str, str] = {}
    folders: dict[Path, str] = {}
    used: set[str] = set()
    for package in dbt_packages.local_packages(root) if source is not None else []:
        if package.path == root or root in package.path.parents:
            reason = project.left_out_reason(package.path.relative_to(root).as_posix())
            if reason is not None and package.path != root:
                problems.append(
                    ProjectError(
                        f"the local dbt package {package.local} is left out ({reason})",
                        "take it out of that rule (a ! line in .gitignore), so that dbt deps finds it",
                    )
                )
            continue
        if not (package.path / "dbt_project.yml").is_file():
            problems.append(
                ProjectError(
                    f"the local dbt package {package.local} ({package.path}) holds no dbt_project.yml",
                    f"fix its path in {source.name if source else 'packages.yml'}",
                )
            )
            continue
        if package.path in folders:
            moves[package.local] = folders[package.path]
            continue
        folder = _package_folder(package.path, used)
        folders[package.path] = moves[package.local] = folder
        tree = _outside_tree(root, package.path, folder, exclude, warehouses)
        _walk_tree(tree, f"the package {package.local}")
        packages.append(
            OutsidePackage(package.local, package.path, folder, len(tree.shipped), sum(s.size for s in tree.shipped))
        )
        shipped += tree.shipped
        left_out += _left_out(tree)
        problems += tree.problems
    if packages and any(s.arcname.startswith(OUTSIDE_PACKAGES_DIR + "/") for s in project.shipped):
        problems.append(
            ProjectError(
                f"the project has a folder {OUTSIDE_PACKAGES_DIR}/, where dbt-ferry puts the local packages from "
                "outside the project",
                "rename that folder",
            )
        )
    note = "rewritten: " + ", ".join(f"local {a} → {b}" for a, b in moves.items())
    for name, data in dbt_packages.rewrite(root, moves).items():
        for index, item in enumerate(shipped):
            if item.arcname == name:
                shipped[index] = Shipped(name, len(data), data=data, note=note)
    return CodeContents(root, tuple(shipped), tuple(left_out), tuple(packages), tuple(problems))
