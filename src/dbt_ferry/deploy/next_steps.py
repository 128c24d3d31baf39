"""The "Next" list ``init`` ends with: what to run after it, in order, on that very project.

The dependency command of the project's tool, the lock, the first publish and run, the local Prefect deployment,
the stack; then the kit an older ``init`` left where the kit used to be.
"""

from __future__ import annotations

import os
from pathlib import Path

from dbt_ferry.deploy import layout
from dbt_ferry.deploy.dependencies import DependencyPlan
from dbt_ferry.deploy.kit import KitSpec, secret_name, secret_parameter
from dbt_ferry.deploy.project import DbtProject, slug

LOCAL = "local"


def _old_kit(dbt: DbtProject) -> list[Path]:
    """Files where an older ``init`` wrote the kit that still say so at their top: left alone, but named."""
    candidates = [dbt.root / p for p in layout.OLD_PROJECT_FILES] + [dbt.repo_root / p for p in layout.OLD_WORKFLOWS]
    found = []
    for path in candidates:
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:1000] if path.is_file() else ""
        except OSError:
            continue
        if layout.MARKER in head.replace("`", ""):
            found.append(path)
    return found


def next_steps(dbt: DbtProject, spec: KitSpec, dependencies: DependencyPlan, *, new_source: bool = False) -> list[str]:
    """What to do after ``init``, in order, each a command to run as it is where one does it. ``new_source``:
    init added dbt-ferry's ``[tool.uv.sources]`` entry."""
    notes: list[str] = []
    root = dbt.root
    workflows = f"{layout.name(layout.CI_WORKFLOW)}, {layout.name(layout.CD_WORKFLOW)}"
    installs = "the workflows and `dbt-ferry package --with-env` install from uv.lock"
    uv_lock = (root / "uv.lock").is_file()
    if dependencies.command:
        notes.append(f"add the packages it needs: {dependencies.command}")
    if spec.lock_file == "poetry.lock":
        if dependencies.added:
            notes.append("lock and install the new dependencies: poetry lock && poetry install")
        notes.append(f"the workflows ({workflows}) install with uv: move the project to uv (uv lock) or adapt them")
    elif uv_lock:
        if dependencies.added or new_source:
            notes.append(f"lock the new dependencies: uv lock ({installs})")
    elif dependencies.manager == "pip":
        notes.append(
            "lock the dependencies: uv add -r requirements.txt (its requirements go to [project] dependencies and "
            f"uv.lock; {installs}, not from requirements.txt)"
        )
    else:
        notes.append(f"lock the dependencies: uv lock ({installs})")
    ferry = spec.ferry
    if ferry.wheel_path:
        notes.append(f"commit {ferry.wheel_path}: the image copies it and uv.lock installs it (--ferry-source)")
    elif ferry.kind == "folder":
        notes.append(
            f"dbt-ferry comes from the folder {ferry.folder} ([tool.uv.sources]), which the image cannot copy: it "
            f"installs dbt-ferry=={spec.dbt_ferry_version} from the package index; for an image without the index, "
            "build a wheel (make dist in dbt-ferry) and use it (--ferry-source FILE.whl, after removing that entry)"
        )
    if ferry.uv_source() is not None and dependencies.manager != "uv":
        notes.append(
            f"{dependencies.manager} does not read [tool.uv.sources]: install dbt-ferry from {ferry.describe()} "
            "with it, as the image does"
        )
    gitignore = root / ".gitignore"
    ignored = gitignore.is_file() and ".ferry" in gitignore.read_text(encoding="utf-8", errors="replace")
    if not ignored:
        notes.append("add .ferry/ to .gitignore (local store and build output)")
    # Commands run in the project's environment: the one its tool manages, else the one init ran in.
    run = {"poetry": "poetry run ", "uv": "uv run " if uv_lock else "", "pip": ""}[dependencies.manager]
    notes.append(f"try it: {run}dbt-ferry publish --env {LOCAL} --promote && {run}dbt-ferry run --env {LOCAL}")
    if spec.local_env:
        pool = f"dbt-ferry-{slug(spec.local_env, limit=31)}"
        notes.append(
            "schedule it with Prefect on this machine (with a Prefect server: prefect server start, or "
            f"PREFECT_API_URL): {run}prefect work-pool create {pool} --type process && {run}prefect deploy "
            f"--prefect-file {layout.PREFECT_FILE} --name {dbt.slug}-{spec.local_env} && "
            f"{run}prefect worker start --pool {pool}"
        )
    notes += secret_commands(spec)
    if spec.cloud:
        notes.append(
            f"on AWS: deploy {layout.STACK_TEMPLATE} once per environment (commands at its top), then set the "
            f"repository variables listed at the top of {layout.CD_WORKFLOW}"
        )
    else:
        notes.append(
            f"no environment has an S3 store: {layout.name(layout.CD_WORKFLOW)}, the stack and k8s were not written"
        )
    old = [os.path.relpath(path, root) for path in _old_kit(dbt)]
    if old:
        notes.append(
            f"{', '.join(old)}: written by an older dbt-ferry init and left as they are; the kit is now in "
            f"{layout.KIT_DIR}/ and {layout.CI_WORKFLOW}, {layout.CD_WORKFLOW}: remove the old files "
            f"(git rm {' '.join(old)}) so that CI and CD do not run twice"
        )
    return notes


def secret_commands(spec: KitSpec) -> list[str]:
    """For each secret a cloud environment's profile reads: the one command that stores it (Secrets Manager, or
    an SSM SecureString parameter), and the stack parameter that takes its ARN."""
    notes = []
    for env in spec.cloud:
        for variable in env.secrets:
            name = secret_name(spec, env, variable.name)
            optional = " (optional: the profile has a default)" if variable.optional else ""
            notes.append(
                f"store {env.name}'s {variable.name}{optional} once: aws secretsmanager create-secret --region "
                f'{env.region} --name {name} --secret-string "${variable.name}" (or aws ssm put-parameter --region '
                f'{env.region} --type SecureString --name /{name} --value "${variable.name}"), and deploy the stack '
                f"with {secret_parameter(variable.name)}=<its ARN>"
            )
    return notes
