"""Synthetic runs for the history tests: dbt's run_results.json and the job's ferry.json, written to a folder and
exported through the real export path (``export_run``) into a SQLite catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog

from dbt_ferry.core.results import FAILED_STATUSES
from dbt_ferry.core.runinfo import RUN_INFO_NAME, RunInfo
from dbt_ferry.exports.tables import export_run

NAMESPACE = "dbt_ferry"
THREADS = 2


@dataclass(frozen=True)
class Result:
    status: str
    seconds: float
    message: str | None = None
    failures: int | None = None


@dataclass(frozen=True)
class SyntheticRun:
    invocation_id: str
    started_at: datetime
    results: dict[str, Result]
    version: str = "1.0.0"
    command: str = "build"
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    full_refresh: bool = False
    vars: str | None = None
    #: sources.json of a `source freshness` run after this one: unique_id -> (status, hours since loaded).
    freshness: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status in FAILED_STATUSES for r in self.results.values()) else 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def run_results(run: SyntheticRun) -> tuple[dict[str, Any], datetime]:
    """dbt's run_results.json of ``run`` (nodes one after the other on each of two threads) and its end."""
    clock = [run.started_at + timedelta(seconds=2)] * THREADS
    results = []
    for i, (uid, result) in enumerate(run.results.items()):
        thread = i % THREADS
        start = clock[thread]
        ran = result.status not in ("skipped",)
        end = start + timedelta(seconds=result.seconds if ran else 0)
        clock[thread] = end
        timing = [
            {"name": "compile", "started_at": _iso(start), "completed_at": _iso(start)},
            {"name": "execute", "started_at": _iso(start), "completed_at": _iso(end)},
        ]
        results.append(
            {
                "status": result.status,
                "timing": timing if ran else [],
                "thread_id": f"Thread-{thread + 1} (worker)",
                "execution_time": result.seconds if ran else 0.0,
                "adapter_response": {},
                "message": result.message,
                "failures": result.failures,
                "unique_id": uid,
            }
        )
    end = max(clock)
    data = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.16",
            "generated_at": _iso(end),
            "invocation_id": run.invocation_id,
            "invocation_started_at": _iso(run.started_at),
        },
        "results": results,
        "elapsed_time": (end - run.started_at).total_seconds(),
        "args": {"which": run.command, "threads": THREADS},
    }
    return data, end


def sources_json(run: SyntheticRun, at: datetime) -> dict[str, Any]:
    results = [
        {
            "unique_id": uid,
            "status": status,
            "max_loaded_at": _iso(at - timedelta(hours=hours)),
            "snapshotted_at": _iso(at),
            "max_loaded_at_time_ago_in_s": hours * 3600,
            "execution_time": 0.1,
            "thread_id": "Thread-1",
            "criteria": {"warn_after": {"count": 12, "period": "hour"}},
            "timing": [],
        }
        for uid, (status, hours) in run.freshness.items()
    ]
    return {
        "metadata": {"invocation_id": f"{run.invocation_id}-freshness", "generated_at": _iso(at)},
        "results": results,
        "elapsed_time": 0.5,
    }


def write_run_dir(dest: Path, run: SyntheticRun, *, project: str = "shop", environment: str = "local") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    data, end = run_results(run)
    (dest / "run_results.json").write_text(json.dumps(data))
    if run.freshness:
        (dest / "sources.json").write_text(json.dumps(sources_json(run, end + timedelta(seconds=5))))
    info = RunInfo(
        project=project,
        environment=environment,
        release_version=run.version,
        command=run.command,
        select=run.select,
        exclude=run.exclude,
        full_refresh=run.full_refresh,
        vars=run.vars,
        threads=THREADS,
        started_at=run.started_at,
        completed_at=end + timedelta(seconds=1),
        exit_code=run.exit_code,
    )
    (dest / RUN_INFO_NAME).write_bytes(info.to_json())
    return dest


def export_runs(catalog: Catalog, folder: Path, runs: list[SyntheticRun], *, environment: str = "local") -> None:
    """Each run through the real export path, oldest first."""
    for run in runs:
        export_run(catalog, NAMESPACE, write_run_dir(folder / run.invocation_id, run, environment=environment))


# --- the shop's history: twelve runs, six hours apart, the last one an hour ago ---------------------------------

SEED = "seed.shop.raw_orders"
STG = "model.shop.stg_orders"
FCT = "model.shop.fct_orders"  # 10 s, then 45 s in the last run: far above its median
NOISY = "model.shop.dim_customers"  # 4 to 7 s: never three times its median
TINY = "model.shop.tiny"  # 0.1 s, then 0.5 s: five times its median, but under a second
SNAP = "snapshot.shop.snap_orders"
SOMETIMES = "model.shop.int_refunds"  # errors in run 5
STABLE_TEST = "test.shop.not_null_stg_orders_order_id.1a2b3c"
FLAKY_TEST = "test.shop.unique_fct_orders_order_id.4d5e6f"  # fails in runs 2, 5 and 8: flaky
BROKEN_TEST = "test.shop.accepted_values_fct_orders_status.7a8b9c"  # fails from run 10 on: broke once
FIXED_TEST = "test.shop.relationships_fct_orders_customer_id.0d1e2f"  # fails in runs 1 and 2: fixed once
WARN_TEST = "test.shop.assert_few_refunds.3a4b5c"  # always warns: never flips
UNIT_TEST = "unit_test.shop.fct_orders.test_order_totals"
SOURCES = {"source.shop.raw.orders": ("pass", 2.0), "source.shop.raw.payments": ("warn", 30.0)}

NOISE = (1.0, 1.04, 0.97, 1.02, 0.99, 1.03, 0.96, 1.01, 0.98, 1.05, 1.0, 0.97)
NOISY_SECONDS = (4.0, 7.0, 5.0, 6.5, 4.2, 5.5, 6.8, 4.4, 5.9, 6.1, 4.8, 7.0)


def shop_history(now: datetime | None = None, runs: int = 12) -> list[SyntheticRun]:
    """Twelve runs (1 to 12) of the shop. Run 12 fails (BROKEN_TEST) and its FCT took 45 s."""
    now = now or datetime.now(UTC)
    history = []
    for n in range(1, runs + 1):
        k = n - 1
        fail = Result("fail", 0.3, "Got 3 results, configured to fail if != 0", failures=3)
        results = {
            SEED: Result("success", 0.5 * NOISE[k], "INSERT 100"),
            STG: Result("success", 2.0 * NOISE[k]),
            SOMETIMES: (
                Result("error", 0.4, "Binder Error: column refund_id not found")
                if n == 5
                else Result("success", 1.5 * NOISE[k])
            ),
            FCT: Result("success", 45.0 if n == runs else 10.0 * NOISE[k]),
            NOISY: Result("success", NOISY_SECONDS[k]),
            TINY: Result("success", 0.5 if n == runs else 0.1 * NOISE[k]),
            SNAP: Result("success", 3.0 * NOISE[k]),
            UNIT_TEST: Result("pass", 0.2),
            STABLE_TEST: Result("pass", 0.3, failures=0),
            FLAKY_TEST: fail if n in (2, 5, 8) else Result("pass", 0.3, failures=0),
            BROKEN_TEST: fail if n >= 10 else Result("pass", 0.3, failures=0),
            FIXED_TEST: fail if n <= 2 else Result("pass", 0.3, failures=0),
            WARN_TEST: Result("warn", 0.3, "Got 2 results, configured to warn if != 0", failures=2),
        }
        history.append(
            SyntheticRun(
                invocation_id=f"run-{n:02d}",
                started_at=now - timedelta(hours=1 + 6 * (runs - n)),
                results=results,
                version="1.1.0" if n > 6 else "1.0.0",
                select=("tag:daily",) if n == 3 else (),
                full_refresh=n == 4,
                vars="{start_date: 2024-01-01}" if n == 3 else None,
                freshness=SOURCES if n in (6, runs) else {},
            )
        )
    return history


def passing(run: SyntheticRun) -> SyntheticRun:
    """``run`` with every failing test passing (and every erroring model succeeding)."""
    fixed = {
        uid: (
            Result("pass" if uid.startswith(("test.", "unit_test.")) else "success", r.seconds)
            if r.status in FAILED_STATUSES
            else r
        )
        for uid, r in run.results.items()
    }
    return replace(run, results=fixed)
