"""The timing chart of one run: every node on its thread over time, labelled, its kind shown by lane and shape,
the critical path highlighted and measured, and the slowest nodes below — one small self-contained HTML file
(inline SVG, a few lines of vanilla JS for zoom; no chart library)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_ferry.core.results import FAILED_STATUSES
from dbt_ferry.exports.critical_path import CriticalPath, critical_path
from dbt_ferry.exports.html import esc, nice_step, page, seconds_text, write_atomic
from dbt_ferry.exports.timeline import NodeSpan, node_spans, threads

LEFT, PLOT_W, RIGHT = 112, 1060, 16
AXIS_H, BUILD_H, TEST_H, LANE_GAP, THREAD_GAP = 24, 22, 14, 3, 9
MIN_LABEL_W = 24  # px: a narrower bar shows no text (its tooltip and the tables still name it)
SLOWEST = 25

#: The colour of each kind of node when it passed; a failure, a warning or a no-op replaces it (the lane and
#: the shape still tell the kind).
KIND_COLOURS = {
    "model": "#3b6ea8",
    "seed": "#8d6e63",
    "snapshot": "#7e57c2",
    "test": "#26a69a",
    "unit_test": "#00897b",
}
OTHER_KIND_COLOUR = "#90a4ae"
STATUS_FILLS = {
    "error": "#c62828",
    "fail": "#c62828",
    "runtime error": "#8e0000",
    "warn": "#ef8a00",
    "partial success": "#ef8a00",
    "no-op": "#cfd8dc",
}
#: Rounded corners for snapshots and unit tests; seeds get stripes; tests run in the lower, thinner lane.
ROUNDED = frozenset({"snapshot", "unit_test"})
TEST_KINDS = frozenset({"test", "unit_test"})

CSS = """
g.n > svg > rect { stroke: #fff; stroke-width: 1; }
g.n.cp > svg > rect { stroke: #111; stroke-width: 4; }
g.n.other > svg > rect { stroke: #546e7a; stroke-dasharray: 3 2; }
g.n text { font-size: 11px; fill: #111; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
g.n.t text { font-size: 9.5px; }
g.n.nl text { display: none; }
g.n:hover > svg > rect { filter: brightness(1.15); }
line.cpl { stroke: #111; stroke-width: 1.2; stroke-dasharray: 4 3; }
svg.focus g.n:not(.cp) { opacity: .18; }
.tick line { stroke: #dfe4e8; } .tick text, .lane text { font-size: 11px; fill: #5f6b73; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; margin: 6px 0; align-items: center; }
.legend svg { vertical-align: middle; margin-right: 4px; }
ol.path { margin: 4px 0; padding-left: 22px; } ol.path li { margin: 1px 0; }
"""

SCRIPT = """
(() => {
  const svg = document.getElementById("gantt"); if (!svg) return;
  const left = +svg.dataset.left, plot = +svg.dataset.plot, right = +svg.dataset.right, base = +svg.dataset.scale;
  let zoom = 1;
  const lay = () => {
    const k = base * zoom;
    svg.setAttribute("width", left + plot * zoom + right);
    svg.querySelectorAll("g.n").forEach(g => {
      const box = g.lastElementChild, w = Math.max(g.dataset.d * k, 1);
      box.setAttribute("x", left + g.dataset.s * k); box.setAttribute("width", w);
      g.classList.toggle("nl", w < MIN_LABEL_W);
    });
    svg.querySelectorAll("g.tick").forEach(t => t.setAttribute("transform", `translate(${left + t.dataset.t * k},0)`));
    svg.querySelectorAll("line.cpl").forEach(l => {
      l.setAttribute("x1", left + l.dataset.a * k); l.setAttribute("x2", left + l.dataset.b * k);
    });
    document.getElementById("zoom").textContent = `${zoom}×`;
  };
  document.getElementById("zoom-in").onclick = () => { zoom = Math.min(zoom * 2, 64); lay(); };
  document.getElementById("zoom-out").onclick = () => { zoom = Math.max(zoom / 2, 1); lay(); };
  const focus = document.getElementById("focus");
  if (focus) focus.onchange = () => svg.classList.toggle("focus", focus.checked);
})();
""".replace("MIN_LABEL_W", str(MIN_LABEL_W))


@dataclass(frozen=True)
class _Lanes:
    """Where each thread's lanes are: the y of its build lane and of its test lane (None: it ran no test)."""

    build: dict[str, float]
    test: dict[str, float | None]
    height: float


def _lanes(spans: list[NodeSpan]) -> _Lanes:
    has_tests = {s.thread for s in spans if s.resource_type in TEST_KINDS}
    build: dict[str, float] = {}
    test: dict[str, float | None] = {}
    y = float(AXIS_H)
    for thread in threads(spans):
        build[thread] = y
        y += BUILD_H
        test[thread] = y + LANE_GAP if thread in has_tests else None
        y += (LANE_GAP + TEST_H if thread in has_tests else 0) + THREAD_GAP
    return _Lanes(build, test, y)


def _thread_label(thread: str) -> str:
    return thread.replace(" (worker)", "")


def _fill(span: NodeSpan) -> str:
    return STATUS_FILLS.get(span.status) or KIND_COLOURS.get(span.resource_type, OTHER_KIND_COLOUR)


def _kind_class(kind: str) -> str:
    return kind if kind in KIND_COLOURS else "other"


def _bar(span: NodeSpan, t0: float, scale: float, lanes: _Lanes, on_path: bool) -> str:
    is_test = span.resource_type in TEST_KINDS
    y = (lanes.test[span.thread] or 0.0) if is_test else lanes.build[span.thread]
    height = TEST_H if is_test else BUILD_H
    start = span.start.timestamp() - t0
    length = (span.end - span.start).total_seconds()
    width = max(length * scale, 1.0)
    classes = ["n", _kind_class(span.resource_type)] + (["t"] if is_test else [])
    classes += (["cp"] if on_path else []) + (["nl"] if width < MIN_LABEL_W else [])
    rx = ' rx="6"' if span.resource_type in ROUNDED else ""
    stripes = '<rect width="100%" height="100%" fill="url(#stripes)"/>' if span.resource_type == "seed" else ""
    tip = (
        f"{span.unique_id}\n{span.resource_type} · {span.status} · {seconds_text(span.seconds)}\n"
        f"{_thread_label(span.thread)}, from +{seconds_text(start)}" + ("\non the critical path" if on_path else "")
    )
    return (
        f'<g class="{" ".join(classes)}" data-s="{start:.3f}" data-d="{length:.3f}"><title>{esc(tip)}</title>'
        f'<svg x="{LEFT + start * scale:.1f}" y="{y:.0f}" width="{width:.1f}" height="{height}">'
        f'<rect width="100%" height="100%"{rx} fill="{_fill(span)}"/>{stripes}'
        f'<text x="3" y="{height - (5 if is_test else 7)}">{esc(span.name)} {esc(seconds_text(span.seconds))}</text>'
        "</svg></g>"
    )


def _ticks(total: float, scale: float, height: float) -> str:
    step = nice_step(total, 10)
    parts, t = [], 0.0
    while t <= total + 1e-9:
        parts.append(
            f'<g class="tick" data-t="{t:g}" transform="translate({LEFT + t * scale:.1f},0)">'
            f'<line y1="{AXIS_H - 4}" y2="{height:.0f}"/><text y="{AXIS_H - 9}" text-anchor="middle">'
            f"{esc(_tick_text(t, step))}</text></g>"
        )
        t += step
    return "".join(parts)


def _tick_text(t: float, step: float) -> str:
    if step >= 60:
        return f"{int(t // 60)}:{int(t % 60):02d}"
    return f"{t:g} s" if step >= 1 else f"{t:.{max(0, -int(f'{step:e}'.split('e')[1]))}f} s"


def _connectors(path: CriticalPath, spans: dict[str, NodeSpan], t0: float, scale: float, lanes: _Lanes) -> str:
    """Dashed lines from the end of each node of the critical path to the start of the next."""

    def middle(span: NodeSpan) -> float:
        if span.resource_type in TEST_KINDS:
            return (lanes.test[span.thread] or 0.0) + TEST_H / 2
        return lanes.build[span.thread] + BUILD_H / 2

    parts = []
    for a, b in zip(path.nodes, path.nodes[1:], strict=False):
        first, second = spans[a], spans[b]
        x1, x2 = first.end.timestamp() - t0, second.start.timestamp() - t0
        parts.append(
            f'<line class="cpl" data-a="{x1:.3f}" data-b="{x2:.3f}" x1="{LEFT + x1 * scale:.1f}" '
            f'y1="{middle(first):.0f}" x2="{LEFT + x2 * scale:.1f}" y2="{middle(second):.0f}"/>'
        )
    return "".join(parts)


def _gantt(spans: list[NodeSpan], path: CriticalPath | None) -> tuple[str, float]:
    """The chart's SVG, and the nodes' wall time (first start to last end)."""
    t0 = min(s.start for s in spans).timestamp()
    total = max(max(s.end.timestamp() for s in spans) - t0, 0.001)
    scale = PLOT_W / total
    lanes = _lanes(spans)
    on_path = set(path.nodes) if path else set()
    bands = []
    for i, thread in enumerate(threads(spans)):
        build_y, test_y = lanes.build[thread], lanes.test[thread]
        top = build_y - 3
        bottom = (test_y + TEST_H if test_y is not None else build_y + BUILD_H) + 3
        fill = "#f5f7f8" if i % 2 == 0 else "#ffffff"
        tests = f'<text x="6" y="{test_y + 11:.0f}">tests</text>' if test_y is not None else ""
        bands.append(
            f'<g class="lane"><rect x="0" y="{top:.0f}" width="100%" height="{bottom - top:.0f}" fill="{fill}"/>'
            f'<text x="6" y="{build_y + 15:.0f}">{esc(_thread_label(thread))}</text>{tests}</g>'
        )
    by_id = {s.unique_id: s for s in spans}
    width = LEFT + PLOT_W + RIGHT
    svg = (
        f'<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{lanes.height:.0f}" '
        f'data-left="{LEFT}" data-plot="{PLOT_W}" data-right="{RIGHT}" data-scale="{scale:.6f}" role="img" '
        f'aria-label="Nodes of the run on their threads over time">'
        '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" fill-opacity=".35"/></pattern></defs>'
        + "".join(bands)
        + _ticks(total, scale, lanes.height)
        + "".join(_bar(s, t0, scale, lanes, s.unique_id in on_path) for s in spans)
        + (_connectors(path, by_id, t0, scale, lanes) if path else "")
        + "</svg>"
    )
    return svg, total


def _swatch(kind: str, fill: str, *, outline: str = "") -> str:
    height = TEST_H if kind in TEST_KINDS else 16
    rx = ' rx="5"' if kind in ROUNDED else ""
    stripes = '<rect width="28" height="16" fill="url(#stripes)"/>' if kind == "seed" else ""
    stroke = f' stroke="{outline}" stroke-width="3"' if outline else ""
    return (
        f'<svg width="28" height="16"><rect y="{16 - height}" width="28" height="{height}"{rx} fill="{fill}"{stroke}/>'
        f"{stripes}</svg>"
    )


def _legend(has_path: bool) -> str:
    items = [
        (_swatch("model", KIND_COLOURS["model"]), "model"),
        (_swatch("seed", KIND_COLOURS["seed"]), "seed (striped)"),
        (_swatch("snapshot", KIND_COLOURS["snapshot"]), "snapshot (rounded)"),
        (_swatch("test", KIND_COLOURS["test"]), "test (lower lane)"),
        (_swatch("unit_test", KIND_COLOURS["unit_test"]), "unit test (lower lane, rounded)"),
        (_swatch("other", OTHER_KIND_COLOUR), "other"),
        (_swatch("model", STATUS_FILLS["error"]), "error / fail"),
        (_swatch("model", STATUS_FILLS["warn"]), "warn"),
        (_swatch("model", STATUS_FILLS["no-op"]), "no-op"),
    ]
    if has_path:
        items.append((_swatch("model", "#ffffff", outline="#111"), "critical path"))
    # The stripes pattern lives in the chart's SVG; the legend's swatches use it by its id.
    return '<div class="legend">' + "".join(f"<span>{svg}{esc(text)}</span>" for svg, text in items) + "</div>"


def _path_section(path: CriticalPath, spans: dict[str, NodeSpan], wall: float) -> str:
    share = f"{path.seconds / wall:.0%} of the nodes' wall time" if wall > 0 else ""
    rows, running = [], 0.0
    for uid in path.nodes:
        span = spans[uid]
        running += span.seconds
        rows.append(
            f"<li><code>{esc(uid)}</code> — {esc(span.status)}, {esc(seconds_text(span.seconds))} "
            f'<span class="muted">(total {esc(seconds_text(running))})</span></li>'
        )
    return (
        f'<h2 id="critical-path">Critical path: {esc(seconds_text(path.seconds))}</h2>'
        f"<p>The longest chain of dependent nodes, {esc(share)}: with unlimited threads the run could not "
        f"take less. Speeding these up shortens the run; the others wait on them.</p>"
        f'<ol class="path">{"".join(rows)}</ol>'
    )


def _slowest(spans: list[NodeSpan], path: CriticalPath | None, t0: float) -> str:
    on_path = set(path.nodes) if path else set()
    rows = []
    for rank, span in enumerate(sorted(spans, key=lambda s: (-s.seconds, s.unique_id))[:SLOWEST], start=1):
        rows.append(
            f'<tr><td class="n">{rank}</td><td><code>{esc(span.unique_id)}</code></td>'
            f'<td class="k">{esc(span.resource_type)}</td><td class="k">{esc(span.status)}</td>'
            f'<td class="k">{esc(_thread_label(span.thread))}</td>'
            f'<td class="n">+{esc(seconds_text(span.start.timestamp() - t0))}</td>'
            f'<td class="n">{esc(seconds_text(span.seconds))}</td>'
            f"<td>{'✔' if span.unique_id in on_path else ''}</td></tr>"
        )
    return (
        f'<h2 id="slowest">Slowest {min(SLOWEST, len(spans))} nodes</h2><table><thead><tr><th class="n">#</th>'
        '<th>node</th><th>kind</th><th>status</th><th>thread</th><th class="n">started</th><th class="n">took</th>'
        f"<th>critical path</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _facts(run_results: Mapping[str, Any], spans: list[NodeSpan], wall: float, path: CriticalPath | None) -> str:
    kinds = Counter(s.resource_type for s in spans)
    failed = sum(1 for s in spans if s.status in FAILED_STATUSES)
    elapsed = run_results.get("elapsed_time")
    facts = [
        (seconds_text(wall), f"nodes ran, on {len(threads(spans))} threads"),
        (seconds_text(path.seconds) if path else "—", "critical path" if path else "critical path: no manifest"),
        (str(len(spans)), ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))),
        (str(failed), "failed"),
    ]
    if isinstance(elapsed, int | float):
        facts.append((seconds_text(float(elapsed)), "dbt's elapsed time (with parsing)"))
    return '<ul class="facts">' + "".join(f"<li><b>{esc(v)}</b><span>{esc(t)}</span></li>" for v, t in facts) + "</ul>"


def timing_html(run_results: Mapping[str, Any], title: str, manifest: Mapping[str, Any] | None = None) -> str:
    """The timing chart of ``run_results`` (dbt's run_results.json) as one HTML document.

    With ``manifest`` (the run's manifest.json) the critical path is computed, highlighted and measured.
    """
    spans = node_spans(dict(run_results))
    metadata = run_results.get("metadata") or {}
    command = (run_results.get("args") or {}).get("which")
    sub = " · ".join(
        str(p)
        for p in (metadata.get("invocation_id"), f"dbt {command}" if command else None, metadata.get("generated_at"))
        if p
    )
    head = f'<h1>{esc(title)}</h1><p class="sub">{esc(sub)}</p>'
    if not spans:
        return page(title, head + '<p class="none">No node ran in this run: nothing to chart.</p>', css=CSS)
    path = None
    if manifest is not None:
        command_is_build = command == "build"
        path = critical_path({s.unique_id: s.seconds for s in spans}, manifest, build=command_is_build)
    gantt, wall = _gantt(spans, path)
    by_id = {s.unique_id: s for s in spans}
    t0 = min(s.start for s in spans).timestamp()
    controls = (
        '<div class="controls">Zoom <button id="zoom-out" type="button">&minus;</button> <span id="zoom">1×</span> '
        '<button id="zoom-in" type="button">+</button>'
        + (' &nbsp; <label><input id="focus" type="checkbox"> only the critical path</label>' if path else "")
        + "</div>"
    )
    no_path = (
        "" if path else '<p class="none">The critical path needs the run\'s manifest.json (its dependency graph).</p>'
    )
    body = (
        head
        + _facts(run_results, spans, wall, path)
        + _legend(path is not None)
        + controls
        + f'<div class="chart">{gantt}</div>'
        + (_path_section(path, by_id, wall) if path else no_path)
        + _slowest(spans, path, t0)
        + "<footer>Bars run from each node's compile start to its execute end; labels and tables give dbt's "
        "execution time. Hover a bar for its unique_id.</footer>"
    )
    return page(title, body, css=CSS, script=SCRIPT)


def write_timing_chart(
    run_results: Mapping[str, Any], title: str, dest: Path, manifest: Mapping[str, Any] | None = None
) -> Path:
    """Write the timing chart of one run to ``dest`` (one self-contained HTML file that opens offline).

    ``run_results`` and ``manifest`` are the run's ``run_results.json`` and ``manifest.json`` as loaded JSON;
    without the manifest the chart has no critical path. The file is written to a temporary name and renamed.
    """
    return write_atomic(dest, timing_html(run_results, title, manifest))
