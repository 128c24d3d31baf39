"""Where things live in a store: the keys of a run's artifacts and of an environment's published pages."""

from __future__ import annotations


def runs_prefix(environment: str) -> str:
    """The runs of an environment: one folder each, named by its invocation id."""
    return f"runs/{environment}/"


def run_prefix(environment: str, invocation_id: str) -> str:
    """A run's artifacts: ``runs/<environment>/<invocation_id>/`` (run_results.json, manifest.json, logs...)."""
    return f"{runs_prefix(environment)}{invocation_id}/"


def last_failed_key(environment: str) -> str:
    """The environment's last failed run (``dbt-ferry retry``'s default)."""
    return f"{runs_prefix(environment)}last-failed.json"


def state_prefix(environment: str) -> str:
    """The environment's state: what its last fully successful run of the channel's release left."""
    return f"state/{environment}/"


def docs_key(environment: str) -> str:
    return f"docs/{environment}/index.html"


def timing_key(environment: str) -> str:
    return f"docs/{environment}/timing.html"


def history_key(environment: str) -> str:
    """The history report of the environment (``dbt-ferry report``), beside its docs and timing chart."""
    return f"docs/{environment}/history.html"


def runs_from_docs(environment: str) -> str:
    """The runs folder of ``environment`` as a link relative to a page under ``docs/<environment>/``."""
    return f"../../{runs_prefix(environment)}"
