"""The one callback that forwards dbt events to the Prefect task's run logger.

dbt calls it from its worker threads. The Prefect logger is looked up inside the callback, from
the task run context captured when the forwarder was made (worker threads do not inherit context
variables); with no run context it falls back to a plain logger.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from dbt_ferry.config.models import EventsConfig

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_RANK = {"debug": 0, "info": 1, "warn": 2, "warning": 2, "error": 3}
_PY_LEVEL = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
NO_NODES_EVENTS = frozenset({"NoNodesForSelectionCriteria", "NoNodesSelected"})

fallback_log = logging.getLogger("dbt_ferry.dbt")


class EventForwarder:
    """Callable given to ``dbtRunner(callbacks=[...])``."""

    def __init__(self, config: EventsConfig, context: Any = None) -> None:
        self._names = (frozenset(config.names) | frozenset(config.include)) - frozenset(config.exclude)
        self._exclude = frozenset(config.exclude)
        self._min_rank = _RANK[config.level]
        self._context = context
        self._lock = threading.Lock()
        self.forwarded = 0
        self.no_nodes = False

    def __call__(self, event: Any) -> None:
        info = event.info
        name = info.name
        if name in NO_NODES_EVENTS:
            self.no_nodes = True
        if name in self._exclude:
            return
        rank = _RANK.get(info.level, 1)
        if name not in self._names and rank < self._min_rank:
            return
        text = _ANSI.sub("", info.msg or "").rstrip()
        if not text:
            return
        self._logger().log(_PY_LEVEL[rank], "%s", text)
        with self._lock:
            self.forwarded += 1

    def _logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        try:
            return get_run_logger(self._context) if self._context is not None else get_run_logger()
        except MissingContextError:
            return fallback_log
