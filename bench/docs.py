"""Benchmark, docs: the docs step as the job runs it after a build that passed, against dbt's own compile first.

    .venv/bin/python bench/docs.py [--models 1000] [--runs 2]

The synthetic project (bench/generate.py) is built once with bare ``dbt build`` (its DuckDB file and ``target/``
kept, as the job's build leaves them). Then, alternating, R times, in that project:

- compile:    ``dbt docs generate --static`` (dbt compiles every node again, then writes the catalog and the page);
- no-compile: ``dbt docs generate --static --no-compile`` (what the job runs after a build that passed: the page
  embeds the build's ``manifest.json``, which already holds every node's compiled SQL).

Measured: wall time and peak RSS of each; the page's size; and that both pages hold the compiled SQL of the same
nodes. The issue's target: the docs step at most 25 % of its cost before.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, OUT, base_env, fmt, machine, print_table, run_measured, stats, write_json
from bench.generate import generate

DBT_FLAGS = ["--no-use-colors", "--no-send-anonymous-usage-stats"]
VARIANTS = {"compile": [], "no-compile": ["--no-compile"]}


def _compiled_nodes(page: Path) -> int:
    """How many nodes of the page's embedded manifest carry compiled SQL."""
    return len(re.findall(r'"compiled": true', page.read_text(encoding="utf-8")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, default=OUT / "docs.json")
    args = parser.parse_args()
    started = time.monotonic()
    log_dir = args.json.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-docs-") as tmp:
        project = Path(tmp) / "project"
        generate(project, args.models)
        shutil.copyfile(project / "profiles" / "local.yml", project / "profiles.yml")
        env = base_env(SYNTH_DUCKDB_PATH=str(Path(tmp) / "warehouse.duckdb"))
        dbt = [str(BIN / "dbt"), *DBT_FLAGS]
        build = run_measured([*dbt, "build", "--threads", str(args.threads), "--profiles-dir", "."], env=env,
                             cwd=project, log=log_dir / "docs-build.log")  # fmt: skip
        if build.returncode != 0:
            raise SystemExit(f"the build failed (exit {build.returncode}), see {log_dir / 'docs-build.log'}")
        manifest = (project / "target" / "manifest.json").read_bytes()
        print(f"  build: {build.wall:6.2f} s", flush=True)
        results: dict[str, list[tuple[float, int, int]]] = {v: [] for v in VARIANTS}
        pages: dict[str, int] = {}
        names = list(VARIANTS)
        for r in range(args.runs):
            for variant in names[r % 2 :] + names[: r % 2]:
                (project / "target" / "manifest.json").write_bytes(manifest)  # as the build left it
                m = run_measured([*dbt, "docs", "generate", "--static", *VARIANTS[variant], "--profiles-dir", "."],
                                 env=env, cwd=project, log=log_dir / f"docs-{variant}-{r}.log")  # fmt: skip
                page = project / "target" / "static_index.html"
                pages[variant] = _compiled_nodes(page)
                results[variant].append((m.wall, m.peak_rss, m.returncode))
                size = page.stat().st_size / 2**20
                print(f"  run {r} {variant:10}: {m.wall:6.2f} s  {m.peak_rss / 2**20:5.0f} MiB  exit {m.returncode}  "
                      f"{size:.1f} MiB page, {pages[variant]} compiled nodes", flush=True)  # fmt: skip
    rows = {
        v: {"wall_s": stats([x[0] for x in vals]), "peak_rss_bytes": stats([x[1] for x in vals]),
            "exit_codes": [x[2] for x in vals], "compiled_nodes": pages[v]}
        for v, vals in results.items()
    }  # fmt: skip
    before = rows["compile"]["wall_s"]["median"]  # type: ignore[index]
    table = [[v, row["wall_s"]["n"], fmt(row["wall_s"]), f"{row['wall_s']['median'] / before:.0%}",  # type: ignore[index]
              fmt(row["peak_rss_bytes"], 2**20, 0), row["compiled_nodes"]] for v, row in rows.items()]  # type: ignore[arg-type]  # fmt: skip
    print_table(["variant", "runs", "wall s median (min-max)", "of compile", "peak RSS MiB", "compiled nodes"], table)
    share = rows["no-compile"]["wall_s"]["median"] / before  # type: ignore[index]
    print(f"docs step ≤ 25 % of before — {'met' if share <= 0.25 else 'MISSED'} ({share:.0%})")
    print(f"({time.monotonic() - started:.0f} s in all)")
    write_json(args.json, {"machine": machine(), "models": args.models, "runs": args.runs, "rows": rows,
                           "build_s": build.wall, "same_compiled_nodes": len(set(pages.values())) == 1})  # fmt: skip


if __name__ == "__main__":
    main()
