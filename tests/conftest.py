"""Shared fixtures: a real S3 endpoint (moto server over HTTP), the example project, a clean env."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
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


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the example dbt project, without build output."""
    dest = tmp_path / "shop"
    shutil.copytree(
        EXAMPLE,
        dest,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".ferry", "*.duckdb", ".venv"),
    )
    return dest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server for the session (Prefect's own test harness, SQLite in a temp dir).

    Yields the API URL, for subprocesses; in this process the harness' settings are active, and
    ``PREFECT_API_URL`` is set too, as a user's would be (a job decides from it to report to Prefect).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
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
