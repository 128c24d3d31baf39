"""Where a project installs dbt-ferry from: the package index, a wheel file in the kit, or a git repository.

``init --ferry-source`` chooses; without it, the project's ``[tool.uv.sources]`` entry for dbt-ferry (if any) says,
so a second ``init`` writes the same kit. Each source is one ``[tool.uv.sources]`` entry (what ``uv lock``, ci.yml's
``uv sync --locked`` and ``dbt-ferry package --with-env`` install from) and one install step of the image's
Dockerfile. A wheel is copied into the kit's ``wheels/`` folder, inside the image's build context and the repository,
so the Dockerfile's ``COPY`` and uv read the same file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dbt_ferry.core.errors import ConfigError
from dbt_ferry.deploy import layout

SourceKind = Literal["index", "wheel", "git", "folder"]
_WHEEL = re.compile(r"^dbt_ferry-(?P<version>[^-]+)-[^-]+-[^-]+-[^-]+\.whl$")
_USAGE = (
    "pass --ferry-source index, --ferry-source path/to/dbt_ferry-VERSION-py3-none-any.whl (make dist builds it), "
    "or --ferry-source git+https://github.com/OWNER/dbt-ferry@REV"
)


@dataclass(frozen=True)
class FerrySource:
    """One way of installing dbt-ferry."""

    kind: SourceKind
    #: ``wheel``: the wheel's file name in :data:`~dbt_ferry.deploy.layout.WHEELS_DIR`.
    wheel: str | None = None
    #: ``wheel``: the file init copies there (``None`` when it is there already).
    origin: Path | None = None
    #: ``git``: the repository URL (without ``git+``) and the revision (a tag, branch or commit; may be empty).
    url: str | None = None
    rev: str | None = None
    #: ``folder``: the folder ``[tool.uv.sources]`` names (a checkout of dbt-ferry, as the bundled example uses).
    folder: str | None = None

    @property
    def wheel_path(self) -> str | None:
        """The wheel's path in the project (as ``[tool.uv.sources]`` names it)."""
        return f"{layout.WHEELS_DIR}/{self.wheel}" if self.wheel else None

    def uv_source(self) -> dict[str, Any] | None:
        """The ``[tool.uv.sources]`` entry of dbt-ferry (``None``: the index, no entry)."""
        if self.kind == "wheel":
            return {"path": self.wheel_path}
        if self.kind == "git":
            return {"git": self.url, **({"rev": self.rev} if self.rev else {})}
        return None

    def describe(self) -> str:
        if self.kind == "wheel":
            return f"the wheel {self.wheel_path}"
        if self.kind == "git":
            return f"git {self.url}" + (f" at {self.rev}" if self.rev else "")
        if self.kind == "folder":
            return f"the folder {self.folder}"
        return "the package index"


INDEX = FerrySource("index")


def ferry_source(value: str | None, root: Path, declared: object, *, cwd: Path | None = None) -> FerrySource:
    """The source ``--ferry-source value`` asks for (relative paths from ``cwd``), or the one ``declared``
    (``[tool.uv.sources] dbt-ferry`` of the project at ``root``) says; a flag that contradicts the declaration is
    refused, since init never rewrites what the file says."""
    existing = _declared(declared, root)
    if value is None:
        return existing
    wanted = _parse(value.strip(), root, cwd or Path.cwd())
    if existing != INDEX and (existing.kind, existing.uv_source()) != (wanted.kind, wanted.uv_source()):
        raise ConfigError(
            f"pyproject.toml's [tool.uv.sources] takes dbt-ferry from {existing.describe()}, not from "
            f"{wanted.describe()}",
            "change or remove that entry yourself (init does not rewrite it), then run dbt-ferry init again",
        )
    return wanted


def _parse(value: str, root: Path, cwd: Path) -> FerrySource:
    if value == "index":
        return INDEX
    if value.startswith("git+"):
        url, rev = _split_git(value[len("git+") :])
        if not re.match(r"^(https|ssh|file)://[^\s]+$", url):
            raise ConfigError(f"--ferry-source {value}: not a git URL (https://, ssh:// or file://)", _USAGE)
        return FerrySource("git", url=url, rev=rev)
    if value.endswith(".whl"):
        path = (cwd / value).resolve()
        if not _WHEEL.match(path.name):
            raise ConfigError(f"--ferry-source {value}: not a dbt-ferry wheel (dbt_ferry-VERSION-….whl)", _USAGE)
        if not path.is_file():
            raise ConfigError(f"--ferry-source {value}: there is no such file", "build it with make dist, or " + _USAGE)
        kit_copy = root / layout.WHEELS_DIR / path.name
        return FerrySource("wheel", wheel=path.name, origin=None if path == kit_copy.resolve() else path)
    raise ConfigError(f"--ferry-source {value}: not index, a dbt-ferry wheel (.whl) or a git+ URL", _USAGE)


def _split_git(spec: str) -> tuple[str, str | None]:
    """``https://host/repo@v1`` → (``https://host/repo``, ``v1``); an ``@`` before the path is a user name."""
    at = spec.rfind("@")
    if at > spec.rfind("/"):
        return spec[:at], spec[at + 1 :] or None
    return spec, None


def _declared(entry: object, root: Path) -> FerrySource:
    if entry is None:
        return INDEX
    if isinstance(entry, Mapping) and isinstance(entry.get("git"), str):
        rev = next((entry[key] for key in ("rev", "tag", "branch") if isinstance(entry.get(key), str)), None)
        return FerrySource("git", url=entry["git"], rev=rev)
    if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
        path = str(entry["path"])
        if not path.endswith(".whl"):
            return FerrySource("folder", folder=path)
        name = Path(path).name
        if Path(path).as_posix() != f"{layout.WHEELS_DIR}/{name}":
            raise ConfigError(
                f"pyproject.toml's [tool.uv.sources] takes dbt-ferry from {path}, outside {layout.WHEELS_DIR}/: "
                "the image cannot copy it",
                f"move the wheel to {layout.WHEELS_DIR}/ and point the entry there, then run dbt-ferry init again",
            )
        return FerrySource("wheel", wheel=name)
    raise ConfigError(
        "pyproject.toml's [tool.uv.sources] entry for dbt-ferry is neither a path nor a git source",
        "give it path = or git =, or remove it to install from the package index",
    )


def install_step(source: FerrySource, version: str) -> str:
    """The Dockerfile lines that install dbt-ferry without extras; they end with ``\\`` so the user's set-up
    follows in the same layer."""
    if source.kind == "wheel":
        wheel = f"/tmp/wheels/{source.wheel}"  # noqa: S108 - a path inside the image, removed in the same layer
        return (
            f"# dbt-ferry without extras, from the wheel in {layout.WHEELS_DIR}/ (the file uv.lock names too):\n"
            "# what fetches, verifies and unpacks a release. A non-root user owns HOME and the cache.\n"
            f"COPY wheels/{source.wheel} /tmp/wheels/\n"
            f"RUN pip install --no-cache-dir {wheel} \\\n"
            "    && rm -rf /tmp/wheels \\"
        )
    if source.kind == "git":
        ref = f"git+{source.url}" + (f"@{source.rev}" if source.rev else "")
        return (
            "# git: pip installs dbt-ferry from its repository here, and `dbt-ferry package --with-env` (uv, in this\n"
            "# image) again from uv.lock. Debian's git, updated with the base image.\n"
            "# hadolint ignore=DL3008\n"
            "RUN apt-get update \\\n"
            "    && apt-get install -y --no-install-recommends git \\\n"
            "    && rm -rf /var/lib/apt/lists/*\n"
            "# dbt-ferry without extras: what fetches, verifies and unpacks a release. A non-root user owns HOME and\n"
            "# the cache.\n"
            f'RUN pip install --no-cache-dir "dbt-ferry @ {ref}" \\'
        )
    return (
        f"ARG DBT_FERRY_VERSION={version}\n"
        "# dbt-ferry without extras, from the package index: what fetches, verifies and unpacks a release. A non-root\n"
        "# user owns HOME and the cache.\n"
        'RUN pip install --no-cache-dir "dbt-ferry==${DBT_FERRY_VERSION}" \\'
    )


def image_inputs(source: FerrySource) -> tuple[str, ...]:
    """The kit files the image is built from (paths in the project): what its tag is the digest of."""
    return (layout.DOCKERFILE, *((source.wheel_path,) if source.wheel_path else ()))


def image_tag(dockerfile: bytes, wheel: Path | None = None) -> str:
    """The image's tag: ``image-`` and 16 hex digits of the sha256 of its inputs, one after the other (what
    cd.yml computes with ``cat … | sha256sum``; the stack's ``ImageTag`` defaults to it)."""
    digest = hashlib.sha256(dockerfile)
    if wheel is not None:
        with wheel.open("rb") as handle:
            for piece in iter(lambda: handle.read(1 << 20), b""):
                digest.update(piece)
    return f"image-{digest.hexdigest()[:16]}"
