"""The dbt steps of a job, as data: what runs, in which order, and what a failure of each means."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dbt_ferry.runtime.spec import JobSpec

#: What a failing step means for the job:
#: ``"command"`` — the job's exit code is the step's (the dbt command asked for);
#: ``"setup"`` — dbt could not run the command (``deps``, ``debug``): exit 2, nothing further runs;
#: ``"problem"`` — recorded as a problem, the job's exit code stands (``docs generate``).
FailureMeaning = Literal["command", "setup", "problem"]


@dataclass(frozen=True)
class Step:
    #: The step's name in logs and in Prefect (``dbt build``); never used as a format string.
    name: str
    #: The dbt command and its own arguments (``("build",)``, ``("run-operation", "hello", ...)``).
    args: tuple[str, ...]
    #: Whether the job's selection, exclusion, threads and full refresh are added to it.
    selected: bool = False
    failure: FailureMeaning = "setup"
    #: ``docs generate`` rewrites ``run_results.json``: keep the command's, which retry and the exports need.
    keeps_run_results: bool = False
    #: Whether its finished nodes are reported one by one (Prefect events): the command's, not docs' compiling.
    reports_nodes: bool = False
    #: ``dbt retry`` within the job: its results are laid over the command's in ``run_results.json``.
    retries_command: bool = False


def needs_deps(project: Path) -> bool:
    """Whether ``packages.yml`` or ``dependencies.yml`` lists packages; if not, ``dbt deps`` has nothing to do.

    A file that cannot be read as YAML counts as listing packages, so that ``dbt deps`` reports the error.
    """
    import yaml

    for name in ("packages.yml", "dependencies.yml"):
        path = project / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return True
        if data is None:
            continue
        if not isinstance(data, dict) or data.get("packages"):
            return True
    return False


FRESHNESS_STEP = Step("dbt source freshness", ("source", "freshness"), failure="problem")
SEED_STEP = Step("dbt seed", ("seed",), failure="command", reports_nodes=True)


def plan_steps(spec: JobSpec) -> list[Step]:
    """deps (when packages are listed) → debug (when asked) → seed and source freshness (when asked, or the
    environment's, or the run is state-aware) → the command."""
    from dbt_ferry.runtime.changed import state_aware

    request, environment = spec.request, spec.environment
    steps = [Step("dbt deps", ("deps",))] if needs_deps(spec.project_path) else []
    if request.debug:
        steps.append(Step("dbt debug", ("debug",)))
    if (environment.seed if request.seed is None else request.seed) and spec.command[0] not in ("seed", "retry"):
        steps.append(SEED_STEP)
    freshness = environment.freshness if request.freshness is None else request.freshness
    if (freshness or state_aware(spec)) and spec.command[0] != "source":  # a state-aware run compares sources too
        steps.append(FRESHNESS_STEP)
    command = spec.command
    steps.append(Step(f"dbt {spec.command_text}", command, selected=True, failure="command", reports_nodes=True))
    return steps


def retry_steps(spec: JobSpec) -> list[Step]:
    """``dbt retry`` of what failed, ``retries`` times at most (only after a command dbt retry can retry)."""
    count = spec.environment.retries
    if spec.command[0] not in RETRYABLE:
        return []
    return [
        Step(f"dbt retry ({n} of {count})", ("retry",), failure="command", reports_nodes=True, retries_command=True)
        for n in range(1, count + 1)
    ]


#: What ``dbt retry`` can retry (its own list of commands).
RETRYABLE = frozenset({"build", "compile", "clone", "seed", "snapshot", "test", "run", "run-operation"})


#: The dbt commands after which the docs describe something new (not ``show``, ``ls``, ``run-operation``...).
DOCS_AFTER = frozenset({"build", "run", "seed", "snapshot", "test", "clone"})
#: The commands whose fully successful, unselected run of the channel's release becomes the environment's
#: state, docs and timing chart: a complete picture of the warehouse.
STATE_AFTER = frozenset({"build", "run"})


def docs_wanted(spec: JobSpec) -> bool:
    """Docs after the command: asked for (the environment's ``docs``, ``--docs``), never in CI, never for a
    selected run (a partial docs site misleads), and only after a command that builds or tests something."""
    if spec.environment.ci or spec.command[0] not in DOCS_AFTER or spec.has_selection:
        return False
    return spec.environment.docs if spec.request.docs is None else spec.request.docs


DOCS_STEP = Step("dbt docs generate", ("docs", "generate", "--static"), failure="problem", keeps_run_results=True)
#: After a ``build`` that passed at once, the build's ``manifest.json`` holds every node's compiled SQL: the docs
#: reuse it instead of compiling the whole project again (at 1,000 models 8 s instead of 47 s; dbt then leaves
#: ``manifest.json`` as the build wrote it and puts that in the page).
DOCS_AFTER_BUILD_STEP = Step(
    "dbt docs generate", ("docs", "generate", "--static", "--no-compile"), failure="problem", keeps_run_results=True
)


def docs_step(command: tuple[str, ...], *, compiled_everything: bool) -> Step:
    """The docs step after ``command``: reusing the build's compiled SQL when it compiled every node (a ``build``
    with no failed or skipped node and no retry), else dbt's own compile first."""
    return DOCS_AFTER_BUILD_STEP if command[0] == "build" and compiled_everything else DOCS_STEP
