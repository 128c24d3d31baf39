"""Generated hostile archives through both writers: nothing written outside the target, nothing left after a
refusal, no link or hard link out of it, every refusal one line, and GNU tar and Python take or refuse the same
archives (``tests/hostile_archives.py`` makes them)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from tests.core.test_archive import NO_GNU_TAR
from tests.hostile_archives import Sandbox, escapes, hostile_archive, try_extract

ARCHIVES = 300


@NO_GNU_TAR
def test_generated_hostile_archives_write_nothing_outside_and_both_writers_agree(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.prepare()
    rng = random.Random(20261201)
    accepted, problems = 0, []
    for n in range(ARCHIVES):
        archive = hostile_archive(rng, sandbox)
        decisions = []
        for native in (True, False):
            dest = tmp_path / f"dest-{n}-{'tar' if native else 'python'}"
            outcome = try_extract(archive, dest, sandbox, native=native)
            decisions.append(outcome.accepted)
            problems += [f"archive {n}, {'GNU tar' if native else 'Python'}: {p}" for p in outcome.problems]
            shutil.rmtree(dest, ignore_errors=True)
        if decisions[0] != decisions[1]:
            problems.append(f"archive {n}: GNU tar {'took' if decisions[0] else 'refused'} it, Python did not")
        accepted += decisions[0]
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
