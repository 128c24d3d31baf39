"""The image holds dbt-ferry without extras and runs `dbt-ferry run`: exactly what
tests/runtime/test_container.py rebuilds as a clean virtualenv (no Docker engine here) and runs against S3."""

from __future__ import annotations

import re

from dbt_ferry.deploy.ferry_source import INDEX, FerrySource, install_step
from dbt_ferry.deploy.render import BASE_IMAGE, PYTHON_VERSION, fill, load_template


def _dockerfile(source: FerrySource) -> str:
    values = {"project": "p", "stack_template": "s", "cd_workflow_name": "cd", "base_image": BASE_IMAGE}
    return fill(load_template("Dockerfile"), {**values, "install_ferry": install_step(source, "0.1.0")})


def test_dockerfile_installs_only_the_bootstrap_and_runs_the_job() -> None:
    wheel = FerrySource("wheel", wheel="dbt_ferry-0.1.0-py3-none-any.whl")
    git = FerrySource("git", url="https://example.com/dbt-ferry", rev="v1")
    for source, install in [
        (INDEX, 'pip install --no-cache-dir "dbt-ferry==${DBT_FERRY_VERSION}" \\'),
        (wheel, "pip install --no-cache-dir /tmp/wheels/dbt_ferry-0.1.0-py3-none-any.whl \\"),
        (git, 'pip install --no-cache-dir "dbt-ferry @ git+https://example.com/dbt-ferry@v1" \\'),
    ]:
        text = _dockerfile(source)
        assert re.findall(r"pip install [^\n]*", text) == [install]  # dbt-ferry alone, no extras
        assert 'ENTRYPOINT ["dbt-ferry", "run"]' in text
        assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
        # The base is pinned by the digest of its image index (one for every platform).
        assert re.search(rf"^FROM python:{PYTHON_VERSION}-slim-bookworm@sha256:[0-9a-f]{{64}}$", text, re.MULTILINE)
