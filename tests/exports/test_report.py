"""The history report on synthetic runs exported through the real export path into a SQLite catalog: it shows the
seeded slow model and flaky test and nothing else, links every run, stays small, and renders in a browser."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from dbt_ferry import api
from dbt_ferry.config.models import LocalStoreConfig, RegressionsConfig, S3StoreConfig, SqlCatalogConfig
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.charts import FAILED, PASSED
from dbt_ferry.exports.report import render_report, store_runs_url, write_report
from dbt_ferry.exports.report_data import FlakyTest, ModelTrend, ReportData, load_report
from dbt_ferry.exports.runs import Run
from tests.browser import decode_png, dom, hex_colour, screenshot
from tests.conftest import free_port, run_cli
from tests.exports import synthetic as s

NAMESPACE = s.NAMESPACE
RUNS_URL = "https://example.invalid/runs/local/"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(folder / "store")))
    s.export_runs(catalog, folder / "runs", s.shop_history())
    return folder / "store"


@pytest.fixture
def catalog(seeded: Path) -> Catalog:
    return open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(seeded)))


class _Rows(HTMLParser):
    """The ``data-uid`` (or ``data-run``) of each table row, by the section it is in."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.rows: dict[str, list[str]] = defaultdict(list)
        self.links: dict[str, list[str]] = defaultdict(list)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self.section = values.get("id")
        elif tag == "tr" and self.section and (key := values.get("data-uid") or values.get("data-run")):
            self.rows[self.section].append(key)
        elif tag == "a" and self.section and values.get("href"):
            self.links[self.section].append(str(values["href"]))


def _rows(html: str) -> _Rows:
    parser = _Rows()
    parser.feed(html)
    return parser


def test_the_data_holds_what_was_seeded_and_nothing_else(catalog: Catalog) -> None:
    data = load_report(catalog, NAMESPACE, "local")
    assert data.project == "shop" and data.environment == "local"
    assert [r.invocation_id for r in data.runs if r.command == "build"] == [f"run-{n:02d}" for n in range(1, 13)]
    assert len(data.runs) == 14  # and the two source freshness runs
    assert [(x.model.unique_id, x.model.seconds, x.run.invocation_id if x.run else None) for x in data.slower] == [
        (s.FCT, 45.0, "run-12")
    ]
    assert [t.unique_id for t in data.flaky] == [s.FLAKY_TEST]
    flaky = data.flaky[0]
    assert (flaky.flips, flaky.failures, flaky.runs, flaky.last_status) == (6, 3, 12, "pass")
    assert flaky.statuses == tuple("fail" if n in (2, 5, 8) else "pass" for n in range(1, 13))
    failures = {f.unique_id: f for f in data.failures}
    assert set(failures) == {s.BROKEN_TEST, s.FLAKY_TEST, s.FIXED_TEST, s.SOMETIMES}  # the warning is no failure
    assert (failures[s.SOMETIMES].count, failures[s.SOMETIMES].runs) == (1, 12)
    assert failures[s.SOMETIMES].last_message == "Binder Error: column refund_id not found"
    assert [f.unique_id for f in data.failures][:2] == sorted([s.BROKEN_TEST, s.FLAKY_TEST])  # 3 each, then by name
    models = {m.unique_id: m for m in data.models}
    assert set(models) == {s.STG, s.FCT, s.NOISY, s.TINY, s.SNAP, s.SOMETIMES}  # no seed, no test
    assert data.models[0].unique_id == s.FCT  # the largest median first
    fct = models[s.FCT]
    durations = sorted([10.0 * n for n in s.NOISE[:11]] + [45.0])
    assert fct.median == pytest.approx((durations[5] + durations[6]) / 2)
    assert fct.p95 == pytest.approx(durations[10] + (durations[11] - durations[10]) * 0.45)
    assert (fct.runs, fct.last, fct.last_run, len(fct.series)) == (12, 45.0, "run-12", 12)
    assert models[s.SOMETIMES].runs == 11  # not the run it errored in
    assert data.tests == 6
    fresh = {f.unique_id: f for f in data.freshness}
    assert {u: (f.status, f.checks, f.warned) for u, f in fresh.items()} == {
        "source.shop.raw.orders": ("pass", 2, 0),
        "source.shop.raw.payments": ("warn", 2, 2),
    }
    assert fresh["source.shop.raw.payments"].age_seconds == 30 * 3600


def test_the_rule_is_notify_regressions(catalog: Catalog) -> None:
    assert load_report(catalog, NAMESPACE, "local", rule=RegressionsConfig(factor=5.0)).slower == []
    tiny = load_report(catalog, NAMESPACE, "local", rule=RegressionsConfig(min_seconds=0.2)).slower
    assert [x.model.unique_id for x in tiny] == [s.TINY, s.FCT]


def test_the_page_shows_the_seeded_regressions_and_flaky_tests_only(catalog: Catalog, tmp_path: Path) -> None:
    result = write_report(catalog, NAMESPACE, "local", tmp_path / "docs" / "history.html", runs_url=RUNS_URL)
    html = result.path.read_text()
    assert (result.runs, result.size, result.node_rows) == (14, len(html.encode()), 12 * 13)
    found = _rows(html)
    assert found.rows["slower"] == [s.FCT]
    assert found.rows["flaky"] == [s.FLAKY_TEST]
    assert set(found.rows["failures"]) == {s.BROKEN_TEST, s.FLAKY_TEST, s.FIXED_TEST, s.SOMETIMES}
    assert set(found.rows["models"]) == {s.STG, s.FCT, s.NOISY, s.TINY, s.SNAP, s.SOMETIMES}
    assert found.rows["freshness"] == ["source.shop.raw.orders", "source.shop.raw.payments"]
    runs = found.rows["runs"]
    assert runs[0] == "run-12-freshness" and runs[1] == "run-12" and len(runs) == 14  # newest first
    # Every run links to its artifacts in the store: from the chart's bar and from its row.
    for invocation_id in runs:
        assert found.links["runs"].count(f"{RUNS_URL}{invocation_id}/") == 2, invocation_id
    assert found.links["slower"] == [f"{RUNS_URL}run-12/"]
    assert "<code>build --select tag:daily --vars &#x27;{start_date: 2024-01-01}&#x27;</code>" in html
    assert "<code>runs/local/run-03/</code>" in html
    assert "more than 3× the median of their previous 10 successful runs" in html
    # One offline file: no script, style, font or image from elsewhere; printable.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", html)
    assert "@media print" in html and "beforeprint" in html
    assert result.size < 60_000


def test_default_links_are_relative_to_docs(catalog: Catalog, tmp_path: Path) -> None:
    html = write_report(catalog, NAMESPACE, "local", tmp_path / "history.html").path.read_text()
    assert 'href="../../runs/local/run-12/"' in html  # right for docs/<env>/history.html in the store


def test_store_links() -> None:
    assert store_runs_url(LocalStoreConfig(path="/srv/store"), "pro") == "file:///srv/store/runs/pro/"
    s3 = S3StoreConfig(type="s3", bucket="shop-ferry", prefix="shop/", region="eu-west-1")
    assert store_runs_url(s3, "pro") == (
        "https://s3.console.aws.amazon.com/s3/buckets/shop-ferry?region=eu-west-1&prefix=shop/runs/pro/"
    )
    bare = S3StoreConfig(type="s3", bucket="shop-ferry")
    assert store_runs_url(bare, "pro") == "https://s3.console.aws.amazon.com/s3/buckets/shop-ferry?prefix=runs/pro/"


def test_no_runs_yet(tmp_path: Path) -> None:
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(tmp_path / "store")))
    result = write_report(catalog, NAMESPACE, "local", tmp_path / "history.html")
    html = result.path.read_text()
    assert result.runs == 0 and "No runs in local since " in html
    assert "No source freshness results in the period" in html and "No model or snapshot succeeded" in html


def _big_data(runs: int, nodes: int) -> ReportData:
    """What load_report would return for ``runs`` runs of ``nodes`` nodes (half models, half tests)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    data = ReportData("pro", date(2026, 11, 1), start + timedelta(days=30), RegressionsConfig(), project="big")
    data.runs = [
        Run(f"{i:036d}", "big", start + timedelta(minutes=43 * i), None, "1.0.0", "build", "tag:daily", None,
            False, None, 8, i % 7 != 0, 0 if i % 7 else 1, 600.0 + i % 50, nodes, i % 7 == 0, 3, 0,
            (start + timedelta(minutes=43 * i)).date())
        for i in range(runs)
    ]  # fmt: skip
    data.models = [
        ModelTrend(f"model.big.model_{i:05d}", f"model_{i:05d}", runs, 5.0, 9.0, 6.0, data.runs[-1].invocation_id,
                   tuple(5.0 + (j % 9) / 3 for j in range(60)))
        for i in range(nodes // 2)
    ]  # fmt: skip
    data.flaky = [
        FlakyTest(f"test.big.t_{i:05d}", f"t_{i:05d}", runs, 20, 12, "pass", ("pass", "fail") * 20) for i in range(50)
    ]
    data.tests, data.node_rows = nodes // 2, runs * nodes
    return data


def test_a_thousand_runs_of_two_thousand_nodes_stay_readable() -> None:
    """The page's size is bounded by design: runs draw one bar each and fold away after the first 50, models
    draw a sparkline for the first 50 only, flaky tests and failures are lists of the worst."""
    html = render_report(_big_data(1000, 2000), runs_url=RUNS_URL)
    found = _rows(html)
    assert len(found.rows["runs"]) == 1000 and len(found.rows["models"]) == 1000
    assert html.count('class="spark"') == 50 and "950 earlier runs" in html and "950 more models" in html
    assert len(html.encode()) < 2_500_000


def test_cli_report(seeded: Path, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "report.html"
    args = ("--env", "local", "--project-dir", str(shop), "--store", str(seeded))
    code, text, err = run_cli(capsys, "report", *args, "--out", str(out), "--days", "7")
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"Wrote {re.escape(str(out))}: 14 runs of local since \S+, \d+ kB in \d+\.\d\d s\n", text)
    html = out.read_text()
    assert f'href="{seeded.resolve().as_uri()}/runs/local/run-12/"' in html  # the store's run folders
    assert _rows(html).rows["slower"] == [s.FCT]


def test_cli_report_default_file_and_rule(
    seeded: Path, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = shop / "pyproject.toml"
    section = '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    pyproject.write_text(
        pyproject.read_text().replace(section, section + "notify = { regressions = { factor = 5.0 } }\n")
    )
    monkeypatch.chdir(tmp_path)
    code, text, err = run_cli(capsys, "report", "--env", "local", "--project-dir", str(shop), "--store", str(seeded))
    assert (code, err) == (0, "") and text.startswith("Wrote history-local.html: 14 runs")
    assert _rows((tmp_path / "history-local.html").read_text()).rows["slower"] == []  # 4.5× is not above 5×
    assert api.report("local", project_dir=shop, store=str(seeded), out=tmp_path / "api.html").runs == 14


def test_cli_report_unreadable_catalog_exits_10(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = shop / "pyproject.toml"
    section = '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    port = free_port()
    rest = f'exports = {{ catalog = {{ type = "rest", uri = "http://127.0.0.1:{port}" }} }}\n'
    pyproject.write_text(pyproject.read_text().replace(section, section + rest))
    out = tmp_path / "r.html"
    code, text, err = run_cli(capsys, "report", "--env", "local", "--project-dir", str(shop), "--out", str(out))
    assert (code, text) == (10, "")
    assert err.startswith(f"Error: could not read the result tables (http://127.0.0.1:{port}): ")
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.slow
def test_report_in_a_browser(catalog: Catalog, tmp_path: Path) -> None:
    page = write_report(catalog, NAMESPACE, "local", tmp_path / "history.html", runs_url=RUNS_URL).path
    assert ' class="js"' in dom(page, tmp_path)  # its script ran without an error
    picture = decode_png(screenshot(page, tmp_path))
    assert picture.width == 1280
    assert picture.share((255, 255, 255)) < 0.97, "the screenshot is blank"
    assert len(picture.colours) > 50
    assert picture.near(hex_colour(PASSED)) > 500 and picture.near(hex_colour(FAILED)) > 500  # the runs' bars
