"""Notifications sent by real jobs (dbt-duckdb through a real Prefect server) to a real HTTP server on loopback.

The notify table is written into the shop copy's pyproject.toml before it is published: the release's own
configuration is what the job reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project, resolve_environment
from tests.conftest import free_port
from tests.http_receiver import Receiver, receiving
from tests.runtime.conftest import RunJob

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Small selections keep the jobs short: whether a job notifies does not depend on how much of the project it runs.
BROKEN = ("+broken",)
SEED_ORDERS = {"select": ("orders",), "dbt_args": ("seed",)}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


def _notify(shop: Path, environment: str, table: str) -> None:
    """Insert ``notify = TABLE`` right after the environment's table header."""
    pyproject = shop / "pyproject.toml"
    header = f"[tool.dbt-ferry.environments.{environment}]\n"
    text = pyproject.read_text()
    assert text.count(header) == 1
    pyproject.write_text(text.replace(header, f"{header}notify = {table}\n", 1))


def _break_a_model(shop: Path) -> None:
    (shop / "models" / "marts" / "broken.sql").write_text("select no_such_column from {{ ref('stg_orders') }}\n")


def test_failing_job_posts_one_notification(run_job: RunJob, shop: Path, receiver: Receiver) -> None:
    _notify(shop, "local", f'{{ urls = ["slack+http://{receiver.base}/hook"] }}')
    _break_a_model(shop)
    report = run_job(select=BROKEN)
    assert report.exit_code == 1
    assert report.notified is True
    assert not any("notification" in p for p in report.problems), report.problems
    (post,) = receiver.posts()
    assert post.path == "/hook"
    assert post.headers["content-type"] == "application/json"
    data = post.json()
    text = data["text"]
    for expected in ("shop", "local", "1.0.0", "model.shop.broken", "no_such_column"):
        assert expected in text
    assert text.startswith("dbt-ferry FAILED: shop 1.0.0 in local")
    assert report.flow_run_id and report.flow_run_id in text  # the flow run, by URL or id
    fields = next(b["fields"] for b in data["blocks"] if "fields" in b)
    assert {"type": "mrkdwn", "text": "*exit code*\n1"} in fields


def test_successful_job_sends_nothing(run_job: RunJob, shop: Path, receiver: Receiver) -> None:
    _notify(shop, "local", f'{{ urls = ["slack+http://{receiver.base}/hook"] }}')
    report = run_job(**SEED_ORDERS)
    assert report.exit_code == 0, report
    assert report.notified is False
    assert receiver.requests == []


def test_unreachable_target_does_not_change_the_exit_code(run_job: RunJob, shop: Path) -> None:
    _notify(shop, "local", f'{{ urls = ["slack+http://127.0.0.1:{free_port()}/hook"], timeout = 3 }}')
    _break_a_model(shop)
    report = run_job(select=BROKEN)
    assert report.exit_code == 1
    assert report.outcome == "dbt build failed"
    assert report.notified is False
    problems = [p for p in report.problems if "notification" in p]
    assert len(problems) == 1
    assert problems[0].startswith("notification to slack+http://… failed")


def test_ci_never_notifies(run_job: RunJob, shop: Path, receiver: Receiver) -> None:
    url = f"slack+http://{receiver.base}/hook"
    _notify(shop, "ci", f'{{ urls = ["{url}"], on = "always" }}')
    ci = resolve_environment(load_project(shop), "ci", environ={})
    assert ci.ci is True
    assert ci.notify.urls == (url,)  # configured: only being CI keeps it quiet
    _break_a_model(shop)
    report = run_job("ci", select=BROKEN)
    assert report.exit_code == 1
    assert report.notified is False
    assert receiver.requests == []


def test_on_always_notifies_success(
    run_job: RunJob, shop: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The port comes from the job's environment: secrets in URLs stay in variables.
    monkeypatch.setenv("FERRY_TEST_HOOK_PORT", str(receiver.port))
    _notify(shop, "local", '{ urls = ["slack+http://127.0.0.1:${FERRY_TEST_HOOK_PORT}/hook"], on = "always" }')
    report = run_job(**SEED_ORDERS)
    assert report.exit_code == 0, report
    assert report.notified is True
    (post,) = receiver.posts()
    text = post.json()["text"]
    assert text.startswith("dbt-ferry succeeded: shop 1.0.0 in local")
    assert "dbt seed passed (exit code 0)" in text


@pytest.mark.parametrize(
    ("no_prefect", "name"), [(False, "ferry-hook"), (True, "custom-webhook/ferry-hook")], ids=["flow", "no-prefect"]
)
def test_a_prefect_notification_block_is_notified_on_every_path(
    run_job: RunJob, shop: Path, receiver: Receiver, no_prefect: bool, name: str
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="ferry-hook",
        url=f"http://{receiver.base}/block",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    ).save("ferry-hook", overwrite=True)
    _notify(shop, "local", f'{{ block = "{name}" }}')
    _break_a_model(shop)
    report = run_job(select=BROKEN, no_prefect=no_prefect)
    assert report.exit_code == 1
    assert report.problems == []
    assert report.notified is True
    (post,) = receiver.posts()
    assert post.path == "/block"
    data = post.json()
    assert data["subject"].startswith("dbt-ferry FAILED: shop 1.0.0 in local")
    assert "model.shop.broken" in data["body"] and "no_such_column" in data["body"]


def test_an_unknown_prefect_block_is_a_problem_not_an_exit_code(run_job: RunJob, shop: Path) -> None:
    _notify(shop, "local", '{ block = "no-such-block" }')
    _break_a_model(shop)
    report = run_job(select=BROKEN)
    assert report.exit_code == 1
    assert report.notified is False
    (problem,) = report.problems
    assert problem == (
        "Prefect notification block 'no-such-block' failed: no notification block named 'no-such-block' — "
        "name it as <block type>/<name>, e.g. slack-webhook/alerts"
    )


def test_a_passed_run_with_a_regression_is_notified_with_its_figures(
    run_job: RunJob, shop: Path, store: Path, receiver: Receiver, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
    from dbt_ferry.exports.catalog import open_catalog
    from tests.exports import synthetic as s

    # Three earlier successful runs in the environment's tables, in which fct_orders took a millisecond.
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(store)))
    earlier = [
        s.SyntheticRun(f"earlier-{n}", datetime.now(UTC) - timedelta(hours=n), {s.FCT: s.Result("success", 0.001)})
        for n in (3, 2, 1)
    ]
    s.export_runs(catalog, tmp_path / "earlier", earlier)
    regressions = "{ factor = 2.0, runs = 3, min_seconds = 0.0 }"
    _notify(shop, "local", f'{{ urls = ["slack+http://{receiver.base}/hook"], regressions = {regressions} }}')
    report = run_job(select=("+fct_orders",), docs=False, indirect_selection="cautious")
    assert report.exit_code == 0, report
    assert report.regressions[0] == "Regressions: 1 slower model"
    assert report.regressions[1].startswith("• model.shop.fct_orders took ")
    (post,) = receiver.posts()
    text = post.json()["text"]
    assert text.startswith("dbt-ferry succeeded with regressions: shop 1.0.0 in local")
    assert "× its median of 0.0 s over 3 runs" in text
    assert report.history == "docs/local/history.html" and (store / "docs" / "local" / "history.html").is_file()
