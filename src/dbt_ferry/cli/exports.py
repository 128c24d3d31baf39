"""Result-table commands: export (re-export a run) and history."""

from __future__ import annotations

import json

import click
from rich.table import Table

from dbt_ferry import api
from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out


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


@click.command("history")
@env_option
@project_dir_option
@store_option
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True, help="How far back to look.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history_cmd(env: str | None, project_dir: str | None, store: str | None, days: int, fmt: str) -> None:
    """Recent runs, slowest models and their trend, and most-failing tests, from the result tables."""
    history = api.history(env, days=days, project_dir=project_dir, store=store)
    if fmt == "json":
        out.print(json.dumps(history.to_dict(), indent=2))
        return
    runs = Table(title=f"Runs in {history.environment} since {history.since}", title_justify="left")
    for column in ("started (UTC)", "status", "exit", "seconds", "version", "command", "nodes", "failures"):
        runs.add_column(column, no_wrap=True)
    for run in history.runs:
        status = "passed" if run.success else "FAILED"
        runs.add_row(
            (run.started_at or "")[:19].replace("T", " "),
            status,
            str(run.exit_code if run.exit_code is not None else ""),
            _seconds(run.elapsed_seconds),
            run.version or "",
            run.command or "",
            str(run.nodes or 0),
            str(run.failures),
        )
    out.print(runs if history.runs else f"No runs in {history.environment} since {history.since}")
    if history.slowest:
        slow = Table(title="Slowest models (successful runs)", title_justify="left")
        for column in ("model", "runs", "avg s", "last s", "trend"):
            slow.add_column(column, no_wrap=True)
        for model in history.slowest:
            arrow = "↑" if model.trend > 1.2 else "↓" if model.trend < 0.8 else "→"
            slow.add_row(
                model.unique_id, str(model.runs), f"{model.average_seconds:.2f}", f"{model.last_seconds:.2f}",
                f"{arrow} {model.trend:.2f}x",
            )  # fmt: skip
        out.print(slow)
    if history.failing:
        failing = Table(title="Most-failing tests", title_justify="left")
        for column in ("test", "failures", "runs", "last status", "last message"):
            failing.add_column(column)
        for test in history.failing:
            message = " ".join((test.last_message or "").split())[:80]
            failing.add_row(test.unique_id, str(test.failures), str(test.runs), test.last_status or "", message)
        out.print(failing)
