"""Notifications: the message, the Slack payload, delivery to real HTTP servers on loopback, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dbt_ferry.config.models import NotifyConfig
from dbt_ferry.core.notification import Notification
from dbt_ferry.core.results import NodeResult, RunSummary
from dbt_ferry.notify import failure_notification, send_notification
from dbt_ferry.notify.apprise_notifier import AppriseNotifier
from dbt_ferry.notify.dispatch import notifier_for
from dbt_ferry.notify.slack import SlackWebhookNotifier, payload
from tests.conftest import free_port
from tests.http_receiver import Receiver, receiving

FLOW_RUN_URL = "http://127.0.0.1:4200/runs/flow-run/0f0e0d0c-0000-4000-8000-000000000001"


def _node(unique_id: str, status: str, message: str | None = None) -> NodeResult:
    return NodeResult(
        unique_id=unique_id, status=status, execution_time=0.1, message=message, thread_id="Thread-1", failures=None
    )


def _summary(failing: int, passing: int = 3) -> RunSummary:
    results = [_node(f"model.shop.ok_{i}", "success") for i in range(passing)]
    results += [_node(f"model.shop.bad_{i}", "error", f"Binder Error: column c{i} missing") for i in range(failing)]
    return RunSummary(
        invocation_id="inv-1",
        command="build",
        elapsed=1.0,
        generated_at=None,
        dbt_version="1.11.0",
        results=tuple(results),
    )


def _failure(summary: RunSummary | None = None, **overrides: object) -> Notification:
    arguments: dict[str, object] = {
        "project": "shop",
        "environment": "pre",
        "version": "2.3.4",
        "exit_code": 1,
        "outcome": "dbt build failed",
        "summary": summary if summary is not None else _summary(2),
        "error": None,
        "flow_run": "0f0e0d0c-0000-4000-8000-000000000001",
        "flow_run_url": FLOW_RUN_URL,
    }
    arguments.update(overrides)
    return failure_notification(**arguments)  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


# --- the message -------------------------------------------------------------------------------------------


def test_failure_notification_names_project_environment_version_failures_and_link() -> None:
    note = _failure()
    assert note.success is False
    assert note.title == "dbt-ferry FAILED: shop 2.3.4 in pre"
    assert "dbt build failed (exit code 1)" in note.body
    assert "Nodes: PASS=3 WARN=0 ERROR=2 SKIP=0 NO-OP=0 TOTAL=5" in note.body
    assert "• model.shop.bad_0 [error]: Binder Error: column c0 missing" in note.body
    assert "• model.shop.bad_1 [error]: Binder Error: column c1 missing" in note.body
    assert "model.shop.ok_0" not in note.body  # passing nodes are not listed
    assert f"Prefect flow run: {FLOW_RUN_URL}" in note.body
    assert note.link == FLOW_RUN_URL
    assert note.facts == {"project": "shop", "environment": "pre", "version": "2.3.4", "exit code": "1"}
    assert "more failing nodes" not in note.body


def test_failure_notification_caps_failures_at_five() -> None:
    note = _failure(_summary(8))
    listed = [line for line in note.body.splitlines() if line.startswith("• ")]
    assert [line.split(" ")[1] for line in listed] == [f"model.shop.bad_{i}" for i in range(5)]
    assert "… and 3 more failing nodes" in note.body
    for hidden in ("model.shop.bad_5", "model.shop.bad_6", "model.shop.bad_7"):
        assert hidden not in note.body


def test_failure_notification_without_url_shows_the_flow_run_id_and_clips_long_messages() -> None:
    long = "line one\n\n   " + "x" * 1000
    summary = RunSummary(None, "build", None, None, None, (_node("test.shop.t.abc", "fail", long),))
    note = _failure(summary, flow_run_url=None, error="boom", problems=["docs were not generated"])
    assert "Prefect flow run: 0f0e0d0c-0000-4000-8000-000000000001" in note.body
    assert note.link is None
    (line,) = [line for line in note.body.splitlines() if line.startswith("• ")]
    assert line.startswith("• test.shop.t.abc [fail]: line one xxx")  # whitespace collapsed
    assert line.endswith("…")
    assert len(line) < 360
    assert "Error: boom" in note.body
    assert "Also: docs were not generated" in note.body


def test_success_notification() -> None:
    note = _failure(_summary(0), exit_code=0, outcome="dbt build passed")
    assert note.success is True
    assert note.title == "dbt-ferry succeeded: shop 2.3.4 in pre"
    assert "•" not in note.body


# --- Slack payload -----------------------------------------------------------------------------------------


def test_slack_payload_has_text_header_fields_and_body() -> None:
    note = _failure()
    data = payload(note)
    assert data["text"] == f"{note.title}\n{note.body}"
    header, facts, body = data["blocks"]  # type: ignore[misc]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": note.title}}
    assert facts == {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*project*\nshop"},
            {"type": "mrkdwn", "text": "*environment*\npre"},
            {"type": "mrkdwn", "text": "*version*\n2.3.4"},
            {"type": "mrkdwn", "text": "*exit code*\n1"},
        ],
    }
    assert body == {"type": "section", "text": {"type": "mrkdwn", "text": note.body}}


def test_slack_payload_limits_sizes_and_drops_empty_fields() -> None:
    note = Notification(title="T" * 400, body="b" * 5000, success=False)
    blocks = payload(note)["blocks"]
    assert isinstance(blocks, list)
    assert [b["type"] for b in blocks] == ["header", "section"]  # no facts: no fields section
    assert len(blocks[0]["text"]["text"]) == 150
    assert len(blocks[1]["text"]["text"]) == 2900


def test_urls_pick_their_notifier() -> None:
    assert isinstance(notifier_for("https://hooks.slack.com/services/T/B/X", 5), SlackWebhookNotifier)
    slack = notifier_for("slack+http://127.0.0.1:9/hook", 5)
    assert isinstance(slack, SlackWebhookNotifier)
    assert slack.url == "http://127.0.0.1:9/hook"
    assert isinstance(notifier_for("json://127.0.0.1:9/hook", 5), AppriseNotifier)
    assert isinstance(notifier_for("https://example.invalid/hook", 5), AppriseNotifier)


# --- delivery ----------------------------------------------------------------------------------------------


def test_slack_webhook_posts_json_to_the_server(receiver: Receiver) -> None:
    note = _failure()
    problems = send_notification(NotifyConfig(urls=(f"slack+http://{receiver.base}/services/x",)), note, environ={})
    assert problems == []
    (post,) = receiver.posts()
    assert post.path == "/services/x"
    assert post.headers["content-type"] == "application/json"
    assert post.json() == payload(note)


def test_apprise_json_url_posts_to_the_server(receiver: Receiver) -> None:
    note = _failure()
    problems = send_notification(NotifyConfig(urls=(f"json://{receiver.base}/apprise/path",)), note, environ={})
    assert problems == []
    (post,) = receiver.posts()
    assert post.path == "/apprise/path"
    data = post.json()
    assert data["title"] == note.title
    assert note.body in data["message"]
    assert data["message"].endswith(f"\n{FLOW_RUN_URL}")
    assert data["type"] == "failure"


def test_apprise_success_is_sent_as_success(receiver: Receiver) -> None:
    note = _failure(_summary(0), exit_code=0, outcome="dbt build passed")
    assert send_notification(NotifyConfig(urls=(f"json://{receiver.base}/ok",)), note, environ={}) == []
    (post,) = receiver.posts()
    assert post.json()["type"] == "success"


def test_variables_in_urls_are_expanded(receiver: Receiver) -> None:
    config = NotifyConfig(urls=("slack+http://127.0.0.1:${HOOK_PORT}/${HOOK_PATH}",))
    problems = send_notification(config, _failure(), environ={"HOOK_PORT": str(receiver.port), "HOOK_PATH": "sec"})
    assert problems == []
    (post,) = receiver.posts()
    assert post.path == "/sec"


@pytest.mark.parametrize("environ", [{}, {"HOOK_PORT": ""}], ids=["missing", "empty"])
def test_missing_variable_is_reported_not_raised(receiver: Receiver, environ: dict[str, str]) -> None:
    config = NotifyConfig(urls=(f"slack+http://{receiver.base}/${{HOOK_PORT}}",))
    problems = send_notification(config, _failure(), environ=environ)
    (problem,) = problems
    assert "${HOOK_PORT}" in problem
    assert "not set" in problem
    assert receiver.posts() == []


@pytest.mark.parametrize("scheme", ["slack+http", "json"])
def test_refused_connection_is_a_problem_not_an_exception(scheme: str) -> None:
    port = free_port()  # nothing listens there any more
    url = f"{scheme}://127.0.0.1:{port}/services/T000/SECRETTOKEN"
    started = time.monotonic()
    problems = send_notification(NotifyConfig(urls=(url,), timeout=2), _failure(), environ={})
    assert time.monotonic() - started < 10
    (problem,) = problems
    assert problem.startswith(f"notification to {scheme}://")
    assert "failed" in problem
    assert "SECRETTOKEN" not in problem  # the URL (often a secret) is not repeated


def test_error_status_is_a_problem() -> None:
    with receiving(status=500) as server:
        problems = send_notification(NotifyConfig(urls=(f"slack+http://{server.base}/hook",)), _failure(), environ={})
        assert len(server.posts()) == 1
    (problem,) = problems
    assert "500" in problem


def test_slow_target_times_out() -> None:
    with receiving(hold=True) as server:
        started = time.monotonic()
        problems = send_notification(
            NotifyConfig(urls=(f"slack+http://{server.base}/hook",), timeout=0.5), _failure(), environ={}
        )
        elapsed = time.monotonic() - started
    assert len(problems) == 1
    assert elapsed < 5


def test_unknown_apprise_scheme_is_a_problem() -> None:
    (problem,) = send_notification(NotifyConfig(urls=("nosuchscheme://x/y",)), _failure(), environ={})
    assert "apprise does not understand" in problem


def test_one_failing_target_does_not_stop_the_others(receiver: Receiver) -> None:
    config = NotifyConfig(
        urls=(
            f"slack+http://127.0.0.1:{free_port()}/dead",
            "slack+http://127.0.0.1:${MISSING_PORT}/x",
            f"slack+http://{receiver.base}/alive",
        )
    )
    problems = send_notification(config, _failure(), environ={})
    assert len(problems) == 2
    assert [p.path for p in receiver.posts()] == ["/alive"]


def test_no_urls_sends_nothing() -> None:
    assert send_notification(NotifyConfig(), _failure(), environ={}) == []
