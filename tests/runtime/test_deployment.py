"""A Prefect deployment's flow run is the job: the `local` deployment of the deploy/ferry/prefect.yaml that
`dbt-ferry init` writes, deployed with `prefect deploy --prefect-file`, run by a real `prefect worker start` on a
process pool.

Everything is real: the Prefect test server, Prefect's own CLI for the pool, the deployment and its runs, a
worker process that starts `dbt-ferry run` in the project folder, dbt-duckdb on the example project.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventRelatedFilter

from dbt_ferry.config.loader import load_project
from dbt_ferry.deploy import init_project, layout
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore
from tests.conftest import EXAMPLE
from tests.runtime.test_sigterm import LAST_NODE_DONE, SLOW_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.e2e]

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
POOL = "dbt-ferry-local"
DEPLOYMENT = "dbt-ferry/shop-local"
#: How long one run of the example may take through the worker (it polls every second).
RUN_TIMEOUT = 180


@dataclass
class Deployed:
    project: Path
    store: Path
    env: dict[str, str]
    deployment_id: UUID

    def prefect(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", *args],
            env=self.env,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def publish(self, version: str, *, promote: bool) -> None:
        pyproject = self.project / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(text.replace('version = "1.0.0"', f'version = "{version}"', 1))
        try:
            built = package_release(load_project(self.project), self.project.parent / f"build-{version}")
            publish_release(LocalStore(self.store), built, environment="local", promote=promote)
        finally:
            pyproject.write_text(text)


def _publish_first(project: Path, store: Path) -> None:
    built = package_release(load_project(project), project.parent / "build-1.0.0")
    publish_release(LocalStore(store), built, environment="local", promote=True)


@pytest.fixture(scope="module")
def deployed(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    base = tmp_path_factory.mktemp("deployment")
    project = base / "shop"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".ferry"))
    init_project(project, environ={}, home=base)
    assert "shop-local" in (project / layout.PREFECT_FILE).read_text()
    store = project / ".ferry" / "store"  # the local environment's store, as the project configures it
    _publish_first(project, store)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PWD": str(project),  # what `{{ $PWD }}` in prefect.yaml reads, as a shell sets it
        "PREFECT_API_URL": prefect_api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_FERRY_WORK_DIR": str(base / "work"),
        "SHOP_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DBT_FERRY_ENV", None)
    deployed = Deployed(project, store, env, UUID(int=0))
    created = deployed.prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
    assert created.returncode == 0, created.stdout + created.stderr
    # As init says, from the project folder.
    done = deployed.prefect("deploy", "--prefect-file", layout.PREFECT_FILE, "--name", "shop-local")
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
    deployed.deployment_id = deployment.id
    assert deployment.work_pool_name == POOL
    assert deployment.enforce_parameter_schema is True
    assert deployment.job_variables["command"] == "dbt-ferry run"
    assert deployment.job_variables["working_dir"] == str(project)
    log = (base / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
        env=env,
        cwd=base,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield deployed
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


def _runs_since(deployed: Deployed, since: datetime) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            deployment_filter=None,
        )


def _wait_final(flow_run_id: UUID, timeout: float = RUN_TIMEOUT) -> FlowRun:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            if time.monotonic() > deadline:
                pytest.fail(f"flow run {flow_run.name} still {flow_run.state} after {timeout} s")
            time.sleep(1)


def _start(deployed: Deployed, *params: str) -> UUID:
    args = ["deployment", "run", DEPLOYMENT]
    for param in params:
        args += ["--param", param]
    done = deployed.prefect(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        (flow_run,) = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployed.deployment_id])),
            sort="EXPECTED_START_TIME_DESC",
            limit=1,
        )
    return flow_run.id


def _results(deployed: Deployed, flow_run: FlowRun) -> dict[str, object]:
    """The run_results.json the job published for this flow run (ferry.json names the flow run)."""
    for run_dir in (deployed.store / "runs" / "local").iterdir():
        if not run_dir.is_dir():
            continue  # last-failed.json
        info = json.loads((run_dir / "ferry.json").read_text())
        if info.get("prefect_flow_run_id") == str(flow_run.id):
            results: dict[str, object] = json.loads((run_dir / "run_results.json").read_text())
            return results
    pytest.fail(f"no published run of flow run {flow_run.id}")


def _logs(flow_run_id: UUID) -> list[str]:
    with get_client(sync_client=True) as client:
        records = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [r.message for r in records]


def test_a_deployment_run_is_the_job_and_ends_completed(deployed: Deployed) -> None:
    since = datetime.now(UTC)
    watched = deployed.prefect(
        "deployment", "run", DEPLOYMENT, "--watch", "--watch-timeout", str(RUN_TIMEOUT), timeout=RUN_TIMEOUT + 30
    )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "Completed" in watched.stdout, watched.stdout

    # Exactly one flow run: the deployment's, which the job ran as (no second "dbt-ferry" run of its own).
    runs = _runs_since(deployed, since)
    assert len(runs) == 1, [(r.name, r.deployment_id) for r in runs]
    (flow_run,) = runs
    assert flow_run.deployment_id == deployed.deployment_id
    assert flow_run.state is not None and flow_run.state.is_completed()
    assert flow_run.name == "shop-local-1.0.0-build"
    assert {"dbt-ferry", "env:local", "version:1.0.0", "command:build", "target:local"} <= set(flow_run.tags)
    logs = _logs(flow_run.id)
    assert any("OK created sql table model main.fct_orders" in line for line in logs), logs[:50]
    assert any(line.startswith("Done. PASS=54 WARN=0 ERROR=0 SKIP=0 NO-OP=1 TOTAL=55") for line in logs)

    # One Prefect event per finished node, related to the flow run.
    results = _results(deployed, flow_run)
    nodes = {r["unique_id"]: r["status"] for r in results["results"]}  # type: ignore[attr-defined, index]
    assert len(nodes) == 55
    events = _node_events(flow_run.id, expected=len(nodes))
    assert sorted(e.resource.id for e in events) == sorted(f"dbt.node.{u}" for u in nodes)
    by_node = {e.resource.id.removeprefix("dbt.node."): e for e in events}
    model = by_node["model.shop.fct_orders"]
    assert model.event == "dbt.node.success"
    assert model.resource["dbt.resource_type"] == "model"
    assert model.resource["dbt.environment"] == "local"
    assert model.resource["dbt.release"] == "1.0.0"
    assert float(model.resource["dbt.execution_time"]) > 0
    assert by_node["test.shop.assert_orders_fully_paid"].event == "dbt.node.pass"
    assert {e.event for e in events} == {f"dbt.node.{s}" for s in nodes.values()}


def _node_events(flow_run_id: UUID, *, expected: int, timeout: float = 60) -> list[object]:
    """The server stores events in batches: ask until they are all there."""
    since = datetime.now(UTC).replace(year=datetime.now(UTC).year - 1)
    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since),
        event=EventNameFilter(prefix=["dbt.node."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(filter=event_filter, limit=50)
            events = list(page.events)
            while page.next_page:
                page = client.read_events_page(str(page.next_page))
                events += page.events
            if len(events) >= expected or time.monotonic() > deadline:
                return events
            time.sleep(1)


def test_parameters_select_exactly_those_nodes(deployed: Deployed) -> None:
    flow_run = _wait_final(_start(deployed, "select=stg_orders", "full_refresh=true", 'vars={"lookback_days": 3}'))
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    results = _results(deployed, flow_run)
    ran = {r["unique_id"] for r in results["results"]}  # type: ignore[attr-defined, index]
    assert {u for u in ran if not u.startswith("test.")} == {"model.shop.stg_orders"}  # with its own tests only
    assert all("stg_orders" in u for u in ran)
    args = results["args"]
    assert args["select"] == ["stg_orders"]  # type: ignore[index]
    assert args["full_refresh"] is True  # type: ignore[index]
    assert args["vars"] == {"lookback_days": 3}  # type: ignore[index]
    assert {"select:stg_orders", "full_refresh"} <= set(flow_run.tags)


def test_a_failing_model_ends_failed(deployed: Deployed) -> None:
    broken = deployed.project / "models" / "marts" / "broken.sql"
    broken.write_text("select no_such_column from {{ ref('stg_orders') }}\n")
    try:
        deployed.publish("1.0.1", promote=False)
    finally:
        broken.unlink()
    flow_run = _wait_final(_start(deployed, "version=1.0.1"))
    assert flow_run.state is not None and flow_run.state.is_failed(), flow_run.state
    assert flow_run.state.message == "dbt build failed (exit code 1)"
    assert flow_run.name == "shop-local-1.0.1-build"
    logs = _logs(flow_run.id)
    assert sum("no_such_column" in line and "Binder Error" in line for line in logs) >= 1
    assert not any("NoneType: None" in line or "StepOutcome(" in line for line in logs)


def test_a_release_that_does_not_exist_ends_failed_with_the_reason(deployed: Deployed) -> None:
    flow_run = _wait_final(_start(deployed, "version=9.9.9"))
    assert flow_run.state is not None and flow_run.state.is_failed(), flow_run.state
    assert "9.9.9" in (flow_run.state.message or "")
    assert "exit code 5" in (flow_run.state.message or "")


def test_an_invalid_parameter_is_refused_before_anything_runs(deployed: Deployed) -> None:
    with get_client(sync_client=True) as client:
        before = len(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployed.deployment_id]))
            )
        )
    for param in ("threads=0", "command=drop table x", "full_refresh=perhaps", "nonsense=1"):
        refused = deployed.prefect("deployment", "run", DEPLOYMENT, "--param", param)
        assert refused.returncode != 0, (param, refused.stdout)
    with get_client(sync_client=True) as client:
        after = len(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployed.deployment_id]))
            )
        )
    assert after == before


def test_a_cancel_while_dbt_runs_ends_cancelled_with_the_outputs_published(deployed: Deployed) -> None:
    slow = deployed.project / "models" / "marts" / "slow_model.sql"
    slow.write_text(SLOW_MODEL)
    try:
        deployed.publish("1.0.2", promote=False)
    finally:
        slow.unlink()
    flow_run_id = _start(deployed, "version=1.0.2")
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(re.search(LAST_NODE_DONE, line) for line in _logs(flow_run_id)):
        assert time.monotonic() < deadline, _logs(flow_run_id)[-20:]
        time.sleep(1)
    time.sleep(2)
    cancelled = deployed.prefect("flow-run", "cancel", str(flow_run_id))
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    flow_run = _wait_final(flow_run_id, timeout=60)
    assert flow_run.state is not None and flow_run.state.is_cancelled(), flow_run.state
    results = _results(deployed, flow_run)
    done = {r["unique_id"]: r["status"] for r in results["results"]}  # type: ignore[attr-defined, index]
    assert done.get("model.shop.fct_orders") == "success"
    assert done.get("model.shop.slow_model") != "success"
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert "publish outputs" in {t.name for t in task_runs}
