"""Benchmark: the job overhead of ``dbt-ferry run`` against bare dbt (and prefect-dbt) on synthetic projects.

    .venv/bin/python bench/overhead.py [--models 100 1000] [--runs 5 3] [--peer-models 100] [--peer-runs 3]

For each N: generate the project (bench/generate.py), publish it once to its local store, start one local
Prefect server (``prefect server start``), then alternate, R times:

- ferry: ``dbt-ferry run --env local --no-docs --threads 4`` (fetch, deps + build as a Prefect flow, dbt events
  forwarded with the default filter, publish outputs, export results tables), ``PREFECT_API_URL`` set;
- bare:  ``dbt deps && dbt build --threads 4`` in a copy of the same project;
- peer:  prefect-dbt's ``PrefectDbtRunner`` running ``deps`` and ``build --threads 4`` in a flow (N in --peer-models).

Every run gets a fresh DuckDB file. Measured: wall time, the time after dbt ended (the end minus its
run_results.json's ``generated_at``) and peak RSS summed over the whole process tree
(psutil, every 50 ms). The order rotates each round so that noise from a shared machine hits all variants.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BIN,
    OUT,
    base_env,
    dbt_ended,
    fmt,
    machine,
    newest_results,
    print_table,
    run_measured,
    server,
    stats,
    write_json,
)
from bench.generate import generate

DBT_FLAGS = ["--no-use-colors", "--no-send-anonymous-usage-stats"]


def commands(variant: str, ferry_project: Path, bare_project: Path, threads: int) -> tuple[list[str], Path | None]:
    if variant == "ferry":
        return [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--threads", str(threads),
                "--project-dir", str(ferry_project)], None  # fmt: skip
    if variant == "bare":
        dbt = str(BIN / "dbt")
        script = (
            f"{dbt} {' '.join(DBT_FLAGS)} deps --project-dir . --profiles-dir . && "
            f"{dbt} {' '.join(DBT_FLAGS)} build --threads {threads} --project-dir . --profiles-dir ."
        )
        return ["/bin/sh", "-c", script], bare_project
    return [str(BIN / "python"), str(Path(__file__).parent / "_prefect_dbt_peer.py"), str(bare_project),
            str(threads)], bare_project  # fmt: skip


def measure(n: int, runs: int, peer_runs: int, api: str, tmp: Path, threads: int, log_dir: Path) -> dict[str, object]:
    ferry_project = tmp / f"ferry-{n}"
    generate(ferry_project, n)
    bare_project = tmp / f"bare-{n}"
    shutil.copytree(ferry_project, bare_project)
    shutil.copyfile(bare_project / "profiles" / "local.yml", bare_project / "profiles.yml")
    peer_project = tmp / f"peer-{n}"
    shutil.copytree(bare_project, peer_project)
    env = base_env(PREFECT_API_URL=api, DBT_FERRY_WORK_DIR=str(tmp / "work"), DBT_FERRY_CACHE_DIR=str(tmp / "cache"))
    published = run_measured(
        [str(BIN / "dbt-ferry"), "publish", "--env", "local", "--promote", "--project-dir", str(ferry_project)], env=env
    )
    if published.returncode != 0:
        raise SystemExit(f"publish failed for N={n}")
    results: dict[str, list[tuple[float, int, int, float | None]]] = {"ferry": [], "bare": [], "peer": []}
    variants = ["ferry", "bare"]
    for r in range(max(runs, peer_runs)):
        order = [v for v in variants if r < runs] + (["peer"] if r < peer_runs else [])
        order = order[r % len(order) :] + order[: r % len(order)]
        for variant in order:
            db = tmp / f"{variant}-{n}-{r}.duckdb"
            args, cwd = commands(variant, ferry_project, peer_project if variant == "peer" else bare_project, threads)
            log = log_dir / f"overhead-{variant}-{n}-{r}.log"
            m = run_measured(args, env={**env, "SYNTH_DUCKDB_PATH": str(db)}, cwd=cwd, log=log)
            ended = time.time()
            results_file = (
                newest_results(ferry_project / ".ferry" / "store") if variant == "ferry" else
                (peer_project if variant == "peer" else bare_project) / "target" / "run_results.json"
            )  # fmt: skip
            dbt_end = dbt_ended(results_file)
            after = ended - dbt_end if dbt_end is not None else None
            db.unlink(missing_ok=True)
            Path(str(db) + ".wal").unlink(missing_ok=True)
            results[variant].append((m.wall, m.peak_rss, m.returncode, after))
            after_text = f"  {after:5.2f} s after dbt" if after is not None else ""
            print(f"  N={n} run {r} {variant:5}: {m.wall:7.2f} s  {m.peak_rss / 2**20:7.0f} MiB  exit {m.returncode}"
                  f"{after_text}", flush=True)  # fmt: skip
    row: dict[str, object] = {"models": n, "runs": runs, "peer_runs": peer_runs}
    for variant, values in results.items():
        if values:
            row[variant] = {
                "wall_s": stats([v[0] for v in values]),
                "peak_rss_bytes": stats([v[1] for v in values]),
                "exit_codes": [v[2] for v in values],
                "after_dbt_s": stats([v[3] for v in values if v[3] is not None]) if values[0][3] is not None else None,
            }
    walls = {v: row[v]["wall_s"]["median"] for v in results if v in row}  # type: ignore[index]
    rss = {v: row[v]["peak_rss_bytes"]["median"] for v in results if v in row}  # type: ignore[index]
    row["ratio_wall_ferry_bare"] = walls["ferry"] / walls["bare"]
    row["ratio_rss_ferry_bare"] = rss["ferry"] / rss["bare"]
    if "peer" in walls:
        row["ratio_wall_peer_bare"] = walls["peer"] / walls["bare"]
        row["ratio_rss_peer_bare"] = rss["peer"] / rss["bare"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, nargs="+", default=[5, 3], help="runs per N (last value repeats)")
    parser.add_argument("--peer-models", type=int, nargs="*", default=[100], help="N at which prefect-dbt runs")
    parser.add_argument("--peer-runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, default=OUT / "overhead.json")
    parser.add_argument("--api-url", help="a running Prefect server's API URL (default: start one)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ferry-bench-overhead-") as tmp, server(args.api_url) as api:
        log_dir = args.json.parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for i, n in enumerate(args.models):
            runs = args.runs[min(i, len(args.runs) - 1)]
            peer_runs = args.peer_runs if n in args.peer_models else 0
            rows.append(measure(n, runs, peer_runs, api, Path(tmp), args.threads, log_dir))
    table = []
    for row in rows:
        for variant in ("bare", "ferry", "peer"):
            if variant in row:
                v = row[variant]
                ratio_w = row.get(f"ratio_wall_{variant}_bare", 1.0)
                ratio_m = row.get(f"ratio_rss_{variant}_bare", 1.0)
                table.append([row["models"], variant, v["wall_s"]["n"], fmt(v["wall_s"]),  # type: ignore[index]
                              fmt(v["peak_rss_bytes"], 2**20, 0), f"{ratio_w:.2f}", f"{ratio_m:.2f}",  # type: ignore[index]
                              fmt(v.get("after_dbt_s"))])  # type: ignore[union-attr]  # fmt: skip
    print_table(["N", "variant", "runs", "wall s median (min-max)", "peak RSS MiB (min-max)", "wall/bare",
                 "RSS/bare", "after dbt s"], table)  # fmt: skip
    write_json(args.json, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
