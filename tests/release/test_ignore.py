"""gitignore semantics, checked against git itself: what git calls untracked is exactly what would ship."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dbt_ferry.release.contents import plan_contents
from dbt_ferry.release.ignore import IgnoreFile, compile_line

FILES = [
    "a.csv", "keep.csv", "seeds/b.csv", "seeds/keep.csv",
    "build/x.sql", "sub/build/y.sql", "sub/build.sql",
    "out/o.sql", "sub/out", "models/out/z.sql",
    "docs/keep.md", "docs/other.md", "docs/deep/n.md",
    "a/z.sql", "a/b/c/z.sql", "a/b/c/w.sql", "x/tmpdir/t.sql", "tmpdir/u.sql",
    "file1.txt", "filex.txt", "q.md", "qq.md",
    "#hash", "trail ", "important.bak", "models/important.bak", "models/other.bak", "models/m.sql",
    "models/staging/s.sql", "models/staging/s.yml", "README",
]  # fmt: skip

CASES = {
    "negation": {".gitignore": "*.csv\n!keep.csv\n"},
    "anchored": {".gitignore": "/build\n"},
    "dir-only": {".gitignore": "out/\n"},
    "double-star": {".gitignore": "**/tmpdir\na/**/z.sql\ndocs/**\n!docs/keep.md\n"},
    "negation-under-ignored-folder": {".gitignore": "docs/\n!docs/keep.md\n"},
    "nested": {".gitignore": "*.bak\n", "models/.gitignore": "!important.bak\n/staging/*.yml\n"},
    "whitelist": {".gitignore": "*\n!*/\n!*.sql\n!.gitignore\n"},
    "wildcards": {".gitignore": "file[0-9].txt\n?.md\n"},
    "escapes": {".gitignore": "# a comment\n\n\\#hash\ntrail\\ \n"},
    "middle-slash": {".gitignore": "a/b\nstaging/s.sql\n"},
}


def _git_untracked(root: Path) -> set[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root.parent)}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    (root / ".git" / "info" / "exclude").write_text("")
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "-uall", "-z"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return {entry[3:] for entry in done.stdout.split("\0") if entry.startswith("?? ")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_ships_is_what_git_does_not_ignore(tmp_path: Path, case: str) -> None:
    root = tmp_path / "project"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    for name, text in CASES[case].items():
        (root / name).write_text(text)
    shipped = {s.arcname for s in plan_contents(root).shipped}
    assert shipped == _git_untracked(root)
    assert len(shipped) < len(FILES) + len(CASES[case])  # the case does leave something out


def test_the_deciding_line_is_named() -> None:
    ignore = IgnoreFile("models/.gitignore", "models", tuple(filter(None, [
        compile_line("*.sql", 1), compile_line("# comment", 2), compile_line("!keep.sql", 3),
    ])))  # fmt: skip
    found = ignore.match("models/a.sql", is_dir=False)
    assert found is not None and found.ignored and found.describe() == "models/.gitignore:1 *.sql"
    kept = ignore.match("models/x/keep.sql", is_dir=False)
    assert kept is not None and not kept.ignored and kept.line == 3
    assert ignore.match("models/a.yml", is_dir=False) is None


@pytest.mark.parametrize(
    ("line", "path", "is_dir", "matches"),
    [
        ("target-base/", "target-base", False, False),  # a folder pattern: not a file
        ("target-base/", "target-base", True, True),
        ("*.db", "data/wh.db", False, True),
        ("/wh.db", "data/wh.db", False, False),
        ("data/*.db", "data/sub/wh.db", False, False),
        ("data/**/*.db", "data/sub/wh.db", False, True),
        ("[[:digit:]]x", "1x", False, True),
        ("[]]x", "]x", False, True),
        ("[", "[", False, True),  # an unclosed bracket is itself
    ],
)
def test_patterns(line: str, path: str, is_dir: bool, matches: bool) -> None:
    pattern = compile_line(line, 1)
    assert pattern is not None
    assert pattern.matches(path, is_dir) is matches
