"""Benchmark: ``dbt-ferry package --with-env`` against the reference way of packing the same environment.

    .venv/bin/python bench/package.py [--runs 3] [--project examples/shop] [--json bench/out/package.json]

- ferry: ``dbt-ferry package --with-env --out DIR`` (uv venv --relocatable, uv sync --frozen from uv.lock, zstd).
- reference: ``uv export --format requirements-txt`` of the same lock (instead of ``poetry export``: the project is
  a uv project whose dbt-ferry dependency comes from ``[tool.uv.sources]``, which poetry does not read, and it has
  no poetry.lock), then ``python -m venv``, ``pip install -r requirements.txt``, ``venv-pack`` to .tar.gz.

One unmeasured warm-up of each fills the uv and pip caches (the comparison is with warm caches); then the two
alternate R times. The project is used in place, read only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, OUT, REPO, base_env, fmt, machine, print_table, stats, write_json

venv_pack: Any = None

UV = REPO / ".tools" / "bin" / "uv"


def ferry(project: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run([str(BIN / "dbt-ferry"), "package", "--with-env", "--project-dir", str(project), "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return {"total": time.perf_counter() - started}


def reference(project: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    exported = subprocess.run(
        [str(UV), "export", "--format", "requirements-txt", "--no-dev", "--no-hashes", "--frozen"], cwd=project,
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    lines = []
    for line in exported.splitlines():
        if line.startswith((".", "/")):  # a path dependency, relative to the project
            line = str((project / line).resolve())
        lines.append(line)
    requirements = work / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n")
    t1 = time.perf_counter()
    phases["export"] = t1 - t0
    venv = work / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], env=env, check=True)  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    phases["venv"] = t2 - t1
    subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "-r",
                    str(requirements)], env=env, check=True)  # fmt: skip
    t3 = time.perf_counter()
    phases["pip_install"] = t3 - t2
    # venv-pack's own API (what its CLI calls), in-process: the shared .venv may lose its bench group meanwhile.
    venv_pack.pack(prefix=str(venv), output=str(work / "env.tar.gz"), compress_level=4)
    t4 = time.perf_counter()
    phases["venv_pack"] = t4 - t3
    phases["total"] = t4 - t0
    phases["pack_bytes"] = (work / "env.tar.gz").stat().st_size
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", type=Path, default=REPO / "examples" / "shop")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json", type=Path, default=OUT / "package.json")
    args = parser.parse_args()
    global venv_pack
    import venv_pack

    project = args.project.resolve()
    env = base_env()
    results: dict[str, dict[str, list[float]]] = {"ferry": {}, "reference": {}}
    ferry_bytes = 0
    with tempfile.TemporaryDirectory(prefix="ferry-bench-package-") as tmp_name:
        tmp = Path(tmp_name)
        for r in range(-1 if not args.no_warmup else 0, args.runs):
            for variant in ("ferry", "reference") if r % 2 == 0 else ("reference", "ferry"):
                work = tmp / f"{variant}-{r}"
                work.mkdir()
                if variant == "ferry":
                    phases = ferry(project, work / "out", env)
                    ferry_bytes = next((work / "out").glob("env-*.tar.zst")).stat().st_size
                else:
                    phases = reference(project, work, env)
                shutil.rmtree(work)
                label = "warm-up" if r < 0 else f"run {r}"
                print(f"  {label} {variant:9}: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()
                                                            if k != "pack_bytes"), flush=True)  # fmt: skip
                if r >= 0:
                    for key, value in phases.items():
                        results[variant].setdefault(key, []).append(value)
    summary = {v: {k: stats(x) for k, x in d.items()} for v, d in results.items()}
    ratio = summary["reference"]["total"]["median"] / summary["ferry"]["total"]["median"]
    ref = summary["reference"]
    print_table(
        ["variant", "runs", "total s median (min-max)", "phases (medians, s)", "pack MiB"],
        [
            ["dbt-ferry package --with-env", args.runs, fmt(summary["ferry"]["total"]), "",
             f"{ferry_bytes / 2**20:.0f}"],
            ["uv export + venv + pip + venv-pack", args.runs, fmt(ref["total"]),
             " ".join(f"{k} {ref[k]['median']:.1f}" for k in ("export", "venv", "pip_install", "venv_pack")),
             f"{ref['pack_bytes']['median'] / 2**20:.0f}"],
        ],
    )  # fmt: skip
    print(f"reference/ferry: {ratio:.2f}x")
    write_json(args.json, {"machine": machine(), "runs": args.runs, "results": summary, "ferry_pack_bytes": ferry_bytes,
                           "ratio_reference_ferry": ratio})  # fmt: skip


if __name__ == "__main__":
    main()
