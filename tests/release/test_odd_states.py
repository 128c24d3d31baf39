"""Odd states around a fetch: a destination that is a link, a profiles.yml that is not a file."""

from __future__ import annotations

from pathlib import Path

from dbt_ferry.config.loader import load_project
from dbt_ferry.release.fetch import fetch_release
from dbt_ferry.release.package import list_contents, package_release
from dbt_ferry.release.publish import publish_release
from dbt_ferry.storage.local import LocalStore


def test_a_destination_that_is_a_link_is_followed(shop: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_release(store, package_release(load_project(shop), tmp_path / "build"), environment="local", promote=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "dangling").symlink_to(tmp_path / "not-yet")
    for link, real in (("link", "real"), ("dangling", "not-yet")):
        fetched = fetch_release(store, "local", tmp_path / link, with_env=False)
        assert fetched.project_dir == tmp_path / real
        assert (tmp_path / link).is_symlink() and (tmp_path / real / "dbt_project.yml").is_file()


def test_a_local_profiles_yml_never_ships_and_the_environment_profile_replaces_any(shop: Path, tmp_path: Path) -> None:
    (shop / "profiles.yml").mkdir()  # even a folder of that name
    (shop / "profiles.yml" / "secrets.txt").write_text("hunter2")
    left_out = {item.path.rstrip("/"): item.reason for item in list_contents(load_project(shop)).left_out}
    assert "the fetch writes the environment's profile here" in left_out["profiles.yml"]
    store = LocalStore(tmp_path / "store")
    publish_release(store, package_release(load_project(shop), tmp_path / "build"), environment="local", promote=True)
    fetched = fetch_release(store, "local", tmp_path / "dest", with_env=False)
    profile = fetched.project_dir / "profiles.yml"
    assert profile.is_file() and "hunter2" not in profile.read_text()
