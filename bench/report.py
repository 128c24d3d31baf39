"""Benchmark: the history report (`dbt-ferry report`) over R runs of N nodes, and its size.

    .venv/bin/python bench/report.py [--runs 10 1000] [--nodes 2000] [--repeat 3] [--keep DIR] [--compact]
                                     [--json bench/out/report.json]

For each R, a fresh SQLite catalog is seeded through the real export path: R synthetic runs of the same N nodes
(40 % models, 5 % seeds, 5 % snapshots, 50 % tests on 4 threads; durations that drift, a few slow models and flaky
tests), spread over the last 30 days, each exported with ``export_run`` as a job does. Then the report is written
``--repeat`` times: the time to read the tables (``load_report``), to render and write the file, and its size.
Seeding 1,000 runs of 2,000 nodes exports two million node rows, one commit per run as jobs make them: it takes
about half an hour and is not part of the report's figures, but the export time of the first and last runs is
recorded (the tables' metadata grows with every commit). ``--keep DIR`` keeps the seeded catalog in DIR/<runs>x<nodes>
and reuses it on the next call, so the report can be measured again on a quiet machine without seeding again; the
report's peak memory (``ru_maxrss``) is only the report's when the catalog was reused. ``--compact`` first
rewrites every day's partition of the tables into one data file (``exports/maintenance.compact_day``), to measure
the report on tables as their maintenance keeps them.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dbt_ferry.config.models import LocalStoreConfig, SqlCatalogConfig
from dbt_ferry.core.runinfo import RunInfo
from dbt_ferry.exports.catalog import open_catalog
from dbt_ferry.exports.report import save_report
from dbt_ferry.exports.report_data import load_report
from dbt_ferry.exports.tables import export_run

THREADS = 4
DAYS = 30


def _kind(i: int) -> str:
    slot = i % 20
    return "model" if slot < 8 else "seed" if slot == 8 else "snapshot" if slot == 9 else "test"


def _uid(i: int) -> str:
    kind = _kind(i)
    return f"test.bench.test_{i:05d}.{i:010x}" if kind == "test" else f"{kind}.bench.node_{i:05d}"


def run_results(nodes: int, run: int, runs: int, started: datetime, rng: random.Random) -> dict[str, Any]:
    """Run ``run`` of ``runs``: every node once; model i usually takes base(i) seconds, drifting up over time."""
    clock = [started + timedelta(seconds=5)] * THREADS
    results, failed = [], False
    for i in range(nodes):
        kind = _kind(i)
        base = 0.05 + (i * 7919 % 1000) / 250  # 0.05 to 4 s, fixed per node
        seconds = base * (1 + 0.3 * run / runs) * rng.uniform(0.85, 1.15)
        if kind != "test" and i % 97 == 0 and run == runs - 1:
            seconds *= 6  # a few models far slower in the last run
        status = "success"
        if kind == "test":
            flaky = i % 113 == 0 and rng.random() < 0.3
            status = "fail" if flaky or (i % 331 == 0 and run > runs // 2) else "pass"
        elif i % 401 == 0 and rng.random() < 0.05:
            status = "error"
        failed = failed or status in ("fail", "error")
        thread = i % THREADS
        start, end = clock[thread], clock[thread] + timedelta(seconds=seconds)
        clock[thread] = end
        results.append(
            {
                "unique_id": _uid(i),
                "status": status,
                "thread_id": f"Thread-{thread + 1} (worker)",
                "execution_time": seconds,
                "timing": [
                    {"name": "compile", "started_at": start.isoformat(), "completed_at": start.isoformat()},
                    {"name": "execute", "started_at": start.isoformat(), "completed_at": end.isoformat()},
                ],
                "message": f"{status} in run {run}" if status in ("fail", "error") else None,
                "failures": 3 if status == "fail" else (0 if kind == "test" else None),
                "adapter_response": {"rows_affected": rng.randint(0, 10000)} if kind != "test" else {},
            }
        )
    end = max(clock)
    return {
        "metadata": {
            "invocation_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "invocation_started_at": started.isoformat(),
            "generated_at": end.isoformat(),
            "dbt_version": "1.11.16",
        },
        "results": results,
        "elapsed_time": (end - started).total_seconds(),
        "args": {"which": "build", "threads": THREADS},
        "_failed": failed,
    }


def seed(catalog: Any, folder: Path, runs: int, nodes: int) -> dict[str, float]:
    """Export ``runs`` runs through the real export path: the seconds it took, and the seconds of the first and
    last tenth of the exports (their medians)."""
    rng = random.Random(runs * 100003 + nodes)
    now = datetime.now(UTC)
    spacing = timedelta(days=DAYS - 1) / max(runs, 1)
    began = time.perf_counter()
    each: list[float] = []
    for run in range(runs):
        started = now - timedelta(days=DAYS - 1) + spacing * run
        data = run_results(nodes, run, runs, started, rng)
        failed = data.pop("_failed")
        run_dir = folder / f"run-{run:05d}"
        run_dir.mkdir(parents=True)
        (run_dir / "run_results.json").write_text(json.dumps(data))
        end = started + timedelta(seconds=data["elapsed_time"] + 1)
        info = RunInfo(project="bench", environment="bench", release_version="1.0.0", command="build",
                       threads=THREADS, started_at=started, completed_at=end, exit_code=1 if failed else 0)  # fmt: skip
        one = time.perf_counter()
        export_run(catalog, "dbt_ferry", run_dir, info)
        each.append(time.perf_counter() - one)
        for path in run_dir.iterdir():
            path.unlink()
        run_dir.rmdir()
        if run % 100 == 99:
            print(f"  seeded {run + 1}/{runs} runs, last export {each[-1]:.2f} s", file=sys.stderr, flush=True)
    tenth = max(1, runs // 10)
    return {
        "total_s": time.perf_counter() - began,
        "first_tenth_export_s": statistics.median(each[:tenth]),
        "last_tenth_export_s": statistics.median(each[-tenth:]),
    }


def _catalog(folder: Path, runs: int, nodes: int) -> tuple[Any, dict[str, float] | None]:
    """The catalog in ``folder``, seeded now unless an earlier call left it seeded (then its seeding figures)."""
    marker = folder / "seeded.json"
    if not marker.exists():  # an earlier seeding stopped halfway: start again
        for part in ("store", "runs"):
            shutil.rmtree(folder / part, ignore_errors=True)
    catalog = open_catalog(SqlCatalogConfig(), LocalStoreConfig(path=str(folder / "store")))
    if marker.exists():
        return catalog, json.loads(marker.read_text())
    seeding = seed(catalog, folder / "runs", runs, nodes)
    marker.write_text(json.dumps(seeding))
    return catalog, None


def compact(catalog: Any) -> None:
    """Every day's partition of the result tables rewritten into one data file."""
    from dbt_ferry.exports.maintenance import compact_day
    from dbt_ferry.exports.schema import INVOCATIONS, NODE_RESULTS, PARTITION_COLUMN

    for name in (INVOCATIONS, NODE_RESULTS):
        table = catalog.load_table(("dbt_ferry", name))
        days = sorted(set(table.scan(selected_fields=(PARTITION_COLUMN,)).to_arrow()[PARTITION_COLUMN].to_pylist()))
        for day in days:
            compact_day(table, day, above=1)


def measure(runs: int, nodes: int, repeat: int, keep: Path | None, *, compacted: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-report-") as tmp:
        folder = keep / f"{runs}x{nodes}" if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        catalog, reused = _catalog(folder, runs, nodes)
        seeding = reused or json.loads((folder / "seeded.json").read_text())
        if compacted:
            compact(catalog)
        load, total, sizes = [], [], []
        for i in range(repeat):
            started = time.perf_counter()
            data = load_report(catalog, "dbt_ferry", "bench", days=DAYS)
            load.append(time.perf_counter() - started)
            result = save_report(data, Path(tmp) / f"history-{i}.html", runs_url="../../runs/bench/", started=started)
            total.append(result.seconds)
            sizes.append(result.size)
        return {
            "runs": runs,
            "nodes": nodes,
            "node_rows": data.node_rows,
            "seeding": seeding,
            "catalog_reused": reused is not None,
            "compacted": compacted,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "read_s": {"median": statistics.median(load), "min": min(load), "max": max(load)},
            "report_s": {"median": statistics.median(total), "min": min(total), "max": max(total)},
            "bytes": sizes[-1],
            "slower": len(data.slower),
            "flaky": len(data.flaky),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the seeded catalogs here and reuse them")
    parser.add_argument("--compact", action="store_true", help="compact every day's partition before measuring")
    parser.add_argument("--json", type=Path, default=Path("bench/out/report.json"))
    args = parser.parse_args()
    rows = [measure(r, args.nodes, args.repeat, args.keep, compacted=args.compact) for r in args.runs]
    print(
        f"{'runs':>6} {'nodes':>6} {'node rows':>10} {'read s':>8} {'report s (median, min-max)':>28} {'size':>10}"
        f" {'peak RSS':>9}"
    )
    for row in rows:
        read, total = row["read_s"], row["report_s"]
        print(
            f"{row['runs']:>6} {row['nodes']:>6} {row['node_rows']:>10} {read['median']:>8.2f} "  # type: ignore[index]
            f"{total['median']:>12.2f} ({total['min']:.2f}-{total['max']:.2f})"  # type: ignore[index]
            f"{row['bytes'] / 1000:>11.0f} kB {row['peak_rss_mb']:>6.0f} MB"  # type: ignore[operator]
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
