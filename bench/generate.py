"""Generate a synthetic dbt project for DuckDB, deterministic for N.

    .venv/bin/python bench/generate.py --models 1000 --dest /tmp/synth [--layers 10] [--version 1.0.0]

N models in ``--layers`` layers over three seeds: layer 0 selects from a seed, every later model joins 1-3
models of earlier layers; every other model has ``not_null``/``unique`` tests on its key. The project has a
pyproject.toml with ``[tool.dbt-ferry]`` (a local store in ``.ferry/store``) and ``profiles/local.yml`` whose
DuckDB path comes from ``SYNTH_DUCKDB_PATH``. Prints a table of what it wrote and a JSON summary to bench/out/.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, print_table, write_json

SEEDS = ("seed_customers", "seed_orders", "seed_products")
ROWS = 50


def generate(dest: Path, models: int, *, layers: int = 10, version: str = "1.0.0", seed: int = 42) -> dict[str, int]:
    """Write the project into ``dest`` (replaced if it exists); return counts."""
    rng = random.Random(seed * 1_000_003 + models)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "seeds").mkdir(parents=True)
    (dest / "profiles").mkdir()
    (dest / "dbt_project.yml").write_text(
        "name: synth\nversion: '1.0.0'\nconfig-version: 2\nprofile: synth\n"
        "model-paths: ['models']\nseed-paths: ['seeds']\ntest-paths: ['tests']\n"
        "models:\n  synth:\n    +materialized: table\n"
    )
    (dest / "packages.yml").write_text("packages: []\n")
    (dest / "profiles" / "local.yml").write_text(
        "synth:\n  target: local\n  outputs:\n    local:\n      type: duckdb\n"
        "      path: \"{{ env_var('SYNTH_DUCKDB_PATH', 'synth.duckdb') }}\"\n      threads: 4\n"
    )
    (dest / "pyproject.toml").write_text(
        f'[project]\nname = "synth"\nversion = "{version}"\nrequires-python = ">=3.11"\n'
        'dependencies = ["dbt-ferry[job,duckdb]"]\n\n'
        '[tool.dbt-ferry]\nstore = { type = "local", path = ".ferry/store" }\n\n'
        '[tool.dbt-ferry.environments.local]\ntarget = "local"\n'
    )
    for name in SEEDS:
        lines = ["id,val,label"] + [f"{i},{rng.randint(0, 1000)},{name}_{i}" for i in range(1, ROWS + 1)]
        (dest / "seeds" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    per_layer = [models // layers + (1 if i < models % layers else 0) for i in range(layers)]
    names_by_layer: list[list[str]] = []
    tests = 0
    number = 0
    for layer, count in enumerate(per_layer):
        folder = dest / "models" / f"layer_{layer:02d}"
        folder.mkdir(parents=True)
        names: list[str] = []
        schema = ["version: 2", "models:"]
        for _ in range(count):
            name = f"m{layer:02d}_{number:05d}"
            number += 1
            earlier = [n for group in names_by_layer for n in group]
            if layer == 0 or not earlier:
                sql = f"select id, val + {number % 7} as val from {{{{ ref('{rng.choice(SEEDS)}') }}}}\n"  # noqa: S608
            else:
                parents = rng.sample(earlier, k=min(len(earlier), rng.randint(1, 3)))
                select = " + ".join(f"p{i}.val" for i in range(len(parents)))
                joins = f"from {{{{ ref('{parents[0]}') }}}} p0\n" + "".join(
                    f"join {{{{ ref('{p}') }}}} p{i} using (id)\n" for i, p in enumerate(parents[1:], start=1)
                )
                sql = f"select p0.id, {select} as val\n{joins}"
            (folder / f"{name}.sql").write_text(sql)
            if number % 2 == 0:
                schema += [f"  - name: {name}", "    columns:", "      - name: id",
                           "        data_tests: [not_null, unique]"]  # fmt: skip
                tests += 2
            names.append(name)
        if len(schema) > 2:
            (folder / "schema.yml").write_text("\n".join(schema) + "\n")
        names_by_layer.append(names)
    return {"models": models, "layers": layers, "seeds": len(SEEDS), "tests": tests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--dest", type=Path, default=None, help="default: bench/out/synth-<N>")
    parser.add_argument("--json", type=Path, default=OUT / "generate.json")
    args = parser.parse_args()
    dest = args.dest or OUT / f"synth-{args.models}"
    counts = generate(dest, args.models, layers=args.layers, version=args.version)
    print_table(["models", "layers", "seeds", "tests", "dest"], [[*counts.values(), dest]])
    write_json(args.json, {**counts, "dest": str(dest)})


if __name__ == "__main__":
    main()
