from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_sdk() -> None:
    code = (
        "import sys, dbt_ferry.core.archive, dbt_ferry.core.manifest, dbt_ferry.core.names, "
        "dbt_ferry.core.errors, dbt_ferry.core.checksums, dbt_ferry.core.store;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'prefect', 'dbt'));"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_release_commands_do_not_import_prefect_or_dbt() -> None:
    code = (
        "import sys, dbt_ferry.cli.main;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'prefect', 'dbt'));"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
