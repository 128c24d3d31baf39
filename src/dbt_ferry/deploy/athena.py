"""Athena, the reference design's engine: the dbt-athena profile of a cloud environment and the names it shares
with the stack (the work group, the Glue database of the models, the query-result and data locations).

``init --adapter athena``, or a project whose profile already has an ``athena`` target, gets a
``profiles/<env>.yml`` for each cloud environment without one: the environment's bucket and prefix hold the data
under ``athena/data/`` and the query results under ``athena/results/``; the work group (which enforces the result
location and its encryption) and the models' Glue database are created by the stack. Credentials are the task
role's: the profile holds no secret and reads no variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dbt_ferry.deploy.project import ident, slug

ATHENA = "athena"
#: The Glue Data Catalog as dbt-athena names it (the profile's ``database``).
DATA_CATALOG = "awsdatacatalog"
#: The store's folders of the warehouse (under the environment's prefix).
DATA_FOLDER = "athena/data"
RESULTS_FOLDER = "athena/results"
#: What a generated profile takes over from the project's own athena target, when it has one.
_CARRIED = ("database", "threads", "s3_data_naming", "num_retries", "poll_interval", "num_boto3_retries")


@dataclass(frozen=True)
class AthenaNames:
    """What the profile and the stack of one environment agree on."""

    work_group: str
    schema: str
    results: str
    data: str


def athena_names(project: str, environment: str, bucket: str, prefix: str) -> AthenaNames:
    """``jaffle``/``pro`` → work group ``jaffle-dbt-ferry-pro``, Glue database ``jaffle_pro``, and the locations
    ``s3://<bucket>/<prefix>/athena/{results,data}/`` (the stack's defaults are the same)."""
    root = f"s3://{bucket}/{prefix.strip('/')}/" if prefix.strip("/") else f"s3://{bucket}/"
    return AthenaNames(
        # The stack names it ${ProjectName}-dbt-ferry-${EnvironmentName}.
        work_group=f"{slug(project)}-dbt-ferry-{environment}",
        schema=f"{ident(project)}_{ident(environment)}",
        results=f"{root}{RESULTS_FOLDER}/",
        data=f"{root}{DATA_FOLDER}/",
    )


def athena_output(names: AthenaNames, region: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dbt-athena target: the stack's names, and what ``base`` (an athena target of the project) sets of
    :data:`_CARRIED`."""
    output: dict[str, Any] = {
        "type": ATHENA,
        "region_name": region,
        "database": DATA_CATALOG,
        "schema": names.schema,
        "work_group": names.work_group,
        "s3_staging_dir": names.results,
        "s3_data_dir": names.data,
        "s3_data_naming": "schema_table_unique",
        "threads": 4,
    }
    for key in _CARRIED:
        if base and key in base and "{{" not in str(base[key]):
            output[key] = base[key]
    return output


def athena_profile_text(profile: str, environment: str, output: dict[str, Any], stack: str) -> str:
    header = [
        f"# dbt profile of the environment {environment} on Athena (written by `dbt-ferry init`).",
        f"# The work group, the Glue database ({output['schema']}) and the S3 locations are those {stack} creates;",
        "# credentials are the task role's (no secret here). Models with a custom schema go to <schema>_<custom>,",
        "# which the task role may create too.",
    ]
    body = yaml.safe_dump(
        {profile: {"target": environment, "outputs": {environment: output}}}, sort_keys=False, default_flow_style=False
    )
    return "\n".join(header) + "\n" + body


def athena_target(outputs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The project's first athena target, if any."""
    return next((o for o in outputs.values() if isinstance(o, Mapping) and o.get("type") == ATHENA), None)
