"""Generators of a project's deployment kit, and ``init``, which adopts an existing dbt project."""

from __future__ import annotations

from dbt_ferry.deploy.init import FileOutcome, InitResult, init_project

__all__ = ["FileOutcome", "InitResult", "init_project"]
