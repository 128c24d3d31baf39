"""Benchmark, quick: the fixed cost of a job on the bundled example (examples/shop), against bare dbt.

    .venv/bin/python bench/quick.py [--runs 2] [--no-server] [--api-url URL]      (make bench-quick)

The example is copied once; its release is published once to a local store. Then, alternating, R times:

- bare:      ``dbt deps && dbt build`` in a fresh copy of the project (no target/, as a container built with the
  code parses cold; the example lists packages, so deps is dbt's too);
- no-server: ``dbt-ferry run --env local --no-prefect --no-docs`` (fetch, deps, build, publish, export, summary);
- server:    the same with ``PREFECT_API_URL`` of a running ``prefect server start`` (one started for the benchmark
  unless ``--api-url``; its database lives in bench/out/prefect-home, so migrations run once).

Each run gets a fresh DuckDB file. Measured: wall time, peak RSS of the process tree, and the time after dbt ended
(the process's end minus ``generated_at`` of the run's ``run_results.json``). The targets of the fixed cost: no-server
≤ bare + 0.5 s, server ≤ bare + 1.0 s (medians).
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
    REPO,
    base_env,
    dbt_ended,
    fmt,
    machine,
    newest_results,
    prefect_server,
    print_table,
    run_measured,
    stats,
    write_json,
)
from bench.common import server as running_server

EXAMPLE = REPO / "examples" / "shop"
DBT_FLAGS = "--no-use-colors --no-send-anonymous-usage-stats"
#: What each variant may cost above bare dbt (seconds, medians).
TARGETS = {"no-server": 0.5, "server": 1.0}


def _copy(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", ".ferry", "*.duckdb", ".venv")
    shutil.copytree(EXAMPLE, dest, ignore=ignore)
    return dest


def _bare_copy(tmp: Path, round_: int) -> Path:
    project = _copy(tmp / f"bare-{round_}")
    shutil.copyfile(project / "profiles" / "local.yml", project / "profiles.yml")
    return project


def measure(runs: int, api: str | None, tmp: Path, log_dir: Path) -> dict[str, dict[str, object]]:
    ferry_project, store = _copy(tmp / "ferry"), tmp / "store"
    env = base_env(DBT_FERRY_WORK_DIR=str(tmp / "work"), DBT_FERRY_CACHE_DIR=str(tmp / "cache"))
    env.pop("PREFECT_API_URL", None)
    publish = [str(BIN / "dbt-ferry"), "publish", "--env", "local", "--promote", "--project-dir", str(ferry_project),
               "--store", str(store)]  # fmt: skip
    if run_measured(publish, env=env).returncode != 0:
        raise SystemExit("publishing the example failed")
    ferry = [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--project-dir", str(ferry_project),
             "--store", str(store)]  # fmt: skip
    variants = ["bare", "no-server"] + (["server"] if api else [])
    results: dict[str, list[tuple[float, int, int, float | None]]] = {v: [] for v in variants}
    for r in range(runs):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for variant in order:
            db = tmp / f"{variant}-{r}.duckdb"
            run_env = {**env, "SHOP_DUCKDB_PATH": str(db)}
            if variant == "bare":
                project = _bare_copy(tmp, r)
                script = f"{BIN / 'dbt'} {DBT_FLAGS} deps && {BIN / 'dbt'} {DBT_FLAGS} build --profiles-dir ."
                args, cwd = ["/bin/sh", "-c", script], project
            elif variant == "no-server":
                args, cwd = [*ferry, "--no-prefect"], None
            else:
                args, cwd, run_env = ferry, None, {**run_env, "PREFECT_API_URL": str(api)}
            m = run_measured(args, env=run_env, cwd=cwd, log=log_dir / f"quick-{variant}-{r}.log")
            ended = time.time()
            results_file = project / "target" / "run_results.json" if variant == "bare" else newest_results(store)
            dbt_end = dbt_ended(results_file)
            after = ended - dbt_end if dbt_end is not None else None
            results[variant].append((m.wall, m.peak_rss, m.returncode, after))
            db.unlink(missing_ok=True)
            after_text = f"{after:5.2f} s after dbt" if after is not None else "no run_results.json"
            print(f"  run {r} {variant:9}: {m.wall:6.2f} s  {m.peak_rss / 2**20:5.0f} MiB  exit {m.returncode}  "
                  f"{after_text}", flush=True)  # fmt: skip
    rows: dict[str, dict[str, object]] = {}
    for variant, values in results.items():
        afters = [v[3] for v in values if v[3] is not None]
        rows[variant] = {
            "wall_s": stats([v[0] for v in values]),
            "peak_rss_bytes": stats([v[1] for v in values]),
            "after_dbt_s": stats(afters) if afters else None,
            "exit_codes": [v[2] for v in values],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="rounds (each runs every variant once)")
    parser.add_argument("--no-server", action="store_true", help="leave out the variant with a running server")
    parser.add_argument("--api-url", help="a running Prefect server's API URL (default: start one)")
    parser.add_argument("--json", type=Path, default=OUT / "quick.json")
    args = parser.parse_args()
    started = time.monotonic()
    log_dir = args.json.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-quick-") as tmp:
        if args.no_server:
            rows = measure(args.runs, None, Path(tmp), log_dir)
        elif args.api_url:
            with running_server(args.api_url) as api:
                rows = measure(args.runs, api, Path(tmp), log_dir)
        else:
            home = OUT / "prefect-home"
            home.mkdir(parents=True, exist_ok=True)
            with prefect_server(home) as api:
                rows = measure(args.runs, api, Path(tmp), log_dir)
    bare = rows["bare"]["wall_s"]["median"]  # type: ignore[index]
    table, verdicts = [], []
    for variant, row in rows.items():
        wall = row["wall_s"]["median"]  # type: ignore[index]
        table.append([variant, row["wall_s"]["n"], fmt(row["wall_s"]), f"{wall - bare:+.2f}",  # type: ignore[index]
                      fmt(row["peak_rss_bytes"], 2**20, 0), fmt(row["after_dbt_s"])])  # type: ignore[arg-type]  # fmt: skip
        if variant in TARGETS:
            met = wall - bare <= TARGETS[variant]
            row["target_s"], row["met"] = TARGETS[variant], met
            verdicts.append(f"{variant}: bare {TARGETS[variant]:+.1f} s or less — {'met' if met else 'MISSED'}")
    print_table(["variant", "runs", "wall s median (min-max)", "vs bare s", "peak RSS MiB (min-max)",
                 "after dbt s (min-max)"], table)  # fmt: skip
    for line in verdicts:
        print(line)
    print(f"({time.monotonic() - started:.0f} s in all)")
    write_json(args.json, {"machine": machine(), "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
