"""``dbt-ferry init``: adopt an existing dbt project.

Adds ``[tool.dbt-ferry]`` to pyproject.toml (creating the file when there is none) and the packages the project
lacks to its dependencies (:mod:`dbt_ferry.deploy.dependencies`), copies the project's dbt profile into
``profiles/<env>.yml`` for the environments that run it locally, and writes the deployment kit
(:mod:`dbt_ferry.deploy.kit`) where :mod:`dbt_ferry.deploy.layout` puts it, beside the project's own files.
Everything is planned first and written only when the whole plan holds, so a refusal leaves nothing half-done.
Run again, it changes nothing: configuration and profiles are never rewritten, and a kit file that differs from
the template is kept unless ``force``; no other file is ever rewritten.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dbt_ferry.config.loader import ProjectConfig, project_dir_from, resolve_environment
from dbt_ferry.config.models import EnvironmentConfig, S3StoreConfig
from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.names import check_environment_name
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.deploy import layout
from dbt_ferry.deploy.athena import ATHENA, athena_names, athena_output, athena_profile_text, athena_target
from dbt_ferry.deploy.dependencies import DependencyPlan, plan_dependencies, required_packages
from dbt_ferry.deploy.ferry_source import FerrySource, ferry_source
from dbt_ferry.deploy.kit import CloudEnv, KitSpec, kit_files
from dbt_ferry.deploy.next_steps import next_steps
from dbt_ferry.deploy.profiles import (
    ProfileLookup,
    ProfileVariable,
    SourceProfile,
    adapter_package,
    display_path,
    find_profile,
    read_profile_file,
    render_profile_file,
    target_variables,
)
from dbt_ferry.deploy.project import DbtProject, ident, read_dbt_project, slug
from dbt_ferry.deploy.pyproject import Table, append_tables

Action = Literal["created", "added", "overwritten", "unchanged", "kept", "exists"]
LOCAL, CI = "local", "ci"
#: The cloud environment added when none is asked for.
DEFAULT_CLOUD_ENVIRONMENT = "pro"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class FileOutcome:
    """What ``init`` did to one file."""

    path: Path
    action: Action
    detail: str = ""


@dataclass
class InitResult:
    project_dir: Path
    project: str
    profile: str
    environments: list[str]
    files: list[FileOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.action in ("created", "added", "overwritten") for f in self.files)


@dataclass
class _Plan:
    """Files to write (absolute path → text) and what to report."""

    writes: dict[Path, str] = field(default_factory=dict)
    #: Files copied as they are (destination → source): dbt-ferry's wheel.
    copies: dict[Path, Path] = field(default_factory=dict)
    outcomes: list[FileOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def requested_environments(names: Sequence[str]) -> list[str]:
    """``local`` and ``ci``, then the environments asked for (``pro`` when none is)."""
    wanted = [LOCAL, CI, *(names or (DEFAULT_CLOUD_ENVIRONMENT,))]
    for name in wanted:
        check_environment_name(name)
    return list(dict.fromkeys(wanted))


def init_project(
    project_dir: str | Path | None = None,
    *,
    environments: Sequence[str] = (),
    force: bool = False,
    region: str | None = None,
    ferry: str | None = None,
    adapter: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> InitResult:
    """Adopt the dbt project in ``project_dir``: configuration, profiles and the deployment kit.

    ``environments`` are the cloud environments to add (S3 store, target of the same name; default ``pro``);
    ``local`` and ``ci`` are always there. ``region`` defaults to ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, then
    us-east-1. ``force`` rewrites the kit's files (:mod:`dbt_ferry.deploy.layout`) that differ from the
    templates; it never touches ``[tool.dbt-ferry]`` keys, dependencies, profile files or any other file.
    ``ferry`` is where the project installs dbt-ferry from (:func:`~dbt_ferry.deploy.ferry_source.ferry_source`:
    ``index``, a wheel file, a ``git+`` URL); by default what ``[tool.uv.sources]`` says, else the index.
    ``adapter="athena"`` writes a dbt-athena profile for each cloud environment without one
    (:mod:`dbt_ferry.deploy.athena`), as a profile with an athena target does by itself.
    """
    env = os.environ if environ is None else environ
    home = home if home is not None else Path.home()
    dbt = read_dbt_project(project_dir_from(project_dir, env))
    wanted = requested_environments(environments)
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    pyproject = dbt.root / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
    try:
        data = tomllib.loads(original)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}", "fix the syntax") from None
    lookup = find_profile(dbt.root, dbt.profile, env, home)
    # The profile as dbt finds it, else as the project's own profile files hold it (adapter, targets).
    source = lookup.source or next(
        filter(None, (read_profile_file(dbt.root / "profiles" / f"{n}.yml", dbt.profile) for n in (LOCAL, CI))), None
    )

    uv = data.get("tool", {}).get("uv")
    sources = uv.get("sources") if isinstance(uv, dict) else None
    sources = sources if isinstance(sources, dict) else {}
    origin = ferry_source(ferry, dbt.root, sources.get("dbt-ferry"))

    if adapter not in (None, ATHENA):
        raise ConfigError(
            f"--adapter {adapter}: init writes the cloud profiles for athena only",
            f"leave --adapter out and write profiles/<env>.yml for {adapter} yourself (init lists what it reads)",
        )
    athena = adapter == ATHENA or (source is not None and athena_target(source.outputs) is not None)
    required = required_packages(source)
    athena_package = adapter_package(ATHENA)
    if athena and athena_package and athena_package not in required:
        required.append(athena_package)

    plan = _Plan()
    dependencies = plan_dependencies(dbt.root, original, data, required)
    # dbt-ferry's [tool.uv.sources] entry when init adds one (Poetry and pip do not read that table).
    new_source = origin.uv_source() if dependencies.manager == "uv" and "dbt-ferry" not in sources else None
    configs = _plan_pyproject(
        plan, dbt, pyproject, dependencies, data, wanted, region, source, home, origin, new_source, required
    )
    _plan_profiles(plan, dbt, configs, lookup, source, home, athena=athena)
    variables, listed, adapters = _profile_variables(plan, dbt, configs)
    spec = _kit_spec(dbt, configs, region, variables, _plan_wheel(plan, dbt, origin, force), origin, adapters)
    _plan_kit(plan, kit_files(spec), force, dbt.repo_root / layout.DEPENDABOT)
    steps = next_steps(dbt, spec, dependencies, new_source=new_source is not None)
    # What the profiles read, before the first run needs it (after the dependencies and the lock).
    first_run = next((i for i, step in enumerate(steps) if step.startswith("try it:")), len(steps))
    plan.notes += steps[:first_run] + listed + steps[first_run:]
    for path, content in plan.writes.items():
        _write(path, content)
    for path, origin_file in plan.copies.items():
        _write_bytes(path, origin_file.read_bytes())
    return InitResult(dbt.root, dbt.name, dbt.profile, list(configs), plan.outcomes, plan.notes)


# -- pyproject.toml --------------------------------------------------------------------------------------


def _plan_pyproject(
    plan: _Plan,
    dbt: DbtProject,
    path: Path,
    dependencies: DependencyPlan,
    data: dict[str, Any],
    wanted: list[str],
    region: str,
    source: SourceProfile | None,
    home: Path,
    ferry: FerrySource,
    new_source: dict[str, Any] | None,
    required: list[str],
) -> dict[str, EnvironmentConfig]:
    """``data`` is the file as it was; ``dependencies.text`` the file with the missing requirements added."""
    original = dependencies.original
    tool = data.get("tool", {})
    section = tool.get("dbt-ferry")
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"tool.dbt-ferry in {path} must be a table")
    existing = (section or {}).get("environments") or {}
    # Without environment tables the defaults local and ci apply; adding one table would drop them.
    adding = [n for n in wanted if n not in existing] if existing else wanted
    tables: list[Table] = []
    if "project" not in data and "poetry" not in tool:
        tables.append(_project_table(dbt, required))
        if "uv" not in tool:
            tables.append(Table(("tool", "uv"), {"package": False}, ["A dbt project, not a Python package."]))
    if section is None:
        tables.append(
            Table(
                ("tool", "dbt-ferry"),
                {"store": {"type": "local", "path": ".ferry/store"}},
                ["dbt-ferry's configuration (written by `dbt-ferry init`); see its README, Configuration reference."],
            )
        )
    if new_source is not None:
        comment = f"dbt-ferry from {ferry.describe()} (`dbt-ferry init --ferry-source`): uv.lock and the image agree."
        tables.append(Table(("tool", "uv", "sources", "dbt-ferry"), new_source, [comment]))
    tables += [_environment_table(dbt, name, region, source, home) for name in adding]
    text = append_tables(dependencies.text, tables, str(path))
    if tables or dependencies.added:
        what = [f"[{'.'.join(t.name[:2])}]" for t in tables if len(t.name) <= 2]
        detail = ", ".join(what) + (" with " if what else "") + "environments " + ", ".join(adding)
        details = [detail if adding else ", ".join(what)] if tables else []
        if new_source is not None:
            details.append(f"dbt-ferry from {ferry.describe()} in [tool.uv.sources]")
        if dependencies.added:
            details.insert(0, f"{', '.join(dependencies.added)} in [project] dependencies")
        verb: Action = "created" if not original else "added"
        plan.outcomes.append(FileOutcome(path, verb, "; ".join(details)))
        plan.writes[path] = text
    else:
        plan.outcomes.append(FileOutcome(path, "exists", "[tool.dbt-ferry] with environments " + ", ".join(existing)))
    return _resolve(dbt, path, tomllib.loads(text))


def _project_table(dbt: DbtProject, required: list[str]) -> Table:
    return Table(
        ("project",),
        {
            "name": dbt.name,
            "version": "0.1.0",
            "description": f"The dbt project {dbt.name}, released and run by dbt-ferry.",
            "requires-python": ">=3.11",
            "dependencies": required,
        },
        ["The release version is [project] version: bump it to publish a new release."],
    )


def _environment_table(dbt: DbtProject, name: str, region: str, source: SourceProfile | None, home: Path) -> Table:
    default_target = source.default_target if source else None
    where = _where(source.path, dbt, home) if source else "its profiles file"
    if name == LOCAL:
        values: dict[str, Any] = {"target": default_target} if default_target else {}
        return Table(
            ("tool", "dbt-ferry", "environments", name),
            values,
            [f"This machine: the dbt profile {dbt.profile} of {where}, copied into profiles/local.yml."],
        )
    if name == CI:
        target = CI if source and CI in source.outputs else default_target
        return Table(
            ("tool", "dbt-ferry", "environments", name),
            {**({"target": target} if target else {}), "ci": True},
            [f"Pull requests ({layout.CI_WORKFLOW}): the same profile, copied into profiles/ci.yml."],
        )
    bucket = f"{dbt.slug}-dbt-ferry-{slug(name, limit=31)}"[:63].rstrip("-")
    return Table(
        ("tool", "dbt-ferry", "environments", name),
        {
            "target": name,
            "store": {"type": "s3", "bucket": bucket, "prefix": dbt.slug, "region": region},
            "exports": {
                "namespace": f"dbt_ferry_{dbt.ident}_{ident(name)}",
                "catalog": {"type": "glue", "region": region},
            },
            # The stack's StateKey: state in S3 is used only when signed with it.
            "trust": {
                "state_key": f"alias/{dbt.slug}-dbt-ferry-{name}-state",
                "release_key": f"alias/{dbt.slug}-dbt-ferry-{name}-release",
            },
        },
        [
            f"On AWS ({layout.STACK_TEMPLATE}): the bucket is a placeholder; profiles/{name}.yml holds the",
            f"dbt profile {dbt.profile} with a target {name}.",
        ],
        [
            f'aws_account_id = "123456789012"  # the AWS account of {name}: lets `dbt-ferry run` find its environment',
            'notify = { urls = ["${DBT_FERRY_NOTIFY_URL}"] }  # the NotifySecretArn secret of the stack',
        ],
    )


def _resolve(dbt: DbtProject, path: Path, data: dict[str, Any]) -> dict[str, EnvironmentConfig]:
    section = data.get("tool", {}).get("dbt-ferry", {})
    environments = section.get("environments", {})
    project = ProjectConfig(
        project_dir=dbt.root,
        pyproject=path,
        base={k: v for k, v in section.items() if k != "environments"},
        environments=environments,
        pyproject_data=data,
    )
    return {name: resolve_environment(project, name, environ={}) for name in environments}


# -- profiles ------------------------------------------------------------------------------------------


def _where(path: Path, dbt: DbtProject, home: Path) -> str:
    """A profiles file as people name it: relative to the project, or to ~."""
    if path.is_relative_to(dbt.root):
        return path.relative_to(dbt.root).as_posix()
    return display_path(path, home)


def _plan_profiles(
    plan: _Plan,
    dbt: DbtProject,
    configs: dict[str, EnvironmentConfig],
    lookup: ProfileLookup,
    source: SourceProfile | None,
    home: Path,
    *,
    athena: bool = False,
) -> None:
    origin = source
    if origin is None:  # no profiles.yml to read: an environment's own file may still hold the profile
        for config in configs.values():
            origin = origin or read_profile_file(dbt.root / config.profiles_path(), dbt.profile)
    for name, config in configs.items():
        relative = config.profiles_path()
        path = dbt.root / relative
        if path.is_file():
            plan.outcomes.append(FileOutcome(path, "exists", f"profile of {name}"))
            continue
        cloud = isinstance(config.store, S3StoreConfig)
        copy = origin is not None and (not cloud or (config.target or name) in origin.outputs)
        if (not copy or origin is None) and cloud and athena and isinstance(config.store, S3StoreConfig):
            store = config.store
            names = athena_names(dbt.name, name, store.bucket, store.prefix.strip("/") or dbt.slug)
            base = athena_target(origin.outputs) if origin else None
            output = athena_output(names, store.region or DEFAULT_REGION, base)
            plan.writes[path] = athena_profile_text(dbt.profile, name, output, layout.STACK_TEMPLATE)
            plan.outcomes.append(
                FileOutcome(
                    path,
                    "created",
                    f"dbt-athena profile {dbt.profile} (work group {names.work_group}, Glue database {names.schema})",
                )
            )
            continue
        if not copy or origin is None:
            if not cloud:
                looked = ", ".join(display_path(p, home) for p in lookup.searched)
                raise ConfigError(
                    f"no dbt profile {dbt.profile!r} to copy into {relative} for {name}: "
                    + (lookup.problem or f"no profiles.yml in {looked}"),
                    f"create the profile (dbt init), or write {relative}, then run dbt-ferry init again",
                )
            plan.notes.append(
                f"write {relative}: the dbt profile {dbt.profile} with a target {config.target or name} for {name} "
                f"(credentials through env_var(), never in the file); {layout.name(layout.CD_WORKFLOW)} stops until it "
                "exists"
            )
            continue
        where = _where(origin.path, dbt, home)
        text, replaced = render_profile_file(origin, name, f"a copy of the profile {dbt.profile} in {where}")
        plan.writes[path] = text
        plan.outcomes.append(FileOutcome(path, "created", f"profile {dbt.profile} from {where}"))
        for key, variable in sorted(replaced.items()):
            plan.notes.append(f"{relative}: {key} now reads the variable {variable}; set it where dbt runs")


def _profile_variables(
    plan: _Plan, dbt: DbtProject, configs: dict[str, EnvironmentConfig]
) -> tuple[dict[str, list[ProfileVariable]], list[str], dict[str, str]]:
    """What each environment's profile (as init writes it, or as it is) reads with env_var(), notes saying it, and
    the adapter type of the target each runs."""
    found: dict[str, list[ProfileVariable]] = {}
    notes: list[str] = []
    adapters: dict[str, str] = {}
    for name, config in configs.items():
        relative = config.profiles_path()
        path = dbt.root / relative
        text = plan.writes.get(path)
        try:
            data = yaml.safe_load(text) if text is not None else None
        except yaml.YAMLError:  # pragma: no cover - init writes YAML it dumped itself
            data = None
        entry = data.get(dbt.profile) if isinstance(data, dict) else None
        if not isinstance(entry, dict):
            existing = read_profile_file(path, dbt.profile) if text is None else None
            entry = existing.profile if existing else None
        if not isinstance(entry, dict):
            continue
        variables = target_variables(entry, config.target)
        found[name] = variables
        outputs = entry.get("outputs")
        output = outputs.get(config.target or entry.get("target")) if isinstance(outputs, dict) else None
        if isinstance(output, dict) and isinstance(output.get("type"), str):
            adapters[name] = output["type"]
        if variables:
            listed = ", ".join(v.name + (" (optional)" if v.optional else "") for v in variables)
            target = config.target or entry.get("target") or "its default"
            notes.append(f"{name} ({relative}, target {target}) reads the variables {listed}")
    return found, notes, adapters


# -- the kit -------------------------------------------------------------------------------------------


def _plan_wheel(plan: _Plan, dbt: DbtProject, ferry: FerrySource, force: bool) -> Path | None:
    """dbt-ferry's wheel into the kit (``--ferry-source FILE.whl``); the file the image is built from."""
    if ferry.wheel_path is None:
        return None
    dest = dbt.root / ferry.wheel_path
    if ferry.origin is None:
        if not dest.is_file():
            raise ConfigError(
                f"pyproject.toml's [tool.uv.sources] takes dbt-ferry from {ferry.wheel_path}, which is not there",
                "put the wheel back, or pass --ferry-source with the wheel file to copy it there",
            )
        plan.outcomes.append(FileOutcome(dest, "exists", "dbt-ferry's wheel"))
        return dest
    if not dest.is_file():
        plan.copies[dest] = ferry.origin
        plan.outcomes.append(FileOutcome(dest, "created", f"dbt-ferry's wheel, from {ferry.origin}"))
    elif dest.read_bytes() == ferry.origin.read_bytes():
        plan.outcomes.append(FileOutcome(dest, "unchanged", "dbt-ferry's wheel"))
    elif force:
        plan.copies[dest] = ferry.origin
        plan.outcomes.append(FileOutcome(dest, "overwritten", f"dbt-ferry's wheel, from {ferry.origin}"))
    else:
        plan.outcomes.append(FileOutcome(dest, "kept", f"differs from {ferry.origin}; --force replaces it"))
        return dest
    return ferry.origin


def _kit_spec(
    dbt: DbtProject,
    configs: dict[str, EnvironmentConfig],
    region: str,
    variables: dict[str, list[ProfileVariable]] | None = None,
    wheel: Path | None = None,
    ferry: FerrySource | None = None,
    adapters: dict[str, str] | None = None,
) -> KitSpec:
    cloud = []
    for name, config in configs.items():
        store = config.store
        if isinstance(store, S3StoreConfig):
            cloud.append(
                CloudEnv(
                    name=name,
                    bucket=store.bucket,
                    prefix=store.prefix.strip("/") or dbt.slug,
                    region=store.region or region,
                    namespace=config.exports.namespace,
                    target=config.target,
                    profile_path=config.profiles_path(),
                    account_id=config.aws_account_id,
                    variables=tuple((variables or {}).get(name, ())),
                    adapter=(adapters or {}).get(name),
                )
            )
    ci = configs.get(CI) or next((c for c in configs.values() if c.ci), None)
    local = LOCAL if LOCAL in configs and not configs[LOCAL].ci else None
    if ci is None:  # pragma: no cover - init always configures ci
        raise ConfigError("no CI environment is configured", "add [tool.dbt-ferry.environments.ci]")
    lock = "poetry.lock" if (dbt.root / "poetry.lock").is_file() and not (dbt.root / "uv.lock").is_file() else "uv.lock"
    return KitSpec(
        project=dbt,
        dbt_ferry_version=DBT_FERRY_VERSION,
        ci_env=ci.name,
        ci_target=ci.target,
        ci_profile=ci.profiles_path(),
        cloud=tuple(cloud),
        profile_paths=tuple(dict.fromkeys(c.profiles_path() for c in configs.values())),
        lock_file=lock,
        local_env=local,
        **({"ferry": ferry} if ferry else {}),
        wheel_file=wheel,
    )


def _plan_kit(plan: _Plan, files: dict[Path, str], force: bool, dependabot: Path) -> None:
    for path, text in files.items():
        if path == dependabot and path.is_file() and layout.MARKER not in path.read_text(encoding="utf-8")[:1000]:
            detail = f"the repository's own: add a docker update of /{layout.KIT_DIR} (the base image's digest) to it"
            plan.outcomes.append(FileOutcome(path, "exists", detail))
            continue
        if not path.is_file():
            plan.writes[path] = text
            plan.outcomes.append(FileOutcome(path, "created"))
        elif path.read_text(encoding="utf-8") == text:
            plan.outcomes.append(FileOutcome(path, "unchanged"))
        elif force:
            plan.writes[path] = text
            plan.outcomes.append(FileOutcome(path, "overwritten"))
        else:
            plan.outcomes.append(FileOutcome(path, "kept", "differs from what init writes; --force rewrites it"))


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, as UTF-8 with ``\n`` line ends."""
    _write_bytes(path, text.encode("utf-8"))
