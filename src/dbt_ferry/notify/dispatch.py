"""Send a notification to every configured target; report problems, never raise."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from dbt_ferry.config.models import NotifyConfig
from dbt_ferry.core.errors import ConfigError, NotifyError
from dbt_ferry.core.names import expand_variables
from dbt_ferry.core.notification import Notification, Notifier
from dbt_ferry.notify.apprise_notifier import AppriseNotifier
from dbt_ferry.notify.prefect_block import PrefectBlockNotifier
from dbt_ferry.notify.slack import SlackWebhookNotifier, is_slack_webhook

log = logging.getLogger(__name__)


def _redact(url: str) -> str:
    return url.split("://", 1)[0] + "://…" if "://" in url else "…"


def notifier_for(url: str, timeout: float) -> Notifier:
    if is_slack_webhook(url):
        return SlackWebhookNotifier(url, timeout)
    return AppriseNotifier(url, timeout)


def send_notification(
    config: NotifyConfig, notification: Notification, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Deliver to each URL of ``config`` and to its Prefect block; return what went wrong (the caller logs, the
    job goes on)."""
    env = os.environ if environ is None else environ
    problems = []
    for template in config.urls:
        try:
            url = expand_variables(template, env)
            notifier_for(url, config.timeout).send(notification)
            log.info("notification sent to %s", _redact(url))
        except (NotifyError, ConfigError) as exc:
            problems.append(f"notification to {_redact(template)} failed: {exc}")
            log.warning("notification to %s failed: %s", _redact(template), exc)
    if config.block:
        try:
            PrefectBlockNotifier(config.block).send(notification)
            log.info("notification sent to the Prefect block %s", config.block)
        except NotifyError as exc:
            problems.append(f"Prefect notification block {config.block!r} failed: {exc}")
            log.warning("Prefect notification block %s failed: %s", config.block, exc)
    return problems
