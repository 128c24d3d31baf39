"""Cheap checks before anything slow: a mistake in the target, the adapter, the selection or dbt's version is one
line, exit 2 (what bare dbt gives), within 2 s, before a Prefect server or dbt starts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbt_ferry.core.errors import EXIT_DBT_ERROR, DbtUsageError
from dbt_ferry.runtime.preflight import check_dbt_version, check_selection
from dbt_ferry.runtime.spec import JobRequest
from tests.conftest import publish_shop, run_cli

DBT = str(Path(sys.executable).with_name("dbt"))


@pytest.mark.parametrize(
    "select",
    ["stg_orders", "+fct_orders+", "2+path:models/staging+1", "@tag:nightly", "tag:a,config.materialized:table",
     "source:raw.orders+ resource_type:model", "test_type:unit", "package:shop", "*"],
)  # fmt: skip
def test_selections_dbt_takes_pass(select: str) -> None:
    check_selection(JobRequest(select=(select,)))


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (JobRequest(select=("tags:nightly",)), "--select 'tags:nightly': dbt has no selection method 'tags'"),
        (JobRequest(exclude=("stg_orders", "paths:models/x")), "--exclude 'paths:models/x': dbt has no"),
        (JobRequest(select=("state:modified+",)), "--select 'state:modified+' compares with a previous state"),
        (JobRequest(select=("a result:error+",)), "--select 'result:error+' compares with a previous state"),
    ],
)
def test_selections_dbt_refuses_are_one_line(request_: JobRequest, expected: str) -> None:
    with pytest.raises(DbtUsageError) as raised:
        check_selection(request_)
    assert raised.value.exit_code == EXIT_DBT_ERROR
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "request_",
    [
        JobRequest(select=("state:modified+",), state_from="pro"),
        JobRequest(select=("state:modified+",), defer_to="pro"),
        JobRequest(select=("state:modified+",), state="/tmp/state"),
        JobRequest(select=("source_status:fresher+",), dbt_args=("build", "--state", "x")),
    ],
)
def test_state_methods_pass_with_a_state(request_: JobRequest) -> None:
    check_selection(request_)


def _site(tmp_path: Path, version: str) -> str:
    site = tmp_path / f"site-{version}"
    info = site / f"dbt_core-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dbt-core\nVersion: {version}\n")
    return str(site)


def test_dbt_core_versions_outside_the_range_are_refused(tmp_path: Path) -> None:
    assert check_dbt_version([_site(tmp_path, "1.9.0")]) == "1.9.0"
    assert check_dbt_version([_site(tmp_path, "1.11.16")]) == "1.11.16"
    assert check_dbt_version([str(tmp_path / "nothing")]) is None
    for version in ("1.8.9", "1.12.0"):
        with pytest.raises(DbtUsageError) as raised:
            check_dbt_version([_site(tmp_path, version)])
        assert str(raised.value).startswith(f"dbt-core {version} is not supported: dbt-ferry runs dbt-core >=1.9,<1.12")


@pytest.fixture
def published(shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example with a second target on an adapter this Python does not have, published to a local store."""
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # a temporary server would start: it must not get there
    profile = shop / "profiles" / "local.yml"
    profile.write_text(
        profile.read_text() + "    warehouse:\n      type: postgres\n      host: localhost\n      user: u\n"
        "      password: \"{{ env_var('PG_PASSWORD', '') }}\"\n"
        "      port: 5432\n      dbname: d\n      schema: s\n      threads: 1\n"
    )
    store = tmp_path / "store"
    publish_shop(shop, store)
    return store


def _timed_run(capsys: pytest.CaptureFixture[str], shop: Path, store: Path, *args: str) -> tuple[int, str, float]:
    start = time.perf_counter()
    code, out, err = run_cli(
        capsys, "run", "--env", "local", "--project-dir", str(shop), "--store", str(store), "--docs", *args
    )
    return code, out + err, time.perf_counter() - start


@pytest.mark.integration
def test_an_unknown_target_is_one_line_in_under_two_seconds_like_bare_dbt(
    published: Path, shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output, seconds = _timed_run(capsys, shop, published, "--target", "nope")
    assert code == EXIT_DBT_ERROR, output
    assert seconds < 2, seconds
    (line,) = [line for line in output.splitlines() if "nope" in line]
    assert "the target 'nope' is not in the profile 'shop' of profiles/local.yml of release 1.0.0" in line
    assert "--target: local, warehouse" in line
    assert "Prefect" not in output and "Running with dbt" not in output
    profiles = shop.parent / "bare-profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text((shop / "profiles" / "local.yml").read_text())
    bare = subprocess.run(
        [DBT, "parse", "--no-use-colors", "--target", "nope", "--profiles-dir", str(profiles)],
        cwd=shop, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bare.returncode == code


@pytest.mark.integration
def test_a_missing_adapter_and_a_bad_selection_are_one_line_in_under_two_seconds(
    published: Path, shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output, seconds = _timed_run(capsys, shop, published, "--target", "warehouse")
    assert code == EXIT_DBT_ERROR, output
    assert seconds < 2, seconds
    assert "the target's adapter 'postgres' is not installed where the job runs" in output
    assert "dbt-postgres" in output

    code, output, seconds = _timed_run(capsys, shop, published, "--select", "tags:nightly")
    assert code == EXIT_DBT_ERROR, output
    assert seconds < 2, seconds
    assert "dbt has no selection method 'tags'" in output
