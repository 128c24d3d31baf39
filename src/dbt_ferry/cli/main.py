"""The ``dbt-ferry`` command: one group, one error handler at the edge."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, NoReturn

import click

from dbt_ferry.cli.ecs import ecs_group
from dbt_ferry.cli.exports import export_cmd, history_cmd, report_cmd
from dbt_ferry.cli.init import init_cmd
from dbt_ferry.cli.prune import prune_cmd
from dbt_ferry.cli.release import fetch_cmd, package_cmd, promote_cmd, publish_cmd, releases_cmd
from dbt_ferry.cli.run import retry_cmd, run_cmd
from dbt_ferry.cli.state import state_cmd
from dbt_ferry.console import configure_logging, error
from dbt_ferry.core.constants import ENV_CACHE_DIR, ENV_DEBUG, ENV_WORK_DIR, ENVIRONMENT_VARIABLES
from dbt_ferry.core.errors import EXIT_CODES, EXIT_LOCAL_DISK, EXIT_UNEXPECTED, FerryError
from dbt_ferry.core.exiting import exit_now
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.deploy.ecs_settings import ECS_ENVIRONMENT_VARIABLES, ECS_EXIT_CODES

_EPILOG = (
    "\b\nEnvironment variables:\n"
    + "\n".join(f"  {name:<30} {text}" for name, text in {**ENVIRONMENT_VARIABLES, **ECS_ENVIRONMENT_VARIABLES}.items())
    + "\n\n\b\nExit codes:\n"
    + "\n".join(f"  {code:<3} {text}" for code, text in sorted({**EXIT_CODES, **ECS_EXIT_CODES}.items()))
)


def _debug_from_env() -> bool:
    return os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes")


@click.group(epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(DBT_FERRY_VERSION, prog_name="dbt-ferry")
@click.option("--debug", is_flag=True, help="Show debug logs and tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Package a dbt project into immutable releases, store them, fetch and run them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or _debug_from_env()
    configure_logging(ctx.obj["debug"])


cli.add_command(init_cmd)
cli.add_command(package_cmd)
cli.add_command(publish_cmd)
cli.add_command(releases_cmd)
cli.add_command(promote_cmd)
cli.add_command(fetch_cmd)
cli.add_command(run_cmd)
cli.add_command(retry_cmd)
cli.add_command(state_cmd)
cli.add_command(prune_cmd)
cli.add_command(export_cmd)
cli.add_command(history_cmd)
cli.add_command(report_cmd)
cli.add_command(ecs_group)


#: What a full or read-only disk raises: no space, quota exceeded, read-only file system.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; turn every :class:`FerryError` into one line on stderr and its exit code."""
    debug = _debug_from_env() or "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="dbt-ferry", standalone_mode=False)
    except FerryError as exc:
        if debug:
            traceback.print_exc()
        error(" ".join(str(exc).split()))  # one line, whatever a message carried along
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        error("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a bare traceback
        if debug:
            traceback.print_exc()
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            where = f" writing {exc.filename}" if exc.filename else ""
            error(
                f"{exc.strerror}{where} — free space there, or point {ENV_WORK_DIR}, {ENV_CACHE_DIR} or --dest "
                "at a disk with room"
            )
            sys.exit(EXIT_LOCAL_DISK)
        text = " ".join(str(exc).split()) or "no message"
        error(f"unexpected error: {type(exc).__name__}: {text[:400]} — run again with --debug for the traceback")
        sys.exit(EXIT_UNEXPECTED)


def entry() -> NoReturn:
    """The ``dbt-ferry`` script: :func:`main`, then an exit that skips the interpreter's teardown."""
    try:
        main()
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)
