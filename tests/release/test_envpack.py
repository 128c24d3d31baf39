"""The env pack: built from the lock with uv, relocatable, cached by its checksum."""

from __future__ import annotations

import marshal
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.release.envpack import current_platform, current_python
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import BuiltRelease, package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore


@pytest.mark.slow
def test_env_pack_runs_from_a_new_path_and_is_cached(shop_with_env: Path, tmp_path: Path) -> None:
    built = BuiltRelease.load(shop_with_env)
    (pack,) = built.manifest.of_kind("env")
    assert pack.name == f"env-{current_python()}-{current_platform()}.tar.zst"
    assert (pack.python, pack.platform) == (current_python(), current_platform())

    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)
    cache = tmp_path / "elsewhere" / "cache"
    transferred: list[int] = []
    first = fetch_release(store, "local", tmp_path / "run1", cache_dir=cache, progress=transferred.append)
    assert first.env_dir == cache / "envs" / pack.sha256
    assert sum(transferred) >= pack.size

    python = first.env_dir / "bin" / "python"
    dbt = subprocess.run([first.env_dir / "bin" / "dbt", "--version"], capture_output=True, text=True, check=False)
    assert dbt.returncode == 0, dbt.stderr
    assert "installed: 1.11." in dbt.stdout
    ferry = subprocess.run([python, "-m", "dbt_ferry", "--help"], capture_output=True, text=True, check=False)
    assert ferry.returncode == 0, ferry.stderr
    assert "Package a dbt project" in ferry.stdout
    # The interpreter is this host's and the site-packages are the pack's, not this checkout's.
    where = subprocess.run(
        [python, "-c", "import dbt_ferry, sys; print(dbt_ferry.__file__); print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(first.env_dir))
    assert where[1] == str(first.env_dir)

    # The pack ships hash-based bytecode: an interpreter that may not write any (the image sets
    # PYTHONDONTWRITEBYTECODE) imports from it, and tracebacks still show the unpacked sources.
    site = next(first.env_dir.glob("lib/python*/site-packages"))
    probe = subprocess.run(
        [python, "-v", "-c", "import dbt.version, dbt_ferry.core.archive as a; a._member_path('')"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    loaded = [line for line in probe.stderr.splitlines() if line.startswith(f"# code object from '{site}")]
    from_source = [line for line in probe.stderr.splitlines() if line.startswith(f"# code object from {site}")]
    assert len(loaded) > 20
    assert from_source == []
    assert f'File "{site}/dbt_ferry/core/tarcheck.py", line' in probe.stderr
    assert 'raise UnsafeArchiveError(f"archive member with an empty or invalid name' in probe.stderr

    # A warm host: the second fetch does not download or unpack the env pack again.
    unpacked = (first.env_dir / "pyvenv.cfg").stat().st_ino  # the same file, not one unpacked again
    transferred.clear()
    second = fetch_release(store, "local", tmp_path / "run2", cache_dir=cache, progress=transferred.append)
    assert second.env_dir == first.env_dir
    assert (second.env_dir / "pyvenv.cfg").stat().st_ino == unpacked
    assert sum(transferred) < pack.size


def test_bytecode_is_hash_based_and_the_same_wherever_it_is_built(tmp_path: Path) -> None:
    from dbt_ferry.release.envpack import _compile_bytecode

    pycs = []
    for name in ("one", "two"):
        venv = tmp_path / name
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(sys.executable)
        site = venv / "lib" / "site-packages"
        (site / "dbt_ferry").mkdir(parents=True)
        (site / "dbt_ferry" / "__init__.py").write_text("KEYS = {'a', 'b', 'c', 'd'}\n\ndef f():\n    return 1\n")
        (site / "py312_only.py").write_text("type Alias = int\n")  # may not compile here: skipped, as pip does
        _compile_bytecode(venv, site, dict(os.environ))
        (pyc,) = (site / "dbt_ferry" / "__pycache__").glob("__init__.*.pyc")
        pycs.append(pyc.read_bytes())
    assert pycs[0] == pycs[1]
    assert int.from_bytes(pycs[0][4:8], "little") == 0b01  # hash-based, never checked against the source
    assert marshal.loads(pycs[0][16:]).co_filename == "lib/site-packages/dbt_ferry/__init__.py"  # noqa: S302


def _with_fake_env_pack(
    shop: Path, tmp_path: Path, *, chunk_size: int | None = None, noise: int = 300_000
) -> tuple[object, str]:
    """A release of the shop whose env pack is a tiny venv-shaped tree (fast to build and stream); with
    ``chunk_size``, its piecewise digests as ``package --with-env`` writes them (else as an older dbt-ferry did)."""
    from dbt_ferry.core.archive import Entry, write_archive
    from dbt_ferry.core.checksums import chunk_digests, sha256_file
    from dbt_ferry.core.manifest import MANIFEST_NAME, Artifact, Chunks, build_id
    from dbt_ferry.release.envpack import env_pack_name
    from dbt_ferry.release.package import BuiltRelease

    built = package_release(load_project(shop), tmp_path / "build")
    tree = tmp_path / "fake-env"
    (tree / "bin").mkdir(parents=True)
    (tree / "pyvenv.cfg").write_text("home = /nowhere\nversion_info = 3\n")
    site = tree / "lib" / f"python{current_python()}" / "site-packages"
    for package in ("dbt_ferry", "dbt"):
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
    (site / "big.bin").write_bytes(bytes(range(256)) * 8192)
    (site / "noise.bin").write_bytes(random.Random(3).randbytes(noise))
    name = env_pack_name()
    write_archive([Entry(p.relative_to(tree).as_posix(), p) for p in sorted(tree.rglob("*"))], built.directory / name)
    path = built.directory / name
    env = Artifact(
        name=name,
        kind="env",
        size=path.stat().st_size,
        sha256=sha256_file(path),
        python=current_python(),
        platform=current_platform(),
        chunks=Chunks(size=chunk_size, sha256=chunk_digests(path, chunk_size)) if chunk_size else None,
    )
    artifacts = (*built.manifest.artifacts, env)
    manifest = built.manifest.model_copy(update={"artifacts": artifacts, "build_id": build_id(artifacts)})
    (built.directory / MANIFEST_NAME).write_bytes(manifest.to_json())
    return BuiltRelease.load(built.directory), env.sha256


@pytest.mark.parametrize("chunk_size", [None, 64 * 1024], ids=["whole", "chunked"])
def test_env_pack_streams_into_the_cache(shop: Path, tmp_path: Path, chunk_size: int | None) -> None:
    built, sha = _with_fake_env_pack(shop, tmp_path, chunk_size=chunk_size)
    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)  # type: ignore[arg-type]
    fetched = fetch_release(store, "local", tmp_path / "dest", cache_dir=tmp_path / "cache")
    assert fetched.env_dir == tmp_path / "cache" / "envs" / sha
    site = fetched.env_dir / "lib" / f"python{current_python()}" / "site-packages"
    assert (site / "big.bin").read_bytes() == bytes(range(256)) * 8192
    assert (fetched.env_dir / "bin" / "python").resolve().exists()  # relinked to this host's interpreter


def test_corrupt_env_pack_leaves_nothing_behind(shop: Path, tmp_path: Path) -> None:
    from dbt_ferry.core.errors import IntegrityError

    built, sha = _with_fake_env_pack(shop, tmp_path)
    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)  # type: ignore[arg-type]
    (pack,) = (tmp_path / "store" / "releases" / "1.0.0").glob("*/env-*.tar.zst")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"artifact env-.* is corrupt: expected sha256 " + sha):
        fetch_release(store, "local", tmp_path / "dest", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "dest").exists()
    assert list((tmp_path / "cache" / "envs").iterdir()) == []  # no half-unpacked environment
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_tampered_chunk_is_refused_before_it_is_decompressed(shop: Path, tmp_path: Path) -> None:
    """Even with the pack's sha256 rewritten in release.json, its build_id recomputed and the folder renamed (all an
    attacker without the release key can do), the piece that changed is named, and nothing from it reaches zstd
    (the reader hands out a piece only once it matches)."""
    import hashlib
    import json

    from dbt_ferry.core.errors import IntegrityError
    from dbt_ferry.core.manifest import Artifact, build_id

    built, _ = _with_fake_env_pack(shop, tmp_path, chunk_size=64 * 1024)
    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)  # type: ignore[arg-type]
    (pack,) = (tmp_path / "store" / "releases" / "1.0.0").glob("*/env-*.tar.zst")
    data = bytearray(pack.read_bytes())
    chunks = -(-len(data) // (64 * 1024))
    assert chunks >= 3
    data[64 * 1024 + 5] ^= 0x01  # in the second piece
    pack.write_bytes(bytes(data))
    manifest_path = tmp_path / "store" / "releases" / "1.0.0" / "release.json"
    manifest = json.loads(manifest_path.read_text())
    (env,) = [a for a in manifest["artifacts"] if a["kind"] == "env"]
    env["sha256"] = hashlib.sha256(data).hexdigest()
    old_build = manifest["build_id"]
    manifest["build_id"] = build_id([Artifact.model_validate(a) for a in manifest["artifacts"]])
    pack.parent.rename(pack.parent.with_name(manifest["build_id"]))
    assert manifest["build_id"] != old_build
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError) as raised:
        fetch_release(store, "local", tmp_path / "dest", cache_dir=tmp_path / "cache")
    assert raised.value.message.startswith(
        f"artifact {env['name']} of release 1.0.0 is corrupt from byte 65,536: chunk 2 of {chunks} has sha256"
    )
    assert raised.value.hint is not None and raised.value.hint.startswith("none of it was used")
    assert not (tmp_path / "dest").exists()
    assert list((tmp_path / "cache" / "envs").iterdir()) == []


def test_a_cached_env_that_changed_is_unpacked_again(
    shop: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built, sha = _with_fake_env_pack(shop, tmp_path, chunk_size=64 * 1024)
    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)  # type: ignore[arg-type]
    cache = tmp_path / "cache"

    def fetch(n: int) -> Path:
        fetched = fetch_release(store, "local", tmp_path / f"dest-{n}", cache_dir=cache)
        assert fetched.env_dir is not None
        return fetched.env_dir

    env_dir = fetch(1)
    site = env_dir / "lib" / f"python{current_python()}" / "site-packages"
    big = site / "big.bin"
    (site / "__pycache__").mkdir()
    (site / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"bytecode Python wrote")
    with caplog.at_level("INFO", logger="dbt_ferry"):
        fetch(2)
    assert "already unpacked" in caplog.text  # bytecode added by Python is not a change

    big.write_bytes(b"tampered")  # an edited file of the cached env
    caplog.clear()
    with caplog.at_level("WARNING", logger="dbt_ferry"):
        assert fetch(3) == env_dir
    changed = f"lib/python{current_python()}/site-packages/big.bin was changed"
    assert f"is not as it was unpacked ({changed}): unpacking it again" in caplog.text
    assert big.read_bytes() == bytes(range(256)) * 8192

    (env_dir / "bin" / "evil").write_text("#!/bin/sh\n")  # a file added
    caplog.clear()
    with caplog.at_level("WARNING", logger="dbt_ferry"):
        fetch(4)
    assert "(bin/evil was added)" in caplog.text
    assert not (env_dir / "bin" / "evil").exists()
    assert [p.name for p in (cache / "envs").iterdir()] == [sha]  # nothing left beside it
