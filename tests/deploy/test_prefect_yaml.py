"""deploy/ferry/prefect.yaml goes through Prefect's own `prefect deploy --all` code onto an ECS work pool, and a
flow run of each deployment becomes the container arguments of a valid `dbt-ferry run`.

The ECS work pool uses the base job template Prefect ships for prefect-aws's worker (no prefect-aws needed);
the worker side is Prefect's own job configuration resolution, as a worker does it for a flow run.
"""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ConfigDict
from rich.console import Console

from dbt_ferry.cli.run import run_cmd
from dbt_ferry.deploy import layout
from dbt_ferry.runtime.flow_run import is_worker_default_command
from tests.deploy.conftest import Adoptable

pytestmark = pytest.mark.integration

NETWORK = {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "DISABLED"}


def _ecs_base_job_template() -> dict[str, Any]:
    import prefect.server.api as api

    path = Path(api.__file__).parent / "collections_data" / "views" / "aggregate-worker-metadata.json"
    template: dict[str, Any] = json.loads(path.read_text())["prefect-aws"]["ecs"]["default_base_job_configuration"]
    return template


def test_prefect_loader_reads_every_deployment(jaffle: Adoptable) -> None:
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions

    jaffle.init()
    console = Console(file=io.StringIO(), width=200)
    configs, actions = _load_deploy_configs_and_actions(jaffle.root / layout.PREFECT_FILE, console=console)
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]  # no warning, no skipped section
    assert [c["name"] for c in configs] == [
        "jaffle-local",
        "jaffle-snd",
        "jaffle-snd-full-refresh",
        "jaffle-pro",
        "jaffle-pro-full-refresh",
    ]
    assert actions == {"build": [], "push": [], "pull": []}
    assert {c["entrypoint"] for c in configs} == {"dbt_ferry.runtime.flow:ferry_flow"}
    assert {c["enforce_parameter_schema"] for c in configs} == {True}
    local, *cloud = configs
    assert local["work_pool"]["job_variables"]["command"] == "dbt-ferry run"
    assert local["work_pool"]["job_variables"]["working_dir"] == "{{ $PWD }}"
    # On ECS the worker's own default command reaches `dbt-ferry run`: the parameters say what runs.
    assert ["command" in c["work_pool"]["job_variables"] for c in cloud] == [False] * 4
    assert [c["parameters"] for c in cloud] == [{}, {"full_refresh": True}] * 2


async def _deploy_and_resolve(root: Path) -> dict[str, Any]:
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions
    from prefect.cli.deploy._core import _run_multi_deploy
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate, WorkPoolCreate
    from prefect.workers.base import BaseJobConfiguration

    class EcsJobConfiguration(BaseJobConfiguration):
        model_config = ConfigDict(extra="allow")

    template = _ecs_base_job_template()
    console = Console(file=io.StringIO(), width=200)
    configs, actions = _load_deploy_configs_and_actions(root / layout.PREFECT_FILE, console=console)
    configs = [c for c in configs if c["work_pool"]["name"] != "dbt-ferry-local"]  # the ECS ones
    resolved: dict[str, Any] = {}
    async with get_client() as client:
        for env in ("snd", "pro"):
            await client.create_work_pool(
                WorkPoolCreate(name=f"dbt-ferry-{env}", type="ecs", base_job_template=template), overwrite=True
            )
            values = {
                "task_definition_arn": f"arn:aws:ecs:eu-west-1:123456789012:task-definition/jaffle-{env}:3",
                "cluster": f"arn:aws:ecs:eu-west-1:123456789012:cluster/jaffle-{env}",
                "vpc_id": "vpc-0a1b2c3d",
                "network_configuration": NETWORK,
            }
            for name, value in values.items():
                variable = VariableCreate(name=f"jaffle_{env}_{name}", value=value)
                existing = await client.read_variable_by_name(variable.name)
                if existing is not None:
                    await client.delete_variable_by_name(variable.name)
                await client.create_variable(variable)
        await _run_multi_deploy(
            configs, actions, deploy_all=True, console=console, is_interactive=lambda: False,
            prefect_file=root / layout.PREFECT_FILE,
        )  # fmt: skip
        for config in configs:
            deployment = await client.read_deployment_by_name(f"dbt-ferry/{config['name']}")
            pool = await client.read_work_pool(deployment.work_pool_name or "")
            jsonschema.validate(deployment.job_variables, pool.base_job_template["variables"])
            flow_run = await client.create_flow_run_from_deployment(deployment.id)
            job = await EcsJobConfiguration.resolve_for_flow_run(
                flow_run, client=client, work_pool=pool, worker_name="test-worker", deployment=deployment
            )
            resolved[config["name"]] = {"deployment": deployment, "job": job, "flow_run": flow_run}
    return resolved


def test_prefect_deploy_all_then_a_worker_resolves_the_dbt_ferry_command(jaffle: Adoptable, prefect_api: str) -> None:
    from prefect.utilities.asyncutils import run_coro_as_sync

    jaffle.init()
    resolved = run_coro_as_sync(_deploy_and_resolve(jaffle.root))
    assert resolved is not None
    expected = {
        "jaffle-snd": ("snd", ("0 6 * * *",), {}),
        "jaffle-snd-full-refresh": ("snd", (), {"full_refresh": True}),
        "jaffle-pro": ("pro", ("0 6 * * *",), {}),
        "jaffle-pro-full-refresh": ("pro", (), {"full_refresh": True}),
    }
    for name, (env, crons, params) in expected.items():
        deployment, job = resolved[name]["deployment"], resolved[name]["job"]
        assert deployment.work_pool_name == f"dbt-ferry-{env}"
        assert tuple(s.schedule.cron for s in deployment.schedules) == crons
        assert "env:" + env in deployment.tags
        variables = deployment.job_variables
        assert variables["network_configuration"] == NETWORK  # a Prefect variable keeps JSON as JSON
        assert variables["task_definition_arn"].endswith(f"task-definition/jaffle-{env}:3")

        request = job.model_extra["task_run_request"]
        assert request["taskDefinition"] == variables["task_definition_arn"]
        assert request["cluster"].endswith(f"cluster/jaffle-{env}")
        (override,) = request["overrides"]["containerOverrides"]
        assert override["name"] == "dbt-ferry"
        assert job.env["DBT_FERRY_ENV"] == env
        assert job.env["PREFECT__FLOW_RUN_ID"] == str(resolved[name]["flow_run"].id)
        assert deployment.parameters == params
        schema = deployment.parameter_openapi_schema["properties"]
        assert {"type": "string"} in schema["select"]["anyOf"]  # `--param select=tag:daily` as dbt takes it
        assert schema["command"]["default"] == "build"
        # No command in the deployment: Prefect's job configuration falls back to its default, which prefect-aws's
        # worker puts in the container override (shlex-split); the container runs its entrypoint `dbt-ferry run`
        # with it as arguments, which dbt-ferry reads as "the flow run's parameters".
        assert "command" not in override
        assert job.command == "prefect flow-run execute"
        context = run_cmd.make_context("run", shlex.split(job.command))
        assert is_worker_default_command(context.params["dbt_args"])
