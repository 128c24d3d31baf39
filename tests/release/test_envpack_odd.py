"""An env pack that is not a virtualenv (no ``bin/``, no dbt-ferry or dbt-core in it) is refused in one line and
leaves nothing in the cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dbt_ferry.core.archive import Entry, write_archive
from dbt_ferry.core.errors import IntegrityError
from dbt_ferry.release.envpack import unpack_env

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SITE = f"lib/python{PYTHON}/site-packages"


@pytest.mark.parametrize(
    ("members", "missing"),
    [
        ([f"{SITE}/dbt_ferry/__init__.py", f"{SITE}/dbt/__init__.py", "pyvenv.cfg"], "bin"),
        (["bin/dbt", f"{SITE}/dbt/__init__.py"], f"{SITE}/dbt_ferry"),
        (["bin/dbt", f"{SITE}/dbt_ferry/__init__.py"], f"{SITE}/dbt"),
        (["README.md"], f"bin, {SITE}/dbt_ferry, {SITE}/dbt"),
    ],
)
def test_an_env_pack_that_is_no_virtualenv_is_refused(members: list[str], missing: str, tmp_path: Path) -> None:
    pack = tmp_path / "env.tar.zst"
    write_archive([Entry(name, data=b"") for name in members], pack)
    dest = tmp_path / "cache" / "env-abc"
    with pytest.raises(IntegrityError, match=f"holds no {missing} —"):
        unpack_env(pack, dest, PYTHON)
    assert not dest.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no staging folder left either
