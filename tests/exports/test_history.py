"""`dbt-ferry history` on synthetic runs exported through the real export path into a SQLite catalog."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from dbt_ferry import api
from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.history import History, ModelHistory, load_history, load_model_history
from tests.conftest import free_port, run_cli
from tests.exports import synthetic as s

NAMESPACE = s.NAMESPACE


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose tables hold the shop's history; shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("history")
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(folder / "store")))
    s.export_runs(catalog, folder / "runs", s.shop_history())
    return folder / "store"


@pytest.fixture
def store(seeded: Path) -> Path:
    return seeded


@pytest.fixture
def catalog(seeded: Path) -> Catalog:
    return open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(seeded)))


def _cli(capsys: pytest.CaptureFixture[str], shop: Path, store: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    return run_cli(capsys, "history", "--env", "local", "--project-dir", str(shop), "--store", str(store), *args)


def test_runs_say_what_ran(catalog: Catalog) -> None:
    history = load_history(catalog, NAMESPACE, "local")
    builds = [r for r in history.runs if r.command == "build"]
    assert [r.invocation_id for r in builds] == [f"run-{n:02d}" for n in range(12, 0, -1)]  # newest first
    by_id = {r.invocation_id: r for r in history.runs}
    assert by_id["run-03"].what_ran == "build --select tag:daily --vars '{start_date: 2024-01-01}'"
    assert (by_id["run-03"].select, by_id["run-03"].vars) == ("tag:daily", "{start_date: 2024-01-01}")
    assert by_id["run-04"].what_ran == "build --full-refresh" and by_id["run-04"].full_refresh is True
    assert by_id["run-01"].what_ran == "build"
    assert by_id["run-06-freshness"].what_ran == "source freshness"
    assert (by_id["run-12"].success, by_id["run-12"].exit_code, by_id["run-12"].failures) == (False, 1, 1)
    assert by_id["run-12"].version == "1.1.0" and by_id["run-01"].version == "1.0.0"


def test_slowest_are_models_and_snapshots_only(catalog: Catalog) -> None:
    slowest = {m.unique_id: m for m in load_history(catalog, NAMESPACE, "local", top=20).slowest}
    assert set(slowest) == {s.STG, s.FCT, s.NOISY, s.TINY, s.SNAP, s.SOMETIMES}  # no seed, no test
    assert slowest[s.FCT].runs == 12 and slowest[s.FCT].last_seconds == 45.0
    assert slowest[s.SOMETIMES].runs == 11  # the run it errored in is not timed


def test_failing_models_and_tests(catalog: Catalog) -> None:
    history = load_history(catalog, NAMESPACE, "local")
    (model,) = history.failing_models
    assert (model.unique_id, model.resource_type, model.failures, model.runs) == (s.SOMETIMES, "model", 1, 12)
    assert model.last_status == "success" and model.last_message is None
    tests = {t.unique_id: t for t in history.failing}
    assert set(tests) == {s.FLAKY_TEST, s.BROKEN_TEST, s.FIXED_TEST, s.WARN_TEST}
    assert (tests[s.WARN_TEST].failures, tests[s.FLAKY_TEST].failures, tests[s.BROKEN_TEST].failures) == (12, 3, 3)
    assert tests[s.BROKEN_TEST].last_message == "Got 3 results, configured to fail if != 0"
    assert tests[s.FIXED_TEST].last_message is None  # it passes now


def test_one_model_by_name_or_unique_id(catalog: Catalog) -> None:
    by_name = load_model_history(catalog, NAMESPACE, "local", "int_refunds")
    by_uid = load_model_history(catalog, NAMESPACE, "local", s.SOMETIMES)
    assert by_name == by_uid
    assert by_name.unique_id == s.SOMETIMES
    assert [r.invocation_id for r in by_name.runs] == [f"run-{n:02d}" for n in range(12, 0, -1)]
    errored = by_name.runs[12 - 5]
    assert (errored.status, errored.seconds, errored.version) == ("error", 0.4, "1.0.0")
    assert errored.message == "Binder Error: column refund_id not found"
    assert by_name.runs[0].status == "success" and by_name.runs[0].message is None
    assert by_name.runs[0].started_at is not None and by_name.runs[0].version == "1.1.0"
    # Tests are not models; an unknown name has no runs.
    assert load_model_history(catalog, NAMESPACE, "local", "not_null_stg_orders_order_id").runs == []
    assert load_model_history(catalog, NAMESPACE, "local", "nope") == ModelHistory("local", by_name.since, "nope", [])


def test_a_name_of_two_models_asks_for_the_unique_id(tmp_path: Path) -> None:
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))
    s.export_runs(catalog, tmp_path / "runs", s.shop_history(runs=1))
    other = s.SyntheticRun(
        "other-01", s.shop_history()[0].started_at, {"model.other_pkg.fct_orders": s.Result("success", 1.0)}
    )
    s.export_runs(catalog, tmp_path / "other", [other])
    with pytest.raises(
        ConfigError,
        match=r"'fct_orders' names 2 nodes: model.other_pkg.fct_orders, model.shop.fct_orders — give its unique_id",
    ):
        load_model_history(catalog, NAMESPACE, "local", "fct_orders")


def test_cli_table(catalog: Catalog, shop: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, shop, store)
    assert (code, err) == (0, "")
    assert "build --select tag:daily --vars '{start_date: 2024-01-01}'" in out
    assert "build --full-refresh" in out
    assert "Slowest models and snapshots (successful runs)" in out
    assert "Failing models, seeds and snapshots" in out and s.SOMETIMES in out
    assert "Most-failing tests" in out and s.FLAKY_TEST in out
    slow_section = out[out.index("Slowest models") : out.index("Failing models")]
    assert s.SEED not in slow_section and "test." not in slow_section


def test_cli_json(catalog: Catalog, shop: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, shop, store, "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert {"environment", "since", "runs", "slowest", "failing", "failing_models"} == set(data)
    run = next(r for r in data["runs"] if r["invocation_id"] == "run-04")
    assert (run["full_refresh"], run["what_ran"], run["command"]) == (True, "build --full-refresh", "build")
    assert [m["unique_id"] for m in data["failing_models"]] == [s.SOMETIMES]


def test_cli_csv_is_the_runs(catalog: Catalog, shop: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, shop, store, "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 14  # 12 builds and 2 freshness runs
    assert list(rows[0]) == [
        "invocation_id", "started_at", "version", "command", "select", "exclude", "full_refresh", "vars", "what_ran",
        "success", "exit_code", "elapsed_seconds", "nodes", "failures",
    ]  # fmt: skip
    run3 = next(r for r in rows if r["invocation_id"] == "run-03")
    assert run3["what_ran"] == "build --select tag:daily --vars '{start_date: 2024-01-01}'"
    assert (run3["select"], run3["success"], run3["nodes"]) == ("tag:daily", "True", "13")


def test_cli_model(catalog: Catalog, shop: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, shop, store, "--model", "int_refunds")
    assert (code, err) == (0, "")
    assert f"Last runs of {s.SOMETIMES} in local since" in out
    assert "Binder Error: column refund_id not found" in out and "run-05" in out
    code, out, err = _cli(capsys, shop, store, "--model", s.SOMETIMES, "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["invocation_id", "started_at", "status", "seconds", "version", "message"]
    assert [r["status"] for r in rows].count("error") == 1 and len(rows) == 12
    code, out, err = _cli(capsys, shop, store, "--model", s.FCT, "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["unique_id"] == s.FCT and data["runs"][0]["seconds"] == 45.0
    code, out, err = _cli(capsys, shop, store, "--model", "nope")
    assert (code, err) == (0, "")
    assert out.startswith("No runs of nope in local since ")


def test_cli_no_tables_yet(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "empty-store"
    code, out, err = _cli(capsys, shop, store)
    assert (code, err) == (0, "")
    assert out.startswith("No runs in local since ")
    code, out, err = _cli(capsys, shop, store, "--format", "csv")
    assert (code, out.strip().count("\n"), err) == (0, 0, "")  # the header alone


def test_cli_unreadable_catalog_exits_10(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = shop / "pyproject.toml"
    section = '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    port = free_port()
    rest = f'exports = {{ catalog = {{ type = "rest", uri = "http://127.0.0.1:{port}" }} }}\n'
    pyproject.write_text(pyproject.read_text().replace(section, section + rest))
    code, out, err = _cli(capsys, shop, tmp_path / "store")
    assert (code, out) == (10, "")
    assert err.startswith(f"Error: could not read the result tables (http://127.0.0.1:{port}): ")
    assert err.endswith(" — check the catalog's address and permissions\n") and err.count("\n") == 1


def test_api_returns_the_view_asked_for(catalog: Catalog, shop: Path, store: Path) -> None:
    assert isinstance(api.history("local", project_dir=shop, store=str(store)), History)
    one = api.history("local", model="fct_orders", project_dir=shop, store=str(store))
    assert isinstance(one, ModelHistory) and one.unique_id == s.FCT
