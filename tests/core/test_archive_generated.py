"""Generated hostile archives through both writers: nothing written outside the target, nothing left after a
refusal, no link or hard link out of it, every refusal one line (``tests/hostile_archives.py`` makes them)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from tests.core.test_archive import EXTRACTORS
from tests.hostile_archives import Sandbox, escapes, hostile_archive, try_extract

ARCHIVES = 200


@pytest.mark.parametrize("native", EXTRACTORS)
def test_generated_hostile_archives_write_nothing_outside_and_leave_nothing_after_a_refusal(
    native: bool, tmp_path: Path
) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.prepare()
    rng = random.Random(20261201)
    accepted, problems = 0, []
    for n in range(ARCHIVES):
        archive = hostile_archive(rng, sandbox)
        dest = tmp_path / f"dest-{n}"
        outcome = try_extract(archive, dest, sandbox, native=native)
        accepted += outcome.accepted
        problems += [f"archive {n}: {p}" for p in outcome.problems]
        shutil.rmtree(dest, ignore_errors=True)
    assert problems == []
    assert 0 < accepted < ARCHIVES  # the generator makes both kinds: the check sees refusals and extractions


def test_the_check_sees_each_kind_of_escape(tmp_path: Path) -> None:
    """What the loop above would report: a link out, a hard link to an outside file, a file made outside."""
    sandbox = Sandbox(tmp_path)
    sandbox.prepare()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "out").symlink_to("../outside")
    os.link(sandbox.outside / "keep.txt", dest / "hard")
    assert len(escapes(dest, sandbox)) == 2
    before = sandbox.entries(but=dest)
    (sandbox.outside / "new.txt").write_text("x")
    assert sandbox.entries(but=dest) - before == {str(sandbox.outside / "new.txt")}
