"""Benchmark: exporting run_results.json of N nodes into the Iceberg tables (sql catalog, local store).

    .venv/bin/python bench/export.py [--nodes 1000 10000] [--repeat 5] [--json bench/out/export.json]

Each repeat exports a fresh invocation into a fresh catalog (the first-run cost: tables are created) and then
re-exports it (the idempotent replace: a delete and an append in one commit). Prints medians and min-max.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import write_run_dir
from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.core.runinfo import RunInfo
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.tables import export_run


def measure(nodes: int, repeat: int) -> dict[str, object]:
    first: list[float] = []
    again: list[float] = []
    info = RunInfo(project="bench", environment="bench", release_version="1.0.0")
    for i in range(repeat):
        with tempfile.TemporaryDirectory(prefix="ferry-bench-export-") as tmp:
            run_dir = write_run_dir(Path(tmp) / "run", nodes, seed=i)
            catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(Path(tmp) / "store")))
            started = time.perf_counter()
            export_run(catalog, "dbt_ferry", run_dir, info)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            export_run(catalog, "dbt_ferry", run_dir, info)
            again.append(time.perf_counter() - started)
    return {
        "nodes": nodes,
        "runs": repeat,
        "first_export_s": {"median": statistics.median(first), "min": min(first), "max": max(first)},
        "re_export_s": {"median": statistics.median(again), "min": min(again), "max": max(again)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/out/export.json"))
    args = parser.parse_args()
    rows = [measure(n, args.repeat) for n in args.nodes]
    print(f"{'nodes':>7} {'runs':>5} {'first export s (median, min-max)':>36} {'re-export s (median, min-max)':>34}")
    for row in rows:
        f, a = row["first_export_s"], row["re_export_s"]
        print(
            f"{row['nodes']:>7} {row['runs']:>5} "
            f"{f['median']:>14.3f} ({f['min']:.3f}-{f['max']:.3f})        "  # type: ignore[index]
            f"{a['median']:>14.3f} ({a['min']:.3f}-{a['max']:.3f})"  # type: ignore[index]
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
