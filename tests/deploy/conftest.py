"""A small dbt project to adopt: a ``local:`` package, seeds, several targets, its profile in ~/.dbt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dbt_ferry.deploy import InitResult, init_project

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
GOLDEN = Path(__file__).resolve().parent / "golden"
#: What the golden files are made with: two cloud environments in a fixed region.
GOLDEN_ENVIRONMENTS = ("snd", "pro")
REGION = "eu-west-1"

FILES = {
    "dbt_project.yml": """\
name: jaffle
version: "1.0.0"
config-version: 2
profile: jaffle
model-paths: ["models"]
seed-paths: ["seeds"]
test-paths: ["tests"]
models:
  jaffle:
    +materialized: table
""",
    "packages.yml": "packages:\n  - local: local_packages/jaffle_utils\n",
    "local_packages/jaffle_utils/dbt_project.yml": 'name: jaffle_utils\nversion: "1.0.0"\nconfig-version: 2\n',
    "local_packages/jaffle_utils/macros/cents.sql": (
        "{% macro cents_to_units(column) %}({{ column }} / 100.0){% endmacro %}\n"
    ),
    "seeds/raw_orders.csv": "id,customer,amount_cents\n1,ann,1000\n2,bob,2550\n3,ann,700\n",
    "models/orders.sql": (
        "select id, customer, {{ jaffle_utils.cents_to_units('amount_cents') }} as amount\n"
        "from {{ ref('raw_orders') }}\n"
    ),
    "models/customers.sql": "select customer, sum(amount) as total from {{ ref('orders') }} group by customer\n",
    "models/schema.yml": """\
version: 2
models:
  - name: orders
    columns:
      - name: id
        data_tests: [unique, not_null]
""",
}

#: The user's ~/.dbt/profiles.yml: another project's profile, and this one's with several targets and a
#: literal password (which must never reach a file init writes).
HOME_PROFILES = """\
other:
  target: x
  outputs:
    x: {type: duckdb, path: other.duckdb}
jaffle:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('JAFFLE_DUCKDB', 'jaffle_dev.duckdb') }}"
      threads: 2
    ci:
      type: duckdb
      path: "{{ env_var('JAFFLE_DUCKDB', 'jaffle_ci.duckdb') }}"
      threads: 2
    prod:
      type: postgres
      host: db.example.com
      user: jaffle
      password: hunter2
      port: 5432
      dbname: jaffle
      schema: analytics
      threads: 4
"""
SECRET = "hunter2"
#: The same profile with a target for the cloud environment pro: init copies it into profiles/pro.yml, and its
#: variables (the password it scrubs, the user it already reads from one) become the stack's secrets.
HOME_PROFILES_WITH_PRO = (
    HOME_PROFILES
    + """\
    pro:
      type: postgres
      host: db.example.com
      user: "{{ env_var('JAFFLE_PRO_USER') }}"
      password: s3cr3t-pro
      port: "{{ env_var('JAFFLE_PRO_PORT', '5432') | as_number }}"
      dbname: jaffle
      schema: analytics
      threads: 4
"""
)


@dataclass(frozen=True)
class Adoptable:
    root: Path
    home: Path

    def init(self, *environments: str, force: bool = False) -> InitResult:
        return init_project(
            self.root,
            environments=environments or GOLDEN_ENVIRONMENTS,
            force=force,
            region=REGION,
            environ={},
            home=self.home,
        )

    def generated(self) -> dict[str, str]:
        """Every file of the project that init may have written, by relative path."""
        skip = set(FILES)
        return {
            p.relative_to(self.root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(self.root.rglob("*"))
            if p.is_file() and p.relative_to(self.root).as_posix() not in skip
        }


def write_project(root: Path, home: Path, profiles: str = HOME_PROFILES) -> Adoptable:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (home / ".dbt").mkdir(parents=True, exist_ok=True)
    (home / ".dbt" / "profiles.yml").write_text(profiles, encoding="utf-8")
    return Adoptable(root, home)


@pytest.fixture
def jaffle(tmp_path: Path) -> Adoptable:
    return write_project(tmp_path / "jaffle", tmp_path / "home")
