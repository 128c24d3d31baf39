"""Benchmark: dbt's parse phase in ``dbt-ferry run`` with and without the parse cache restored from the store.

    .venv/bin/python bench/parse.py [--models 2000] [--runs 3] [--command parse] [--json bench/out/parse.json]

Generates a synthetic project (bench/generate.py), publishes it to its local store, and alternates R times:

- cold: ``state/local/`` removed from the store, so nothing is restored and dbt parses everything;
- restored: the previous successful run published ``state/local/partial_parse.msgpack``, which the job restores.

Each run is ``dbt-ferry run --env local --no-docs --keep-work-dir -- parse``. The parse time is read from the
run's ``target/perf_info.json`` (``load_all_elapsed``, written by ``dbt parse``) and, as a cross-check, from the
published ``runs/local/<id>/dbt.log``: from "Partial parsing enabled"/"Unable to do partial parsing" to
"Found N models" (``build``) or "Performance info:" (``parse``, which logs no counts).
The run's whole wall time is reported too.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, OUT, base_env, fmt, machine, print_table, run_measured, server, stats, write_json
from bench.generate import generate

_TIME = re.compile(r"^\S*?(\d\d:\d\d:\d\d\.\d+)")
_START = ("Partial parsing enabled", "Unable to do partial parsing", "Partial parsing not enabled")


def parse_from_log(log: Path) -> float | None:
    """Seconds from the first partial-parsing decision line to the "Found N models" line of dbt.log."""
    start = end = None
    for line in log.read_text(errors="replace").splitlines():
        m = _TIME.match(line)
        if not m:
            continue
        if start is None and any(s in line for s in _START):
            start = datetime.strptime(m.group(1), "%H:%M:%S.%f")
        if start is not None and (re.search(r"Found \d+ models?", line) or "Performance info:" in line):
            end = datetime.strptime(m.group(1), "%H:%M:%S.%f")
            break
    return (end - start).total_seconds() if start and end else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--command", default="parse", help="the dbt command after --: parse or build")
    parser.add_argument("--json", type=Path, default=OUT / "parse.json")
    parser.add_argument("--api-url", help="a running Prefect server's API URL (default: start one)")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"cold": {}, "restored": {}}
    partial: dict[str, list[bool | None]] = {"cold": [], "restored": []}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-parse-") as tmp_name, server(args.api_url) as api:
        tmp = Path(tmp_name)
        project = tmp / "project"
        generate(project, args.models)
        store = project / ".ferry" / "store"
        work = tmp / "work"
        env = base_env(PREFECT_API_URL=api, DBT_FERRY_WORK_DIR=str(work), DBT_FERRY_CACHE_DIR=str(tmp / "cache"),
                       SYNTH_DUCKDB_PATH=str(tmp / "synth.duckdb"))  # fmt: skip
        ok = run_measured([str(BIN / "dbt-ferry"), "publish", "--env", "local", "--promote", "--project-dir",
                           str(project)], env=env)  # fmt: skip
        if ok.returncode != 0:
            raise SystemExit("publish failed")
        log_dir = args.json.parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)

        def one(kind: str, r: int) -> None:
            if kind == "cold":
                shutil.rmtree(store / "state" / "local", ignore_errors=True)
            before = set((store / "runs" / "local").glob("*")) if (store / "runs" / "local").is_dir() else set()
            m = run_measured(
                [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--keep-work-dir", "--project-dir",
                 str(project), "--", args.command],
                env=env, log=log_dir / f"parse-{kind}-{r}.log",
            )  # fmt: skip
            if m.returncode != 0:
                raise SystemExit(f"the {kind} run failed (exit {m.returncode}); see {log_dir}")
            new = sorted(set((store / "runs" / "local").glob("*")) - before)
            from_log = parse_from_log(new[0] / "dbt.log") if new and (new[0] / "dbt.log").is_file() else None
            perf_file = work / "dbt-ferry-local" / "project" / "target" / "perf_info.json"
            perf = json.loads(perf_file.read_text()) if perf_file.is_file() else {}
            values = {"wall_s": m.wall, "perf_load_all_s": perf.get("load_all_elapsed"), "log_parse_s": from_log}
            for key, value in values.items():
                if value is not None:
                    results[kind].setdefault(key, []).append(value)
            partial[kind].append(perf.get("is_partial_parse_enabled"))
            print(f"  run {r} {kind:8}: wall {m.wall:6.2f} s, perf_info load_all {values['perf_load_all_s']}, "
                  f"dbt.log parse {from_log}, partial={perf.get('is_partial_parse_enabled')}", flush=True)  # fmt: skip

        # The first cold run also leaves the state that the first restored run uses.
        for r in range(args.runs):
            for kind in ("cold", "restored") if r % 2 == 0 else ("restored", "cold"):
                if kind == "restored" and not (store / "state" / "local" / "partial_parse.msgpack").is_file():
                    one("cold", -1 - r)  # make the state (not counted)
                one(kind, r)
    summary = {k: {m: stats(v) for m, v in d.items()} for k, d in results.items()}
    rows = [[kind, args.models, fmt(s.get("perf_load_all_s")), fmt(s.get("log_parse_s")), fmt(s.get("wall_s"))]
            for kind, s in summary.items()]  # fmt: skip
    print_table(["parse", "models", "perf_info load_all s", "dbt.log parse s", "run wall s"], rows)
    key = "perf_load_all_s" if summary["cold"].get("perf_load_all_s") else "log_parse_s"
    ratio = summary["restored"][key]["median"] / summary["cold"][key]["median"]
    print(f"restored/cold ({key}): {ratio:.2f}")
    write_json(args.json, {"machine": machine(), "models": args.models, "runs": args.runs, "command": args.command,
                           "results": summary, "partial_parse_enabled": partial, "ratio_restored_cold": ratio,
                           "ratio_basis": key})  # fmt: skip


if __name__ == "__main__":
    main()
