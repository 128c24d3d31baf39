"""Regressions of a run against the runs before it, on synthetic runs exported through the real export path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from dbt_ferry.config.loader import load_project, resolve_environment
from dbt_ferry.config.models import LocalStoreConfig, NotifyConfig, RegressionsConfig, SqlCatalogConfig
from dbt_ferry.core.errors import ConfigError, ExportError
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.regressions import NewlyFailedTest, SlowerModel, find_regressions, regression_lines
from tests.exports import synthetic as s

NAMESPACE = s.NAMESPACE
DEFAULTS = RegressionsConfig()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))


def _check(catalog: Catalog, invocation_id: str, config: RegressionsConfig = DEFAULTS) -> list[object]:
    return list(find_regressions(catalog, NAMESPACE, "local", invocation_id, config))


def test_a_slow_model_in_a_successful_run(catalog: Catalog, tmp_path: Path) -> None:
    runs = [s.passing(r) for r in s.shop_history()]  # every run succeeds; FCT took 45 s in the last
    s.export_runs(catalog, tmp_path, runs)
    (found,) = _check(catalog, "run-12")
    assert isinstance(found, SlowerModel)
    # The median of its 10 earlier successful runs (runs 2 to 11): 10 s × the noise factors of those runs.
    earlier = sorted(10.0 * n for n in s.NOISE[1:11])
    assert (found.unique_id, found.seconds, found.runs) == (s.FCT, 45.0, 10)
    assert found.median == pytest.approx((earlier[4] + earlier[5]) / 2)
    ratio, usual = 45 / found.median, found.median
    assert found.text == f"model.shop.fct_orders took 45.0 s, {ratio:.1f}× its median of {usual:.1f} s over 10 runs"
    # TINY took 5× its median too, but half a second: under min_seconds. NOISY never reaches 3×.
    tiny, fct = _check(catalog, "run-12", RegressionsConfig(min_seconds=0.2))  # the larger factor first
    assert tiny == SlowerModel(s.TINY, 0.5, pytest.approx(0.1, rel=0.05), 10) and fct == found
    assert _check(catalog, "run-12", RegressionsConfig(factor=5.0)) == []  # 4.5× is not more than 5×
    three = _check(catalog, "run-12", RegressionsConfig(runs=3))[0]
    assert isinstance(three, SlowerModel) and three.runs == 3  # runs 9, 10 and 11
    assert three.median == pytest.approx(sorted(10.0 * n for n in s.NOISE[8:11])[1])
    assert _check(catalog, "run-11") == []  # an ordinary run


def test_at_least_three_earlier_runs(catalog: Catalog, tmp_path: Path) -> None:
    runs = [s.passing(r) for r in s.shop_history(runs=4)]
    s.export_runs(catalog, tmp_path, runs[:3])
    assert _check(catalog, "run-03") == []  # FCT 45 s after only two earlier runs
    s.export_runs(catalog, tmp_path, runs[3:])
    assert [r.unique_id for r in _check(catalog, "run-04")] == [s.FCT]


def test_models_are_not_checked_in_a_failed_run(catalog: Catalog, tmp_path: Path) -> None:
    s.export_runs(catalog, tmp_path, s.shop_history())
    assert _check(catalog, "run-12") == []  # FCT took 45 s, but the run failed; BROKEN_TEST failed already in 11


def test_tests_that_newly_failed(catalog: Catalog, tmp_path: Path) -> None:
    runs = s.shop_history()
    s.export_runs(catalog, tmp_path, runs)
    (broken,) = _check(catalog, "run-10")
    assert isinstance(broken, NewlyFailedTest)
    assert (broken.unique_id, broken.status, broken.failures, broken.passed_in) == (s.BROKEN_TEST, "fail", 3, "run-09")
    assert broken.passed_at == runs[8].started_at
    assert broken.text == (
        f"{s.BROKEN_TEST} newly failed (3 failing rows), after passing in the previous run that ran it on "
        f"{runs[8].started_at:%Y-%m-%d %H:%M} UTC: Got 3 results, configured to fail if != 0"
    )
    assert [r.unique_id for r in _check(catalog, "run-08")] == [s.FLAKY_TEST]
    assert _check(catalog, "run-11") == []  # it failed in run 10 as well
    assert _check(catalog, "run-01") == []  # FIXED_TEST failed in the first run: nothing before it passed
    assert _check(catalog, "run-02") == [  # FLAKY_TEST passed in run 1; FIXED_TEST already failed
        NewlyFailedTest(
            s.FLAKY_TEST, "fail", 3, "Got 3 results, configured to fail if != 0", "run-01", runs[0].started_at
        )
    ]


def test_a_skipped_test_is_not_the_previous_run(catalog: Catalog, tmp_path: Path) -> None:
    base = [s.passing(r) for r in s.shop_history(runs=3)]
    skipped = {**base[1].results, s.STABLE_TEST: s.Result("skipped", 0.0)}
    failing = {**base[2].results, s.STABLE_TEST: s.Result("error", 0.1, "Database Error: relation does not exist")}
    s.export_runs(catalog, tmp_path, [base[0], replace(base[1], results=skipped), replace(base[2], results=failing)])
    (found,) = _check(catalog, "run-03")
    assert isinstance(found, NewlyFailedTest) and found.passed_in == "run-01"
    assert found.text.startswith(f"{s.STABLE_TEST} newly errored, after passing in the previous run that ran it on ")


def test_a_test_not_run_before_is_not_new(catalog: Catalog, tmp_path: Path) -> None:
    base = [s.passing(r) for r in s.shop_history(runs=2)]
    first = {uid: r for uid, r in base[0].results.items() if uid != s.STABLE_TEST}
    second = {**base[1].results, s.STABLE_TEST: s.Result("fail", 0.1, failures=1)}
    s.export_runs(catalog, tmp_path, [replace(base[0], results=first), replace(base[1], results=second)])
    assert _check(catalog, "run-02") == []


def test_runs_of_other_environments_do_not_count(catalog: Catalog, tmp_path: Path) -> None:
    runs = [s.passing(r) for r in s.shop_history()]
    s.export_runs(catalog, tmp_path / "pro", runs[:11], environment="pro")
    s.export_runs(catalog, tmp_path / "local", runs[11:])
    assert _check(catalog, "run-12") == []


def test_unknown_invocation(catalog: Catalog, tmp_path: Path) -> None:
    s.export_runs(catalog, tmp_path, s.shop_history(runs=1))
    with pytest.raises(ExportError, match=r"^no run nope in the result tables of local — export the run before"):
        _check(catalog, "nope")


def test_notification_lines() -> None:
    at = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    slow = SlowerModel("model.shop.fct_orders", 41.2, 9.0, 10)
    assert slow.text == "model.shop.fct_orders took 41.2 s, 4.6× its median of 9.0 s over 10 runs"
    test = NewlyFailedTest("test.shop.unique_orders_id", "fail", None, None, "abc", at)
    assert regression_lines([]) == []
    assert regression_lines([slow, test]) == [
        "Regressions: 1 slower model, 1 newly failing test",
        "• model.shop.fct_orders took 41.2 s, 4.6× its median of 9.0 s over 10 runs",
        "• test.shop.unique_orders_id newly failed, after passing in the previous run that ran it on "
        "2026-11-30 06:00 UTC",
    ]
    many = [replace(slow, unique_id=f"model.shop.m{i}") for i in range(3)] + [test, test]
    lines = regression_lines(many, limit=2)
    assert lines[0] == "Regressions: 3 slower models, 2 newly failing tests"
    assert lines[1:] == [f"• {many[0].text}", f"• {many[1].text}", "… and 3 more"]


def test_config(shop: Path) -> None:
    assert NotifyConfig().regressions is None  # off by default
    assert NotifyConfig.model_validate({"regressions": {"factor": 2.5, "runs": 5}}).regressions == RegressionsConfig(
        factor=2.5, runs=5, min_seconds=1.0
    )
    assert NotifyConfig.model_validate({"regressions": True}).regressions == RegressionsConfig()
    assert NotifyConfig.model_validate({"regressions": {}}).regressions == RegressionsConfig()
    pyproject = shop / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace(
        "[tool.dbt-ferry.environments.local]\n",
        "[tool.dbt-ferry.notify]\nregressions = { factor = 4.0, runs = 20 }\n\n[tool.dbt-ferry.environments.local]\n",
    )
    text = text.replace(
        "[tool.dbt-ferry.environments.ci]\n", "[tool.dbt-ferry.environments.ci]\nnotify = { regressions = false }\n"
    )
    pyproject.write_text(text)
    project = load_project(shop)
    assert resolve_environment(project, "local").notify.regressions == RegressionsConfig(factor=4.0, runs=20)
    assert resolve_environment(project, "ci").notify.regressions is None  # the overlay switches it off
    pyproject.write_text(text.replace("factor = 4.0", "factor = 4.0, days = 3"))
    with pytest.raises(ConfigError, match=r"notify\.regressions\.days"):
        resolve_environment(load_project(shop), "local")
    pyproject.write_text(text.replace("runs = 20", "runs = 2"))
    with pytest.raises(ConfigError, match=r"notify\.regressions\.runs"):
        resolve_environment(load_project(shop), "local")
