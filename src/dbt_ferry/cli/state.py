"""``dbt-ferry state``: what the environment's state is, and whether a job would use it."""

from __future__ import annotations

import click

from dbt_ferry import api
from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out


@click.command("state")
@env_option
@project_dir_option
@store_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells.")
def state_cmd(env: str | None, project_dir: str | None, store: str | None, quiet: bool) -> None:
    """The environment's state (state/ENV/: the manifest for --state/--defer, dbt's parse cache): which release
    and run wrote it, and whether it is trusted and intact — every file is checked against its record.

    Exit codes: 0 usable, 5 there is none, 7 not trusted or not intact; 3 and 8 as for every command.
    """
    record = api.state(env, project_dir, store=store)
    if quiet:
        return
    signed = f"signed with {record.signature.key}" if record.signature else "not signed (a local store)"
    out.print(f"State of {record.environment}: release {record.release_version} [build {record.build_id}], "
              f"run {record.invocation_id}, {record.created_at:%Y-%m-%d %H:%M:%S} UTC, {signed}")  # fmt: skip
    for name, digest in sorted(record.files.items()):
        out.print(f"  {name:<24} {digest.size:>12,} bytes  sha256 {digest.sha256[:16]}…  intact")
