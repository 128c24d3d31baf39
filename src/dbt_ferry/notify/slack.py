"""Slack incoming webhooks (and Slack-compatible ones, e.g. Mattermost), posted with the standard library."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dbt_ferry.core.errors import NotifyError
from dbt_ferry.core.notification import Notification

SLACK_HOST = "https://hooks.slack.com/"
#: ``slack+https://host/path`` posts a Slack payload to ``https://host/path``.
SLACK_SCHEMES = ("slack+https://", "slack+http://")


def is_slack_webhook(url: str) -> bool:
    return url.startswith(SLACK_HOST) or url.startswith(SLACK_SCHEMES)


def payload(notification: Notification) -> dict[str, object]:
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in notification.facts.items()]
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notification.title[:150]}},
        {"type": "section", "fields": fields[:10]} if fields else {},
        {"type": "section", "text": {"type": "mrkdwn", "text": notification.body[:2900]}},
    ]
    return {"text": f"{notification.title}\n{notification.body}", "blocks": [b for b in blocks if b]}


class SlackWebhookNotifier:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        for scheme in SLACK_SCHEMES:
            if url.startswith(scheme):
                url = url[len("slack+") :]
        self.url = url
        self.timeout = timeout

    def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification)).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by is_slack_webhook
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise NotifyError(f"Slack webhook did not accept the message: {exc}") from None
