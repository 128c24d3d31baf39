"""One Prefect event per finished dbt node, so that an automation can react to one model or one test.

``dbt.node.<status>`` (``dbt.node.success``, ``dbt.node.error``, ``dbt.node.fail``, ``dbt.node.warn``,
``dbt.node.pass``, ``dbt.node.skipped``...), about the resource ``dbt.node.<unique_id>`` with the project,
environment, release, resource type, materialization and timing as labels. Emitted from the step's task, so
Prefect relates each event to the flow run and the task run. ``emit_event`` only queues: Prefect's events
worker sends the queue from a background thread, off dbt's path (dbt runs in a process of its own anyway).

Why not Prefect's asset API: a materializing task's assets are fixed before it starts and all get the task's
one final status, while one ``dbt build`` task finishes thousands of nodes with statuses of their own
(prefect-dbt creates a task per node to get there, which is what this avoids).
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from dbt_ferry.runtime.spec import JobSpec

log = logging.getLogger(__name__)

EVENT_PREFIX = "dbt.node."


def event_name(status: str) -> str:
    return EVENT_PREFIX + status.strip().lower().replace(" ", "_")


class NodeEvents:
    """Emits the events of one job's nodes (labels shared by all of them computed once)."""

    def __init__(self, spec: JobSpec) -> None:
        manifest = spec.manifest
        self._labels = {
            "dbt.project": manifest.project,
            "dbt.environment": spec.environment.name,
            "dbt.release": manifest.version,
            "dbt.version": manifest.dbt_version or "unknown",
            "dbt.target": spec.target or "",
        }
        self.enabled = spec.environment.events.nodes
        self.emitted = 0

    def emit(self, node: dict[str, Any]) -> None:
        unique_id = str(node.get("unique_id") or "")
        if not unique_id:
            return
        resource = {
            "prefect.resource.id": f"dbt.node.{unique_id}",
            "prefect.resource.name": str(node.get("name") or unique_id),
            **self._labels,
            "dbt.resource_type": str(node.get("resource_type") or ""),
            "dbt.materialized": str(node.get("materialized") or ""),
            "dbt.status": str(node.get("status") or ""),
            "dbt.execution_time": f"{float(node.get('execution_time') or 0.0):.3f}",
            "dbt.started_at": str(node.get("started_at") or ""),
            "dbt.finished_at": str(node.get("finished_at") or ""),
        }
        payload = {key: node.get(key) for key in ("thread", "failures", "message")}
        try:
            emit_event(event=event_name(str(node.get("status") or "unknown")), resource=resource, payload=payload)
        except Exception as exc:  # noqa: BLE001 - an event never fails a step
            log.debug("node event for %s not emitted: %s", unique_id, exc)
            return
        self.emitted += 1
