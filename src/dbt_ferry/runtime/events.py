"""Which dbt events reach the Prefect task log, and how they read there.

The filter runs in dbt's process (:mod:`dbt_ferry.runtime.dbt_process`), called from dbt's worker
threads for every event; only the events it picks cross to the job's process, which logs them to the
Prefect task's run logger (:func:`run_logger`).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from dbt_ferry.core.results import brief_message

if TYPE_CHECKING:
    from dbt_ferry.config.models import EventsConfig
from dbt_ferry.core.masking import scrub_text

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_RANK = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3}
_PY_LEVEL = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
NO_NODES_EVENTS = frozenset({"NoNodesForSelectionCriteria", "NoNodesSelected"})
#: dbt's event for a node that finished, whatever its status: one Prefect event each.
NODE_FINISHED = "NodeFinished"
#: What a command prints as its result: ``show``'s rows, ``ls``'s nodes, ``compile``'s SQL, a macro's
#: ``log(..., info=True)``. Always forwarded (whatever ``events`` says), and printed on stdout.
OUTPUT_EVENTS = frozenset({"ShowNode", "ListCmdOut", "CompiledNode", "JinjaLogInfo"})

fallback_log = logging.getLogger("dbt_ferry.dbt")


class EventFilter:
    """Picks the events to forward: the named ones, and any at or above the level, minus the excluded."""

    def __init__(
        self, names: frozenset[str], exclude: frozenset[str], level: str, masked: tuple[str, ...] = ()
    ) -> None:
        self._names = names - exclude
        self._exclude = exclude
        self._level = level
        self._min_rank = _RANK[level]
        #: Secret ``--vars`` values: replaced by stars in the text forwarded.
        self._masked = masked
        self.no_nodes = False

    @classmethod
    def from_config(cls, config: EventsConfig, masked: tuple[str, ...] = ()) -> EventFilter:
        names = frozenset(config.names) | frozenset(config.include)
        return cls(names, frozenset(config.exclude), config.level, masked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": sorted(self._names),
            "exclude": sorted(self._exclude),
            "level": self._level,
            "masked": list(self._masked),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventFilter:
        masked = tuple(str(v) for v in data.get("masked", ()))
        return cls(frozenset(data["names"]), frozenset(data["exclude"]), str(data["level"]), masked)

    def __call__(self, event: Any) -> tuple[int, str] | None:
        """``(logging level, text)`` for an event to forward, else None. Remembers "no nodes selected"."""
        info = event.info
        name = info.name
        if name in NO_NODES_EVENTS:
            self.no_nodes = True
        rank = _RANK.get(info.level, 1)
        if name not in OUTPUT_EVENTS and (name in self._exclude or (name not in self._names and rank < self._min_rank)):
            return None
        text = _ANSI.sub("", info.msg or "").rstrip()
        if not text:
            return None
        return _PY_LEVEL[rank], scrub_text(text, self._masked) if self._masked else text


def finished_node(event: Any) -> dict[str, Any] | None:
    """A finished node's facts (``NodeFinished``), small enough to cross the pipe; None for other events."""
    if event.info.name != NODE_FINISHED:
        return None
    node, result = event.data.node_info, event.data.run_result
    return {
        "unique_id": node.unique_id,
        "name": node.node_name,
        "resource_type": node.resource_type,
        "materialized": node.materialized,
        "started_at": node.node_started_at,
        "finished_at": node.node_finished_at,
        "status": result.status,
        "execution_time": round(float(result.execution_time), 3),
        "thread": result.thread,
        "failures": int(result.num_failures),
        "message": brief_message(_ANSI.sub("", result.message or ""), 1000),
    }


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run logger of the current task or flow, or a plain logger outside a run."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return fallback_log
