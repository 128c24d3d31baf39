"""dbt's result vocabulary as the summary and notifications speak it: dbt's own counts, messages kept readable."""

from __future__ import annotations

from dbt_ferry.core.results import NodeResult, RunSummary, brief_message

TRACEBACK = (
    "Runtime Error in model py_broken (models/marts/py_broken.py)\n  Python model failed:\n"
    "  Traceback (most recent call last):\n"
    '    File "/opt/venv/lib/python3.11/site-packages/dbt/adapters/duckdb/environments/__init__.py", line 286, in '
    "run_python_job\n      df = module.model(dbt, con)\n           ^^^^^^^^^^^^^^^^^^^^^^\n"
    '    File "/tmp/tmprimgkng0.py", line 3, in model\n      import pandas\n      ^^^^^^^^^^^^^\n'
    "  ModuleNotFoundError: No module named 'pandas'\n  "
)


def _summary(*statuses: str) -> RunSummary:
    results = tuple(NodeResult(f"model.p.m{i}", s, 0.1, None, None, None) for i, s in enumerate(statuses))
    return RunSummary("id", "build", 1.0, None, "1.11.0", results)


def test_counts_are_dbt_s_words() -> None:
    assert _summary("success", "pass").counts_line() == "PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"
    line = _summary("success", "fail", "error", "warn", "skipped", "no-op", "partial success").counts_line()
    assert line == "PASS=1 WARN=1 ERROR=3 SKIP=1 NO-OP=1 TOTAL=7"
    assert _summary().counts_line() == "no nodes"


def test_a_long_traceback_keeps_its_exception() -> None:
    for limit in (120, 200, 300):
        text = brief_message(TRACEBACK, limit)
        assert len(text) <= limit
        assert text.startswith("Runtime Error in model py_broken")
        assert text.endswith(" … ModuleNotFoundError: No module named 'pandas'")
        assert "\n" not in text


def test_short_messages_are_whole_and_other_long_ones_are_clipped() -> None:
    assert brief_message("Binder Error:\n  column x\n  not found", 300) == "Binder Error: column x not found"
    long = "Database Error " + "x" * 400 + "\n  ^^^^^^"
    text = brief_message(long, 100)
    assert len(text) == 100 and text.endswith("…")
