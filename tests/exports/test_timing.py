"""The timing chart and the critical path: a hand-checked DAG, the page itself, and a real browser's screenshot."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dbt_ferry.exports.critical_path import (
    CriticalPath,
    build_edges,
    critical_path,
    longest_path,
    manifest_parents,
    run_graph,
)
from dbt_ferry.exports.timeline import node_spans
from dbt_ferry.exports.timing import KIND_COLOURS, STATUS_FILLS, timing_html, write_timing_chart
from tests.browser import decode_png, dom, hex_colour, screenshot

# The hand-checked DAG (seconds in brackets):
#
#   seed a (1) ─┬─> b (2) ──> d (4) ──> e (1)
#               │                       ^
#               └─> c (5) ──────────────┘      f (3), alone
#                   └─> test t_c (3)           test r (6) of b and c together (a relationships test)
#
# `dbt run` (no test gates a child): a → b → d → e = 8 s beats a → c → e = 7 s; t_c ends at 1 + 5 + 3 = 9 s and
# r at 1 + 5 + 6 = 12 s, so without gates the longest chain is a → c → r (12 s).
# `dbt build`: e waits for the tests of its parents: t_c (c's own test) and r (all its nodes, b and c, are
# ancestors of e); d does not wait for r (c is not its ancestor). So a → c → r → e = 13 s.
SECONDS = {
    "seed.p.a": 1.0,
    "model.p.b": 2.0,
    "model.p.c": 5.0,
    "model.p.d": 4.0,
    "model.p.e": 1.0,
    "model.p.f": 3.0,
    "test.p.t_c.1": 3.0,
    "test.p.r.2": 6.0,
}


def _node(kind: str, *parents: str) -> dict[str, Any]:
    return {"resource_type": kind, "depends_on": {"nodes": list(parents)}}


MANIFEST: dict[str, Any] = {
    "nodes": {
        "seed.p.a": _node("seed"),
        "model.p.b": _node("model", "seed.p.a"),
        "model.p.c": _node("model", "seed.p.a"),
        "model.p.d": _node("model", "model.p.b"),
        "model.p.e": _node("model", "model.p.d", "model.p.c"),
        "model.p.f": _node("model"),
        "test.p.t_c.1": _node("test", "model.p.c"),
        "test.p.r.2": _node("test", "model.p.b", "model.p.c"),
    }
}


def test_critical_path_of_a_hand_checked_dag() -> None:
    assert critical_path(SECONDS, MANIFEST, build=True) == CriticalPath(
        ("seed.p.a", "model.p.c", "test.p.r.2", "model.p.e"), 13.0
    )
    assert critical_path(SECONDS, MANIFEST, build=False) == CriticalPath(("seed.p.a", "model.p.c", "test.p.r.2"), 12.0)
    no_tests = {k: v for k, v in SECONDS.items() if not k.startswith("test.")}
    expected = CriticalPath(("seed.p.a", "model.p.b", "model.p.d", "model.p.e"), 8.0)
    assert critical_path(no_tests, MANIFEST, build=False) == expected
    assert critical_path(no_tests, MANIFEST, build=True) == expected  # the gates are tests that did not run


def test_build_edges_follow_dbt() -> None:
    parents = build_edges(MANIFEST, manifest_parents(MANIFEST))
    assert parents["model.p.e"] == {"model.p.d", "model.p.c", "test.p.t_c.1", "test.p.r.2"}
    assert parents["model.p.d"] == {"model.p.b"}  # r also tests c, which is not an ancestor of d
    assert parents["test.p.r.2"] == {"model.p.b", "model.p.c"}


def test_a_node_that_did_not_run_passes_its_parents_on() -> None:
    # Only a, d and e ran (`--select a d e`, say): d still waits for a (through b), e for d and a (through c).
    ran = {"seed.p.a": 1.0, "model.p.d": 4.0, "model.p.e": 1.0}
    graph = run_graph(manifest_parents(MANIFEST), ran)
    assert graph == {"seed.p.a": set(), "model.p.d": {"seed.p.a"}, "model.p.e": {"model.p.d", "seed.p.a"}}
    assert longest_path(ran, graph) == CriticalPath(("seed.p.a", "model.p.d", "model.p.e"), 6.0)


def test_parent_map_exposures_and_unit_tests() -> None:
    manifest = {
        "nodes": {"model.p.m": _node("model", "source.p.raw.t"), "model.p.n": _node("model", "model.p.m")},
        "sources": {"source.p.raw.t": {}},
        "exposures": {"exposure.p.dash": _node("exposure", "model.p.n")},
        "unit_tests": {"unit_test.p.m.totals": _node("unit_test", "model.p.m")},
        "parent_map": {"model.p.n": ["model.p.m"], "model.p.x": ["model.p.n"]},
    }
    parents = manifest_parents(manifest)
    assert parents["exposure.p.dash"] == {"model.p.n"} and parents["model.p.x"] == {"model.p.n"}
    # In a build, a model runs after its unit tests, which wait for the model's own parents.
    gated = build_edges(manifest, parents)
    assert gated["model.p.m"] == {"source.p.raw.t", "unit_test.p.m.totals"}
    assert gated["unit_test.p.m.totals"] == {"source.p.raw.t"}
    seconds = {"unit_test.p.m.totals": 0.5, "model.p.m": 2.0, "model.p.n": 1.0, "exposure.p.dash": 0.0}
    path = critical_path(seconds, manifest, build=True)
    assert path == CriticalPath(("unit_test.p.m.totals", "model.p.m", "model.p.n", "exposure.p.dash"), 3.5)


def test_long_chains_and_cycles() -> None:
    chain = {f"model.p.m{i:05d}": 0.001 for i in range(20000)}
    names = list(chain)
    parents = {n: {names[i - 1]} for i, n in enumerate(names) if i}
    path = longest_path(chain, parents)
    assert len(path.nodes) == 20000 and path.seconds == pytest.approx(20.0)
    manifest = {"nodes": {n: _node("model", *parents.get(n, ())) for n in names}}
    assert critical_path({names[0]: 1.0, names[-1]: 2.0}, manifest, build=True).nodes == (names[0], names[-1])
    looped = longest_path({"a": 1.0, "b": 2.0}, {"a": {"b"}, "b": {"a"}})  # never in dbt: broken, not hung
    assert looped.seconds == 3.0


# --- the page -----------------------------------------------------------------------------------------------------

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
#: When each node of the DAG ran on two threads (seconds from the start).
SCHEDULE = {
    "seed.p.a": ("Thread-1 (worker)", 0.0),
    "model.p.c": ("Thread-1 (worker)", 1.0),
    "model.p.b": ("Thread-2 (worker)", 1.0),
    "model.p.d": ("Thread-2 (worker)", 3.0),
    "test.p.t_c.1": ("Thread-2 (worker)", 7.0),
    "test.p.r.2": ("Thread-1 (worker)", 6.0),
    "model.p.e": ("Thread-1 (worker)", 12.0),
    "model.p.f": ("Thread-2 (worker)", 10.0),
}


def _iso(offset: float) -> str:
    return (START + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")


def _run_results(statuses: dict[str, str] | None = None) -> dict[str, Any]:
    results = []
    for uid, (thread, start) in SCHEDULE.items():
        end = start + SECONDS[uid]
        status = (statuses or {}).get(uid) or ("pass" if uid.startswith("test.") else "success")
        timing = [
            {"name": "compile", "started_at": _iso(start), "completed_at": _iso(start + 0.01)},
            {"name": "execute", "started_at": _iso(start + 0.01), "completed_at": _iso(end)},
        ]
        results.append(
            {"unique_id": uid, "status": status, "thread_id": thread, "execution_time": SECONDS[uid], "timing": timing}
        )
    results.append({"unique_id": "model.p.skipped", "status": "skipped", "execution_time": 0, "timing": []})
    return {
        "metadata": {"invocation_id": "inv-1", "generated_at": _iso(14.0)},
        "results": results,
        "elapsed_time": 15.5,
        "args": {"which": "build"},
    }


def test_spans_are_the_nodes_that_ran() -> None:
    spans = node_spans(_run_results())
    assert len(spans) == 8 and "model.p.skipped" not in {s.unique_id for s in spans}
    test = next(s for s in spans if s.unique_id == "test.p.t_c.1")
    assert (test.resource_type, test.name, test.seconds, test.thread) == ("test", "t_c", 3.0, "Thread-2 (worker)")


def _bars(html: str) -> dict[str, str]:
    """unique_id -> the class attribute of its bar (the bar's tooltip starts with the unique_id)."""
    return dict((m.group(2), m.group(1)) for m in re.finditer(r'<g class="(n [^"]*)"[^>]*><title>([^\n<]+)\n', html))


def test_page_labels_lanes_shapes_and_the_critical_path(tmp_path: Path) -> None:
    html = timing_html(_run_results({"model.p.f": "error"}), "p 1.0 in local: model timing", MANIFEST)
    bars = _bars(html)
    assert set(bars) == set(SCHEDULE)
    on_path = {uid for uid, classes in bars.items() if " cp" in classes}
    assert on_path == {"seed.p.a", "model.p.c", "test.p.r.2", "model.p.e"}
    assert "Critical path: 13.0 s" in html
    assert html.count('class="cpl"') == 3  # the dashed links between the four nodes of the path
    # Labels: the name and dbt's duration; the kind in the class (lane and shape), tests in the lower lane.
    assert ">c 5.00 s</text>" in html and ">t_c 3.00 s</text>" in html
    assert bars["test.p.t_c.1"].split()[:3] == ["n", "test", "t"] and bars["seed.p.a"].startswith("n seed")
    assert 'fill="url(#stripes)"' in html  # seeds are striped
    assert STATUS_FILLS["error"] in html and KIND_COLOURS["model"] in html
    assert "<b>2</b><span>threads</span>" not in html and "nodes ran, on 2 threads" in html
    # The slowest nodes, the critical ones marked.
    slowest = html[html.index('id="slowest"') :]
    assert slowest.index("test.p.r.2") < slowest.index("model.p.c") < slowest.index("model.p.d")
    # Self-contained: no external script, style or font; no chart library.
    assert not re.search(r"<(script|link|img)[^>]*\s(src|href)=", html)
    assert "plotly" not in html.lower() and "cdn" not in html.lower()
    assert len(html.encode()) < 40_000
    dest = write_timing_chart(_run_results(), "t", tmp_path / "out" / "timing.html", MANIFEST)
    assert dest.read_text() == timing_html(_run_results(), "t", MANIFEST)
    assert [p.name for p in dest.parent.iterdir()] == ["timing.html"]  # no temporary file left


def test_page_without_manifest_or_nodes() -> None:
    html = timing_html(_run_results(), "t")
    assert "The critical path needs the run's manifest.json" in html and " cp" not in "".join(_bars(html).values())
    empty = timing_html({"results": [], "metadata": {}}, "t", MANIFEST)
    assert "No node ran in this run" in empty


def test_example_project_run_is_tens_of_kilobytes() -> None:
    """The example's 55-node build: dbt 1.11's run_results.json and manifest.json, trimmed to what the chart reads."""
    fixture = Path(__file__).parent / "fixtures" / "shop_build"
    results = json.loads((fixture / "run_results.json").read_text())
    manifest = json.loads((fixture / "manifest.json").read_text())
    html = timing_html(results, "shop 1.0.0 in local: model timing", manifest)
    assert len(results["results"]) == 55
    assert 10_000 < len(html.encode()) < 60_000
    assert "model.shop.fct_orders" in html and "Critical path: " in html


@pytest.mark.slow
def test_chart_in_a_browser(tmp_path: Path) -> None:
    page = write_timing_chart(_run_results({"model.p.f": "error"}), "p in local", tmp_path / "timing.html", MANIFEST)
    assert ' class="js"' in dom(page, tmp_path)  # its script ran without an error
    picture = decode_png(screenshot(page, tmp_path))
    assert picture.width == 1280
    assert picture.share((255, 255, 255)) < 0.97, "the screenshot is blank"
    assert len(picture.colours) > 50
    for colour in (KIND_COLOURS["model"], KIND_COLOURS["test"], STATUS_FILLS["error"]):
        assert picture.near(hex_colour(colour)) > 200, colour  # bars of that colour are drawn
    assert picture.near((17, 17, 17), 10) > 200  # the critical path's outline
