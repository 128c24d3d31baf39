"""Result records read from dbt's ``run_results.json``: counts, failures, slowest nodes.

Tolerant by design: fields added by newer dbt versions are ignored, missing optional ones are
``None``. Nothing here imports dbt.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "partial success"})
WARN_STATUSES = frozenset({"warn"})
#: dbt's closing line ("Done. PASS=… WARN=… ERROR=… SKIP=… NO-OP=… TOTAL=…"): which status counts under which word.
_DONE_WORDS = {"success": "PASS", "pass": "PASS", "warn": "WARN", "skipped": "SKIP", "no-op": "NO-OP"}
_DONE_ORDER = ("PASS", "WARN", "ERROR", "SKIP", "NO-OP")
#: The last line of a Python traceback: the exception, which a shortened message must keep.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def brief_message(message: str, limit: int) -> str:
    """``message`` on one line, at most ``limit`` characters; a traceback's exception (its last line) always stays.

    dbt's messages for Python models are tracebacks whose useful part is the end: ``ModuleNotFoundError: …``.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    flat = " ".join(" ".join(lines).split())
    if len(flat) <= limit:
        return flat
    last = lines[-1] if "Traceback (most recent call last)" in message and lines else ""
    if not _EXCEPTION_LINE.match(last) or len(last) > limit - 20:
        return flat[: limit - 1] + "…"
    return flat[: limit - len(last) - 3].rstrip() + " … " + last


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    execution_time: float
    message: str | None
    thread_id: str | None
    failures: int | None
    relation_name: str | None = None

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.unique_id.rsplit(".", 1)[-1] if self.resource_type != "test" else self.unique_id.split(".")[2]

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class RunSummary:
    invocation_id: str | None
    command: str | None
    elapsed: float | None
    generated_at: str | None
    dbt_version: str | None
    results: tuple[NodeResult, ...] = field(default_factory=tuple)

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.status for r in self.results).items()))

    @property
    def failures(self) -> list[NodeResult]:
        return [r for r in self.results if r.failed]

    def slowest(self, n: int = 10) -> list[NodeResult]:
        return sorted(self.results, key=lambda r: r.execution_time, reverse=True)[:n]

    def counts_line(self) -> str:
        """The counts in dbt's own words, as its closing line gives them: ``PASS=2 WARN=0 ERROR=1 … TOTAL=3``."""
        if not self.results:
            return "no nodes"
        words = Counter("ERROR" if r.failed else _DONE_WORDS.get(r.status, r.status.upper()) for r in self.results)
        order = [*_DONE_ORDER, *sorted(set(words) - set(_DONE_ORDER))]
        return " ".join(f"{word}={words.get(word, 0)}" for word in order) + f" TOTAL={len(self.results)}"


def _node(raw: dict[str, Any]) -> NodeResult:
    failures = raw.get("failures")
    return NodeResult(
        unique_id=str(raw.get("unique_id", "")),
        status=str(raw.get("status", "unknown")),
        execution_time=float(raw.get("execution_time") or 0.0),
        message=raw.get("message"),
        thread_id=raw.get("thread_id"),
        failures=int(failures) if isinstance(failures, int | float) else None,
        relation_name=raw.get("relation_name"),
    )


def parse_run_results(data: dict[str, Any]) -> RunSummary:
    metadata = data.get("metadata") or {}
    args = data.get("args") or {}
    return RunSummary(
        invocation_id=metadata.get("invocation_id"),
        command=args.get("which"),
        elapsed=data.get("elapsed_time"),
        generated_at=metadata.get("generated_at"),
        dbt_version=metadata.get("dbt_version"),
        results=tuple(_node(r) for r in data.get("results") or [] if isinstance(r, dict)),
    )


def load_results(target: Path) -> dict[str, Any] | None:
    """The raw results of a dbt ``target/`` folder: ``run_results.json``, or ``sources.json`` for
    ``source freshness`` (which writes no run_results.json; its results have the same shape). ``None`` when
    dbt wrote neither (it could not run) or the file is unreadable."""
    for name in ("run_results.json", "sources.json"):
        try:
            data = json.loads((target / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (ValueError, OSError):
            return None
        return data if isinstance(data, dict) else None
    return None


def lay_over(previous: dict[str, Any], retry: dict[str, Any]) -> dict[str, Any]:
    """``previous`` run results with a ``dbt retry``'s laid over them: each node's last result, the first run's
    metadata and arguments (its invocation), the elapsed times added up."""
    retried = {r.get("unique_id"): r for r in retry.get("results") or [] if isinstance(r, dict)}
    results = [retried.pop(r.get("unique_id"), r) for r in previous.get("results") or [] if isinstance(r, dict)]
    results += list(retried.values())
    elapsed = [x for x in (previous.get("elapsed_time"), retry.get("elapsed_time")) if isinstance(x, int | float)]
    return {**previous, "results": results, "elapsed_time": sum(elapsed) if elapsed else None}
