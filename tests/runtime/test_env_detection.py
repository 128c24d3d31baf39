"""The environment told from the AWS account id (STS GetCallerIdentity against the moto server over HTTP).

The moto server runs in this process, and answers GetCallerIdentity with ``MOTO_ACCOUNT_ID`` when that
variable is set (read on every request), so ``monkeypatch.setenv`` chooses the account.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.runtime.bootstrap import detect_environment, prepare
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage.local import LocalStore
from tests.conftest import free_port, publish_shop

pytestmark = pytest.mark.integration

CONFIGURED = "pre=222222222222, pro=333333333333, snd=111111111111"


def _use_account(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
    assert boto3.client("sts").get_caller_identity()["Account"] == account  # the emulator answers as told


def _set_version(project: Path, old: str, new: str) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert f'version = "{old}"' in text
    pyproject.write_text(text.replace(f'version = "{old}"', f'version = "{new}"', 1))


def _set_account(project: Path, environment: str, account: str) -> None:
    pyproject = project / "pyproject.toml"
    header = f"[tool.dbt-ferry.environments.{environment}]\n"
    text = pyproject.read_text()
    start = text.index(header)
    end = text.index("aws_account_id", start)
    line_end = text.index("\n", end)
    pyproject.write_text(text[:end] + f'aws_account_id = "{account}"' + text[line_end:])


@pytest.mark.parametrize(("account", "expected"), [("222222222222", "pre"), ("111111111111", "snd")])
def test_environment_detected_from_the_account(
    aws: str, shop: Path, monkeypatch: pytest.MonkeyPatch, account: str, expected: str
) -> None:
    _use_account(monkeypatch, account)
    assert detect_environment(load_project(shop), None) == expected


def test_unknown_account_lists_the_configured_accounts(aws: str, shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_account(monkeypatch, "999999999999")
    with pytest.raises(ConfigError) as raised:
        detect_environment(load_project(shop), None)
    error = raised.value
    assert "no environment configured for AWS account 999999999999" in error.message
    assert CONFIGURED in error.message
    assert str(shop / "pyproject.toml") in error.message
    assert error.hint is not None and "--env" in error.hint
    assert error.exit_code == 3


def test_account_shared_by_two_environments_is_ambiguous(aws: str, shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_account(shop, "snd", "222222222222")
    _use_account(monkeypatch, "222222222222")
    with pytest.raises(ConfigError, match=r"several environments \(pre, snd\) configured for AWS account 222222222222"):
        detect_environment(load_project(shop), None)


def test_without_local_project_the_newest_release_tells_the_accounts(
    aws: str, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _set_version(shop, "1.0.0", "1.9.0")
    publish_shop(shop, store, environment="pro")
    # 1.10.0 is the newest by version (not by string order): pro moved to another account.
    _set_version(shop, "1.9.0", "1.10.0")
    _set_account(shop, "pro", "444444444444")
    publish_shop(shop, store, environment="pro")

    empty = tmp_path / "container"
    empty.mkdir()
    project = load_project(empty)
    assert project.environments == {}

    _use_account(monkeypatch, "444444444444")
    assert detect_environment(project, LocalStore(store)) == "pro"

    _use_account(monkeypatch, "333333333333")  # pro's account only in the older release
    with pytest.raises(ConfigError) as raised:
        detect_environment(project, LocalStore(store))
    assert "no environment configured for AWS account 333333333333" in raised.value.message
    assert f"the newest release in {LocalStore(store).url}" in raised.value.message
    assert "pro=444444444444" in raised.value.message


def test_container_with_only_a_store_detects_and_fetches(
    aws: str, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an ECS task does: no --env, no project, DBT_FERRY_STORE set; the account decides."""
    store = tmp_path / "store"
    publish_shop(shop, store, environment="pre")
    empty = tmp_path / "container"
    empty.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv("DBT_FERRY_ENV", raising=False)
    monkeypatch.setenv("DBT_FERRY_STORE", str(store))
    _use_account(monkeypatch, "222222222222")
    spec, fetched = prepare(JobRequest(project_dir=str(empty), work_dir=str(work)), cache_dir=tmp_path / "cache")
    try:
        assert spec.environment.name == "pre"
        assert spec.environment.target == "pre"
        assert spec.channel_release is True
        assert fetched.manifest.version == "1.0.0"
        assert (fetched.project_dir / "profiles.yml").read_text() == (shop / "profiles" / "pre.yml").read_text()
    finally:
        shutil.rmtree(spec.work_root, ignore_errors=True)


def test_no_environment_accounts_anywhere_asks_for_env(aws: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no environment has an aws_account_id") as raised:
        detect_environment(load_project(empty), LocalStore(tmp_path / "no-store"))
    assert raised.value.hint is not None and "--env" in raised.value.hint


def test_no_credentials_says_pass_env(aws: str, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session caches the credentials it found first: start from a fresh one, as a new process would.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(ConfigError) as raised:
        detect_environment(load_project(shop), None)
    assert "no AWS credentials" in raised.value.message
    assert raised.value.hint is not None and "pass --env" in raised.value.hint


def test_unreachable_sts_says_pass_env(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError) as raised:
        detect_environment(load_project(shop), None)
    assert "AWS account id could not be read" in raised.value.message
    assert raised.value.hint is not None and "pass --env" in raised.value.hint
