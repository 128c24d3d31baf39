"""State-aware runs: only what changed since the environment's last successful state is built — a model whose SQL
changed and a source with newer data, with everything downstream of them, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.runtime.conftest import RunJob

pytestmark = pytest.mark.slow

LANDING = """\
version: 2
sources:
  - name: landing
    schema: landing
    tables:
      - name: events
        loaded_at_field: loaded_at
        freshness:
          warn_after: {count: 3650, period: day}
"""


def _land(warehouse: Path, loaded_at: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists landing")
        con.execute("create table if not exists landing.events (id integer, loaded_at timestamp)")
        con.execute("insert into landing.events values (1, ?::timestamp)", [loaded_at])


def _ran(store: Path, invocation_id: str) -> set[str]:
    results = json.loads((store / "runs" / "local" / invocation_id / "run_results.json").read_text())
    return {r["unique_id"] for r in results["results"]}


def _downstream(manifest: dict[str, object], roots: set[str]) -> set[str]:
    children: dict[str, list[str]] = manifest["child_map"]  # type: ignore[assignment]
    seen, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return {uid for uid in seen | roots if uid.split(".")[0] in ("model", "test", "seed", "snapshot", "exposure")}


def test_a_state_aware_run_builds_exactly_what_changed_and_its_downstream(
    run_job: RunJob, shop: Path, store: Path, tmp_path: Path
) -> None:
    (shop / "models" / "staging" / "_landing.yml").write_text(LANDING)
    (shop / "models" / "staging" / "stg_events.sql").write_text(
        "select id, loaded_at from {{ source('landing', 'events') }}\n"
    )
    (shop / "models" / "marts" / "fct_events.sql").write_text(
        "select count(*) as events from {{ ref('stg_events') }}\n"
    )
    warehouse = tmp_path / "warehouse.duckdb"  # the run_job fixture's SHOP_DUCKDB_PATH
    _land(warehouse, "2026-01-01 00:00:00")

    # 1. No state yet: everything is built, and the run says why; its success becomes the environment's state.
    first = run_job(no_prefect=True, state_aware=True)
    assert first.exit_code == 0, first
    assert first.state_aware is not None and first.state_aware.startswith("state-aware: local has no state in")
    assert first.state_aware.endswith("everything is built")
    assert [s.name for s in first.steps] == ["dbt deps", "dbt source freshness", "dbt build", "dbt docs generate"]
    assert (store / "state" / "local" / "sources.json").is_file()
    everything = _ran(store, first.summary.invocation_id)  # type: ignore[union-attr, arg-type]
    assert {"model.shop.fct_events", "model.shop.dim_products"} <= everything

    # 2. Nothing changed: nothing is built, no docs; the line says how much was left alone and since when.
    second = run_job(publish=False, no_prefect=True, state_aware=True)
    assert second.exit_code == 0, second
    assert [s.name for s in second.steps] == ["dbt deps", "dbt source freshness", "dbt build"]
    assert _ran(store, second.summary.invocation_id) == set()  # type: ignore[union-attr, arg-type]
    built_types = {uid for uid in everything if uid.split(".")[0] in ("model", "seed", "snapshot", "test")}
    assert f"built 0 of {len(built_types)} models, seeds, snapshots and tests" in second.state_aware  # type: ignore[operator]
    assert f"run {first.summary.invocation_id}" in second.state_aware  # type: ignore[union-attr, operator]
    assert second.state_aware.endswith(f"; {len(built_types)} unchanged, not run")  # type: ignore[union-attr]
    assert "fresher source" in second.state_aware  # type: ignore[operator]  # the project has a source

    # 3. One model's SQL changed and one source has newer rows: exactly their downstream is built.
    dim_products = shop / "models" / "marts" / "dim_products.sql"
    dim_products.write_text(dim_products.read_text() + "\n-- reviewed\n")
    _land(warehouse, "2026-06-01 00:00:00")
    third = run_job(no_prefect=True, state_aware=True)
    assert third.exit_code == 0, third
    invocation = third.summary.invocation_id  # type: ignore[union-attr]
    manifest = json.loads((store / "runs" / "local" / invocation / "manifest.json").read_text())  # type: ignore[operator]
    expected = _downstream(manifest, {"model.shop.dim_products", "source.shop.landing.events"})
    assert "model.shop.fct_events" in expected and "model.shop.fct_orders" not in expected
    assert _ran(store, invocation) == expected  # type: ignore[arg-type]
    assert "or downstream of a fresher source" in third.state_aware  # type: ignore[operator]
    assert third.state_aware.startswith(f"state-aware: built {len(expected - {'exposure.shop.sales_dashboard'})} of")  # type: ignore[union-attr]
    # The selection is in the history: the invocations row says what was selected.
    record = json.loads((store / "runs" / "local" / invocation / "ferry.json").read_text())  # type: ignore[operator]
    assert record["select"] == ["state:modified+", "source_status:fresher+"]


def test_a_selection_keeps_its_own_meaning(run_job: RunJob) -> None:
    """``--select`` on a state-aware environment is the selection asked for, not the state's."""
    report = run_job(no_prefect=True, state_aware=True, select=("+stg_orders",), indirect_selection="cautious")
    assert report.exit_code == 0, report
    assert report.state_aware is None
    assert "dbt source freshness" not in [s.name for s in report.steps]


def test_the_flow_run_s_summary_says_what_a_state_aware_run_left_alone() -> None:
    from dbt_ferry.runtime.summary import render_markdown

    line = (
        "state-aware: built 3 of 2,003 models, seeds, snapshots and tests — changed since …; 2,000 unchanged, not run"
    )
    text = render_markdown(None, title="t", exit_code=0, outcome="dbt build passed", docs=None, state_aware=line)
    assert text.splitlines()[4] == line
    assert "state-aware" not in render_markdown(None, title="t", exit_code=0, outcome="x", docs=None)


def test_the_line_names_fresher_sources_only_when_the_project_has_sources(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from dbt_ferry.runtime.changed import state_aware_line
    from dbt_ferry.runtime.spec import ChangedSince, JobSpec

    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "sources.json").write_text("{}")  # dbt writes one even when the project has no source
    since = ChangedSince(release_version="1.0.0", invocation_id="abc", created_at=datetime(2026, 1, 2, tzinfo=UTC),
                         sources=True)  # fmt: skip
    spec = JobSpec.model_construct(changed_since=since, state_aware_fallback=None, project_dir=str(tmp_path))
    nodes = {"model.p.a": {"resource_type": "model"}, "test.p.t": {"resource_type": "test"}}
    results = {"results": [{"unique_id": "model.p.a"}]}
    line = state_aware_line(spec, results, {"nodes": nodes, "sources": {}})
    assert line == (
        "state-aware: built 1 of 2 models, seeds, snapshots and tests — changed since the state of release 1.0.0, "
        "run abc, 2026-01-02 00:00 UTC; 1 unchanged, not run"
    )
    with_sources = state_aware_line(spec, results, {"nodes": nodes, "sources": {"source.p.s.t": {}}})
    assert with_sources is not None and "UTC or downstream of a fresher source; 1 unchanged" in with_sources
