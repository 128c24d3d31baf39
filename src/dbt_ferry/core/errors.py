"""One exception tree for dbt-ferry; each class carries the process exit code it maps to.

Exit codes 0, 1 and 2 keep dbt's meaning (success / dbt ran and a node failed / dbt could not
run). dbt-ferry's own failure classes use the codes from 3 upwards, documented in the README.
"""

from __future__ import annotations

#: dbt's own meaning: everything passed / dbt ran and a node failed / dbt could not run.
EXIT_SUCCESS = 0
EXIT_NODE_FAILED = 1
EXIT_DBT_ERROR = 2
#: The job was interrupted: Ctrl-C (SIGINT) / stopped by SIGTERM (128 + the signal, as a shell reports it).
#: A failure dbt-ferry did not foresee (a bug, or a library's error it does not translate yet): sysexits' EX_SOFTWARE.
EXIT_UNEXPECTED = 70
#: A local disk dbt-ferry writes to (the work folder, the env cache, ``--dest``) is full or read-only.
EXIT_LOCAL_DISK = 74
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: The exit codes of a job that was stopped by a signal.
EXIT_SIGNALLED = frozenset({EXIT_INTERRUPTED, EXIT_TERMINATED})


class FerryError(Exception):
    """Base of every error dbt-ferry raises on purpose.

    ``message`` says what happened, ``hint`` says what to do about it.
    """

    exit_code: int = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class ConfigError(FerryError):
    """The configuration is missing, malformed or names something that does not exist."""

    exit_code = 3


class DbtUsageError(FerryError):
    """dbt could not run as asked: an unknown target, a missing adapter, a selection dbt refuses, an unsupported dbt.

    Found before anything slow starts, with the exit code dbt itself gives for these."""

    exit_code = EXIT_DBT_ERROR


class ProjectError(FerryError):
    """The dbt project cannot be packaged as it is (no version, a file outside the project...)."""

    exit_code = 4


class ReleaseNotFoundError(FerryError):
    """The release (or the channel naming it) does not exist in the store."""

    exit_code = 5


class ReleaseConflictError(FerryError):
    """A release with this version but other content is already published."""

    exit_code = 6


class IntegrityError(FerryError):
    """An artifact does not match its recorded checksum, or an archive is unsafe to extract."""

    exit_code = 7


class UnsafeArchiveError(IntegrityError):
    """An archive member would land outside the target, or is a device file."""


class StoreError(FerryError):
    """The store cannot be reached: missing credentials, missing bucket, unreachable endpoint..."""

    exit_code = 8


class StoreNotFoundError(StoreError):
    """A key asked for does not exist in the store."""


class StorePreconditionError(StoreError):
    """A conditional write found the key already present."""


class BuildError(FerryError):
    """An external build step (uv, git) failed."""

    exit_code = 9


class ExportError(FerryError):
    """The result tables could not be written or read (catalog unreachable, permissions, bad artifacts)."""

    exit_code = 10


class NotifyError(FerryError):
    """A notification could not be delivered. Logged, never turned into an exit code."""


EXIT_CODES: dict[int, str] = {
    EXIT_SUCCESS: "success: everything dbt ran passed",
    EXIT_NODE_FAILED: "dbt ran and a node errored or a test failed",
    EXIT_DBT_ERROR: "dbt could not run (or a command-line usage error)",
    ConfigError.exit_code: "configuration error",
    ProjectError.exit_code: "the dbt project cannot be packaged",
    ReleaseNotFoundError.exit_code: "release or channel not found",
    ReleaseConflictError.exit_code: "release version already published with other content",
    IntegrityError.exit_code: "checksum mismatch or unsafe archive",
    StoreError.exit_code: "store unreachable (credentials, bucket, endpoint)",
    BuildError.exit_code: "an external build step failed (uv, poetry)",
    ExportError.exit_code: "the result tables could not be written or read (export, history, report)",
    EXIT_UNEXPECTED: "an unexpected error (run again with --debug for the traceback, and report it)",
    EXIT_LOCAL_DISK: "a local disk is full or read-only (the work folder, the env cache, --dest)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "the job was stopped by SIGTERM (ECS stopping the task, a Prefect cancel); outputs published",
}
