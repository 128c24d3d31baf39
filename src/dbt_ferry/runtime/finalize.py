"""The end of every job, in or out of Prefect: publish outputs, summarise, notify."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from dbt_ferry.core.results import read_run_results
from dbt_ferry.notify import failure_notification, send_notification
from dbt_ferry.runtime.outputs import publish_outputs
from dbt_ferry.runtime.report import JobReport
from dbt_ferry.runtime.spec import JobSpec
from dbt_ferry.storage import open_store

log = logging.getLogger(__name__)


def collect_outputs(spec: JobSpec, report: JobReport) -> None:
    """Read run results and publish what exists; problems go into ``report``."""
    project = Path(spec.project_dir)
    report.summary = read_run_results(project / "target" / "run_results.json")
    invocation_id = (report.summary.invocation_id if report.summary else None) or f"ferry-{uuid.uuid4()}"
    store = open_store(spec.store)
    report.store_url = store.url
    ci = spec.environment.ci
    published = publish_outputs(
        store,
        spec.environment.name,
        project,
        invocation_id,
        docs=spec.docs_enabled and not ci,
        state=report.exit_code == 0 and spec.channel_release and not ci and not spec.has_selection,
    )
    report.docs, report.run_prefix, report.state = published.docs, published.run_prefix, published.state
    report.problems += published.problems


def should_notify(spec: JobSpec, report: JobReport) -> bool:
    config = spec.environment.notify
    if spec.environment.ci or config.on == "never":
        return False
    return config.on == "always" or report.exit_code != 0


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
    )
    problems = send_notification(spec.environment.notify, notification)
    report.notified = bool(spec.environment.notify.urls) and not problems
    return problems
