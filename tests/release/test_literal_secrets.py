"""A profile with a literal password is not published in clear by accident."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

PROFILE = """shop:
  target: local
  outputs:
    local:
      type: duckdb
      path: "{{ env_var('SHOP_DUCKDB_PATH', 'shop_local.duckdb') }}"
      threads: 4
    warehouse:
      type: postgres
      host: db
      user: loader
      password: hunter2
      port: 5432
      dbname: d
      schema: s
      threads: 1
"""


def test_a_literal_password_is_refused_unless_allowed(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "profiles" / "local.yml").write_text(PROFILE)
    store = str(tmp_path / "store")
    code, _, err = run_cli(capsys, "publish", "--env", "local", "--project-dir", str(shop), "--store", store)
    assert code == 4
    assert "local.yml of environment local holds a literal secret (shop.outputs.warehouse.password)" in err
    assert "{{ env_var('DBT_LOCAL_PASSWORD') }}" in err and "--allow-literal-secrets" in err
    assert "hunter2" not in err
    assert not (tmp_path / "store").exists()

    (shop / "profiles" / "local.yml").write_text(PROFILE.replace("hunter2", "\"{{ env_var('DBT_PG_PASSWORD') }}\""))
    assert run_cli(capsys, "package", "--project-dir", str(shop), "--out", str(tmp_path / "ok"))[0] == 0

    (shop / "profiles" / "local.yml").write_text(PROFILE)
    args = ("publish", "--env", "local", "--project-dir", str(shop), "--store", store, "--allow-literal-secrets")
    assert run_cli(capsys, *args)[0] == 0
