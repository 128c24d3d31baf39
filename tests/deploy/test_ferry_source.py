"""`init --ferry-source`: the project and its image install dbt-ferry from the index, a wheel, or git, and agree.

The slow test locks and installs each variant for real, from a wheel built from this checkout: the index is a
folder of wheels (``--find-links``), git a local repository (``git+file://``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.core.version import DBT_FERRY_VERSION
from dbt_ferry.deploy import init_project
from dbt_ferry.deploy.ferry_source import INDEX, FerrySource, ferry_source
from dbt_ferry.release.envpack import find_uv
from tests.conftest import REPO
from tests.deploy.conftest import BIN, GOLDEN_ENVIRONMENTS, REGION, Adoptable

WHEEL_NAME = f"dbt_ferry-{DBT_FERRY_VERSION}-py3-none-any.whl"


def _init(jaffle: Adoptable, ferry: str | None = None, *, force: bool = False) -> dict[str, str]:
    result = init_project(
        jaffle.root, environments=GOLDEN_ENVIRONMENTS, region=REGION, ferry=ferry, force=force, environ={},
        home=jaffle.home,
    )  # fmt: skip
    return {f.path.relative_to(jaffle.root).as_posix(): f.action for f in result.files}


def _sources(root: Path) -> object:
    return tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"].get("sources", {}).get("dbt-ferry")


def _fake_wheel(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    wheel = where / WHEEL_NAME
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: init copies it, it does not install it
    return wheel


def test_the_flag_is_parsed_or_refused_in_one_line(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "dist")
    assert ferry_source(None, tmp_path, None) == INDEX
    assert ferry_source("index", tmp_path, None) == INDEX
    parsed = ferry_source("dist/" + WHEEL_NAME, tmp_path, None, cwd=tmp_path)
    assert parsed == FerrySource("wheel", wheel=WHEEL_NAME, origin=wheel)
    assert parsed.uv_source() == {"path": f"deploy/ferry/wheels/{WHEEL_NAME}"}
    git = ferry_source("git+ssh://git@github.com/acme/dbt-ferry.git@v0.1.0", tmp_path, None)
    assert git.uv_source() == {"git": "ssh://git@github.com/acme/dbt-ferry.git", "rev": "v0.1.0"}
    assert ferry_source("git+https://github.com/acme/dbt-ferry", tmp_path, None).uv_source() == {
        "git": "https://github.com/acme/dbt-ferry"
    }
    for bad, says in [
        ("pypi", "not index, a dbt-ferry wheel (.whl) or a git+ URL"),
        ("dist/other-1.0-py3-none-any.whl", "not a dbt-ferry wheel"),
        (f"missing/{WHEEL_NAME}", "there is no such file"),
        ("git+github.com/acme/dbt-ferry", "not a git URL"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(says)) as caught:
            ferry_source(bad, tmp_path, None, cwd=tmp_path)
        assert "\n" not in str(caught.value) and "--ferry-source" in (caught.value.hint or "")


def test_what_pyproject_declares_is_kept_and_never_contradicted(tmp_path: Path) -> None:
    declared = {"git": "https://github.com/acme/dbt-ferry", "tag": "v0.1.0"}
    assert ferry_source(None, tmp_path, declared) == FerrySource("git", url=declared["git"], rev="v0.1.0")
    assert ferry_source(None, tmp_path, {"path": "../..", "editable": False}).kind == "folder"
    with pytest.raises(ConfigError, match=re.escape("from git https://github.com/acme/dbt-ferry at v0.1.0")):
        ferry_source("index", tmp_path, declared)
    with pytest.raises(ConfigError, match="outside deploy/ferry/wheels/"):
        ferry_source(None, tmp_path, {"path": f"vendor/{WHEEL_NAME}"})


def test_a_wheel_is_copied_into_the_kit_and_everything_names_that_file(jaffle: Adoptable, tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "dist")
    actions = _init(jaffle, str(wheel))
    kit_wheel = f"deploy/ferry/wheels/{WHEEL_NAME}"
    assert actions[kit_wheel] == "created"
    assert (jaffle.root / kit_wheel).read_bytes() == wheel.read_bytes()
    assert _sources(jaffle.root) == {"path": kit_wheel}

    dockerfile = (jaffle.root / "deploy/ferry/Dockerfile").read_text()
    assert f"COPY wheels/{WHEEL_NAME} /tmp/wheels/" in dockerfile
    assert re.findall(r"pip install [^\n]*", dockerfile) == [f"pip install --no-cache-dir /tmp/wheels/{WHEEL_NAME} \\"]
    assert "DBT_FERRY_VERSION" not in dockerfile
    # The image's tag is the digest of the Dockerfile and the wheel: cd.yml's, the stack's and Kubernetes' agree.
    cd = (jaffle.root / ".github/workflows/dbt-ferry-cd.yml").read_text()
    assert f'tag="image-$(cat deploy/ferry/Dockerfile {kit_wheel} | sha256sum | cut -c1-16)"' in cd
    assert f'- "{kit_wheel}"' in cd  # a new wheel deploys
    tag = "image-" + hashlib.sha256(dockerfile.encode() + wheel.read_bytes()).hexdigest()[:16]
    # The workflow's own line, run as the runner runs it (bash, in the project folder), names that tag.
    (line,) = set(re.findall(r'^\s*(tag="image-\$\(.*\)")$', cd, re.MULTILINE))  # one per environment, alike
    shell = subprocess.run(["bash", "-c", f'{line} && echo "$tag"'], cwd=jaffle.root, capture_output=True, text=True)
    assert shell.stdout.strip() == tag, shell.stderr
    assert f'Default: "{tag}"' in (jaffle.root / "deploy/ferry/cloudformation.yaml").read_text()
    assert f":{tag}" in (jaffle.root / "deploy/ferry/k8s/job.yaml").read_text()

    # Again, without the flag: [tool.uv.sources] says where dbt-ferry comes from, and nothing changes.
    again = _init(jaffle)
    assert again[kit_wheel] == "exists"
    assert {a for name, a in again.items() if name != kit_wheel} <= {"unchanged", "exists"}
    # A different wheel under the same name is kept unless --force.
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    assert _init(jaffle, str(wheel))[kit_wheel] == "kept"
    assert _init(jaffle, str(wheel), force=True)[kit_wheel] == "overwritten"
    assert (jaffle.root / kit_wheel).read_bytes() == wheel.read_bytes()


def test_git_installs_git_in_the_image(jaffle: Adoptable) -> None:
    _init(jaffle, "git+https://github.com/acme/dbt-ferry@v0.1.0")
    assert _sources(jaffle.root) == {"git": "https://github.com/acme/dbt-ferry", "rev": "v0.1.0"}
    dockerfile = (jaffle.root / "deploy/ferry/Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends git" in dockerfile
    assert 'pip install --no-cache-dir "dbt-ferry @ git+https://github.com/acme/dbt-ferry@v0.1.0" \\' in dockerfile


@pytest.mark.parametrize("variant", ["index", "wheel", "git"])
def test_each_dockerfile_passes_hadolint(jaffle: Adoptable, tmp_path: Path, variant: str) -> None:
    flag = {"index": "index", "wheel": str(_fake_wheel(tmp_path / "dist")), "git": "git+https://example.com/x@v1"}
    _init(jaffle, flag[variant])
    linted = subprocess.run(
        [BIN / "hadolint", "--failure-threshold", "info", str(jaffle.root / "deploy/ferry/Dockerfile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _clean_env() -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "UV_FIND_LINKS", "UV_OFFLINE")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"UV_PYTHON_DOWNLOADS": "never"}


def _git_repository(where: Path) -> str:
    """This checkout's package as a git repository of its own (committed as it is now)."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, where / name)
    shutil.copytree(REPO / "src", where / "src", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "--quiet", str(where)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "dbt-ferry"], check=True)
    subprocess.run([*git, "tag", "v-test"], check=True)
    return f"git+file://{where}@v-test"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["index", "wheel", "git"])
def test_each_source_locks_and_installs_in_a_clean_virtualenv(
    jaffle: Adoptable, tmp_path: Path, ferry_wheel: Path, variant: str
) -> None:
    """uv lock and the workflows' `uv sync --locked`, then the Dockerfile's own install of the bootstrap set."""
    uv, env = find_uv(), _clean_env()
    index = tmp_path / "index"
    index.mkdir()
    shutil.copy2(ferry_wheel, index)
    if variant == "index":
        env["UV_FIND_LINKS"] = str(index)  # the package index, as far as dbt-ferry is concerned
    flag = {"index": "index", "wheel": str(ferry_wheel)}.get(variant) or _git_repository(_mkdir(tmp_path / "git"))
    _init(jaffle, flag)

    def run(*args: str | Path, cwd: Path = jaffle.root) -> None:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"

    run(uv, "lock", "--quiet")
    locked = tomllib.loads((jaffle.root / "uv.lock").read_text())
    (ferry,) = [p for p in locked["package"] if p["name"] == "dbt-ferry"]
    assert set(ferry["source"]) == {"index": {"registry"}, "wheel": {"path"}, "git": {"git"}}[variant], ferry
    run(uv, "sync", "--locked", "--quiet", "--no-install-project")
    project_python = jaffle.root / ".venv" / "bin" / "python"
    run(project_python, "-c", "import dbt_ferry, dbt.version, prefect")

    # The image: the Dockerfile's pip install, of dbt-ferry alone, into a fresh virtualenv.
    dockerfile = (jaffle.root / "deploy/ferry/Dockerfile").read_text()
    (spec,) = re.findall(r"pip install --no-cache-dir (\S+|\"[^\"]+\") \\", dockerfile)
    spec = spec.strip('"').replace("${DBT_FERRY_VERSION}", DBT_FERRY_VERSION)
    spec = spec.replace(f"/tmp/wheels/{WHEEL_NAME}", str(jaffle.root / "deploy/ferry/wheels" / WHEEL_NAME))
    image = tmp_path / "image"
    run(uv, "venv", "--quiet", "--python", sys.executable, image)
    run(uv, "pip", "install", "--quiet", "--python", image / "bin" / "python", spec)
    run(image / "bin" / "dbt-ferry", "--version")
    missing = subprocess.run([image / "bin" / "python", "-c", "import dbt"], capture_output=True, check=False)
    assert missing.returncode != 0  # the bootstrap set only


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_the_cli_refuses_a_bad_source_in_one_line_and_writes_nothing(
    jaffle: Adoptable, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt_ferry.cli.main import main

    monkeypatch.setenv("HOME", str(jaffle.home))
    monkeypatch.setenv("DBT_PROFILES_DIR", "")
    with pytest.raises(SystemExit) as exited:
        main(["init", "--project-dir", str(jaffle.root), "--ferry-source", "pypi"])
    assert exited.value.code == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--ferry-source pypi: not index, a dbt-ferry wheel (.whl) or a git+ URL" in line
    assert "--ferry-source git+https://github.com/OWNER/dbt-ferry@REV" in line
    assert not (jaffle.root / "pyproject.toml").exists() and not (jaffle.root / "deploy").exists()
