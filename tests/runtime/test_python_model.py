"""A Python model that raises: the run fails like bare dbt (exit 1), and the summary and the notification end with
the exception dbt reports (``ModuleNotFoundError: …``), however long the traceback before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_ferry.notify.message import failure_notification
from dbt_ferry.runtime.report import report_lines
from tests.runtime.conftest import RunJob

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = """def model(dbt, session):
    dbt.config(materialized="table")
    import not_a_module_of_this_project  # noqa: F401

    return dbt.ref("stg_orders")
"""


def test_a_python_model_s_exception_reaches_the_summary_and_the_notification(run_job: RunJob, shop: Path) -> None:
    (shop / "models" / "marts" / "py_broken.py").write_text(MODEL)
    report = run_job(no_prefect=True, docs=False, select=("py_broken",))
    assert report.exit_code == 1
    assert report.summary is not None
    (failure,) = report.summary.failures
    assert failure.unique_id == "model.shop.py_broken"
    exception = "ModuleNotFoundError: No module named 'not_a_module_of_this_project'"
    assert len(failure.message or "") > 300  # longer than any line the summary or a notification shows
    (line,) = [line for line in report_lines(report) if "py_broken" in line]
    assert line.endswith(exception)
    note = failure_notification(
        project="shop", environment="local", version="1.0.0", exit_code=1, outcome=report.outcome,
        summary=report.summary, error=None, flow_run=None, flow_run_url=None,
    )  # fmt: skip
    assert f"… {exception}" in note.body
