"""The history report of an environment: one self-contained HTML file from the result tables — runs over time,
models slower than usual, flaky tests, frequent failures, model duration trends and source freshness.

``dbt-ferry report`` writes it; a job can publish it as ``docs/<env>/history.html`` with :func:`write_report`.
"""

from __future__ import annotations

import time as timer
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pyiceberg.catalog import Catalog

from dbt_ferry.config.models import LocalStoreConfig, RegressionsConfig, StoreConfig
from dbt_ferry.core.layout import run_prefix, runs_from_docs, runs_prefix
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.exports.charts import FAILED, PASSED, run_colour, runs_chart, sparkline, status_strip
from dbt_ferry.exports.html import STATUS_COLOURS, esc, page, seconds_text, write_atomic
from dbt_ferry.exports.report_data import ModelTrend, ReportData, load_report
from dbt_ferry.exports.runs import Run
from dbt_ferry.exports.trends import MIN_EARLIER_RUNS, median, percentile

#: Runs listed before the rest fold away, and models drawn with a sparkline before the rest are listed plainly.
RUNS_SHOWN = 50
MODELS_DRAWN = 50
_MESSAGE = 300

CSS = """
.ax { font-size: 11px; fill: #5f6b73; }
svg.spark, svg.strip { vertical-align: middle; }
.key { display: inline-flex; gap: 14px; font-size: 12.5px; margin: 4px 0; }
.key i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
tr.hidden { display: none; }
"""

SCRIPT = """
(() => {
  const box = document.getElementById("filter"); if (!box) return;
  box.addEventListener("input", () => {
    const text = box.value.trim().toLowerCase();
    document.querySelectorAll("#models tbody tr").forEach(row =>
      row.classList.toggle("hidden", text !== "" && !row.dataset.uid.toLowerCase().includes(text)));
    if (text) document.querySelectorAll("#models details").forEach(d => d.open = true);
  });
})();
"""


@dataclass(frozen=True)
class ReportResult:
    path: Path
    environment: str
    since: date
    runs: int
    node_rows: int
    size: int
    seconds: float


def store_runs_url(store: StoreConfig, environment: str) -> str:
    """Where the runs of ``environment`` are, as the report links them: a ``file://`` folder for a local store,
    the S3 console's view of the prefix for an S3 store. A run's link is this followed by ``<invocation_id>/``."""
    folder = runs_prefix(environment)
    if isinstance(store, LocalStoreConfig):
        return Path(store.path).expanduser().absolute().joinpath(folder).as_uri() + "/"
    prefix = f"{store.prefix.strip('/')}/" if store.prefix.strip("/") else ""
    region = f"region={store.region}&" if store.region else ""
    return f"https://s3.console.aws.amazon.com/s3/buckets/{store.bucket}?{region}prefix={prefix}{folder}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _MESSAGE else text[: _MESSAGE - 1] + "…"


def _badge(text: str, colour: str) -> str:
    return f'<span class="badge" style="background:{colour}">{esc(text)}</span>'


def _status(status: str | None) -> str:
    return _badge(status or "—", STATUS_COLOURS.get(status or "", "#9e9e9e"))


def _table(head: Sequence[str], rows: Sequence[str], numeric: frozenset[int] = frozenset()) -> str:
    cells = "".join(
        f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _none(text: str) -> str:
    return f'<p class="none">{esc(text)}</p>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


class _Page:
    def __init__(self, data: ReportData, runs_url: str) -> None:
        self.data = data
        self.runs_url = runs_url

    def link(self, run: Run) -> str:
        return f"{self.runs_url}{run.invocation_id}/"

    def run_anchor(self, run: Run | None) -> str:
        if run is None:
            return "—"
        return f'<a href="{esc(self.link(run))}" title="{esc(run.invocation_id)}">{esc(_when(run.started_at))}</a>'

    def header(self) -> str:
        data = self.data
        runs = data.runs
        where = f"{data.project} in {data.environment}" if data.project else data.environment
        elapsed = [r.elapsed_seconds for r in runs if r.elapsed_seconds is not None]
        passed = sum(1 for r in runs if r.success)
        last = runs[-1] if runs else None
        facts = [
            (str(len(runs)), "runs"),
            (f"{passed} / {len(runs)}" if runs else "—", "passed"),
            (seconds_text(median(elapsed)) if elapsed else "—", "median run"),
            (seconds_text(percentile(elapsed, 95)) if elapsed else "—", "p95 run"),
            (last.status if last else "—", f"last run, {_when(last.started_at)} UTC" if last else "last run"),
            (str(len(data.models)), "models and snapshots"),
            (str(data.tests), "tests"),
        ]
        sub = (
            f"Since {data.since} (UTC) · generated {_when(data.generated_at)} UTC from the result tables · "
            f"every time in UTC"
        )
        nav = "".join(
            f'<a href="#{anchor}">{esc(text)}</a>'
            for anchor, text in (
                ("runs", "Runs"),
                ("slower", f"Slower than usual ({len(data.slower)})"),
                ("flaky", f"Flaky tests ({len(data.flaky)})"),
                ("failures", "Failures"),
                ("models", "Model durations"),
                ("freshness", "Source freshness"),
            )
        )
        return (
            f'<h1>Run history: {esc(where)}</h1><p class="sub">{esc(sub)}</p>'
            '<ul class="facts">' + "".join(f"<li><b>{esc(v)}</b><span>{esc(t)}</span></li>" for v, t in facts) + "</ul>"
            f"<nav>{nav}</nav>"
        )

    def runs(self) -> str:
        data = self.data
        if not data.runs:
            return _section("runs", "Runs", _none(f"No runs in {data.environment} since {data.since}."))
        # From the first run to now, not from the start of the period: three days of runs in a 30-day report
        # would crowd its right edge. A margin keeps the first and last bars whole.
        moments = [m for m in (r.started_at or r.completed_at for r in data.runs) if m is not None]
        since = min(moments, default=datetime.combine(data.since, time.min, tzinfo=UTC))
        until = max([data.generated_at, *moments])
        margin = max((until - since) * 0.02, timedelta(minutes=5))
        since, until = since - margin, until + margin
        chart = runs_chart(data.runs, self.link, since, until)
        key = (
            '<div class="key">'
            f'<span><i style="background:{PASSED}"></i>passed</span>'
            f'<span><i style="background:{FAILED}"></i>failed</span>'
            '<span><i style="background:#90a4ae"></i>nodes</span>'
            "<span>bar height: duration · click a bar for the run's artifacts</span></div>"
        )
        rows = [self.run_row(r) for r in reversed(data.runs)]
        head = ("started (UTC)", "status", "exit", "took", "command", "release", "nodes", "failed", "warn", "skipped",
                "artifacts")  # fmt: skip
        numeric = frozenset({2, 3, 6, 7, 8, 9})
        table = _table(head, rows[:RUNS_SHOWN], numeric)
        if len(rows) > RUNS_SHOWN:
            table += f"<details><summary>{len(rows) - RUNS_SHOWN} earlier runs</summary>"
            table += _table(head, rows[RUNS_SHOWN:], numeric) + "</details>"
        return _section("runs", "Runs", f'{key}<div class="chart">{chart}</div>{table}')

    def run_row(self, run: Run) -> str:
        exit_code = "" if run.exit_code is None else str(run.exit_code)
        folder = run_prefix(self.data.environment, run.invocation_id)
        return (
            f'<tr data-run="{esc(run.invocation_id)}"><td class="k">{esc(_when(run.started_at))}</td>'
            f'<td>{_badge(run.status, run_colour(run))}</td><td class="n">{exit_code}</td>'
            f'<td class="n">{esc(seconds_text(run.elapsed_seconds))}</td><td><code>{esc(run.what_ran)}</code></td>'
            f'<td class="k">{esc(run.release_version or "—")}</td><td class="n">{run.nodes}</td>'
            f'<td class="n">{run.failed}</td><td class="n">{run.warned}</td><td class="n">{run.skipped}</td>'
            f'<td><a href="{esc(self.link(run))}"><code>{esc(folder)}</code></a></td></tr>'
        )

    def slower(self) -> str:
        rule = self.data.rule
        text = (
            f"Models and snapshots whose last successful run took more than {rule.factor:g}× the median of their "
            f"previous {rule.runs} successful runs (at least {MIN_EARLIER_RUNS} of them) and at least "
            f"{rule.min_seconds:g} s — the rule of notify.regressions."
        )
        rows = [
            f'<tr data-uid="{esc(s.model.unique_id)}"><td><code>{esc(s.model.unique_id)}</code></td>'
            f'<td class="n">{esc(seconds_text(s.model.seconds))}</td>'
            f'<td class="n">{esc(seconds_text(s.model.median))}</td>'
            f'<td class="n">{s.model.factor:.1f}×</td><td class="n">{s.model.runs}</td>'
            f"<td>{self.run_anchor(s.run)}</td></tr>"
            for s in self.data.slower
        ]
        body = (
            _table(
                ("model", "last", "median before", "factor", "runs compared", "last run"), rows, frozenset({1, 2, 3, 4})
            )
            if rows
            else _none("None: every model's last duration is within the rule.")
        )
        return _section("slower", "Slower than usual", f"<p>{esc(text)}</p>{body}")

    def flaky(self) -> str:
        text = (
            "Tests whose result changed between pass and fail at least twice in the period (warn counts as a "
            "failure, skipped runs are left out); oldest result on the left."
        )
        rows = [
            f'<tr data-uid="{esc(t.unique_id)}"><td><code>{esc(t.unique_id)}</code></td>'
            f'<td class="n">{t.flips}</td><td class="n">{t.failures} / {t.runs}</td><td>{_status(t.last_status)}</td>'
            f"<td>{status_strip(t.statuses)}</td></tr>"
            for t in self.data.flaky
        ]
        body = (
            _table(("test", "changes", "failed", "last", "latest results"), rows, frozenset({1, 2}))
            if rows
            else _none("None: no test changed between pass and fail more than once.")
        )
        return _section("flaky", "Flaky tests", f"<p>{esc(text)}</p>{body}")

    def failures(self) -> str:
        rows = [
            f'<tr data-uid="{esc(f.unique_id)}"><td><code>{esc(f.unique_id)}</code></td><td class="k">'
            f'{esc(f.resource_type or "—")}</td><td class="n">{f.count} / {f.runs}</td>'
            f"<td>{_status(f.last_status)}</td>"
            f'<td class="msg">{esc(_clip(f.last_message))}</td><td>{self.run_anchor(f.last_run)}</td></tr>'
            for f in self.data.failures
        ]
        body = (
            _table(("node", "kind", "failed", "last status", "last message", "last failed"), rows, frozenset({2}))
            if rows
            else _none("None: nothing errored or failed in the period.")
        )
        return (
            '<section id="failures"><h2>Most frequent failures</h2><p>Nodes that errored or failed (warnings '
            f"aside), most often first.</p>{body}</section>"
        )

    def model_row(self, model: ModelTrend, flagged: frozenset[str], *, drawn: bool) -> str:
        spark = sparkline(model.series, model.median, flagged=model.unique_id in flagged) if drawn else ""
        return (
            f'<tr data-uid="{esc(model.unique_id)}"><td title="{esc(model.unique_id)}"><code>{esc(model.name)}</code>'
            f'</td><td class="n">{model.runs}</td><td class="n">{esc(seconds_text(model.median))}</td>'
            f'<td class="n">{esc(seconds_text(model.p95))}</td><td class="n">{esc(seconds_text(model.last))}</td>'
            f"<td>{spark}</td></tr>"
        )

    def models(self) -> str:
        models = self.data.models
        if not models:
            return _section("models", "Model durations", _none("No model or snapshot succeeded in the period."))
        flagged = frozenset(s.model.unique_id for s in self.data.slower)
        head = ("model", "runs", "median", "p95", "last", f"latest {min(60, max(m.runs for m in models))} runs")
        numeric = frozenset({1, 2, 3, 4})
        table = _table(head, [self.model_row(m, flagged, drawn=True) for m in models[:MODELS_DRAWN]], numeric)
        if len(models) > MODELS_DRAWN:
            rest = [self.model_row(m, flagged, drawn=False) for m in models[MODELS_DRAWN:]]
            table += f"<details><summary>{len(rest)} more models and snapshots</summary>"
            table += _table(head[:5], rest, numeric) + "</details>"
        controls = '<div class="controls"><input id="filter" type="search" placeholder="filter by name"></div>'
        return (
            '<section id="models"><h2>Model durations</h2><p>Successful runs of each model and snapshot in the '
            "period, largest median first; the dashed line is the median, the dot the last run (red: slower than "
            f"usual).</p>{controls}{table}</section>"
        )

    def freshness(self) -> str:
        rows = [
            f'<tr data-uid="{esc(f.unique_id)}"><td><code>{esc(f.unique_id)}</code></td><td>{_status(f.status)}</td>'
            f'<td class="k">{esc(_when(f.max_loaded_at))}</td><td class="n">{esc(seconds_text(f.age_seconds))}</td>'
            f'<td class="k">{esc(_when(f.checked_at))}</td><td class="n">{f.warned} / {f.errored} / {f.checks}</td>'
            f'<td class="msg">{esc(_clip(f.message))}</td></tr>'
            for f in self.data.freshness
        ]
        head = (
            "source",
            "status",
            "loaded up to (UTC)",
            "age then",
            "checked (UTC)",
            "warn / error / checks",
            "message",
        )
        body = (
            _table(head, rows, frozenset({3, 5}))
            if rows
            else _none("No source freshness results in the period (dbt-ferry run -- source freshness records them).")
        )
        return _section("freshness", "Source freshness", body)


def render_report(data: ReportData, *, runs_url: str) -> str:
    """The report as one HTML document; a run's artifacts are linked as ``runs_url`` + ``<invocation_id>/``."""
    view = _Page(data, runs_url)
    where = f"{data.project} in {data.environment}" if data.project else data.environment
    body = (
        view.header()
        + view.runs()
        + view.slower()
        + view.flaky()
        + view.failures()
        + view.models()
        + view.freshness()
        + f"<footer>dbt-ferry {esc(DBT_FERRY_VERSION)} · {data.node_rows} node results read</footer>"
    )
    return page(f"Run history: {where}", body, css=CSS, script=SCRIPT)


def save_report(data: ReportData, dest: Path, *, runs_url: str, started: float | None = None) -> ReportResult:
    """Render ``data`` and write it to ``dest`` (a temporary name, then renamed)."""
    started = timer.perf_counter() if started is None else started
    text = render_report(data, runs_url=runs_url)
    write_atomic(dest, text)
    return ReportResult(
        path=dest,
        environment=data.environment,
        since=data.since,
        runs=len(data.runs),
        node_rows=data.node_rows,
        size=len(text.encode()),
        seconds=timer.perf_counter() - started,
    )


def write_report(
    catalog: Catalog,
    namespace: str,
    environment: str,
    dest: Path,
    *,
    days: int = 30,
    runs_url: str | None = None,
    rule: RegressionsConfig | None = None,
) -> ReportResult:
    """Write the history report of ``environment`` (its runs of the last ``days`` days) to ``dest``.

    ``runs_url`` is where the runs' folders are, as the links see them (a run's link is ``runs_url`` +
    ``<invocation_id>/``); the default, ``../../runs/<env>/``, is right for a report published at
    ``docs/<env>/history.html`` in the store. ``rule`` is ``notify.regressions`` (its defaults when None): which
    models are slower than usual.
    """
    started = timer.perf_counter()
    data = load_report(catalog, namespace, environment, days=days, rule=rule)
    return save_report(data, dest, runs_url=runs_url or runs_from_docs(environment), started=started)
