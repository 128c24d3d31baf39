"""The image holds dbt-ferry without extras and runs `dbt-ferry run`: exactly what
tests/runtime/test_container.py rebuilds as a clean virtualenv (no Docker engine here) and runs against S3."""

from __future__ import annotations

import re

from dbt_ferry.deploy.render import load_template


def test_dockerfile_installs_only_the_bootstrap_and_runs_the_job() -> None:
    text = load_template("Dockerfile")
    installs = re.findall(r"pip install [^\n]*", text)
    assert installs == ['pip install --no-cache-dir "dbt-ferry==${DBT_FERRY_VERSION}" \\']  # no extras
    assert 'ENTRYPOINT ["dbt-ferry", "run"]' in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert re.search(r"^FROM python:@@python_version@@-slim-bookworm$", text, re.MULTILINE)
