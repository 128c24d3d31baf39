from __future__ import annotations

from pathlib import Path

import pytest

from dbt_ferry.config import (
    LocalStoreConfig,
    Overrides,
    S3StoreConfig,
    load_project,
    parse_store_url,
    resolve_environment,
)
from dbt_ferry.core.errors import ConfigError

BASE = """
[project]
name = "demo"
version = "1.0.0"

[tool.dbt-ferry]
store = { type = "local", path = "store" }
target = "base-target"
docs = false

[tool.dbt-ferry.environments.local]

[tool.dbt-ferry.environments.ci]
target = "ci"

[tool.dbt-ferry.environments.pro]
target = "pro"
aws_account_id = "123456789012"
store = { type = "s3", bucket = "acme-ferry", prefix = "dbt/shop", region = "eu-west-1" }
docs = true
"""


def _project(tmp_path: Path, text: str = BASE) -> Path:
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_overlay_lies_over_base(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path))
    local = resolve_environment(project, "local", environ={})
    assert local.store == LocalStoreConfig(path="store")
    assert local.target == "base-target"
    assert local.docs is False
    assert local.ci is False
    pro = resolve_environment(project, "pro", environ={})
    assert pro.store == S3StoreConfig(type="s3", bucket="acme-ferry", prefix="dbt/shop", region="eu-west-1")
    assert (pro.target, pro.docs, pro.aws_account_id) == ("pro", True, "123456789012")
    assert resolve_environment(project, "ci", environ={}).ci is True


def test_precedence_flag_over_variable_over_overlay(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path))
    environ = {"DBT_FERRY_TARGET": "from-var", "DBT_FERRY_STORE": "s3://var-bucket/p"}
    from_var = resolve_environment(project, "pro", environ=environ)
    assert from_var.target == "from-var"
    assert from_var.store == S3StoreConfig(type="s3", bucket="var-bucket", prefix="p")
    flagged = resolve_environment(project, "pro", Overrides(store="/tmp/flag", target='"flag"'), environ=environ)
    assert flagged.target == "flag"
    assert flagged.store == LocalStoreConfig(path="/tmp/flag")


def test_a_resolved_store_laid_over_keeps_its_region(tmp_path: Path) -> None:
    """The job lays the store it fetched from over the release's configuration: as it is, region and all (a URL
    has no region, so going through one lost it)."""
    project = load_project(_project(tmp_path))
    fetched_from = S3StoreConfig(type="s3", bucket="other-bucket", prefix="x", region="ap-southeast-2")
    pro = resolve_environment(project, "pro", Overrides(store=fetched_from), environ={})
    assert pro.store == fetched_from


def test_unknown_environment_lists_configured_ones(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path))
    with pytest.raises(ConfigError) as info:
        resolve_environment(project, "staging", environ={})
    assert str(info.value) == (
        f"environment 'staging' is not configured in {tmp_path / 'pyproject.toml'} — "
        "configured environments: ci, local, pro"
    )


def test_misspelt_key_names_the_key_path_and_file(tmp_path: Path) -> None:
    text = BASE.replace('target = "pro"', 'targte = "pro"')
    project = load_project(_project(tmp_path, text))
    with pytest.raises(ConfigError) as info:
        resolve_environment(project, "pro", environ={})
    message = str(info.value)
    assert "tool.dbt-ferry.environments.pro.targte: unknown key" in message
    assert str(tmp_path / "pyproject.toml") in message


def test_bad_value_in_base_names_the_base_section(tmp_path: Path) -> None:
    text = BASE.replace("docs = false", 'docs = "sometimes"')
    project = load_project(_project(tmp_path, text))
    with pytest.raises(ConfigError, match=r"tool\.dbt-ferry\.docs: Input should be a valid boolean"):
        resolve_environment(project, "local", environ={})


def test_bad_store_type_and_bucket(tmp_path: Path) -> None:
    text = BASE.replace('type = "s3", bucket = "acme-ferry"', 'type = "gcs", bucket = "acme-ferry"')
    with pytest.raises(ConfigError, match=r"environments\.pro\.store"):
        resolve_environment(load_project(_project(tmp_path, text)), "pro", environ={})
    text = BASE.replace('bucket = "acme-ferry"', 'bucket = "Not_A_Bucket"')
    with pytest.raises(ConfigError, match=r"environments\.pro\.store\.bucket"):
        resolve_environment(load_project(_project(tmp_path, text)), "pro", environ={})


def test_store_overlay_of_other_type_replaces_whole_table(tmp_path: Path) -> None:
    text = BASE.replace('store = { type = "local", path = "store" }', 'store = { type = "local", path = "x" }')
    pro = resolve_environment(load_project(_project(tmp_path, text)), "pro", environ={})
    assert isinstance(pro.store, S3StoreConfig)


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_project(_project(tmp_path, "[tool.dbt-ferry\n"))


def test_no_configuration_gives_default_environments(tmp_path: Path) -> None:
    project = load_project(tmp_path)
    assert project.environment_names == ["local", "ci"]
    local = resolve_environment(project, "local", environ={})
    assert local.store == LocalStoreConfig()
    with pytest.raises(ConfigError, match="or set DBT_FERRY_STORE"):
        resolve_environment(project, "pro", environ={})
    # In a container the store comes from the variable before any project configuration exists.
    pro = resolve_environment(project, "pro", environ={"DBT_FERRY_STORE": "s3://bucket-x/releases"})
    assert pro.store == S3StoreConfig(type="s3", bucket="bucket-x", prefix="releases")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s3://my-bucket/a/b/", S3StoreConfig(type="s3", bucket="my-bucket", prefix="a/b")),
        ('"s3://my-bucket"', S3StoreConfig(type="s3", bucket="my-bucket", prefix="")),
        ("file:///srv/store", LocalStoreConfig(path="/srv/store")),
        ("/srv/store", LocalStoreConfig(path="/srv/store")),
    ],
)
def test_store_urls(raw: str, expected: object) -> None:
    assert parse_store_url(raw) == expected


@pytest.mark.parametrize("raw", ["gs://bucket/x", "s3://", "s3://UPPER/x", "  "])
def test_bad_store_urls(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_store_url(raw)


def test_config_is_frozen(tmp_path: Path) -> None:
    local = resolve_environment(load_project(_project(tmp_path)), "local", environ={})
    with pytest.raises(ValueError, match="frozen"):
        local.target = "other"  # type: ignore[misc]
