"""The pieces every dbt-ferry HTML page shares: one self-contained file, no external asset, readable on a laptop
and on paper. The pages draw their charts as inline SVG on the server; a few lines of vanilla JS add zoom and
filters, and everything still reads without them."""

from __future__ import annotations

import math
import os
import tempfile
from html import escape
from pathlib import Path

from dbt_ferry.core.version import DBT_FERRY_VERSION

#: Colours of a status; ``ok`` is what a passing node is drawn with when its kind gives the colour.
STATUS_COLOURS = {
    "success": "#2e7d32",
    "pass": "#2e7d32",
    "warn": "#ef8a00",
    "error": "#c62828",
    "fail": "#c62828",
    "runtime error": "#8e0000",
    "skipped": "#9e9e9e",
    "no-op": "#bdbdbd",
    "partial success": "#ef8a00",
}
OTHER_COLOUR = "#78909c"

BASE_CSS = """
:root { --ink: #1d2327; --muted: #5f6b73; --rule: #d9dee2; --band: #f5f7f8; --link: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 16px 24px 40px; max-width: 1240px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 4px 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px; }
p.sub, .muted { color: var(--muted); } p.sub { margin: 0 0 12px; }
a { color: var(--link); text-decoration: none; } a:hover { text-decoration: underline; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 8px 0 4px; padding: 0; list-style: none; }
.facts li b { display: block; font-size: 18px; }
.facts li span { color: var(--muted); font-size: 12px; }
nav { margin: 10px 0; font-size: 13px; } nav a { margin-right: 14px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { font-weight: 600; background: var(--band); position: sticky; top: 0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.msg { max-width: 520px; overflow-wrap: anywhere; }
td code { word-break: break-all; } td.k { white-space: nowrap; }
tbody tr:hover { background: #eef3f8; }
.chart { overflow-x: auto; border: 1px solid var(--rule); border-radius: 4px; padding: 4px 0; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; color: #fff; }
.controls { display: none; margin: 6px 0; font-size: 13px; } html.js .controls { display: block; }
.controls button { font: inherit; padding: 1px 8px; }
.controls input[type=search] { font: inherit; padding: 2px 6px; width: 260px; }
details > summary { cursor: pointer; color: var(--link); margin: 6px 0; }
.none { color: var(--muted); font-style: italic; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav, .controls, .noprint { display: none !important; }
  .chart { overflow: visible; border: none; }
  a { color: inherit; }
  th { position: static; }
  h2 { break-after: avoid; } tr, svg { break-inside: avoid; }
}
"""

#: Marks the page as scripted (the controls only show then) and prints everything: the collapsed sections are
#: opened first (a closed <details> does not print its content).
PRINT_SCRIPT = """
document.documentElement.classList.add("js");
window.addEventListener("beforeprint", () => document.querySelectorAll("details").forEach(d => d.open = true));
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def seconds_text(seconds: float | None) -> str:
    """``0.52 s``, ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"


def nice_step(span: float, ticks: int = 8) -> float:
    """A round axis step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def page(title: str, body: str, *, css: str = "", script: str = "") -> str:
    """A complete HTML document: the shared styles and ``css`` inline, ``script`` at the end of the body."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="dbt-ferry {esc(DBT_FERRY_VERSION)}">'
        f"<title>{esc(title)}</title><style>{BASE_CSS}{css}</style></head>\n"
        f"<body>\n{body}\n<script>{PRINT_SCRIPT}{script}</script>\n</body></html>\n"
    )


def write_atomic(dest: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``dest`` and rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
