"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dbt_ferry.core.constants import ENV_ENVIRONMENT, ENV_PROJECT_DIR, ENV_STORE

F = TypeVar("F", bound=Callable[..., Any])


def env_option(func: F) -> F:
    return click.option("--env", "env", metavar="ENV", help=f"Environment (default: ${ENV_ENVIRONMENT}).")(func)


def project_dir_option(func: F) -> F:
    return click.option(
        "--project-dir",
        type=click.Path(file_okay=False, path_type=str),
        help=f"dbt project directory (default: ${ENV_PROJECT_DIR} or the current directory).",
    )(func)


def store_option(func: F) -> F:
    return click.option(
        "--store",
        metavar="URL",
        help=f"Store to use instead of the configured one: a folder, file://PATH or s3://BUCKET/PREFIX "
        f"(default: ${ENV_STORE}, then the configuration).",
    )(func)
