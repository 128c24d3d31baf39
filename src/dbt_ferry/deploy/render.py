"""Fill the deployment templates shipped in ``dbt_ferry/deploy/templates``.

Placeholders are ``@@name@@``: a syntax that no Dockerfile, GitHub workflow (``${{ }}``), CloudFormation
(``${}``, ``!Sub``), Prefect (``{{ }}``) or shell text uses. A placeholder alone on its line takes a block of
lines, each indented like the placeholder; elsewhere it takes a one-line value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

from dbt_ferry.core.errors import FerryError

_PLACEHOLDER = re.compile(r"@@(\w+)@@")
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)@@(?P<name>\w+)@@[ \t]*$")

#: Python of the runtime image; env packs are built with it, in the image (cd.yml).
PYTHON_VERSION = "3.11"
#: The runtime image's base, pinned by the digest of the tag's multi-platform OCI index (amd64 and arm64; CPython
#: 3.11.16, as Docker Hub listed the tag in September 2026); the kit's Dependabot configuration proposes each new one.
BASE_IMAGE = (
    f"python:{PYTHON_VERSION}-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b"
)
#: uv used by CI and to build env packs in the image; the version dbt-ferry itself is tested with.
UV_VERSION = "0.13.9"
#: Prefect the generated prefect.yaml is written for.
PREFECT_VERSION = "3.9.1"
#: The Prefect ECS worker the stack runs (prefect-aws's image; its minor-version tag, Python 3.12).
PREFECT_WORKER_IMAGE = "prefecthq/prefect-aws:0.7-python3.12"

#: GitHub Actions pinned to full commit SHAs, with the release each one is.
ACTION_PINS: dict[str, str] = {
    "checkout_pin": "08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0",
    "setup_python_pin": "a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0",
    "setup_uv_pin": "e92bafb6253dcd438e0484186d7669ea7a8ca1cc # v6.4.3",
    "configure_aws_credentials_pin": "b47578312673ae6fa5b5096b330d9fbac3d116df # v4.2.1",
    "amazon_ecr_login_pin": "062b18b96a7aff071d4dc91bc00c4c1a7945b076 # v2.0.1",
    "setup_buildx_pin": "e468171a9de216ec08956ac3ada2f0791b6bd435 # v3.11.1",
    "build_push_pin": "263435318d21b8e681c14492fe198d362a7d2c83 # v6.18.0",
    "setup_qemu_pin": "c7c53464625b32c7a7e944ae62b3e17d2b600130 # v3.7.0",
}


class TemplateError(FerryError):
    """A template names a value that was not given (a bug in dbt-ferry, not in the project)."""


def load_template(name: str) -> str:
    """The text of ``templates/<name>`` (a package resource, so it ships in the wheel)."""
    return resources.files("dbt_ferry.deploy").joinpath("templates", *name.split("/")).read_text(encoding="utf-8")


def fill(text: str, values: Mapping[str, str], *, where: str = "template") -> str:
    """Replace every placeholder of ``text``; a block value is indented like its placeholder."""
    out: list[str] = []
    for line in text.splitlines():
        block = _BLOCK.match(line)
        if block:
            value = _value(values, block["name"], where)
            if value == "":
                continue  # an empty block leaves no blank line behind
            out.extend(f"{block['indent']}{part}" if part else "" for part in value.splitlines())
            continue
        out.append(_PLACEHOLDER.sub(lambda m: _inline(values, m[1], where), line))
    return "\n".join(out) + "\n"


def render(name: str, values: Mapping[str, str]) -> str:
    return fill(load_template(name), values, where=name)


def _value(values: Mapping[str, str], name: str, where: str) -> str:
    if name not in values:
        raise TemplateError(f"{where} uses @@{name}@@, which has no value")
    return values[name]


def _inline(values: Mapping[str, str], name: str, where: str) -> str:
    value = _value(values, name, where)
    if "\n" in value:
        raise TemplateError(f"{where}: @@{name}@@ takes a block of lines; put it alone on its line")
    return value
