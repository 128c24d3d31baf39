"""Ignore files in git's syntax (``.gitignore``, dbt's ``.dbtignore``): which line, if any, leaves a path out.

Patterns follow gitignore(5): ``#`` comments, ``!`` negation, a leading or middle ``/`` anchors the pattern to the
file's folder (otherwise it matches a name at any depth), a trailing ``/`` matches folders only, ``*``, ``?``,
``[...]``, and ``**`` as a whole path component (``**/x``, ``x/**``, ``a/**/b``). The last matching line of a file
decides; a file in a subfolder applies to that subfolder and decides before the files above it. Paths are matched
one at a time as the folder tree is walked, so a path under an ignored folder is never looked at — as in git, a
negation cannot bring back a file whose folder is ignored.

One deliberate difference from git: a folder-only pattern (``target-base/``) also matches a symbolic link of that
name when the link points to a folder or to nothing at all — the link stands in for the ignored folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: POSIX character classes git's wildmatch knows, as regular-expression sets.
_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "digit": "0-9",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9a-fA-F",
}


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file, compiled."""

    line: int
    text: str
    negated: bool
    dir_only: bool
    regex: re.Pattern[str]

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(relative) is not None


def _bracket(body: str, start: int) -> tuple[str, int] | None:
    """Translate the bracket expression opening at ``body[start]``; ``None`` when it is not closed.

    As in git, a bracket expression never matches ``/``.
    """
    i = start + 1
    negate = i < len(body) and body[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while i < len(body):
        char = body[i]
        if char == "]" and not first:
            if not parts and not negate:
                return "(?!)", i + 1  # matches nothing
            return "[" + ("^/" if negate else "") + "".join(parts) + "]", i + 1
        first = False
        if body.startswith("[:", i):
            end = body.find(":]", i + 2)
            if end != -1 and body[i + 2 : end] in _CLASSES:
                parts.append(_CLASSES[body[i + 2 : end]])
                i = end + 2
                continue
        if char == "\\" and i + 1 < len(body):
            i += 1
            char = body[i]
        elif char == "-" and parts and i + 1 < len(body) and body[i + 1] != "]":
            parts.append("-")  # a range: a-z
            i += 1
            continue
        if char != "/":
            parts.append(re.escape(char))
        i += 1
    return None


def _translate(body: str) -> str:
    """A gitignore pattern (without ``!`` and the trailing ``/``) as a regular expression over a whole path."""
    anchored = "/" in body
    body = body.removeprefix("/")
    components = body.split("/")
    out: list[str] = [] if anchored else ["(?:.*/)?"]
    for index, component in enumerate(components):
        last = index == len(components) - 1
        if component == "**":
            if last:
                out.append(".*" if index == 0 else "/.*")
            elif index == 0:
                out.append("(?:.*/)?")
            else:
                out.append("/(?:.*/)?")
            continue
        if index > 0 and components[index - 1] != "**":
            out.append("/")
        i = 0
        while i < len(component):
            char = component[i]
            if char == "*":
                out.append("[^/]*")
            elif char == "?":
                out.append("[^/]")
            elif char == "[":
                translated = _bracket(component, i)
                if translated is not None:
                    out.append(translated[0])
                    i = translated[1]
                    continue
                out.append(re.escape(char))
            elif char == "\\" and i + 1 < len(component):
                i += 1
                out.append(re.escape(component[i]))
            else:
                out.append(re.escape(char))
            i += 1
    return "".join(out)


def _strip_trailing_spaces(text: str) -> str:
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    return text


def compile_line(text: str, line: int) -> Pattern | None:
    """The pattern of one line, or ``None`` for a blank line or a comment."""
    body = _strip_trailing_spaces(text.rstrip("\r\n"))
    if not body or body.startswith("#"):
        return None
    negated = body.startswith("!")
    if negated or body.startswith(("\\!", "\\#")):
        body = body[1:]
    dir_only = body.endswith("/")
    body = body.rstrip("/")
    if not body:
        return None
    return Pattern(line, text.strip(), negated, dir_only, re.compile(_translate(body), re.DOTALL))


@dataclass(frozen=True)
class Match:
    """The line that decided about a path: it is left out unless the line is a negation."""

    source: str
    line: int
    text: str
    ignored: bool

    def describe(self) -> str:
        return f"{self.source}:{self.line} {self.text}"


@dataclass(frozen=True)
class IgnoreFile:
    """The patterns of one ignore file; ``base`` is its folder relative to the walked root (``""`` at the root)."""

    source: str
    base: str
    patterns: tuple[Pattern, ...]

    @classmethod
    def read(cls, path: Path, source: str, base: str) -> IgnoreFile:
        text = path.read_text(encoding="utf-8", errors="replace")
        compiled = (compile_line(line, number) for number, line in enumerate(text.splitlines(), start=1))
        return cls(source, base, tuple(p for p in compiled if p is not None))

    def match(self, relative: str, is_dir: bool) -> Match | None:
        """The last line matching ``relative`` (a path relative to the walked root, under ``base``)."""
        inner = relative[len(self.base) + 1 :] if self.base else relative
        for pattern in reversed(self.patterns):
            if pattern.matches(inner, is_dir):
                return Match(self.source, pattern.line, pattern.text, not pattern.negated)
        return None


def decide(files: list[IgnoreFile], relative: str, is_dir: bool) -> Match | None:
    """The deciding match among ``files`` (shallowest first, as found walking down), or ``None``."""
    for ignore in reversed(files):
        found = ignore.match(relative, is_dir)
        if found is not None:
            return found
    return None
