"""Typed configuration: frozen models, unknown keys rejected, backends chosen by ``type``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalStoreConfig(_Frozen):
    """A folder; a relative path is taken from the project directory."""

    type: Literal["local"] = "local"
    path: str = ".ferry/store"


class S3StoreConfig(_Frozen):
    """An S3 bucket and key prefix. The endpoint follows AWS_ENDPOINT_URL(_S3) like any boto3 client."""

    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    prefix: str = ""
    region: str | None = None


StoreConfig = Annotated[LocalStoreConfig | S3StoreConfig, Field(discriminator="type")]


class PackageConfig(_Frozen):
    """What goes into a release's code bundle, beyond the built-in exclusions."""

    exclude: tuple[str, ...] = ()


#: dbt events forwarded to the Prefect task log by default: node results, the run summary, and what
#: tells where a run stands. Events at or above ``events.level`` are forwarded whatever their name.
DEFAULT_EVENTS: tuple[str, ...] = (
    "MainReportVersion",
    "FoundStats",
    "ConcurrencyLine",
    "LogModelResult",
    "LogTestResult",
    "LogSeedResult",
    "LogSnapshotResult",
    "LogFreshnessResult",
    "LogNodeResult",
    "LogNodeNoOpResult",
    "LogBatchResult",
    "LogFunctionResult",
    "LogSkipBecauseError",
    "FinishedRunningStats",
    "EndOfRunSummary",
    "StatsLine",
    "RunResultError",
    "RunResultErrorNoMessage",
    "RunResultFailure",
    "RunResultWarning",
    "RunResultWarningMessage",
    "NoNodesForSelectionCriteria",
    "NoNodesSelected",
    "DepsInstallInfo",
    "DepsStartPackageInstall",
    "DebugCmdOut",
    "DebugCmdResult",
    "MainEncounteredError",
    "MainKeyboardInterrupt",
    # What a command prints as its result: `{{ log(..., info=True) }}` (run-operation), show, ls, compile.
    "JinjaLogInfo",
    "ShowNode",
    "ListCmdOut",
    "CompiledNode",
)

EventLevel = Literal["debug", "info", "warn", "error"]


class EventsConfig(_Frozen):
    """Which dbt events reach the Prefect task log, and whether each finished node is a Prefect event."""

    level: EventLevel = "warn"
    names: tuple[str, ...] = DEFAULT_EVENTS
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: One Prefect event ``dbt.node.<status>`` per node the command finishes.
    nodes: bool = True


class RegressionsConfig(_Frozen):
    """What counts as a regression worth a notification: a model far slower than its median, a test that newly
    failed. ``notify.regressions = {}`` switches it on with these defaults; ``false`` (or leaving it out) is off."""

    #: A model is slower than usual when it took more than ``factor`` times its median...
    factor: float = Field(default=3.0, gt=1)
    #: ... over its last ``runs`` successful runs (at least 3 are needed)...
    runs: int = Field(default=10, ge=3, le=1000)
    #: ... and at least this many seconds (a 0.1 s model taking 0.4 s is noise, not news).
    min_seconds: float = Field(default=1.0, ge=0)


class NotifyConfig(_Frozen):
    """Where failures are reported. Secrets stay in environment variables: ``${VAR}`` in a URL is expanded."""

    urls: tuple[str, ...] = ()
    block: str | None = None
    on: Literal["failure", "always", "never"] = "failure"
    timeout: float = Field(default=10.0, gt=0, le=60)
    #: None: off. A table (``{factor = 3.0, runs = 10}``) or ``true`` switches the regression check on.
    regressions: RegressionsConfig | None = None

    @field_validator("regressions", mode="before")
    @classmethod
    def _regressions_switch(cls, value: object) -> object:
        """``true`` is the defaults, ``false`` is off (an overlay can switch off what the base section set)."""
        if value is True:
            return RegressionsConfig()
        if value is False:
            return None
        return value


class SqlCatalogConfig(_Frozen):
    """An Iceberg SQL catalog: SQLite under a local store by default (``<store>/tables/``)."""

    type: Literal["sql"] = "sql"
    uri: str | None = None
    warehouse: str | None = None


class GlueCatalogConfig(_Frozen):
    """AWS Glue as the catalog, data under the S3 store (``<store>/tables/``), queryable by Athena."""

    type: Literal["glue"]
    region: str | None = None
    catalog_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    warehouse: str | None = None


class RestCatalogConfig(_Frozen):
    """Any Iceberg REST catalog (S3 Tables, Polaris, Nessie...); ``properties`` go to pyiceberg as they are,
    with ``${VAR}`` replaced from the environment (for tokens and credentials)."""

    type: Literal["rest"]
    uri: str
    warehouse: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


CatalogConfig = Annotated[SqlCatalogConfig | GlueCatalogConfig | RestCatalogConfig, Field(discriminator="type")]


class ExportsConfig(_Frozen):
    """Run results as Iceberg tables, and the timing chart."""

    tables: bool = True
    #: None: the sql catalog for a local store, Glue for an S3 store.
    catalog: CatalogConfig | None = None
    namespace: str = Field(default="dbt_ferry", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    compiled_code: bool = False
    timing_chart: bool = True


class TrustConfig(_Frozen):
    """What a job trusts beyond checksums."""

    #: An AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY; id, ARN or alias) the job signs the state it
    #: publishes with, and verifies before it uses state. Without it, state in a local store is trusted by its
    #: digests and state in any other store is not used.
    state_key: str | None = Field(default=None, min_length=1)
    #: An AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY) that ``publish`` signs release.json with; every
    #: fetch of the environment then refuses a release not signed with it. Without it, checksums only.
    release_key: str | None = Field(default=None, min_length=1)


class EnvironmentConfig(_Frozen):
    """One environment, after its overlay has been laid over the base section."""

    name: str
    store: StoreConfig = LocalStoreConfig()
    profiles: str = "profiles/{env}.yml"
    target: str | None = None
    aws_account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    ci: bool = False
    docs: bool = True
    package: PackageConfig = PackageConfig()
    events: EventsConfig = EventsConfig()
    notify: NotifyConfig = NotifyConfig()
    exports: ExportsConfig = ExportsConfig()
    trust: TrustConfig = TrustConfig()
    fail_on_empty_selection: bool = True
    #: ``dbt seed`` before the command (projects whose models read seeds loaded only on purpose).
    seed: bool = False
    #: ``dbt source freshness`` before the command; stale sources are a problem of the run, not its failure.
    freshness: bool = False
    #: State-aware runs: a ``build`` or ``run`` without a selection builds only what changed since the environment's
    #: last successful state (``state:modified+``, and ``source_status:fresher+`` with ``dbt source freshness``).
    state_aware: bool = False
    #: ``dbt retry`` of the failed and skipped nodes, up to this many times, when the command failed (exit 1).
    retries: int = Field(default=0, ge=0, le=5)
    #: Globs of ``--vars`` names whose values are secret (besides ``DBT_ENV_SECRET_*``): masked in what is kept.
    secret_vars: tuple[str, ...] = ()

    def profiles_path(self) -> str:
        return self.profiles.format(env=self.name)


#: Keys that may appear both in the base section and in an environment overlay.
ENVIRONMENT_KEYS = frozenset(EnvironmentConfig.model_fields) - {"name"}
