from __future__ import annotations

import pytest

from dbt_ferry.core.errors import ConfigError, ProjectError
from dbt_ferry.core.manifest import Artifact, build_id
from dbt_ferry.core.names import check_environment_name, clean_value, parse_version, version_sort_key


@pytest.mark.parametrize(
    ("raw", "clean"),
    [('"tag:daily"', "tag:daily"), ("'x'", "x"), (" \"'both'\" ", "both"), ("plain", "plain"), ('"', '"')],
)
def test_clean_value_strips_stray_quotes(raw: str, clean: str) -> None:
    assert clean_value(raw) == clean


def test_environment_names() -> None:
    assert check_environment_name("pro") == "pro"
    with pytest.raises(ConfigError, match="invalid environment name"):
        check_environment_name("Pro Env")


def test_versions_sort_as_versions() -> None:
    assert sorted(["1.10.0", "1.2.0", "1.9.1", "2.0.0rc1"], key=version_sort_key) == [
        "1.2.0",
        "1.9.1",
        "1.10.0",
        "2.0.0rc1",
    ]
    with pytest.raises(ProjectError, match="not a valid version"):
        parse_version("one")


def test_build_id_depends_on_content_only() -> None:
    a = Artifact(name="code.tar.zst", kind="code", size=1, sha256="a" * 64)
    b = Artifact(name="uv.lock", kind="lock", size=2, sha256="b" * 64)
    assert build_id([a, b]) == build_id([b, a])
    assert build_id([a, b]) != build_id([a, b.model_copy(update={"sha256": "c" * 64})])
