"""Result-table commands: export (re-export a run), history and report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from dbt_ferry import api
from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out

if TYPE_CHECKING:
    from dbt_ferry.exports.history import History, ModelHistory


@click.command("export")
@env_option
@project_dir_option
@store_option
@click.option("--run-dir", type=click.Path(file_okay=False, exists=True), help="A dbt target/ or run folder.")
@click.option("--invocation", "invocation_id", metavar="ID", help="A run published in the store (runs/ENV/ID/).")
def export_cmd(
    env: str | None, project_dir: str | None, store: str | None, run_dir: str | None, invocation_id: str | None
) -> None:
    """Export one run's results into the environment's tables (again: exporting twice leaves one copy)."""
    result = api.export(env, run_dir, invocation_id=invocation_id, project_dir=project_dir, store=store)
    rows = ", ".join(f"{table} {count}" for table, count in result.rows.items())
    out.print(f"Exported {result.invocation_id}: {rows} rows in {result.seconds:.2f} s")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


def _clip(text: str | None, limit: int = 80) -> str:
    return " ".join((text or "").split())[:limit]


def _csv(rows: Sequence[Any], kind: type[Any]) -> str:
    """One CSV table: a header of the dataclass' fields, one line per row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(kind)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    return buffer.getvalue().rstrip("\n")


def _print_history(history: History) -> None:
    runs = Table(title=f"Runs in {history.environment} since {history.since}", title_justify="left")
    for column in ("started (UTC)", "status", "exit", "seconds", "version", "command", "nodes", "failures"):
        runs.add_column(column, no_wrap=column != "command")
    for run in history.runs:
        runs.add_row(
            _when(run.started_at),
            "passed" if run.success else "FAILED",
            str(run.exit_code if run.exit_code is not None else ""),
            _seconds(run.elapsed_seconds),
            run.version or "",
            run.what_ran,
            str(run.nodes or 0),
            str(run.failures),
        )
    out.print(runs if history.runs else f"No runs in {history.environment} since {history.since}")
    if history.slowest:
        slow = Table(title="Slowest models and snapshots (successful runs)", title_justify="left")
        for column in ("node", "runs", "avg s", "last s", "trend"):
            slow.add_column(column, no_wrap=True)
        for model in history.slowest:
            arrow = "↑" if model.trend > 1.2 else "↓" if model.trend < 0.8 else "→"
            slow.add_row(
                model.unique_id, str(model.runs), f"{model.average_seconds:.2f}", f"{model.last_seconds:.2f}",
                f"{arrow} {model.trend:.2f}x",
            )  # fmt: skip
        out.print(slow)
    for title, nodes in (("Failing models, seeds and snapshots", history.failing_models),
                         ("Most-failing tests", history.failing)):  # fmt: skip
        if not nodes:
            continue
        failing = Table(title=title, title_justify="left")
        for column in ("node", "failures", "runs", "last status", "last message"):
            failing.add_column(column)
        for node in nodes:
            failing.add_row(
                node.unique_id, str(node.failures), str(node.runs), node.last_status or "", _clip(node.last_message)
            )
        out.print(failing)


def _print_model(history: ModelHistory) -> None:
    if not history.runs:
        out.print(f"No runs of {history.unique_id} in {history.environment} since {history.since}")
        return
    runs = Table(
        title=f"Last runs of {history.unique_id} in {history.environment} since {history.since}", title_justify="left"
    )
    for column in ("started (UTC)", "status", "seconds", "version", "invocation", "message"):
        runs.add_column(column, no_wrap=column != "message")
    for run in history.runs:
        runs.add_row(
            _when(run.started_at), run.status or "", _seconds(run.seconds), run.version or "", run.invocation_id,
            _clip(run.message),
        )  # fmt: skip
    out.print(runs)


@click.command("history")
@env_option
@project_dir_option
@store_option
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True, help="How far back to look.")
@click.option("--model", metavar="NAME", help="One model's (seed's, snapshot's) last runs: its unique_id or name.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="csv: the runs only (with --model, that model's runs), one header line and one line per run.",
)
def history_cmd(
    env: str | None, project_dir: str | None, store: str | None, days: int, model: str | None, fmt: str
) -> None:
    """Recent runs and what they ran, slowest models, failing models and tests, from the result tables."""
    from dbt_ferry.exports.history import ModelHistory, ModelRun, RunRow  # pyiceberg: only for this command

    history = api.history(env, days=days, model=model, project_dir=project_dir, store=store)
    if fmt == "json":
        out.print(json.dumps(history.to_dict(), indent=2), emoji=False)
    elif fmt == "csv":
        rows, kind = (history.runs, ModelRun) if isinstance(history, ModelHistory) else (history.runs, RunRow)
        out.print(_csv(rows, kind), emoji=False)
    elif isinstance(history, ModelHistory):
        _print_model(history)
    else:
        _print_history(history)


@click.command("report")
@env_option
@project_dir_option
@store_option
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="How far back to look.")
@click.option(
    "--out",
    "dest",
    type=click.Path(dir_okay=False, path_type=str),
    help="The HTML file to write (default: history-ENV.html in the current directory).",
)
def report_cmd(env: str | None, project_dir: str | None, store: str | None, days: int, dest: str | None) -> None:
    """Write the history report: one offline HTML file of runs, slow models, flaky tests and failures."""
    from dbt_ferry.exports.html import size_text

    result = api.report(env, days=days, out=dest, project_dir=project_dir, store=store)
    out.print(
        f"Wrote {result.path}: {result.runs} runs of {result.environment} since {result.since}, "
        f"{size_text(result.size)} in {result.seconds:.2f} s"
    )
