"""The end of every job, in or out of Prefect, normal or stopped: publish outputs, export, summarise, notify.

:func:`finish` is the one finalisation sequence; the runner (a Prefect flow's tasks, or the plain runner) only
decides how each phase is wrapped and reported.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbt_ferry.config.models import EnvironmentConfig, StoreConfig
from dbt_ferry.core.errors import EXIT_SUCCESS
from dbt_ferry.core.layout import history_key
from dbt_ferry.core.masking import mask_vars, scrub_file
from dbt_ferry.core.results import load_results, parse_run_results
from dbt_ferry.core.runinfo import RUN_INFO_NAME, RunInfo
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.notify import failure_notification, send_notification
from dbt_ferry.runtime.changed import state_aware, state_aware_line, state_selection
from dbt_ferry.runtime.outputs import Publication, publish_outputs
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobSpec
from dbt_ferry.runtime.state import StateOrigin, state_trust
from dbt_ferry.runtime.steps import STATE_AFTER
from dbt_ferry.storage import open_store

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from dbt_ferry.runtime.runner import Runner

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    """An error from a library (pyiceberg, SQLAlchemy, plotly) as one line: its type and the message's first line
    (SQLAlchemy's go on with the SQL statement and a link)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else 'no message'}"


def run_info(spec: JobSpec, report: JobReport) -> RunInfo:
    request = spec.request
    return RunInfo(
        project=spec.manifest.project,
        environment=spec.environment.name,
        release_version=spec.manifest.version,
        git_commit=spec.manifest.git_commit,
        dbt_version=spec.manifest.dbt_version,
        adapter_type=spec.target_type,
        target=spec.target,
        command=spec.command_text,
        select=state_selection(spec) or request.select,
        exclude=request.exclude,
        full_refresh=request.full_refresh,
        vars=mask_vars(request.vars, spec.environment.secret_vars)[0],
        threads=request.threads,
        started_at=report.started_at,
        completed_at=report.completed_at,
        exit_code=report.exit_code,
        prefect_flow_run_id=report.flow_run_id,
        retry_of=spec.retry_of,
    )


def _write_timing_chart(
    spec: JobSpec, results: dict[str, Any], target: Path, report: JobReport, manifest: dict[str, Any] | None
) -> None:
    """``manifest``: dbt's, whose dependency graph gives the chart its critical path."""
    try:
        from dbt_ferry.exports.timing import write_timing_chart

        title = f"{spec.manifest.project} {spec.manifest.version} in {spec.environment.name}: model timing"
        write_timing_chart(results, title, target / "timing.html", manifest=manifest)
    except Exception as exc:  # noqa: BLE001 - a chart never fails a job
        report.problems.append(f"timing chart not written: {_one_line(exc)}")
        log.warning("timing chart not written: %s", exc)


def _manifest(target: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def collect_outputs(spec: JobSpec, report: JobReport) -> None:
    """Read run results, write ferry.json and the timing chart, publish what exists; problems go into ``report``."""
    project = Path(spec.project_dir)
    target = project / "target"
    report.completed_at = report.completed_at or datetime.now(UTC)
    results = load_results(target)  # read once: the summary and the timing chart both need it
    report.summary = parse_run_results(results) if results is not None else None
    invocation_id = (report.summary.invocation_id if report.summary else None) or f"ferry-{uuid.uuid4()}"
    ci = spec.environment.ci
    _scrub_secret_vars(spec, project)
    chart = not ci and spec.environment.exports.timing_chart and results is not None
    manifest = _manifest(target) if chart or state_aware(spec) else None  # read once, for both (10 MB at N=1000)
    if state_aware(spec):
        report.state_aware = state_aware_line(spec, results, manifest)
    if target.is_dir():
        (target / RUN_INFO_NAME).write_bytes(run_info(spec, report).to_json())
    if chart and results is not None:
        _write_timing_chart(spec, results, target, report, manifest)  # published with the run's artifacts
    store = open_store(spec.store)
    report.store_url = store.url
    whole = report.exit_code == EXIT_SUCCESS and spec.channel_release and not ci and not spec.has_selection
    whole = whole and spec.command[0] in STATE_AFTER
    failed = None if report.exit_code == EXIT_SUCCESS else _failed_run(spec, report, invocation_id)
    publication = Publication(environment=_state_origin(spec, store) if whole else None, failed=failed)
    published = publish_outputs(store, spec.environment.name, project, invocation_id, publication)
    report.docs, report.run_prefix, report.state = published.docs, published.run_prefix, published.state
    report.timing = published.timing
    report.problems += published.problems
    report.outputs_lost = report.outputs_lost or bool(published.lost)


def _scrub_secret_vars(spec: JobSpec, project: Path) -> None:
    """Mask secret ``--vars`` values in what dbt wrote (``target/*``, ``logs/dbt.log``) before any of it is
    published: dbt's steps are over, and these are the job's own copies."""
    values = spec.secret_values
    if not values:
        return
    files = [p for p in (project / "target").glob("*") if p.is_file() and not p.is_symlink()]
    files += [p for p in [project / "logs" / "dbt.log"] if p.is_file()]
    scrubbed = [p.name for p in files if scrub_file(p, values)]
    if scrubbed:
        log.info("secret --vars values masked in %s", ", ".join(sorted(scrubbed)))


def _failed_run(spec: JobSpec, report: JobReport, invocation_id: str) -> bytes:
    record = {
        "invocation_id": invocation_id,
        "release_version": spec.manifest.version,
        "command": spec.command_text,
        "exit_code": report.exit_code,
        "completed_at": (report.completed_at or datetime.now(UTC)).isoformat(),
    }
    return (json.dumps(record, indent=2) + "\n").encode()


def _state_origin(spec: JobSpec, store: ArtifactStore) -> StateOrigin:
    return StateOrigin(state_trust(spec.environment, store), spec.manifest.version, spec.manifest.build_id)


_MTIME_SLACK_S = 1.0


def _written_by_this_job(target: Path, report: JobReport) -> bool:
    """dbt wrote the results in ``target`` during this job (each invocation has a new id): none was exported yet."""
    if report.started_at is None:
        return False
    # A file's mtime comes from the kernel's coarse clock, a tick behind the wall clock: a second's slack.
    started = report.started_at.timestamp() - _MTIME_SLACK_S
    files = [target / name for name in ("run_results.json", "sources.json") if (target / name).is_file()]
    return bool(files) and all(path.stat().st_mtime >= started for path in files)


def export_tables(spec: JobSpec, report: JobReport) -> None:
    """Write the run into the result tables (not in CI); a failure is a problem, never an exit code."""
    exports = spec.environment.exports
    target = Path(spec.project_dir) / "target"
    has_results = (target / "run_results.json").is_file() or (target / "sources.json").is_file()
    if spec.environment.ci or not exports.tables or not has_results:
        return
    try:
        from dbt_ferry.exports.catalog import open_catalog
        from dbt_ferry.exports.tables import export_run

        catalog = open_catalog(exports.catalog, spec.store)
        result = export_run(
            catalog, exports.namespace, target, run_info(spec, report), compiled_code=exports.compiled_code,
            new_invocations=_written_by_this_job(target, report),
        )  # fmt: skip
        report.exported = result.rows
    except Exception as exc:  # noqa: BLE001 - catalogs fail in many ways; the job's outcome stands
        message = f"run results were not exported to the tables: {_one_line(exc)}"
        report.problems.append(message)
        report.outputs_lost = True
        log.error("%s", message)
        return
    _regressions(spec, report, catalog, result.invocation_id)
    _history_report(spec, report, catalog, target)


def _regressions(spec: JobSpec, report: JobReport, catalog: Catalog, invocation_id: str) -> None:
    """``notify.regressions``: models much slower than usual and tests that newly fail, named in the notification."""
    rule = spec.environment.notify.regressions
    if rule is None:
        return
    try:
        from dbt_ferry.exports.regressions import find_regressions, regression_lines

        found = find_regressions(
            catalog, spec.environment.exports.namespace, spec.environment.name, invocation_id, rule
        )
        report.regressions = regression_lines(found)
    except Exception as exc:  # noqa: BLE001 - a check of the history never changes the job's outcome
        report.problems.append(f"regressions were not checked: {_one_line(exc)}")


def _history_report(spec: JobSpec, report: JobReport, catalog: Catalog, target: Path) -> None:
    """The environment's history report, written from the tables the run was just exported to, published as
    ``docs/<env>/history.html`` after every job."""
    try:
        from dbt_ferry.exports.report import write_report

        environment = spec.environment
        path = target / "history.html"
        write_report(
            catalog, environment.exports.namespace, environment.name, path, rule=environment.notify.regressions
        )
        open_store(spec.store).upload(history_key(environment.name), path)
        report.history = history_key(environment.name)
    except Exception as exc:  # noqa: BLE001 - a page never fails a job
        report.problems.append(f"the history report was not published: {_one_line(exc)}")


def should_notify(spec: JobSpec, report: JobReport) -> bool:
    """On failure (``notify.on``), always, or never; a passed run whose outputs could not all be published or
    exported counts as a failure here; with ``notify.regressions``, also a passed run that has some."""
    config = spec.environment.notify
    if spec.environment.ci or config.on == "never":
        return False
    return config.on == "always" or report.exit_code != 0 or report.outputs_lost or bool(report.regressions)


def notify(spec: JobSpec, report: JobReport) -> list[str]:
    """Send to the configured URLs; return problems (never raise)."""
    notification = failure_notification(
        project=spec.manifest.project,
        environment=spec.environment.name,
        version=spec.manifest.version,
        exit_code=report.exit_code,
        outcome=report.outcome,
        summary=report.summary,
        error=report.error,
        flow_run=report.flow_run_id,
        flow_run_url=report.flow_run_url,
        problems=report.problems,
        regressions=report.regressions,
        outputs_lost=report.outputs_lost,
    )
    config = spec.environment.notify
    problems = send_notification(config, notification)
    report.notified = bool(config.urls or config.block) and not problems
    return problems


def finish_modules(environment: EnvironmentConfig, store: StoreConfig) -> list[str]:
    """What the phases below import for ``environment``: the chart's page, pyiceberg with the catalog's module,
    pyarrow, the history report."""
    exports, names = environment.exports, list[str]()
    if environment.ci:
        return names
    if exports.timing_chart:
        names.append("dbt_ferry.exports.timing")
    if exports.tables:
        from dbt_ferry.exports.catalog import catalog_module

        names += [catalog_module(exports.catalog, store), "pyiceberg.io.pyarrow", "dbt_ferry.exports.tables"]
        names.append("dbt_ferry.exports.report")
        if environment.notify.regressions is not None:
            names.append("dbt_ferry.exports.regressions")
    return names


def _import_all(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the phase that needs it imports it again and reports the error
            log.debug("preloading %s failed: %s", name, exc)
            return


def preload_finish(environment: EnvironmentConfig, store: StoreConfig) -> threading.Thread | None:
    """Import the end's libraries in a thread while dbt runs in its own process, so that the job's end does not
    wait ~1 s for them after dbt (the price: their ~85 MiB are held from then on rather than from the end)."""
    names = finish_modules(environment, store)
    if not names:
        return None
    thread = threading.Thread(target=_import_all, args=(names,), name="dbt-ferry-preload", daemon=True)
    thread.start()
    return thread


def finish(spec: JobSpec, report: JobReport, runner: Runner) -> None:
    """Publish what exists, export it to the result tables, summarise, notify — once per job."""
    if report.finished:
        return
    runner.phase("publish outputs", lambda: collect_outputs(spec, report), report)
    runner.phase("export results", lambda: export_tables(spec, report), report)
    runner.phase("summary", lambda: runner.summary(spec, report), report)
    if should_notify(spec, report):
        runner.phase("notify", lambda: report.problems.extend(notify(spec, report)), report)
    report.finished = True
