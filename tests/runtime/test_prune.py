"""``dbt-ferry prune`` on a local folder and on S3: old runs and releases go, what a channel, a state or a retry
still needs stays, and a dry run changes nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbt_ferry.config.loader import load_project
from dbt_ferry.core.errors import ConfigError, ReleaseNotFoundError
from dbt_ferry.core.manifest import Channel
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.release.catalog import published_versions
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.runtime.prune import PruneRule, apply_prune, plan_prune
from dbt_ferry.runtime.retry import LAST_FAILED, find_run
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store
from tests.conftest import run_cli

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0")


@pytest.fixture(params=[pytest.param("local", id="local"), pytest.param("s3", id="s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return S3Store(request.getfixturevalue("bucket"), "shop")


def _run(store: ArtifactStore, invocation: str, days_ago: float | None, version: str = "1.4.0") -> None:
    folder = f"runs/local/{invocation}/"
    store.write_bytes(folder + "run_results.json", b"{}")
    if days_ago is not None:
        info = {"project": "shop", "environment": "local", "release_version": version, "command": "build",
                "started_at": (NOW - timedelta(days=days_ago)).isoformat()}  # fmt: skip
        store.write_bytes(folder + "ferry.json", json.dumps(info).encode())


@pytest.fixture
def filled(store: ArtifactStore, shop: Path, tmp_path: Path) -> ArtifactStore:
    """Five releases, two channels (one with a rollback target), a state, a last failed run, eight runs."""
    pyproject = shop / "pyproject.toml"
    for version in VERSIONS:
        pyproject.write_text(re.sub(r'(?m)^version = "[^"]*"$', f'version = "{version}"', pyproject.read_text()))
        built = package_release(load_project(shop), tmp_path / "builds" / version)
        publish_release(store, built)
    store.write_bytes("channels/local.json", Channel(version="1.4.0", previous="1.3.0").to_json())
    store.write_bytes("channels/pro.json", Channel(version="1.0.0").to_json())
    for n in range(5):
        _run(store, f"run-{n}", days_ago=n * 10)
    _run(store, "run-undated", days_ago=None)
    _run(store, "run-failed", days_ago=100, version="1.3.0")
    _run(store, "run-state", days_ago=90, version="1.1.0")
    store.write_bytes("runs/local/last-failed.json", json.dumps({"invocation_id": "run-failed"}).encode())
    state = {"environment": "local", "release_version": "1.1.0", "invocation_id": "run-state"}
    store.write_bytes("state/local/state.json", json.dumps(state).encode())
    return store


def _runs(store: ArtifactStore) -> set[str]:
    return {key.split("/")[2] for key in store.list_keys("runs/local/") if key.count("/") >= 3}


def test_keep_removes_the_old_runs_but_not_what_a_retry_or_the_state_needs(filled: ArtifactStore) -> None:
    plan = plan_prune(filled, "local", PruneRule(keep=2), now=NOW)
    assert sorted(plan.runs) == ["run-2", "run-3", "run-4"]
    assert plan.protected == {
        "run-failed": "the last failed run (dbt-ferry retry)",
        "run-state": "the run of the environment's state",
        "run-undated": "cannot be dated (no readable ferry.json)",
    }
    before = set(filled.list_keys(""))
    assert before == set(filled.list_keys(""))  # planning changes nothing
    apply_prune(filled, plan)
    assert _runs(filled) == {"run-0", "run-1", "run-undated", "run-failed", "run-state"}
    assert find_run(filled, "local", LAST_FAILED).invocation_id == "run-failed"  # retry still finds its run
    assert set(filled.list_keys("")) == before - set(plan.keys)
    assert published_versions(filled) == list(reversed(VERSIONS))  # releases only with releases=True


def test_older_than_and_keep_together(filled: ArtifactStore) -> None:
    plan = plan_prune(filled, "local", PruneRule(keep=1, older_than=timedelta(days=25)), now=NOW)
    assert sorted(plan.runs) == ["run-3", "run-4"]  # run-1 and run-2 are beyond the newest one but younger
    only_age = plan_prune(filled, "local", PruneRule(older_than=timedelta(days=5)), now=NOW)
    assert sorted(only_age.runs) == ["run-1", "run-2", "run-3", "run-4"]


def test_releases_go_only_when_nothing_needs_them(filled: ArtifactStore, tmp_path: Path) -> None:
    plan = plan_prune(filled, "local", PruneRule(keep=1), releases=True, now=NOW)
    assert plan.releases == ["1.2.0"]
    assert {v: plan.protected[v] for v in ("1.0.0", "1.1.0", "1.3.0")} == {
        "1.0.0": "the channel of pro",
        "1.1.0": "the state of local",
        "1.3.0": "the rollback target of local",
    }
    apply_prune(filled, plan)
    assert published_versions(filled) == ["1.4.0", "1.3.0", "1.1.0", "1.0.0"]
    assert filled.list_keys("releases/1.2.0/") == []
    with pytest.raises(ReleaseNotFoundError):
        fetch_release(filled, "local", tmp_path / "gone", version="1.2.0", with_env=False)
    fetched = fetch_release(filled, "pro", tmp_path / "pro", with_env=False)  # the others are whole
    assert fetched.manifest.version == "1.0.0"


def test_a_rule_is_needed() -> None:
    with pytest.raises(ConfigError, match="prune needs a rule"):
        PruneRule()


def test_the_command_dry_run_then_for_real(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(tmp_path / "store")
    for n in range(4):
        _run(store, f"run-{n}", days_ago=n * 400)  # started_at is far in the past: NOW is not today
    args = ("prune", "--env", "local", "--project-dir", str(shop), "--store", str(store.root), "--keep", "1")
    code, out, _ = run_cli(capsys, *args, "--dry-run")
    assert code == 0
    assert out.splitlines()[0] == "Would remove 3 run(s) of local (6 files); 1 run(s) kept"
    assert len(_runs(store)) == 4
    code, out, _ = run_cli(capsys, *args)
    assert (code, out.splitlines()[0]) == (0, "Removed 3 run(s) of local (6 files); 1 run(s) kept")
    assert _runs(store) == {"run-0"}
    code, _, err = run_cli(capsys, "prune", "--env", "local", "--project-dir", str(shop), "--store", str(store.root))
    assert code == 3
    assert "prune needs a rule — pass --keep N, --older-than DAYS, or both" in err
