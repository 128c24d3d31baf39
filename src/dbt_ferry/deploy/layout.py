"""Where ``dbt-ferry init`` writes the deployment kit: in places of its own, beside the project's files.

A project's own Dockerfile, prefect.yaml or ``.github/workflows/ci.yml`` never collide with the kit's, and
``init --force`` rewrites only these paths. Paths are relative to the project folder, the workflows' to the
repository root (GitHub reads workflows there only).
"""

from __future__ import annotations

#: The kit's folder in the project.
KIT_DIR = "deploy/ferry"
DOCKERFILE = f"{KIT_DIR}/Dockerfile"
#: A dbt-ferry wheel the image and the lock install (``init --ferry-source FILE.whl``): in the image's build context.
WHEELS_DIR = f"{KIT_DIR}/wheels"
PREFECT_FILE = f"{KIT_DIR}/prefect.yaml"
STACK_TEMPLATE = f"{KIT_DIR}/cloudformation.yaml"
K8S_JOB = f"{KIT_DIR}/k8s/job.yaml"
K8S_CRONJOB = f"{KIT_DIR}/k8s/cronjob.yaml"
CI_WORKFLOW = ".github/workflows/dbt-ferry-ci.yml"
CD_WORKFLOW = ".github/workflows/dbt-ferry-cd.yml"
#: Dependabot's one file (repository root): written only when the repository has none of its own.
DEPENDABOT = ".github/dependabot.yml"

#: Where an older ``dbt-ferry init`` wrote the kit (project folder; the workflows in the repository).
OLD_PROJECT_FILES = (
    "Dockerfile", "prefect.yaml", "deploy/cloudformation.yaml", "deploy/k8s/job.yaml", "deploy/k8s/cronjob.yaml",
)  # fmt: skip
OLD_WORKFLOWS = (".github/workflows/ci.yml", ".github/workflows/cd.yml")
#: What every file of the kit says near its top, then and now (with or without the backticks).
MARKER = "written by dbt-ferry init"


def name(path: str) -> str:
    """A kit path's file name (``dbt-ferry-cd.yml``)."""
    return path.rsplit("/", 1)[-1]
