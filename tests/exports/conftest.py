"""The job fixtures of tests/runtime, for the job export tests."""

from __future__ import annotations

from tests.runtime.conftest import RunJob, run_job, store  # noqa: F401
