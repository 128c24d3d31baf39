"""The peer of the overhead benchmark: prefect-dbt's PrefectDbtRunner in a flow, ``deps`` then ``build``.

python bench/_prefect_dbt_peer.py PROJECT_DIR [THREADS]
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings


@flow(name="prefect-dbt-peer", persist_result=False)
def peer(project_dir: str, threads: int) -> None:
    settings = PrefectDbtSettings(project_dir=Path(project_dir), profiles_dir=Path(project_dir))
    PrefectDbtRunner(settings=settings).invoke(["deps", "--no-use-colors"])
    PrefectDbtRunner(settings=settings).invoke(["build", "--threads", str(threads), "--no-use-colors"])


if __name__ == "__main__":
    peer(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)
