"""Recovery and slim CI across fresh containers: retry from failure, another environment's state, and what an
environment publishes as its own (state, docs, timing chart) only after its fully successful runs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.runtime.bootstrap import prepare
from dbt_ferry.runtime.job import execute
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.retry import LAST_FAILED
from dbt_ferry.runtime.spec import JobRequest
from dbt_ferry.storage import open_store
from dbt_ferry.storage.local import LocalStore
from tests.conftest import publish_shop

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _job(store: str, project: Path, work: Path, environment: str = "local", **options: object) -> JobReport:
    request = JobRequest(
        environment=environment, store=store, project_dir=str(project), work_dir=str(work), no_prefect=True,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip
    spec, _ = prepare(request, cache_dir=work / "cache", with_env=False)
    return execute(spec)


def _ran(store: str, environment: str, report: JobReport) -> dict[str, str]:
    assert report.summary is not None
    results = json.loads(
        open_store(_store_config(store)).read_bytes(
            f"runs/{environment}/{report.summary.invocation_id}/run_results.json"
        )
    )
    return {r["unique_id"]: r["status"] for r in results["results"]}


def _store_config(url: str) -> object:
    from dbt_ferry.config.store_url import parse_store_url

    return parse_store_url(url)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_retry_in_a_fresh_container_runs_only_what_failed(
    kind: str, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(warehouse))
    # A model that reads a table which arrives only after the first run (a transient failure), and its child.
    (shop / "models" / "marts" / "late.sql").write_text("select * from main.late_arrivals\n")
    (shop / "models" / "marts" / "late_child.sql").write_text("select count(*) as n from {{ ref('late') }}\n")
    if kind == "s3":
        bucket = request.getfixturevalue("bucket")
        url = f"s3://{bucket}/shop"
        built = package_release(load_project(shop), tmp_path / "build")
        publish_release(open_store(_store_config(url)), built, environment="local", promote=True)  # type: ignore[arg-type]
    else:
        url = str(tmp_path / "store")
        publish_shop(shop, Path(url))
    first = _job(url, shop, tmp_path / "container-1", docs=False)
    assert first.exit_code == 1, first
    statuses = _ran(url, "local", first)
    assert (statuses["model.shop.late"], statuses["model.shop.late_child"]) == ("error", "skipped")

    with duckdb.connect(str(warehouse)) as db:
        db.execute("create table main.late_arrivals as select 1 as id")
    # A fresh container: a new work directory, nothing of the first run on disk.
    retried = _job(url, tmp_path / "empty", tmp_path / "container-2", dbt_args=("retry",), retry_of=LAST_FAILED)
    assert retried.exit_code == 0, retried
    assert [s.name for s in retried.steps] == ["dbt deps", "dbt retry"]
    assert _ran(url, "local", retried) == {"model.shop.late": "success", "model.shop.late_child": "success"}
    assert retried.summary is not None and first.summary is not None
    info = json.loads(
        open_store(_store_config(url)).read_bytes(f"runs/local/{retried.summary.invocation_id}/ferry.json")  # type: ignore[attr-defined]
    )
    assert info["retry_of"] == first.summary.invocation_id
    assert info["release_version"] == "1.0.0"
    if kind == "local":
        from pyiceberg.catalog.sql import SqlCatalog

        tables = Path(url) / "tables"
        catalog = SqlCatalog("dbt_ferry", uri=f"sqlite:///{tables}/catalog.db", warehouse=f"file://{tables}")
        rows = catalog.load_table("dbt_ferry.invocations").scan().to_arrow().to_pylist()
        retry_row = next(r for r in rows if r["invocation_id"] == retried.summary.invocation_id)
        assert retry_row["retry_of"] == first.summary.invocation_id and retry_row["exit_code"] == 0


def test_retry_without_a_failed_run_is_a_one_line_error(shop: Path, tmp_path: Path) -> None:
    from dbt_ferry.core.errors import ReleaseNotFoundError

    publish_shop(shop, tmp_path / "store")
    with pytest.raises(ReleaseNotFoundError) as raised:
        _job(str(tmp_path / "store"), shop, tmp_path / "w", dbt_args=("retry",), retry_of=LAST_FAILED)
    assert str(raised.value) == f"no failed run of local in {tmp_path / 'store'} to retry — pass --run INVOCATION_ID"


def _with_prod(shop: Path, prod_store: Path) -> None:
    """A production environment whose store is a folder of its own, the way CI would see it configured."""
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + f'\n[tool.dbt-ferry.environments.prod]\ntarget = "ci"\nprofiles = "profiles/ci.yml"\n'
        f'store = {{ type = "local", path = "{prod_store}" }}\n'
    )


def _publish(shop: Path, store: Path, environment: str, version: str, tmp_path: Path) -> None:
    pyproject = shop / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('version = "1.0.0"', f'version = "{version}"', 1))
    try:
        built = package_release(load_project(shop), tmp_path / f"build-{environment}-{version}")
        publish_release(LocalStore(store), built, environment=environment, promote=True)
    finally:
        pyproject.write_text(text)


def test_state_from_another_environment_selects_only_what_changed(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, ci = tmp_path / "prod-store", tmp_path / "ci-store"
    _with_prod(shop, prod)
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "prod" / "warehouse.duckdb"))
    (tmp_path / "prod").mkdir()
    _publish(shop, prod, "prod", "1.0.0", tmp_path)
    production = _job(str(prod), shop, tmp_path / "prod-work", environment="prod", docs=False)
    assert production.exit_code == 0, production
    assert (prod / "state" / "prod" / "state.json").is_file()

    # A pull request changes one model; CI builds what changed (and what it needs) in its own warehouse.
    model = shop / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text() + "\n-- a change\n")
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "ci" / "warehouse.duckdb"))
    (tmp_path / "ci").mkdir()
    _publish(shop, ci, "ci", "1.0.1", tmp_path)
    slim = {"state_from": "prod", "select": ("+state:modified",), "indirect_selection": "cautious"}
    changed = _job(str(ci), shop, tmp_path / "ci-work", environment="ci", **slim)
    assert changed.exit_code == 0, changed
    ran = _ran(str(ci), "ci", changed)
    assert {u for u in ran if u.startswith("model.")} == {"model.shop.stg_orders"}
    assert {u for u in ran if u.startswith("seed.")} == {"seed.shop.orders"}

    # Nothing changed: nothing to run, and that is a success (the empty-selection rule guards explicit ones).
    model.write_text(model.read_text().replace("\n-- a change\n", ""))
    _publish(shop, ci, "ci", "1.0.2", tmp_path)
    unchanged = _job(
        str(ci), shop, tmp_path / "ci-work", environment="ci", state_from="prod", select=("state:modified",)
    )
    assert unchanged.exit_code == 0, unchanged
    assert unchanged.summary is not None and unchanged.summary.results == ()


def test_defer_to_passes_the_state_with_defer(shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prod = tmp_path / "prod-store"
    _with_prod(shop, prod)
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    _publish(shop, prod, "prod", "1.0.0", tmp_path)
    assert _job(str(prod), shop, tmp_path / "prod-work", environment="prod", docs=False).exit_code == 0
    ci = tmp_path / "ci-store"
    _publish(shop, ci, "ci", "1.0.1", tmp_path)
    report = _job(str(ci), shop, tmp_path / "ci-work", environment="ci", defer_to="prod", select=("stg_orders",))
    assert report.exit_code == 0, report
    assert report.summary is not None
    args = json.loads((ci / "runs" / "ci" / str(report.summary.invocation_id) / "run_results.json").read_text())["args"]
    assert args["defer"] is True and args["state"].endswith("state-prod")


def test_only_a_full_successful_run_of_the_channel_release_is_the_environments(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    store = tmp_path / "store"
    publish_shop(shop, store)
    full = _job(str(store), shop, tmp_path / "w")
    assert full.exit_code == 0, full
    assert (full.docs, full.timing) == ("docs/local/index.html", "docs/local/timing.html")
    owned = ["docs/local/index.html", "docs/local/timing.html", "state/local/state.json", "state/local/manifest.json"]
    before = {key: (store / key).read_bytes() for key in owned}

    selected = _job(str(store), shop, tmp_path / "w", select=("stg_orders",), indirect_selection="cautious")
    assert selected.exit_code == 0, selected
    show = _job(str(store), shop, tmp_path / "w", dbt_args=("show", "--inline", "select 1 as x"))
    assert show.exit_code == 0, show
    (shop / "models" / "marts" / "broken.sql").write_text("select no_such_column from {{ ref('stg_orders') }}\n")
    _publish(shop, store, "local", "1.1.0", tmp_path)  # promoted, and it fails
    failed = _job(str(store), shop, tmp_path / "w")
    assert failed.exit_code == 1
    assert failed.summary is not None
    assert failed.docs == f"runs/local/{failed.summary.invocation_id}/index.html"  # its docs are its own
    assert failed.timing == f"runs/local/{failed.summary.invocation_id}/timing.html"
    (shop / "models" / "marts" / "broken.sql").unlink()
    built = package_release(load_project(shop), tmp_path / "unpromoted")
    publish_release(LocalStore(store), built, environment="local", promote=False, force=True)
    unpromoted = _job(str(store), shop, tmp_path / "w", version="1.0.0")
    assert unpromoted.exit_code == 0 and unpromoted.docs and unpromoted.docs.startswith("runs/local/")
    assert {key: (store / key).read_bytes() for key in owned} == before
    assert json.loads((store / "runs" / "local" / "last-failed.json").read_text())["invocation_id"] == (
        failed.summary.invocation_id
    )
