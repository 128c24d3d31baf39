"""Shared fixtures: a real S3 endpoint (moto server over HTTP), the example project, a clean env."""

from __future__ import annotations

import atexit
import fcntl
import fnmatch
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "shop"

# Never talk to real AWS from tests, and keep dbt and Prefect quiet.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)
for _name in ("DBT_FERRY_ENV", "DBT_FERRY_STORE", "DBT_FERRY_PROJECT_DIR", "DBT_FERRY_TARGET", "AWS_PROFILE"):
    os.environ.pop(_name, None)
# Each test process (pytest-xdist runs two) gets work directories of its own: an environment's stable work
# directory is held by one job at a time, and a second process would get private ones (no parse cache).
os.environ["DBT_FERRY_WORK_DIR"] = tempfile.mkdtemp(prefix="dbt-ferry-tests-work-")
atexit.register(shutil.rmtree, os.environ["DBT_FERRY_WORK_DIR"], ignore_errors=True)  # and never left in /tmp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One S3/STS/Glue/ECS emulator for the session, on loopback; tests reset it through ``s3``."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A freshly reset emulator, with boto3 pointed at it the standard way (AWS_ENDPOINT_URL)."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    yield moto_server


@pytest.fixture
def bucket(aws: str) -> str:
    name = "ferry-test-bucket"
    boto3.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


_BUILD_OUTPUT = ("target", "logs", "dbt_packages", ".ferry", "*.duckdb", "*.duckdb.wal", ".venv")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the example dbt project, without build output."""
    dest = tmp_path / "shop"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(*_BUILD_OUTPUT))
    return dest


def point_at_repo(project: Path) -> None:
    """The example depends on dbt-ferry by a relative path; the copy must point at this checkout."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('path = "../.."', f'path = "{REPO}"'))
    lock = project / "uv.lock"
    lock.write_text(re.sub(r'((?:directory|path) = ")\.\./\.\./?(")', rf"\g<1>{REPO}\g<2>", lock.read_text()))


@pytest.fixture(scope="session")
def shop_with_env() -> Path:
    """The example packaged with its env pack (`package --with-env`, ~30 s): the release folder, built once per
    content of dbt-ferry's source and the example and shared by the test processes (in the test virtualenv, under
    a lock). Tests read it (``BuiltRelease.load``) and never change it."""
    from dbt_ferry.config.loader import load_project
    from dbt_ferry.release.package import package_release

    digest = hashlib.sha256(_source_digest().encode())
    for path in sorted(EXAMPLE.rglob("*")):
        parts = path.relative_to(EXAMPLE).parts
        if path.is_file() and not any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in _BUILD_OUTPUT):
            digest.update(f"{path.relative_to(EXAMPLE)}\0".encode() + path.read_bytes())
    folder = Path(sys.prefix) / "shop-releases" / digest.hexdigest()[:16]
    folder.parent.mkdir(exist_ok=True)
    with (folder.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            work = folder.with_name(f".{folder.name}.{os.getpid()}")
            try:
                project = work / "shop"
                shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(*_BUILD_OUTPUT))
                point_at_repo(project)
                package_release(load_project(project), work / "build", with_env=True)
                (work / "build").rename(folder)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return folder


def _migrated_prefect_database() -> Path:
    """A Prefect database with every migration applied, made once per Prefect version (in the test virtualenv, under
    a lock: the test processes share it) and copied for each server: migrating a new one takes ~15 s."""
    import prefect

    template = Path(sys.prefix) / f"prefect-test-{prefect.__version__}.db"
    with (template.parent / f".{template.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.is_file():
            building = template.with_name(f".{template.name}.{os.getpid()}")
            env = {**os.environ, "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{building}"}
            prefect_cli = Path(sys.executable).with_name("prefect")
            upgrade = [str(prefect_cli), "server", "database", "upgrade", "-y"]
            subprocess.run(upgrade, env=env, check=True, capture_output=True, timeout=300)
            building.rename(template)
    return template


def _source_digest() -> str:
    """The sha256 of what dbt-ferry's wheel is built from (pyproject.toml, README, LICENSE and the package)."""
    digest = hashlib.sha256()
    for path in [REPO / "pyproject.toml", REPO / "README.md", REPO / "LICENSE",
                 *sorted((REPO / "src" / "dbt_ferry").rglob("*"))]:  # fmt: skip
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(REPO)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def ferry_wheel() -> Path:
    """dbt-ferry's wheel, built from this checkout as `make dist` builds it: once per source content (in the test
    virtualenv, under a lock shared by the test processes)."""
    folder = Path(sys.prefix) / "ferry-wheels" / _source_digest()
    folder.parent.mkdir(exist_ok=True)
    with (folder.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            building = folder.with_name(f".{folder.name}.{os.getpid()}")
            uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
            subprocess.run(
                [uv, "build", "--wheel", "--quiet", "--out-dir", str(building), str(REPO)],
                check=True, capture_output=True, timeout=300, env={**os.environ, "UV_OFFLINE": "1"},
            )  # fmt: skip
            building.rename(folder)
    (wheel,) = folder.glob("dbt_ferry-*.whl")
    return wheel


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server for the session (Prefect's own test harness, SQLite in a temp dir).

    Yields the API URL, for subprocesses; in this process the harness' settings are active, and
    ``PREFECT_API_URL`` is set too, as a user's would be (a job decides from it to report to Prefect).
    The harness' temporary folder starts with an already migrated database (its file name is the harness'); should
    a Prefect release name it otherwise, the server migrates its own, only slower.
    """
    import prefect.testing.utilities as harness
    from prefect.settings import PREFECT_API_URL

    template, make_temp_dir = _migrated_prefect_database(), harness.mkdtemp  # type: ignore[attr-defined]

    def migrated_temp_dir() -> str:
        folder = make_temp_dir()
        shutil.copyfile(template, Path(folder) / "prefect-test.db")
        return folder

    harness.mkdtemp = migrated_temp_dir  # type: ignore[attr-defined,assignment]
    try:
        with harness.prefect_test_harness(server_startup_timeout=60):
            harness.mkdtemp = make_temp_dir  # type: ignore[attr-defined]
            url = str(PREFECT_API_URL.value())
            before = os.environ.get("PREFECT_API_URL")
            os.environ["PREFECT_API_URL"] = url
            try:
                yield url
            finally:
                if before is None:
                    os.environ.pop("PREFECT_API_URL", None)
                else:
                    os.environ["PREFECT_API_URL"] = before
    finally:
        harness.mkdtemp = make_temp_dir  # type: ignore[attr-defined]


def publish_shop(project: Path, store: Path, *, environment: str = "local", with_env: bool = False) -> None:
    """Package ``project`` and publish it to the local ``store``, promoted in ``environment``."""
    from dbt_ferry.config.loader import load_project
    from dbt_ferry.release.package import package_release
    from dbt_ferry.release.publish import publish_release
    from dbt_ferry.storage.local import LocalStore

    built = package_release(load_project(project), project.parent / f"build-{project.name}", with_env=with_env)
    publish_release(LocalStore(store), built, environment=environment, promote=True, force=True)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real CLI entry point (its error handler included): exit code, stdout, stderr."""
    import logging

    from dbt_ferry.cli.main import main

    logger = logging.getLogger("dbt_ferry")  # the CLI configures it; give it back as it was
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _log_handlers_write_to_this_test() -> Iterator[None]:
    """A stream handler that Prefect (or the CLI) put on a logger during an earlier test writes to that test's
    captured stderr, closed since: every record would then print "--- Logging error ---" into this test's output.
    Point such handlers at the current stderr."""
    import logging
    import sys

    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # not setStream(), which flushes the closed stream first
    yield


def settled(root: Path, name: str = "", timeout: float = 20.0) -> list[str]:
    """The names in ``root`` once no discarded folder of ``name`` is left (their remover runs in the background)."""
    deadline = time.monotonic() + timeout
    while any(p.name.startswith(f".{name}") and ".discard-" in p.name for p in root.iterdir()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return sorted(p.name for p in root.iterdir())
