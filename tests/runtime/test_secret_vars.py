"""Secret ``--vars``: dbt runs with the value, and nothing the job keeps holds it — not the published artifacts,
``dbt.log``, ``ferry.json``, the ``invocations`` table, the history, nor the Prefect flow run's parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import duckdb
import pytest

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.masking import mask_vars, scrub_file
from dbt_ferry.runtime.retry import check_masked_vars
from tests.conftest import publish_shop

SECRET = "s3cr3t-token-value"
ENV_SECRET = "another-hidden-value"
MODEL = 'select \'{{ var("api_token", "none") }}\' as token, \'{{ var("DBT_ENV_SECRET_KEY", "none") }}\' as k\n'


def test_secret_names_and_their_values() -> None:
    masked, values = mask_vars("{api_token: abcd1234, day: 2024-01-01, nested: {DBT_ENV_SECRET_X: [p1p1p1, 7]}}",
                               ["api_*"])  # fmt: skip
    assert values == ["abcd1234", "p1p1p1", "7"]
    assert masked == "{api_token: '********', day: 2024-01-01, nested: {DBT_ENV_SECRET_X: ['******', '*']}}"
    assert mask_vars("{day: 2024-01-01}", ["api_*"]) == ("{day: 2024-01-01}", [])


def test_a_file_is_scrubbed_in_place_keeping_its_length(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b'\x92{"v": "a\\"quote"} a"quote plain-value')
    assert scrub_file(path, ['a"quote', "plain-value"])
    assert path.read_bytes() == b'\x92{"v": "********"} ******* ***********'


def test_a_retry_without_the_masked_vars_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run_results.json").write_text(json.dumps({"args": {"vars": {"api_token": "****", "day": "x"}}}))
    with pytest.raises(ConfigError, match=r"kept masked \(api_token\).*--vars '\{api_token: ...\}'"):
        check_masked_vars(tmp_path, None, ("api_*",))
    check_masked_vars(tmp_path, "{api_token: again}", ("api_*",))  # given again: dbt retry takes it


@pytest.mark.slow
@pytest.mark.integration
def test_secret_vars_are_masked_in_everything_the_job_keeps(prefect_api: str, shop: Path, tmp_path: Path) -> None:
    (shop / "models" / "marts" / "with_token.sql").write_text(MODEL)
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.dbt-ferry]\n", '[tool.dbt-ferry]\nsecret_vars = ["api_*"]\n')
    )
    store = tmp_path / "store"
    publish_shop(shop, store)
    warehouse = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "SHOP_DUCKDB_PATH": str(warehouse),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    given = f"{{api_token: {SECRET}, DBT_ENV_SECRET_KEY: {ENV_SECRET}, day: 2024-01-01}}"
    command = [sys.executable, "-m", "dbt_ferry", "run", "--env", "local", "--project-dir", str(shop)]
    command += ["--store", str(store), "--vars", given, "--debug"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    with duckdb.connect(str(warehouse), read_only=True) as db:  # dbt ran with the real values
        assert db.sql("select token, k from main.with_token").fetchall() == [(SECRET, ENV_SECRET)]

    for secret in (SECRET, ENV_SECRET):
        assert secret not in text
        leaked = [p for p in store.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert leaked == [], f"{secret} is in {leaked}"
    (run_dir,) = [p for p in (store / "runs" / "local").iterdir() if p.is_dir()]
    ferry = json.loads((run_dir / "ferry.json").read_text())
    assert (
        ferry["vars"]
        == "{api_token: '******************', DBT_ENV_SECRET_KEY: '********************', day: 2024-01-01}"
    )
    assert b"day: 2024-01-01" in (run_dir / "run_results.json").read_bytes()  # the others stay readable

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(ferry["prefect_flow_run_id"]))
    assert flow_run.parameters["vars"] == {"api_token": "*" * len(SECRET), "DBT_ENV_SECRET_KEY": "*" * len(ENV_SECRET),
                                           "day": "2024-01-01"}  # fmt: skip
