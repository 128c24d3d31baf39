"""Every environment variable dbt-ferry reads, declared once."""

from __future__ import annotations

ENV_ENVIRONMENT = "DBT_FERRY_ENV"
ENV_STORE = "DBT_FERRY_STORE"
ENV_PROJECT_DIR = "DBT_FERRY_PROJECT_DIR"
ENV_TARGET = "DBT_FERRY_TARGET"
ENV_CACHE_DIR = "DBT_FERRY_CACHE_DIR"
ENV_DEBUG = "DBT_FERRY_DEBUG"
ENV_WORK_DIR = "DBT_FERRY_WORK_DIR"
ENV_NO_PREFECT = "DBT_FERRY_NO_PREFECT"
ENV_RELEASE_KEY = "DBT_FERRY_RELEASE_KEY"
ENV_ARCHIVE_MAX_MEMBERS = "DBT_FERRY_ARCHIVE_MAX_MEMBERS"
ENV_ARCHIVE_MAX_BYTES = "DBT_FERRY_ARCHIVE_MAX_BYTES"
ENV_ARCHIVE_MAX_DEPTH = "DBT_FERRY_ARCHIVE_MAX_DEPTH"
ENV_S3_READ_TIMEOUT = "DBT_FERRY_S3_READ_TIMEOUT"

#: What each variable does, for ``--help`` and the README.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    ENV_ENVIRONMENT: "environment to use when --env is not given",
    ENV_STORE: "store for every command, overriding the configuration: a folder, file://PATH or s3://BUCKET/PREFIX",
    ENV_PROJECT_DIR: "dbt project directory when --project-dir is not given (default: the current directory)",
    ENV_TARGET: "dbt target, overriding the environment's configured target",
    ENV_CACHE_DIR: "where unpacked environment packs are cached (default: ~/.cache/dbt-ferry)",
    ENV_DEBUG: "set to 1 to show tracebacks on errors, like --debug",
    ENV_WORK_DIR: "parent folder of the runs' work directories dbt-ferry-ENV-DIGEST/ (default: the temporary folder)",
    ENV_NO_PREFECT: "set to 1 to run jobs without Prefect, like --no-prefect",
    ENV_RELEASE_KEY: "the KMS key releases must be signed with (trust.release_key), set outside the release",
    ENV_ARCHIVE_MAX_MEMBERS: "most members one extracted archive may hold (default 500000)",
    ENV_ARCHIVE_MAX_BYTES: "most uncompressed bytes one extracted archive may hold (default 16 GiB)",
    ENV_ARCHIVE_MAX_DEPTH: "deepest path one extracted archive may hold (default 48)",
    ENV_S3_READ_TIMEOUT: "seconds an S3 read waits for the next bytes before it retries or resumes (default 60)",
}
