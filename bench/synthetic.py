"""Synthetic dbt artifacts and projects for the benchmarks (deterministic for a given N)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

STATUSES = (("success", 0.55), ("pass", 0.38), ("warn", 0.03), ("fail", 0.02), ("error", 0.01), ("skipped", 0.01))


def run_results(n: int, *, seed: int = 7) -> dict[str, object]:
    """A dbt 1.11 (schema v6) run_results.json of ``n`` nodes, on 4 threads."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    results = []
    clock = [start] * 4
    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    for i in range(n):
        status = rng.choices(statuses, weights)[0]
        thread = i % 4
        kind = "test" if status in ("pass", "warn", "fail") else "model"
        compile_start = clock[thread]
        execute_start = compile_start + timedelta(milliseconds=rng.randint(2, 20))
        seconds = rng.uniform(0.01, 2.0)
        end = execute_start + timedelta(seconds=seconds)
        clock[thread] = end
        results.append(
            {
                "status": status,
                "timing": [
                    {"name": "compile", "started_at": compile_start.isoformat().replace("+00:00", "Z"),
                     "completed_at": execute_start.isoformat().replace("+00:00", "Z")},
                    {"name": "execute", "started_at": execute_start.isoformat().replace("+00:00", "Z"),
                     "completed_at": end.isoformat().replace("+00:00", "Z")},
                ],
                "thread_id": f"Thread-{thread + 1}",
                "execution_time": seconds,
                "adapter_response": {"_message": "OK", "rows_affected": rng.randint(0, 100000)},
                "message": None if status in ("success", "pass") else f"{status} on node {i}",
                "failures": rng.randint(1, 9) if status in ("fail", "warn") else (0 if kind == "test" else None),
                "unique_id": f"{kind}.bench.node_{i:05d}" + (f".{i:010x}" if kind == "test" else ""),
                "compiled_code": f"select {i} as id",
                "relation_name": f'"bench"."main"."node_{i:05d}"' if kind == "model" else None,
                "batch_results": None,
            }
        )  # fmt: skip
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.16",
            "generated_at": max(clock).isoformat().replace("+00:00", "Z"),
            "invocation_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "invocation_started_at": start.isoformat().replace("+00:00", "Z"),
            "env": {},
        },
        "results": results,
        "elapsed_time": (max(clock) - start).total_seconds(),
        "args": {"which": "build", "target": "bench", "threads": 4},
    }


def write_run_dir(dest: Path, n: int, *, seed: int = 7) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "run_results.json").write_text(json.dumps(run_results(n, seed=seed)))
    return dest
