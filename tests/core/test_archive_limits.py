"""Bounds on what one archive may hold (members, bytes, depth), through both extractors; a clear error each."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dbt_ferry.core.archive import extract_stream
from dbt_ferry.core.errors import ConfigError, IntegrityError, UnsafeArchiveError
from dbt_ferry.core.gnutar import find_gnu_tar
from dbt_ferry.core.tarcheck import ArchiveLimits
from tests.core.tarbytes import END, member, pax

EXTRACTORS = [False, *([True] if find_gnu_tar() else [])]


@pytest.mark.parametrize("native", EXTRACTORS)
@pytest.mark.parametrize(
    ("variable", "value", "archive", "message"),
    [
        ("DBT_FERRY_ARCHIVE_MAX_MEMBERS", "10", b"".join(member(f"f{i}") for i in range(11)), "more than 10 members"),
        ("DBT_FERRY_ARCHIVE_MAX_BYTES", "1000", member("a", b"x" * 600) + member("b", b"y" * 600), "1,000 bytes"),
        ("DBT_FERRY_ARCHIVE_MAX_DEPTH", "3", member("a/b/c/d.txt"), "more than 3 levels deep"),
    ],
)
def test_an_archive_beyond_a_limit_is_refused_and_nothing_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, archive: bytes, message: str,
    native: bool,
) -> None:  # fmt: skip
    monkeypatch.setenv(variable, value)
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match=message) as raised:
        extract_stream(io.BytesIO(archive + END), target, native=native)
    assert raised.value.hint == f"if it is yours, raise {variable}"
    assert not target.exists()


def test_the_defaults_hold_an_env_pack_and_bad_settings_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = ArchiveLimits.from_environ({})
    assert (limits.members, limits.size, limits.depth) == (500_000, 16 * 1024**3, 48)
    with pytest.raises(ConfigError, match="DBT_FERRY_ARCHIVE_MAX_MEMBERS='lots' is not a positive whole number"):
        ArchiveLimits.from_environ({"DBT_FERRY_ARCHIVE_MAX_MEMBERS": "lots"})


def test_a_pax_number_of_4300_digits_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    archive = pax([("size", "9" * 4300)]) + member("m") + END
    with pytest.raises(IntegrityError, match="invalid pax size"):
        extract_stream(io.BytesIO(archive), tmp_path / "t", native=False)
