"""The container path: an image with only dbt-ferry's bootstrap dependencies runs a release from S3.

The image has no dbt and no Prefect; it fetches the release and its env pack, then re-executes into the
pack's Python, which runs the job. Everything is real: a clean virtualenv made by uv, the moto server over
HTTP, the Prefect test server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from dbt_ferry.config.store_url import parse_store_url
from dbt_ferry.release.catalog import artifact_key
from dbt_ferry.release.envpack import find_uv
from dbt_ferry.release.package import BuiltRelease
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage import open_store

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]

PREFIX = "shop"


def _bootstrap_venv(where: Path, wheel: Path) -> Path:
    """What the image holds: plain dbt-ferry (no extras) in a fresh virtualenv, from its built wheel (the file
    `make dist` and `init --ferry-source` give the image)."""
    uv = find_uv()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH")}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(where)], env=env, check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(where / "bin" / "python"), str(wheel)], env=env, check=True
    )
    return where


def _try_import(python: Path, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )


def _keys(bucket: str) -> set[str]:
    s3 = boto3.client("s3")
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        keys |= {item["Key"] for item in page.get("Contents", [])}
    return keys


def test_bootstrap_image_runs_a_release_from_s3_in_its_env_pack(
    shop_with_env: Path, tmp_path: Path, bucket: str, aws: str, prefect_api: str, ferry_wheel: Path
) -> None:
    venv = _bootstrap_venv(tmp_path / "image", ferry_wheel)
    python = venv / "bin" / "python"
    for module in ("dbt", "prefect"):
        failed = _try_import(python, module)
        assert failed.returncode != 0, f"{module} is importable in the bootstrap venv"
        assert "ModuleNotFoundError" in failed.stderr, failed.stderr
    present = _try_import(python, "dbt_ferry.runtime.bootstrap")
    assert present.returncode == 0, present.stderr

    built = BuiltRelease.load(shop_with_env)
    (pack,) = built.manifest.of_kind("env")
    store = open_store(parse_store_url(f"s3://{bucket}/{PREFIX}"))
    publish_release(store, built, environment="local", promote=True)

    workdir = tmp_path / "container"
    workdir.mkdir()
    cache = tmp_path / "cache"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "DBT_FERRY_STORE": f"s3://{bucket}/{PREFIX}",
        "AWS_ENDPOINT_URL": aws,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "DBT_FERRY_CACHE_DIR": str(cache),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SHOP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    command = [str(venv / "bin" / "dbt-ferry"), "run", "--env", "local"]

    def run(environ: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            command, cwd=workdir, env=environ, capture_output=True, text=True, timeout=240, check=False
        )
        assert list(workdir.iterdir()) == [], "the job must not write into the working directory"
        return done

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running shop 1.0.0 in local (target local, duckdb)" in first.stdout
    assert "dbt build passed" in first.stdout, first.stdout
    # The bootstrap venv cannot import dbt: the build ran in the env pack, unpacked in the cache by its sha256.
    env_dir = cache / "envs" / pack.sha256
    assert (env_dir / "bin" / "python").is_file()
    assert (env_dir / "bin" / "dbt").is_file()
    assert [p.name for p in (cache / "envs").iterdir()] == [pack.sha256]

    keys = _keys(bucket)
    assert f"{PREFIX}/docs/local/index.html" in keys, sorted(keys)
    run_results = [k for k in keys if k.startswith(f"{PREFIX}/runs/local/") and k.endswith("/run_results.json")]
    assert len(run_results) == 1, sorted(keys)
    invocation = run_results[0].split("/")[3]
    assert f"run artifacts: s3://{bucket}/{PREFIX}/runs/local/{invocation}/" in first.stdout

    # A warm host: the env pack is not downloaded again. Take it out of the bucket to prove it.
    unpacked = (env_dir / "pyvenv.cfg").stat().st_ino  # the same file afterwards, not one unpacked again
    env_mtime = env_dir.stat().st_mtime_ns
    envs_mtime = (cache / "envs").stat().st_mtime_ns
    pack_key = f"{PREFIX}/{artifact_key(built.manifest, pack.name)}"
    assert pack_key in keys
    boto3.client("s3").delete_object(Bucket=bucket, Key=pack_key)
    assert pack_key not in _keys(bucket)

    # On ECS without a Prefect API: the same steps without Prefect, which is never imported (a `prefect` that
    # cannot be imported shadows the env pack's) and no temporary server is started.
    shadow = tmp_path / "no-prefect"
    (shadow / "prefect").mkdir(parents=True)
    (shadow / "prefect" / "__init__.py").write_text("raise ImportError('the no-server path imported prefect')\n")
    plain = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    plain |= {"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/test", "PYTHONPATH": str(shadow)}
    second = run(plain)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "dbt build passed" in second.stdout, second.stdout
    assert "| INFO    | dbt build - Done. PASS=54" in second.stderr, second.stderr
    assert "Prefect flow run" not in second.stdout
    assert "temporary server" not in second.stdout + second.stderr
    assert (env_dir / "pyvenv.cfg").stat().st_ino == unpacked
    assert env_dir.stat().st_mtime_ns == env_mtime
    assert (cache / "envs").stat().st_mtime_ns == envs_mtime
    runs = {k.split("/")[3] for k in _keys(bucket) if k.startswith(f"{PREFIX}/runs/local/")}
    assert len(runs) == 2 and invocation in runs
