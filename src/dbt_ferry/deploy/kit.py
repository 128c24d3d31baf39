"""The deployment kit of a project: Dockerfile, GitHub workflows, CloudFormation, prefect.yaml, Kubernetes jobs.

The files go where :mod:`dbt_ferry.deploy.layout` says (``deploy/ferry/``, ``.github/workflows/dbt-ferry-*.yml``),
so they never collide with a project's own. Everything is computed from the project
(:class:`~dbt_ferry.deploy.project.DbtProject`) and its resolved environments (:class:`KitSpec`); nothing is read
from the network or the clock, so the same project always gives the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.deploy import layout
from dbt_ferry.deploy.athena import ATHENA, athena_names
from dbt_ferry.deploy.ferry_source import INDEX, FerrySource, image_inputs, image_tag, install_step
from dbt_ferry.deploy.profiles import ProfileVariable
from dbt_ferry.deploy.project import DbtProject, ident, slug
from dbt_ferry.deploy.render import (
    ACTION_PINS,
    BASE_IMAGE,
    PREFECT_VERSION,
    PREFECT_WORKER_IMAGE,
    PYTHON_VERSION,
    UV_VERSION,
    fill,
    load_template,
    render,
)

#: The job's arguments to `dbt-ferry run` (the image's entrypoint) everywhere it is started on a schedule.
JOB_ARGUMENTS = ("build",)
#: Cron of the generated schedules (Prefect, Kubernetes); EventBridge's is a stack parameter, off by default.
DEFAULT_CRON = "0 6 * * *"
RUNNER = "ubuntu-24.04"
#: The platform the release's env pack is built for (the task's Architecture X86_64; ARM64 is linux/arm64).
DOCKER_PLATFORM = "linux/amd64"
#: The platforms of the image cd.yml builds: one image for either Architecture of the task.
IMAGE_PLATFORMS = "linux/amd64,linux/arm64"
#: Hard limit of one Kubernetes run, in seconds.
ACTIVE_DEADLINE = 3 * 3600
#: What the task definition sets itself: never a warehouse secret parameter of the stack.
TASK_VARIABLES = frozenset(
    {"DBT_FERRY_ENV", "DBT_FERRY_STORE", "DBT_FERRY_NOTIFY_URL", "PREFECT_API_URL", "PREFECT_API_KEY"}
)
_ROOT_FILES = (
    "dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml", "selectors.yml", "pyproject.toml",
)  # fmt: skip


@dataclass(frozen=True)
class CloudEnv:
    """An environment whose store is in S3: deployed by cd.yml and the stack."""

    name: str
    bucket: str
    prefix: str
    region: str
    namespace: str
    target: str | None
    profile_path: str
    account_id: str | None
    #: The variables its profile's target reads with env_var(): the task passes each from a secret.
    variables: tuple[ProfileVariable, ...] = ()
    #: The adapter type of its profile's target (``athena``: the stack creates the work group and the database).
    adapter: str | None = None

    @property
    def secrets(self) -> tuple[ProfileVariable, ...]:
        """The variables the stack takes a secret for (not those the task definition sets, nor ``AWS_*``)."""
        return tuple(v for v in self.variables if v.name not in TASK_VARIABLES and not v.name.startswith("AWS_"))

    @property
    def slug(self) -> str:
        return slug(self.name, limit=31)

    @property
    def var_prefix(self) -> str:
        return ident(self.name).upper()


@dataclass(frozen=True)
class KitSpec:
    project: DbtProject
    dbt_ferry_version: str
    ci_env: str
    ci_target: str | None
    ci_profile: str
    cloud: tuple[CloudEnv, ...]
    profile_paths: tuple[str, ...]
    lock_file: str = "uv.lock"
    #: The environment run on this machine (a local store, not CI): its deployment goes on a process pool.
    local_env: str | None = None
    #: Where the image and the lock install dbt-ferry from.
    ferry: FerrySource = INDEX
    #: The wheel file whose bytes the image is built from (``ferry`` a wheel): the kit's copy or its origin.
    wheel_file: Path | None = None

    @property
    def repo_prefix(self) -> str:
        """The project folder as a prefix of repository paths: ``""`` or ``"sub/dir/"``."""
        where = self.project.path_in_repo
        return "" if where == "." else f"{where}/"

    @property
    def primary(self) -> CloudEnv:
        """The environment the single-environment files (stack defaults, Kubernetes) are written for: the last
        one, which by custom is production (snd, pre, pro)."""
        return self.cloud[-1]


def secret_parameter(variable: str) -> str:
    """The stack parameter holding the ARN of the secret for ``variable``: ``DBT_SHOP_PRO_PASSWORD`` →
    ``DbtShopProPasswordSecretArn`` (CloudFormation names are letters and digits)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", variable) if part) + "SecretArn"


def secret_name(spec: KitSpec, env: CloudEnv, variable: str) -> str:
    """The name the commands init prints store ``variable``'s secret under: ``<project>/<env>/<VARIABLE>``."""
    return f"{spec.project.slug}/{env.name}/{variable}"


def kit_files(spec: KitSpec) -> dict[Path, str]:
    """Every generated file, by absolute path."""
    root, repo = spec.project.root, spec.project.repo_root
    dockerfile = render(
        "Dockerfile", {**_common(spec), "install_ferry": install_step(spec.ferry, spec.dbt_ferry_version)}
    )
    tag = image_tag(dockerfile.encode(), spec.wheel_file)  # what cd.yml names the image built from these files
    files = {
        root / layout.DOCKERFILE: dockerfile,
        repo / layout.CI_WORKFLOW: _ci(spec),
        root / layout.PREFECT_FILE: _prefect(spec),
        repo / layout.DEPENDABOT: _dependabot(spec),
    }
    if spec.cloud:
        files[repo / layout.CD_WORKFLOW] = _cd(spec)
        files[root / layout.STACK_TEMPLATE] = _cloudformation(spec, tag)
        files[root / layout.K8S_JOB] = _k8s(spec, "k8s/job.yaml", tag)
        files[root / layout.K8S_CRONJOB] = _k8s(spec, "k8s/cronjob.yaml", tag)
    return files


def _dependabot(spec: KitSpec) -> str:
    return render("github/dependabot.yml", {"kit_dir": f"/{spec.repo_prefix}{layout.KIT_DIR}"})


def _common(spec: KitSpec) -> dict[str, str]:
    return {
        "project": spec.project.name,
        "project_slug": spec.project.slug,
        "python_version": PYTHON_VERSION,
        "base_image": BASE_IMAGE,
        "uv_version": UV_VERSION,
        "prefect_version": PREFECT_VERSION,
        "dbt_ferry_version": spec.dbt_ferry_version,
        # The kit's own paths, as its files name one another (the project folder's; workflows: the repository's).
        "dockerfile_path": layout.DOCKERFILE,
        "prefect_file": layout.PREFECT_FILE,
        "stack_template": layout.STACK_TEMPLATE,
        "k8s_job": layout.K8S_JOB,
        "k8s_cronjob": layout.K8S_CRONJOB,
        "ci_workflow": layout.CI_WORKFLOW,
        "cd_workflow": layout.CD_WORKFLOW,
        "ci_workflow_name": layout.name(layout.CI_WORKFLOW),
        "cd_workflow_name": layout.name(layout.CD_WORKFLOW),
        **ACTION_PINS,
    }


def _working_directory(spec: KitSpec) -> str:
    where = spec.project.path_in_repo
    return "" if where == "." else f"defaults:\n  run:\n    working-directory: {where}"


def _ci(spec: KitSpec) -> str:
    values = {
        **_common(spec),
        "ci_env": spec.ci_env,
        "ci_profile": spec.ci_profile,
        "ci_target_flag": f" --target {spec.ci_target}" if spec.ci_target else "",
        "lock_glob": f"{spec.repo_prefix}{spec.lock_file}",
        "working_directory": _working_directory(spec),
    }
    full_run = (
        f"      - name: Run the release in {spec.ci_env}\n"
        '        run: uv run --no-sync dbt-ferry run --env "$DBT_FERRY_ENV"'
    )
    if not spec.cloud:
        return render("github/ci.yml", {**values, "slim_help": "", "slim_permissions": "", "slim_steps": full_run})
    env = spec.primary
    slim = render("github/ci-slim.yml", {**values, "env": env.name, "var_prefix": env.var_prefix, "region": env.region})
    help_text = (
        f"# Slim CI when the repository variable {env.var_prefix}_AWS_STATE_ROLE_ARN is set (the StateReaderRoleArn\n"
        f"# output of the {env.name} stack): only what the pull request changed runs (`+state:modified+` against\n"
        f"# the state of {env.name}'s last fully successful run), else the whole project."
    )
    permissions = "id-token: write # read the production state for slim CI (GitHub OIDC); nothing else"
    return render(
        "github/ci.yml", {**values, "slim_help": help_text, "slim_permissions": permissions, "slim_steps": slim}
    )


def _watched_paths(spec: KitSpec) -> list[str]:
    """What a push must touch to deploy: the dbt project's folders and files, the lock, the profiles, the image."""
    prefix = spec.repo_prefix
    paths = [f"{prefix}{folder}/**" for folder in (*spec.project.folders, *spec.project.local_packages)]
    paths += [f"{prefix}{name}" for name in (*_ROOT_FILES, spec.lock_file)]
    for profile in spec.profile_paths:
        folder = profile.rsplit("/", 1)[0] if "/" in profile else None
        paths.append(f"{prefix}{folder}/**" if folder else f"{prefix}{profile}")
    paths += [f"{prefix}{path}" for path in image_inputs(spec.ferry)] + [layout.CD_WORKFLOW]
    return list(dict.fromkeys(paths))


def _cd(spec: KitSpec) -> str:
    common = _common(spec)
    jobs = []
    for index, env in enumerate(spec.cloud):
        needs = f"needs: [deploy-{spec.cloud[index - 1].name}]" if index else ""
        jobs.append(
            render(
                "github/cd-job.yml",
                {
                    **common,
                    "env": env.name,
                    "needs": needs,
                    "runner": RUNNER,
                    "working_directory": _working_directory(spec),
                    "region": env.region,
                    "ecr_repository": f"{spec.project.slug}-dbt-ferry-{env.name}",
                    "docker_platform": DOCKER_PLATFORM,
                    "image_platforms": IMAGE_PLATFORMS,
                    "image_inputs": " ".join(image_inputs(spec.ferry)),
                    "stack_name": f"{spec.project.slug}-{env.slug}",
                    "env_profile": env.profile_path,
                    "env_profile_repo": f"{spec.repo_prefix}{env.profile_path}",
                    "env_target": env.target or "of its profile",
                    "var_prefix": env.var_prefix,
                    # The image holds no project file: its context is the kit's folder alone.
                    "docker_context": f"{spec.repo_prefix}{layout.KIT_DIR}",
                    "dockerfile_repo": f"{spec.repo_prefix}{layout.DOCKERFILE}",
                },
            )
        )
    variables = []
    for env in spec.cloud:
        variables += [
            f"#   {env.var_prefix}_AWS_DEPLOY_ROLE_ARN    the DeployRoleArn output of the {env.name} stack",
            f"#   {env.var_prefix}_AWS_CHAINED_ROLE_ARN   optional: a role the deploy role assumes next "
            "(role chaining)",
        ]
    return render(
        "github/cd.yml",
        {
            **common,
            "cloud_env_list": ", then ".join(env.name for env in spec.cloud),
            "variables_help": "\n".join(variables),
            "paths": "\n".join(f'- "{path}"' for path in _watched_paths(spec)),
            "deploy_jobs": "\n".join(jobs).rstrip("\n"),
        },
    )


_VALUE_FROM_PATTERN = (
    "^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$"
    "|^arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+$"
)


def _or(conditions: list[str]) -> str:
    """``!Or`` of named conditions, nested so that no ``Fn::Or`` has more than 10 (CloudFormation's limit)."""
    items = [f"!Condition {name}" for name in conditions]
    while len(items) > 10:
        groups = [items[i : i + 10] for i in range(0, len(items), 10)]
        items = [f"!Or [{', '.join(g)}]" if len(g) > 1 else g[0] for g in groups]
    return f"!Or [{', '.join(items)}]"


def _warehouse_secrets(spec: KitSpec) -> dict[str, str]:
    """The template's blocks for the secrets the cloud environments' profiles read: a parameter per variable
    (the ARN of a Secrets Manager secret or an SSM SecureString parameter), its condition, the execution
    role's read permission and the container's ``Secrets`` entry."""
    readers: dict[str, list[str]] = {}
    for env in spec.cloud:
        for secret in env.secrets:
            readers.setdefault(secret.name, []).append(f"{env.name} ({env.profile_path})")
    parameters, conditions, resources, entries = [], [], [], []
    names = {variable: secret_parameter(variable) for variable in readers}
    if len(set(names.values())) != len(names):
        raise ConfigError(
            f"the profiles' variables {', '.join(sorted(names))} name the same stack parameter twice",
            "give the variables names that differ by more than case or punctuation",
        )
    for variable, where in readers.items():
        parameter, condition = names[variable], "Has" + names[variable].removesuffix("Arn")
        parameters += [
            f"{parameter}:",
            "  Type: String",
            '  Default: ""',
            f'  AllowedPattern: "{_VALUE_FROM_PATTERN}"',
            "  Description: >-",
            f"    ARN of the Secrets Manager secret or SSM SecureString parameter the job reads as {variable}",
            f"    (env_var() of the profile of {', '.join(where)}); empty: not passed.",
        ]
        conditions.append(f'{condition}: !Not [!Equals [!Ref {parameter}, ""]]')
        resources.append(f"- !If [{condition}, !Ref {parameter}, !Ref AWS::NoValue]")
        entries += [
            "- !If",
            f"  - {condition}",
            f"  - Name: {variable}",
            f"    ValueFrom: !Ref {parameter}",
            "  - !Ref AWS::NoValue",
        ]
    has = ["HasNotifySecret", "HasPrefectApiKey", *("Has" + n.removesuffix("Arn") for n in names.values())]
    group = []
    if names:
        group = [
            "- Label: { default: Warehouse secrets (an ARN per env_var() of the profiles; empty to leave one out) }",
            f"  Parameters: [{', '.join(names.values())}]",
        ]
    return {
        "secret_parameter_group": "\n".join(group),
        "secret_parameters": "\n".join(
            ["# The warehouse's secrets: one per env_var() of the cloud environments' profiles.", *parameters]
            if parameters
            else []
        ),
        "secret_conditions": "\n".join(conditions),
        "has_secrets": _or(has),
        "secret_resources": "\n".join(resources),
        "secret_entries": "\n".join(entries),
    }


def _cloudformation(spec: KitSpec, tag: str) -> str:
    primary = spec.primary
    repository = spec.project.github_repository
    commands = []
    for env in spec.cloud:
        overrides = [f"{secret_parameter(v.name)}=arn:..." for v in env.secrets]
        if env.adapter == ATHENA:
            names = athena_names(spec.project.name, env.name, env.bucket, env.prefix)
            overrides = [f"Warehouse=athena ModelsDatabaseName={names.schema}", *overrides]
        commands += [
            f"#   aws cloudformation deploy --template-file {layout.STACK_TEMPLATE} --stack-name "
            f"{spec.project.slug}-{env.slug} \\",
            f"#     --region {env.region} --capabilities CAPABILITY_IAM "
            f"--parameter-overrides EnvironmentName={env.name} \\",
            f"#     StoreBucketName={env.bucket} StorePrefix={env.prefix} ResultsDatabaseName={env.namespace} \\",
            "#     VpcId=vpc-... SubnetIds=subnet-...,subnet-... SecurityGroupIds=sg-..."
            + ("" if repository else " GitHubRepository=OWNER/REPO")
            + (" \\" if overrides else ""),
        ]
        if overrides:
            commands.append("#     " + " ".join(overrides))
    return render(
        "cloudformation.yaml",
        {
            **_common(spec),
            "deploy_commands": "\n".join(commands),
            "env": primary.name,
            "bucket": primary.bucket,
            "prefix": primary.prefix,
            "results_database": primary.namespace,
            "var_prefix_hint": primary.var_prefix,
            "github_repository_default": f'Default: "{repository}"' if repository else "",
            "prefect_worker_image": PREFECT_WORKER_IMAGE,
            "image_tag": tag,
            "warehouse": "athena" if primary.adapter == ATHENA else "other",
            "models_database": athena_names(spec.project.name, primary.name, primary.bucket, primary.prefix).schema,
            **_warehouse_secrets(spec),
        },
    )


def _prefect(spec: KitSpec) -> str:
    common = _common(spec)
    deployments: list[str] = []
    local_help: list[str] = []
    if spec.local_env:
        pool = f"dbt-ferry-{slug(spec.local_env, limit=31)}"
        local_help = [
            f"# On this machine (the {spec.local_env} environment), from the project folder, once:",
            f"#   prefect work-pool create {pool} --type process",
            f"#   prefect deploy --prefect-file {layout.PREFECT_FILE} --name {spec.project.slug}-{spec.local_env}",
            "# then keep a worker running (in the project's environment, where `dbt-ferry` is on PATH):",
            f"#   prefect worker start --pool {pool}",
            "#",
        ]
        deployments.append(
            render(
                "prefect-deployment-local.yaml",
                {**common, "env": spec.local_env, "work_pool": pool},
            )
        )
    help_lines = []
    if spec.cloud:
        help_lines = [
            "# On AWS, once per environment, from the project folder: create the pool and load the stack's outputs",
            "# into Prefect variables (the network configuration is JSON, which a variable keeps as such):",
            '#   out() { aws cloudformation describe-stacks --stack-name "$1" --query '
            "\"Stacks[0].Outputs[?OutputKey=='$2'].OutputValue\" --output text; }",
        ]
    for env in spec.cloud:
        pool = f"dbt-ferry-{env.slug}"
        variable = f"{spec.project.ident}_{ident(env.name)}"
        stack = f"{spec.project.slug}-{env.slug}"
        help_lines.append(f"#   prefect work-pool create {pool} --type ecs")
        for name, output in (
            ("task_definition_arn", "TaskDefinitionArn"),
            ("cluster", "ClusterArn"),
            ("vpc_id", "VpcId"),
            ("network_configuration", "NetworkConfiguration"),
        ):
            help_lines.append(f'#   prefect variable set --overwrite {variable}_{name} "$(out {stack} {output})"')
        values = {**common, "env": env.name, "work_pool": pool, "var_prefix": variable}
        deployments.append(
            render(
                "prefect-deployment.yaml",
                {
                    **values,
                    "name_suffix": "",
                    "description": f"dbt-ferry run of {spec.project.name} in {env.name}: dbt build, daily",
                    "parameters": "parameters: {}",
                    "schedules": f'schedules:\n  - cron: "{DEFAULT_CRON}"\n    timezone: UTC\n    active: true',
                },
            )
        )
        deployments.append(
            render(
                "prefect-deployment.yaml",
                {
                    **values,
                    "name_suffix": "-full-refresh",
                    "description": f"dbt-ferry run of {spec.project.name} in {env.name} with --full-refresh, on demand",
                    "parameters": "parameters:\n  full_refresh: true",
                    "schedules": "schedules: []",
                },
            )
        )
    if spec.cloud:
        help_lines += ["# then deploy them all:", f"#   prefect deploy --prefect-file {layout.PREFECT_FILE} --all"]
    return render(
        "prefect.yaml",
        {
            **common,
            "local_help": "\n".join(local_help),
            "variables_help": "\n".join(help_lines),
            "deployments": "\n".join(deployments).rstrip("\n"),
        },
    )


def _k8s(spec: KitSpec, template: str, tag: str) -> str:
    env = spec.primary
    account = env.account_id or "AWS_ACCOUNT_ID"
    values = {
        **_common(spec),
        "env": env.name,
        "env_slug": env.slug,
        "service_account": f"{spec.project.slug}-dbt-ferry",
        "secret_name": f"{spec.project.slug}-dbt-ferry",
        "image": f"{account}.dkr.ecr.{env.region}.amazonaws.com/{spec.project.slug}-dbt-ferry-{env.name}:{tag}",
        "args": ", ".join(f'"{a}"' for a in JOB_ARGUMENTS),
        "bucket": env.bucket,
        "prefix": env.prefix,
        "region": env.region,
        "cron": DEFAULT_CRON,
        "active_deadline": str(ACTIVE_DEADLINE),
    }
    values["pod"] = fill(load_template("k8s/pod.yaml"), values, where="k8s/pod.yaml")
    values["service_account_doc"] = fill(
        load_template("k8s/service-account.yaml"), values, where="k8s/service-account.yaml"
    )
    return render(template, values)
