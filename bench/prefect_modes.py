"""Benchmark: what Prefect costs a job — a running server, a temporary one, none — and the node events.

    .venv/bin/python bench/prefect_modes.py [--runs 5] [--events-models 2000] [--events-runs 3]
                                            [--skip-modes | --skip-events]

Part 1, on the bundled example (examples/shop, published once to a local store), alternating R times:

- bare:      ``dbt deps && dbt build`` in a copy of the project (it lists a ``local:`` package);
- server:    ``dbt-ferry run --env local --no-docs`` with ``PREFECT_API_URL`` of a running ``prefect server start``;
- temporary: the same without ``PREFECT_API_URL`` (a fresh ``PREFECT_HOME``): a laptop, where Prefect starts a
  temporary server for the run;
- none:      the same with ``--no-prefect``: what CI, ECS and Kubernetes do without a Prefect API.

Part 2, on a synthetic project of N models (bench/generate.py), with the running server: ``dbt-ferry run`` with
one Prefect event per finished node (the default) against the same release with ``events.nodes = false``.

Wall time and peak RSS of the whole process tree (the temporary server included, the running one not).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, OUT, REPO, base_env, fmt, machine, print_table, run_measured, server, stats, write_json
from bench.generate import generate

DBT_FLAGS = "--no-use-colors --no-send-anonymous-usage-stats"


def _publish(project: Path, env: dict[str, str]) -> None:
    done = run_measured(
        [str(BIN / "dbt-ferry"), "publish", "--env", "local", "--promote", "--project-dir", str(project)], env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"publish failed for {project}")


def _alternate(
    variants: dict[str, tuple[list[str], Path | None, dict[str, str]]], runs: int, tmp: Path, log_dir: Path, tag: str
) -> dict[str, object]:
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(runs):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            args, cwd, env = variants[name]
            db = tmp / f"{tag}-{name}-{r}.duckdb"
            m = run_measured(
                args,
                env={**env, "SHOP_DUCKDB_PATH": str(db), "SYNTH_DUCKDB_PATH": str(db)},
                cwd=cwd,
                log=log_dir / f"prefect-modes-{tag}-{name}-{r}.log",
            )
            db.unlink(missing_ok=True)
            Path(str(db) + ".wal").unlink(missing_ok=True)
            results[name].append((m.wall, m.peak_rss, m.returncode))
            print(f"  {tag} run {r} {name:10}: {m.wall:7.2f} s  {m.peak_rss / 2**20:7.0f} MiB  exit {m.returncode}",
                  flush=True)  # fmt: skip
    return {
        name: {
            "wall_s": stats([v[0] for v in values]),
            "peak_rss_bytes": stats([v[1] for v in values]),
            "exit_codes": [v[2] for v in values],
        }
        for name, values in results.items()
    }


def modes(runs: int, api: str, tmp: Path, log_dir: Path) -> dict[str, object]:
    project = tmp / "shop"
    ignored = shutil.ignore_patterns(".ferry", "target", "logs", "dbt_packages", ".venv", "*.duckdb")
    shutil.copytree(REPO / "examples" / "shop", project, ignore=ignored)
    bare = tmp / "shop-bare"
    shutil.copytree(project, bare)
    shutil.copyfile(bare / "profiles" / "local.yml", bare / "profiles.yml")
    common = {"DBT_FERRY_WORK_DIR": str(tmp / "work"), "DBT_FERRY_CACHE_DIR": str(tmp / "cache")}
    with_server = base_env(PREFECT_API_URL=api, **common)
    _publish(project, with_server)
    without = base_env(**common)
    without.pop("PREFECT_API_URL", None)
    without.pop("CI", None)
    ferry = [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--project-dir", str(project)]
    dbt = str(BIN / "dbt")
    script = (
        f"{dbt} {DBT_FLAGS} deps --project-dir . --profiles-dir . && "
        f"{dbt} {DBT_FLAGS} build --project-dir . --profiles-dir ."
    )
    variants = {
        "bare": (["/bin/sh", "-c", script], bare, without),
        "server": (ferry, None, with_server),
        "temporary": (ferry, None, {**without, "PREFECT_HOME": str(tmp / "prefect-home")}),
        "none": ([*ferry, "--no-prefect"], None, without),
    }
    return _alternate(variants, runs, tmp, log_dir, "shop")


def node_events(models: int, runs: int, api: str, tmp: Path, log_dir: Path) -> dict[str, object]:
    on, off = tmp / f"events-on-{models}", tmp / f"events-off-{models}"
    generate(on, models)
    shutil.copytree(on, off)
    pyproject = off / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("[tool.dbt-ferry]\n", "[tool.dbt-ferry]\nevents = { nodes = false }\n", 1))
    env = base_env(PREFECT_API_URL=api, DBT_FERRY_WORK_DIR=str(tmp / "work"), DBT_FERRY_CACHE_DIR=str(tmp / "cache"))
    for project in (on, off):
        _publish(project, env)
    run = [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--threads", "4", "--project-dir"]
    variants = {name: ([*run, str(project)], None, env) for name, project in (("events", on), ("no-events", off))}
    return _alternate(variants, runs, tmp, log_dir, f"synth{models}")


def _rows(part: str, results: dict[str, object], baseline: str) -> list[list[object]]:
    base_wall = results[baseline]["wall_s"]["median"]  # type: ignore[index]
    base_rss = results[baseline]["peak_rss_bytes"]["median"]  # type: ignore[index]
    rows = []
    for name, values in results.items():
        wall, rss = values["wall_s"], values["peak_rss_bytes"]  # type: ignore[index]
        rows.append([part, name, wall["n"], fmt(wall), f"{wall['median'] - base_wall:+.2f}", fmt(rss, 2**20, 0),
                     f"{rss['median'] / base_rss:.2f}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events-models", type=int, default=2000)
    parser.add_argument("--events-runs", type=int, default=3)
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument("--skip-modes", action="store_true")
    parser.add_argument("--json", type=Path, default=OUT / "prefect-modes.json")
    parser.add_argument("--api-url", help="a running Prefect server's API URL (default: start one)")
    args = parser.parse_args()
    log_dir = args.json.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, object] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-modes-") as tmp, server(args.api_url) as api:
        if not args.skip_modes:
            out["modes"] = modes(args.runs, api, Path(tmp), log_dir)
        if not args.skip_events:
            out["node_events"] = node_events(args.events_models, args.events_runs, api, Path(tmp), log_dir)
    table = _rows("example", out["modes"], "bare") if "modes" in out else []  # type: ignore[arg-type]
    if "node_events" in out:
        table += _rows(f"N={args.events_models}", out["node_events"], "no-events")  # type: ignore[arg-type]
    print_table(["part", "variant", "runs", "wall s median (min-max)", "Δ wall s", "peak RSS MiB (min-max)",
                 "RSS ratio"], table)  # fmt: skip
    out["machine_after"] = machine()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
