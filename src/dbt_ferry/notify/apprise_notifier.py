"""Any target apprise understands (it ships with Prefect): e-mail, Teams, PagerDuty, json://, ..."""

from __future__ import annotations

from dbt_ferry.core.errors import NotifyError
from dbt_ferry.core.notification import Notification


class AppriseNotifier:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, notification: Notification) -> None:
        try:
            import apprise
        except ImportError:
            raise NotifyError("apprise is not installed", "install dbt-ferry[job]") from None
        asset = apprise.AppriseAsset(async_mode=False)
        client = apprise.Apprise(asset=asset)
        if not client.add(self.url):
            raise NotifyError("apprise does not understand the notification URL", "check its scheme")
        for server in client:
            server.socket_connect_timeout = self.timeout
            server.socket_read_timeout = self.timeout
        notify_type = apprise.NotifyType.SUCCESS if notification.success else apprise.NotifyType.FAILURE
        body = notification.body + (f"\n{notification.link}" if notification.link else "")
        if not client.notify(body=body, title=notification.title, notify_type=notify_type):
            raise NotifyError("apprise could not deliver the notification")
