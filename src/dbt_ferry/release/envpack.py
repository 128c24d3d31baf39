"""The env pack: a relocatable virtualenv built from the project's lock, packed with zstd.

Built with ``uv venv --relocatable`` and installed from the lock, then byte-compiled: the pack ships
hash-based ``.pyc`` files (``unchecked-hash``: the unpacked env is immutable and verified by its sha256,
and the archive's fixed mtimes would make timestamp-based ones stale), so a container that cannot write
``__pycache__`` (``PYTHONDONTWRITEBYTECODE=1``) still imports dbt and Prefect from bytecode. The interpreter links
(``bin/python*``) are not packed: they point at the build machine's Python. Unpacking
(:func:`unpack_env`) recreates them for the local interpreter of the same version and rewrites
``pyvenv.cfg``, so the pack runs from any path on any host with that Python.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.core.archive import Entry, extract_archive, write_archive
from dbt_ferry.core.errors import BuildError, IntegrityError, ProjectError
from dbt_ferry.release.project import ProjectInfo

log = logging.getLogger(__name__)

_PRUNED_BIN = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class EnvPack:
    name: str
    python: str
    platform: str


def current_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def current_platform() -> str:
    return sysconfig.get_platform().replace(" ", "-")


def env_pack_name(python: str | None = None, platform: str | None = None) -> str:
    return f"env-{python or current_python()}-{platform or current_platform()}.tar.zst"


def find_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise BuildError(
            "uv is needed to build an env pack and was not found",
            "install it (pip install uv) or put it on PATH",
        ) from None
    return str(find_uv_bin())


def _run(args: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    log.debug("running %s", " ".join(args))
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}", "fix the lock file or dependencies")


def _install_from_lock(info: ProjectInfo, venv: Path, uv: str, env: dict[str, str]) -> None:
    lock = info.lock_file
    if lock is None:
        raise ProjectError(
            f"{info.root} has no uv.lock or poetry.lock", "lock the dependencies (uv lock) before --with-env"
        )
    if lock.name == "uv.lock":
        _run(
            [uv, "sync", "--frozen", "--no-dev", "--no-install-project", "--no-editable", "--inexact"],
            info.root,
            {**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
            "uv sync from uv.lock",
        )
        return
    poetry = shutil.which("poetry")
    if poetry is None:
        raise BuildError(
            "poetry.lock needs poetry (with poetry-plugin-export) to build an env pack",
            "install poetry, or move the project to uv (uv.lock)",
        )
    requirements = venv.parent / "requirements.txt"
    _run(
        [poetry, "export", "--without-hashes", "--format", "requirements.txt", "--output", str(requirements)],
        info.root,
        env,
        "poetry export",
    )
    _run(
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "-r", str(requirements)],
        info.root,
        env,
        "uv pip install from poetry.lock",
    )


def _compile_bytecode(venv: Path, site: Path, env: dict[str, str]) -> None:
    """Byte-compile ``site`` in place with the venv's interpreter: hash-based pycs, same bytes for the same tree.

    Paths inside the pycs are stored relative to the venv (``-s``); the import system points them at the
    real source file when it loads them, so tracebacks name the unpacked env's files.
    """
    args = [str(venv / "bin" / "python"), "-m", "compileall", "-qq", "-j", "0"]
    args += ["--invalidation-mode", "unchecked-hash", "-s", str(venv), str(site)]
    log.debug("running %s", " ".join(args))
    done = subprocess.run(args, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=False)
    # 1: some files do not compile under this Python (modules for other versions, templates): pip and uv
    # skip those too, and importing one would fail the same way from source.
    if done.returncode not in (0, 1) or not any((site / "dbt_ferry" / "__pycache__").glob("__init__.*.pyc")):
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BuildError(
            f"byte-compiling the env failed (exit {done.returncode}):\n{tail}",
            "check that the packaging Python runs the locked dependencies",
        )


def _pack_entries(venv: Path) -> list[Entry]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(venv):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        rel = here.relative_to(venv)
        links = [d for d in os.listdir(here) if (here / d).is_symlink() and (here / d).is_dir()]
        for name in filenames + links:
            relative = (rel / name).as_posix()
            if rel.as_posix() == "bin" and name in _PRUNED_BIN:
                continue
            if name in (".lock", "CACHEDIR.TAG", ".gitignore"):
                continue
            path = here / name
            if path.is_symlink() and os.path.isabs(os.readlink(path)):
                # An absolute link into the build machine; ship what it points at instead.
                continue
            entries.append(Entry(relative, path))
    return entries


def build_env_pack(info: ProjectInfo, out_dir: Path) -> EnvPack:
    """Install the project's locked dependencies into a relocatable venv and pack it into ``out_dir``."""
    uv = find_uv()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    with tempfile.TemporaryDirectory(prefix="dbt-ferry-env-") as tmp:
        venv = Path(tmp) / "env"
        _run([uv, "venv", "--relocatable", "--python", sys.executable, str(venv)], info.root, env, "uv venv")
        _install_from_lock(info, venv, uv, env)
        site = venv / "lib" / f"python{current_python()}" / "site-packages"
        if not (site / "dbt_ferry").is_dir():
            raise ProjectError(
                f"the locked dependencies of {info.root} do not include dbt-ferry",
                "add 'dbt-ferry[job]' (and your dbt adapter) to [project] dependencies and lock again",
            )
        _compile_bytecode(venv, site, env)
        pack = EnvPack(env_pack_name(), current_python(), current_platform())
        write_archive(_pack_entries(venv), out_dir / pack.name, level=3, threads=-1)
    return pack


def _python_for(version: str) -> str:
    if current_python() == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        raise IntegrityError(
            f"this env pack was built for Python {version}, which is not installed here",
            f"run it on an image with Python {version}, or package the release with that Python",
        )
    return found


def relocate_env(path: Path, python: str) -> None:
    """Point an unpacked env at this host's interpreter for ``python`` (``3.11``)."""
    interpreter = Path(_python_for(python))
    bin_dir = path / "bin"
    for name in ("python", "python3", f"python{python}"):
        link = bin_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(interpreter)
    cfg = path / "pyvenv.cfg"
    lines = cfg.read_text(encoding="utf-8").splitlines() if cfg.is_file() else []
    home = f"home = {Path(os.path.realpath(interpreter)).parent}"
    lines = [home if line.startswith("home") else line for line in lines]
    if not any(line.startswith("home") for line in lines):
        lines.insert(0, home)
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")


#: What an unpacked env pack looked like when it was unpacked: each file's size, inode and change time.
STAMP = ".dbt-ferry-env.json"


def _inventory(root: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, root)
            if relative != STAMP:
                info = os.lstat(path)
                found[relative] = [info.st_size, info.st_ino, info.st_ctime_ns]
    return found


def stamp_env(root: Path) -> None:
    """Record ``root``'s files as they are now (after unpacking and relocating), for :func:`env_changed`."""
    (root / STAMP).write_text(json.dumps(_inventory(root), sort_keys=True), encoding="utf-8")


def env_changed(root: Path) -> str | None:
    """Why the unpacked env at ``root`` is no longer what was unpacked (``None``: it is).

    A file written, replaced, added or removed since changes its size, inode or change time, and nobody but root
    can set a change time back; bytecode Python adds in ``__pycache__`` for a source without it is not a change.
    Checking costs a ``stat`` per file (~0.3 s for 24,000 files), not a read.
    """
    try:
        recorded = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"it has no readable {STAMP} (unpacked by an older dbt-ferry, or damaged)"
    current = _inventory(root)
    for relative, values in recorded.items():
        if current.get(relative) != values:
            return f"{relative} was {'removed' if relative not in current else 'changed'}"
    added = [r for r in current if r not in recorded and "__pycache__" not in Path(r).parts]
    return f"{added[0]} was added" if added else None


#: A staging folder this old was left by a process that was killed while it unpacked (SIGKILL, a lost host).
STALE_STAGING_SECONDS = 3600


def _remove_stale_staging(dest: Path) -> None:
    import time

    for staging in dest.parent.glob(f".{dest.name}.*"):
        try:
            old = time.time() - staging.lstat().st_mtime > STALE_STAGING_SECONDS
        except OSError:
            continue
        if old and staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)


def _check_runnable(env: Path, python: str) -> None:
    """An unpacked env pack is a virtualenv the job can continue in: ``bin/``, dbt-ferry and dbt-core."""
    site = f"lib/python{python}/site-packages"
    wanted = ("bin", f"{site}/dbt_ferry", f"{site}/dbt")
    missing = [name for name in wanted if not (env / name).is_dir() or (env / name).is_symlink()]
    if missing:
        raise IntegrityError(
            f"the env pack is not a virtualenv the job can run in: it holds no {', '.join(missing)}",
            "package the release again with --with-env",
        )


def unpack_env(archive: Path | Callable[[Path], None], dest: Path, python: str) -> Path:
    """Extract an env pack into ``dest`` (atomically: all or nothing) and make it runnable here.

    ``archive`` is the pack's file, or a function extracting it into the folder it is given (a download
    streamed through decompression and extraction, verified before it returns).
    """
    if dest.is_dir() and (dest / "pyvenv.cfg").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if callable(archive):
            archive(staging)
        else:
            extract_archive(archive, staging)
        _check_runnable(staging, python)
        relocate_env(staging, python)
        staging.chmod(0o755)  # mkdtemp makes it private; a shared cache is read by other users
        stamp_env(staging)
        try:
            staging.rename(dest)
        except OSError:
            if not (dest / "pyvenv.cfg").is_file():  # someone else unpacked it meanwhile: fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
