"""The job's rules without Prefect or dbt: steps, exit codes, outcome texts, final states, names and tags."""

from __future__ import annotations

import inspect
import os
import signal
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dbt_ferry.config.models import EnvironmentConfig
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.manifest import ReleaseManifest, build_id
from dbt_ferry.runtime.bootstrap import with_flow_run
from dbt_ferry.runtime.engine import new_report
from dbt_ferry.runtime.finish import _written_by_this_job
from dbt_ferry.runtime.flow_run import FlowRunRecord, is_worker_default_command
from dbt_ferry.runtime.mode import uses_prefect
from dbt_ferry.runtime.outcome import EMPTY_SELECTION, final_state, job_exit_code, judge_step, outcome_text
from dbt_ferry.runtime.parameters import RunParameters
from dbt_ferry.runtime.signals import JobSignals, Terminated
from dbt_ferry.runtime.spec import JobRequest, JobSpec
from dbt_ferry.runtime.steps import DOCS_AFTER_BUILD_STEP, DOCS_STEP, Step, docs_step, plan_steps


def _spec(tmp_path: Path, request: JobRequest | None = None, **environment: object) -> JobSpec:
    manifest = ReleaseManifest.model_validate(
        {
            "project": "shop",
            "version": "1.4.0",
            "build_id": build_id(()),  # release.json's build_id is its artifacts' digest
            "created_at": "2026-01-01T00:00:00Z",
            "python_version": "3.11",
            "dbt_ferry_version": "0.1.0",
            "artifacts": [],
        }
    )
    return JobSpec(
        request=request or JobRequest(),
        environment=EnvironmentConfig(name="pro", **environment),  # type: ignore[arg-type]
        store={"type": "local", "path": str(tmp_path / "store")},  # type: ignore[arg-type]
        project_dir=str(tmp_path),
        work_root=str(tmp_path),
        manifest=manifest,
        channel_release=True,
        target="pro",
        target_type="duckdb",
    )


def _judge(step: Step, exit_code: int = 0, **kwargs: object) -> object:
    options: dict[str, object] = {
        "error": None, "elapsed": 1.0, "interrupted": False, "no_nodes": False,
        "fail_on_empty_selection": True, "signal_exit_code": None, "signal_how": "stopped by SIGTERM",
    }  # fmt: skip
    options.update(kwargs)
    return judge_step(step, exit_code=exit_code, **options)  # type: ignore[arg-type]


COMMAND = Step("dbt build", ("build",), selected=True, failure="command", reports_nodes=True)
DEPS = Step("dbt deps", ("deps",))


def test_steps_are_planned_from_the_project_and_the_request(tmp_path: Path) -> None:
    assert [s.name for s in plan_steps(_spec(tmp_path))] == ["dbt build"]
    (tmp_path / "packages.yml").write_text("packages:\n  - local: pkgs/utils\n")
    request = JobRequest(debug=True, dbt_args=("run-operation", "hello", "--args", "{name: ferry}"))
    steps = plan_steps(_spec(tmp_path, request))
    assert [s.name for s in steps] == ["dbt deps", "dbt debug", "dbt run-operation hello --args '{name: ferry}'"]
    assert [s.failure for s in steps] == ["setup", "setup", "command"]
    assert [s.reports_nodes for s in steps] == [False, False, True]
    assert DOCS_STEP.failure == "problem" and DOCS_STEP.keeps_run_results and not DOCS_STEP.reports_nodes


def test_docs_reuse_the_build_s_compiled_sql_only_when_it_compiled_every_node() -> None:
    assert docs_step(("build",), compiled_everything=True).args == ("docs", "generate", "--static", "--no-compile")
    assert docs_step(("build",), compiled_everything=False) is DOCS_STEP  # failed or skipped nodes, or a retry
    assert docs_step(("run",), compiled_everything=True) is DOCS_STEP  # no tests compiled by a run
    assert docs_step(("seed",), compiled_everything=True) is DOCS_STEP
    assert DOCS_AFTER_BUILD_STEP.name == DOCS_STEP.name and DOCS_AFTER_BUILD_STEP.keeps_run_results


@pytest.mark.parametrize(
    ("step", "code", "kwargs", "expected"),
    [
        (COMMAND, 0, {}, (0, None)),
        (COMMAND, 1, {}, (1, None)),
        (COMMAND, 0, {"no_nodes": True}, (2, EMPTY_SELECTION)),
        (COMMAND, 0, {"no_nodes": True, "fail_on_empty_selection": False}, (0, None)),
        (DEPS, 0, {"no_nodes": True}, (0, None)),  # only a selected step can match nothing
        (COMMAND, 2, {"interrupted": True, "signal_exit_code": 143}, (143, "stopped by SIGTERM")),
        (
            COMMAND,
            2,
            {"interrupted": True, "signal_exit_code": None, "signal_how": "interrupted"},
            (130, "interrupted"),
        ),
    ],
)
def test_what_a_step_result_means(step: Step, code: int, kwargs: dict[str, object], expected: tuple[int, str]) -> None:
    outcome = _judge(step, code, **kwargs)
    assert (outcome.exit_code, outcome.error) == expected  # type: ignore[attr-defined]


def test_what_a_failed_step_means_for_the_job() -> None:
    assert job_exit_code(COMMAND, _judge(COMMAND, 1)) == 1  # type: ignore[arg-type]
    assert job_exit_code(DEPS, _judge(DEPS, 1)) == 2  # type: ignore[arg-type]  # deps failing: dbt could not run
    interrupted = _judge(DEPS, 2, interrupted=True, signal_exit_code=143)
    assert job_exit_code(DEPS, interrupted) == 143  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "how", "during", "text"),
    [
        (0, None, None, "dbt build passed"),
        (1, None, None, "dbt build failed"),
        (2, None, None, "dbt build could not run"),
        (3, None, None, "dbt build could not run"),
        (143, None, None, "dbt build was stopped by SIGTERM"),
        (143, "cancelled from Prefect", "dbt build", "dbt build was cancelled from Prefect"),
        (130, None, None, "dbt build was interrupted"),
        (143, "stopped by SIGTERM", "dbt docs generate", "the job was stopped by SIGTERM during dbt docs generate"),
    ],
)
def test_outcome_texts(code: int, how: str | None, during: str | None, text: str) -> None:
    assert outcome_text("build", code, how=how, stopped_during=during) == text


def test_final_states() -> None:
    assert final_state(0, cancelled=False) == "completed"
    assert final_state(1, cancelled=False) == "failed"
    assert final_state(2, cancelled=True) == "failed"
    assert final_state(8, cancelled=False) == "failed"
    assert final_state(143, cancelled=True) == "cancelled"
    assert final_state(143, cancelled=False) == "crashed"
    assert final_state(130, cancelled=False) == "crashed"


def test_names_and_tags_carry_the_command_and_user_text_verbatim(tmp_path: Path) -> None:
    request = JobRequest(
        select=("tag:daily",),
        selector="nightly",
        vars="{x: 1}",
        dbt_args=("build", "--select", "fct_{x}+", "stg_a", "--exclude=tag:slow", "--full-refresh"),
    )
    spec = _spec(tmp_path, request)
    assert spec.run_name == "shop-pro-1.4.0-build"
    assert spec.tags() == [
        "dbt-ferry", "env:pro", "version:1.4.0", "dbt:unknown", "command:build", "target:pro", "target_type:duckdb",
        "select:tag:daily", "select:fct_{x}+", "select:stg_a", "exclude:tag:slow", "selector:nightly", "full_refresh",
    ]  # fmt: skip
    assert spec.has_selection
    assert not _spec(tmp_path, JobRequest(dbt_args=("run-operation", "hello"))).has_selection
    assert _spec(tmp_path, JobRequest(dbt_args=("run-operation", "hello"))).run_name == "shop-pro-1.4.0-run-operation"


def test_vars_are_yaml_of_a_mapping_kept_as_given() -> None:
    request = JobRequest(vars="{start: 2024-01-01, n: 2}")
    assert request.vars == "{start: 2024-01-01, n: 2}"  # dbt parses it: a date stays a date
    assert request.vars_mapping == {"start": date(2024, 1, 1), "n": 2}
    assert JobRequest(vars="").vars is None
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        JobRequest(vars="[1, 2]")
    # A flow run's mapping becomes YAML that dbt reads back as the same data.
    given = {"vars": {"start": "2024-01-01", "nested": {"a": [1, "{x}"]}}}
    laid = RunParameters.parse(given, where="a test").apply_to(JobRequest(), given)
    assert laid.vars_mapping == given["vars"]


def test_the_flow_signature_is_the_parameters_model() -> None:
    from dbt_ferry.runtime.flow import ferry_flow

    signature = inspect.signature(ferry_flow.fn)
    assert list(signature.parameters) == list(RunParameters.model_fields)
    for name, parameter in signature.parameters.items():
        assert parameter.default == RunParameters.model_fields[name].default, name
    doc = inspect.getdoc(ferry_flow.fn) or ""
    for name in RunParameters.model_fields:
        assert f"\n    {name}: " in doc.replace("Args:\n", "Args:\n"), name  # every parameter is described


def test_flow_run_parameters_lay_over_the_container_arguments() -> None:
    record = FlowRunRecord(
        id="1", name="brave-fox", parameters={"select": "tag:daily fct_orders+", "full_refresh": True, "version": "1.3"}
    )
    request = with_flow_run(JobRequest(dbt_args=("prefect", "flow-run", "execute"), threads=4), record)
    assert request.dbt_args == ()  # the worker's default command means: the parameters alone
    assert request.select == ("tag:daily", "fct_orders+")
    assert request.full_refresh is True and request.version == "1.3" and request.threads == 4
    legacy = with_flow_run(JobRequest(dbt_args=("build", "--full-refresh")), FlowRunRecord(id="2", name="x"))
    assert legacy.dbt_args == ("build", "--full-refresh")  # an old deployment's `command` still works
    command = with_flow_run(JobRequest(), FlowRunRecord(id="3", name="x", parameters={"command": "seed --show"}))
    assert command.dbt_args == ("seed", "--show")
    assert is_worker_default_command(("python", "-m", "prefect.engine"))
    assert not is_worker_default_command(("build",))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"threads": 0}, "threads: Input should be greater than or equal to 1"),
        ({"command": "drop table x"}, "command: String should match pattern"),
        ({"nonsense": 1}, "nonsense: Extra inputs are not permitted"),
    ],
)
def test_bad_flow_run_parameters_are_one_line_errors(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        with_flow_run(JobRequest(), FlowRunRecord(id="1", name="brave-fox", parameters=parameters))
    assert "the Prefect flow run 'brave-fox'" in str(caught.value)
    assert caught.value.exit_code == 3
    assert "\n" not in str(caught.value)


def test_prefect_is_used_where_it_records_something(tmp_path: Path) -> None:
    laptop = _spec(tmp_path)
    home = {"PREFECT_HOME": str(tmp_path / "nohome")}
    assert uses_prefect(laptop, {**home})  # a laptop: a temporary server, whose runs show in the UI later
    assert uses_prefect(laptop, {**home, "PREFECT_API_URL": "http://x/api", "CI": "true"})
    assert not uses_prefect(laptop, {**home, "CI": "true"})
    assert not uses_prefect(laptop, {**home, "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"})
    assert not uses_prefect(laptop, {**home, "KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert not uses_prefect(_spec(tmp_path, ci=True), {**home})
    assert not uses_prefect(_spec(tmp_path, JobRequest(no_prefect=True)), {**home, "PREFECT_API_URL": "http://x"})
    profiles = tmp_path / "prefect-home" / "profiles.toml"
    profiles.parent.mkdir()
    profiles.write_text('active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://prefect:4200/api"\n')
    assert uses_prefect(laptop, {"PREFECT_HOME": str(profiles.parent), "CI": "1"})


class _FakeDbt:
    def __init__(self) -> None:
        self.interrupted = 0

    def interrupt(self) -> None:
        self.interrupted += 1


def test_signals_stop_dbt_while_it_runs_and_only_record_while_finishing() -> None:
    signals = JobSignals()
    dbt = _FakeDbt()
    with signals.running_dbt(dbt):
        signals(signal.SIGTERM, None)
        signals(signal.SIGTERM, None)  # a second signal is ignored
    assert dbt.interrupted == 1 and signals.exit_code == 143 and signals.how == "stopped by SIGTERM"
    with pytest.raises(Terminated):
        signals.raise_if_fired()

    between = JobSignals()
    with pytest.raises(Terminated):
        between(signal.SIGINT, None)
    assert between.exit_code == 130 and between.how == "interrupted"

    finishing = JobSignals()
    finishing.finishing()
    finishing(signal.SIGTERM, None)  # publishing goes on
    assert finishing.fired
    finishing.raise_if_fired()

    cancelled = JobSignals()
    cancelled.classify = lambda: True
    with cancelled.running_dbt(_FakeDbt()):
        cancelled(signal.SIGTERM, None)
    assert cancelled.how == "cancelled from Prefect" and cancelled.cancelled


def test_signal_handler_is_installed_for_the_block_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    signals = JobSignals()
    with signals.installed():
        assert signal.getsignal(signal.SIGTERM) is signals
    assert signal.getsignal(signal.SIGTERM) is before
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(signals.installed().__enter__()))
    thread.start()
    thread.join()
    assert done == [signals]  # outside the main thread: nothing is installed, nothing fails


def test_only_results_dbt_wrote_during_the_job_are_exported_as_new(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    report = new_report()
    assert not _written_by_this_job(target, report)  # nothing written: nothing new
    (target / "run_results.json").write_text("{}")
    assert _written_by_this_job(target, report)
    (target / "sources.json").write_text("{}")
    before = (report.started_at or datetime.now(UTC)).timestamp() - 60
    os.utime(target / "sources.json", (before, before))  # there before the job began: it may have been exported
    assert not _written_by_this_job(target, report)
