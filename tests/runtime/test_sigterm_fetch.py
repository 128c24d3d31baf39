"""SIGTERM while the release is fetched (ECS stopping a task that is still downloading its env pack over a slow
link): the command exits 143 with one line, and neither the work folder nor the cache keeps anything half-written.
A staging folder a killed process left in the cache long ago is removed by the next unpack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store
from tests.fault_proxy import FaultProxy
from tests.release.test_envpack import _with_fake_env_pack

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_sigterm_during_the_fetch_exits_143_and_leaves_nothing(
    shop: Path, bucket: str, aws: str, tmp_path: Path
) -> None:
    built, sha = _with_fake_env_pack(shop, tmp_path, chunk_size=64 * 1024, noise=3_000_000)
    publish_release(S3Store(bucket, "shop"), built, environment="local", promote=True)  # type: ignore[arg-type]
    target = urlparse(aws)
    proxy = FaultProxy((target.hostname or "127.0.0.1", target.port or 80), throttle=0.25)  # ~250 kB/s
    work, cache = tmp_path / "work", tmp_path / "cache"
    env = {
        **os.environ, "AWS_ENDPOINT_URL": proxy.url, "DBT_FERRY_WORK_DIR": str(work), "DBT_FERRY_CACHE_DIR": str(cache),
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "dbt_ferry", "run", "--env", "local", "--no-prefect"]
    command += ["--project-dir", str(shop), "--store", f"s3://{bucket}/shop"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not any((cache / "envs").glob(f".{sha}.*")) and time.time() < deadline:  # unpacking has begun
            time.sleep(0.05)
        assert any((cache / "envs").glob(f".{sha}.*")), "the env pack was never being unpacked"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        proxy.close()
    assert process.returncode == 143, output
    assert "stopped by SIGTERM while the release was fetched; nothing of it was left half-written" in output
    assert "Traceback" not in output
    assert list((cache / "envs").iterdir()) == []
    assert [p.name for p in work.iterdir() if p.is_dir()] == []


def test_a_staging_folder_left_long_ago_is_removed(shop: Path, tmp_path: Path) -> None:
    built, sha = _with_fake_env_pack(shop, tmp_path, chunk_size=64 * 1024)
    store = LocalStore(tmp_path / "store")
    publish_release(store, built, environment="local", promote=True)  # type: ignore[arg-type]
    envs = tmp_path / "cache" / "envs"
    left = envs / f".{sha}.killed"
    (left / "lib").mkdir(parents=True)
    recent = envs / f".{sha}.running"
    recent.mkdir()
    old = time.time() - 2 * 3600
    os.utime(left, (old, old))
    fetch_release(store, "local", tmp_path / "dest", cache_dir=tmp_path / "cache")
    assert not left.exists()
    assert recent.exists()  # another process may still be unpacking into it
    assert (envs / sha / "pyvenv.cfg").is_file()
