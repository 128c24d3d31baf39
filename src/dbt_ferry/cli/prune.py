"""``dbt-ferry prune``: an environment's old runs (and releases) out of the store."""

from __future__ import annotations

import click

from dbt_ferry import api
from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out


@click.command("prune")
@env_option
@project_dir_option
@store_option
@click.option("--keep", type=click.IntRange(min=0), metavar="N", help="Keep the N newest runs (and releases).")
@click.option(
    "--older-than", "older_than", type=click.FloatRange(min=0), metavar="DAYS", help="Remove only what is older."
)
@click.option("--releases", is_flag=True, help="Also releases, by the same rule (none a channel or state needs).")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
def prune_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    keep: int | None,
    older_than: float | None,
    releases: bool,
    dry_run: bool,
) -> None:
    """Remove the environment's runs (runs/ENV/<invocation_id>/) beyond the N newest (--keep) and/or older than
    DAYS (--older-than; both given: both must hold); with --releases, releases too. Never removed: the last failed
    run (dbt-ferry retry), the run of the environment's state, a release any channel points at or would roll back
    to, a release any state or last failed run was made with, and what cannot be dated.
    """
    plan = api.prune(
        env, project_dir, keep=keep, older_than_days=older_than, releases=releases, dry_run=dry_run, store=store
    )
    verb = "Would remove" if dry_run else "Removed"
    what = f"{len(plan.runs)} run(s)" + (f" and {len(plan.releases)} release(s)" if releases else "")
    out.print(f"{verb} {what} of {plan.environment} ({len(plan.keys)} files); {plan.kept_runs} run(s) kept")
    for version in plan.releases:
        out.print(f"  release {version}")
    for name, why in sorted(plan.protected.items()):
        out.print(f"  kept {name}: {why}")
