from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobRequest
from tests.conftest import publish_shop

RunJob = Callable[..., JobReport]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def run_job(prefect_api: str, shop: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunJob:
    """Publish the (possibly edited) shop copy, then run it in this process as ``dbt-ferry run`` would."""
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv("DBT_FERRY_ENV", raising=False)

    def run(environment: str = "local", *, publish: bool = True, **options: object) -> JobReport:
        if publish:
            publish_shop(shop, store, environment=environment)
        request = JobRequest(environment=environment, project_dir=str(shop), store=str(store), **options)  # type: ignore[arg-type]
        spec, _ = prepare(request, cache_dir=tmp_path / "cache")
        return execute(spec)

    return run
