"""Notifiers: Slack incoming webhooks, and every target apprise understands."""

from dbt_ferry.notify.dispatch import send_notification
from dbt_ferry.notify.message import failure_notification

__all__ = ["failure_notification", "send_notification"]
