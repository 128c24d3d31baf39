"""Two projects on one host, each with its store, both running environment ``local`` with one work folder base.

The work folder is keyed by project (its store) and environment, so neither takes the other's folder, and the parse
cache one project stores is never the one the other restores. While one project's run holds its folder, the other's
runs still get their stable folder and their parse cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.runtime.workdir import acquire_work_dir, release_work_dir, work_dir_name
from tests.conftest import publish_shop

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _run(project: Path, store: Path, work: Path, cache: Path) -> tuple[JobReport, str]:
    request = JobRequest(
        environment="local", store=str(store), project_dir=str(project), work_dir=str(work), no_prefect=True,
        docs=False,
    )  # fmt: skip
    spec, _ = prepare(request, cache_dir=cache)
    work_root = spec.work_root
    report = execute(spec)
    assert report.exit_code == 0, report
    return report, work_root


def _parsed_partially(store: Path, report: JobReport) -> bool:
    assert report.summary is not None
    log = (store / "runs" / "local" / str(report.summary.invocation_id) / "dbt.log").read_text()
    return "Partial parsing enabled" in log


def test_two_projects_in_one_environment_keep_their_own_work_folders_and_parse_caches(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    other = tmp_path / "other" / "shop"
    shutil.copytree(shop, other)
    (other / "models" / "marts" / "other_only.sql").write_text("select 1 as id\n")
    first_store, other_store = tmp_path / "store-first", tmp_path / "store-other"
    publish_shop(shop, first_store)
    publish_shop(other, other_store)
    work, cache = tmp_path / "work", tmp_path / "cache"

    _, first_root = _run(shop, first_store, work, cache)
    # While a run of the first project holds its folder, the other project runs twice: its own stable folder, its
    # own cache, restored on its second run.
    running = acquire_work_dir("local", str(first_store), str(work))
    try:
        assert running.stable and str(running.path) == first_root
        report, other_root = _run(other, other_store, work, cache)
        assert not _parsed_partially(other_store, report)  # its first run: nothing of the first project's is used
        report, other_again = _run(other, other_store, work, cache)
        assert other_again == other_root
        assert _parsed_partially(other_store, report)
    finally:
        release_work_dir(running.lock_fd)
    again, again_root = _run(shop, first_store, work, cache)

    assert Path(first_root).name == work_dir_name("local", str(first_store))
    assert Path(other_root).name == work_dir_name("local", str(other_store))
    assert again_root == first_root
    assert _parsed_partially(first_store, again)  # its own cache, not replaced by the other project's
    manifest = json.loads((first_store / "state" / "local" / "manifest.json").read_text())
    assert "model.shop.other_only" not in manifest["nodes"]
    other_manifest = json.loads((other_store / "state" / "local" / "manifest.json").read_text())
    assert "model.shop.other_only" in other_manifest["nodes"]
