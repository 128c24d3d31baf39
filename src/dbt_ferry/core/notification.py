"""A notification, and the protocol every notifier implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    success: bool
    #: Short facts shown as fields where the target supports it (Slack): project, environment...
    facts: dict[str, str] = field(default_factory=dict)
    link: str | None = None


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver, or raise :class:`NotifyError`."""
        ...
