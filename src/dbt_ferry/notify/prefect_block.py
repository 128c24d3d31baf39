"""A Prefect notification block (``notify.block``): Slack, Teams, e-mail, a webhook... as configured in Prefect.

The block is named as Prefect addresses it, ``<block type>/<name>`` (``slack-webhook/data-alerts``), or by its name
alone when exactly one notification block has it.
"""

from __future__ import annotations

from typing import Any

from dbt_ferry.core.errors import NotifyError
from dbt_ferry.core.notification import Notification

_PAGE = 200


def _address(name: str) -> str:
    """``<block type>/<name>`` of the one notification block called ``name``."""
    from prefect.client.orchestration import get_client

    found: list[str] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_block_documents(offset=offset, limit=_PAGE, include_secrets=False)
            for document in page:
                capabilities = document.block_schema.capabilities if document.block_schema else []
                if document.name == name and "notify" in capabilities and document.block_type:
                    found.append(f"{document.block_type.slug}/{document.name}")
            if len(page) < _PAGE:
                break
            offset += _PAGE
    if len(found) != 1:
        problem = "no notification block" if not found else f"several notification blocks ({', '.join(found)})"
        raise NotifyError(f"{problem} named {name!r}", "name it as <block type>/<name>, e.g. slack-webhook/alerts")
    return found[0]


class PrefectBlockNotifier:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, notification: Notification) -> None:
        try:
            from prefect.blocks.core import Block
        except ImportError:
            raise NotifyError("Prefect is not installed here", "install dbt-ferry[job]") from None
        try:
            address = self.name if "/" in self.name else _address(self.name)
            block: Any = Block.load(address)
            body = notification.body + (f"\n{notification.link}" if notification.link else "")
            block.notify(body=body, subject=notification.title)
        except NotifyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a block fails in as many ways as its service
            raise NotifyError(f"{type(exc).__name__}: {exc}") from None
