"""The job's end imports its libraries while dbt runs (in dbt's own process), not after dbt has ended."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dbt_ferry.config.models import (
    EnvironmentConfig,
    ExportsConfig,
    LocalStoreConfig,
    NotifyConfig,
    RegressionsConfig,
    S3StoreConfig,
)
from dbt_ferry.runtime.finish import finish_modules

LOCAL = LocalStoreConfig(path="/tmp/store")
S3 = S3StoreConfig(type="s3", bucket="bucket", prefix="p")


def test_what_the_end_imports_follows_the_environment() -> None:
    everything = finish_modules(EnvironmentConfig(name="prod"), LOCAL)
    assert everything == [
        "dbt_ferry.exports.timing",
        "pyiceberg.catalog.sql",
        "pyiceberg.io.pyarrow",
        "dbt_ferry.exports.tables",
        "dbt_ferry.exports.report",
    ]
    assert "pyiceberg.catalog.glue" in finish_modules(EnvironmentConfig(name="prod"), S3)  # the S3 store's default
    assert finish_modules(EnvironmentConfig(name="ci", ci=True), LOCAL) == []  # CI exports nothing
    no_tables = EnvironmentConfig(name="dev", exports=ExportsConfig(tables=False))
    assert finish_modules(no_tables, LOCAL) == ["dbt_ferry.exports.timing"]
    watched = EnvironmentConfig(name="prod", notify=NotifyConfig(regressions=RegressionsConfig()))
    assert finish_modules(watched, LOCAL)[-1] == "dbt_ferry.exports.regressions"


@pytest.mark.parametrize("store", ["local", "s3"])
def test_the_preload_imports_them_in_a_thread_of_its_own(store: str) -> None:
    code = textwrap.dedent(
        f"""
        import json, sys
        from dbt_ferry.config.models import EnvironmentConfig, LocalStoreConfig, S3StoreConfig
        from dbt_ferry.runtime.finish import finish_modules, preload_finish

        store = LocalStoreConfig(path="/tmp/x") if {store!r} == "local" else S3StoreConfig(type="s3", bucket="bucket")
        env = EnvironmentConfig(name="prod")
        names = finish_modules(env, store)
        before = [n for n in names + ["pyarrow"] if n in sys.modules]
        thread = preload_finish(env, store)
        thread.join(60)
        print(json.dumps({{"before": before, "thread": thread.name, "after": [n for n in names + ["pyarrow"]
                                                                              if n not in sys.modules]}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen == {"before": [], "thread": "dbt-ferry-preload", "after": []}
