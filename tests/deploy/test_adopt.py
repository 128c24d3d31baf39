"""Adopting an existing project: `init`, then `publish --env local --promote` and `run --env local` work at once.

The project has a `local:` dbt package, seeds, several targets and its profile in ~/.dbt/profiles.yml; no
pyproject.toml. Everything runs in this process through the real CLI, dbt on DuckDB, Prefect on the test server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbt_ferry.cli.init import init_cmd
from dbt_ferry.cli.main import main
from tests.deploy.conftest import Adoptable

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_init_then_publish_and_run_work_right_away(
    jaffle: Adoptable,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("JAFFLE_DUCKDB", str(warehouse))
    monkeypatch.delenv("DBT_FERRY_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    adopted = CliRunner().invoke(
        init_cmd, ["--project-dir", str(jaffle.root)], env={"HOME": str(jaffle.home), "DBT_PROFILES_DIR": None}
    )
    assert adopted.exit_code == 0, adopted.output
    project = ("--project-dir", str(jaffle.root))

    code, out = run(capsys, "publish", "--env", "local", "--promote", *project)
    assert code == 0, out
    assert out.startswith("Published jaffle 0.1.0 [build ")
    assert "Channel now points at 0.1.0" in out

    code, out = run(capsys, "run", "--env", "local", *project)
    assert code == 0, out
    assert "Running jaffle 0.1.0 in local (target dev, duckdb)" in out
    assert "dbt build passed — exit code 0" in out
    (run_dir,) = (jaffle.root / ".ferry" / "store" / "runs" / "local").iterdir()
    results = json.loads((run_dir / "run_results.json").read_text())
    statuses = {r["unique_id"].rsplit(".", 1)[0] if r["unique_id"].startswith("test.") else r["unique_id"]: r["status"]
                for r in results["results"]}  # fmt: skip
    assert statuses == {
        "seed.jaffle.raw_orders": "success",
        "model.jaffle.orders": "success",  # uses the macro of the local: package
        "model.jaffle.customers": "success",
        "test.jaffle.unique_orders_id": "pass",
        "test.jaffle.not_null_orders_id": "pass",
    }
    assert warehouse.is_file()
