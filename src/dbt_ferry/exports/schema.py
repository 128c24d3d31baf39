"""The result tables' schemas: explicit Iceberg types, stable across dbt 1.8 to 1.11.

Field ids are fixed here; new fields are only ever appended (with new ids), so a newer dbt-ferry
evolves existing tables by adding columns.
"""

from __future__ import annotations

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

INVOCATIONS = "invocations"
NODE_RESULTS = "node_results"
SOURCE_FRESHNESS = "source_freshness"
PARTITION_COLUMN = "p_extraction_date"

STATUS_COUNTS = ("success", "pass", "warn", "error", "fail", "skipped", "no_op", "runtime_error", "partial_success")


def _fields(*spec: tuple[str, object, bool]) -> list[NestedField]:
    return [
        NestedField(field_id=i, name=name, field_type=kind, required=required)  # type: ignore[arg-type]
        for i, (name, kind, required) in enumerate(spec, start=1)
    ]


INVOCATIONS_SCHEMA = Schema(
    *_fields(
        ("invocation_id", StringType(), True),
        ("project", StringType(), False),
        ("environment", StringType(), False),
        ("release_version", StringType(), False),
        ("git_commit", StringType(), False),
        ("dbt_version", StringType(), False),
        ("adapter_type", StringType(), False),
        ("target", StringType(), False),
        ("command", StringType(), False),
        ("select", StringType(), False),
        ("exclude", StringType(), False),
        ("full_refresh", BooleanType(), False),
        ("vars", StringType(), False),
        ("threads", IntegerType(), False),
        ("started_at", TimestamptzType(), False),
        ("completed_at", TimestamptzType(), False),
        ("elapsed_seconds", DoubleType(), False),
        ("success", BooleanType(), False),
        ("exit_code", IntegerType(), False),
        *((f"n_{status}", IntegerType(), False) for status in STATUS_COUNTS),
        ("n_total", IntegerType(), False),
        ("prefect_flow_run_id", StringType(), False),
        (PARTITION_COLUMN, DateType(), True),
        # Appended later, so that existing tables evolve by adding it.
        ("retry_of", StringType(), False),
    )
)

NODE_RESULTS_SCHEMA = Schema(
    *_fields(
        ("invocation_id", StringType(), True),
        ("environment", StringType(), False),
        ("unique_id", StringType(), True),
        ("resource_type", StringType(), False),
        ("package", StringType(), False),
        ("name", StringType(), False),
        ("status", StringType(), False),
        ("thread_id", StringType(), False),
        ("execution_time", DoubleType(), False),
        ("compile_started_at", TimestamptzType(), False),
        ("compile_completed_at", TimestamptzType(), False),
        ("execute_started_at", TimestamptzType(), False),
        ("execute_completed_at", TimestamptzType(), False),
        ("rows_affected", LongType(), False),
        ("failures", LongType(), False),
        ("message", StringType(), False),
        ("relation_name", StringType(), False),
        ("adapter_response", StringType(), False),
        ("batch_results", StringType(), False),
        ("compiled_code", StringType(), False),
        (PARTITION_COLUMN, DateType(), True),
    )
)

SOURCE_FRESHNESS_SCHEMA = Schema(
    *_fields(
        ("invocation_id", StringType(), True),
        ("environment", StringType(), False),
        ("unique_id", StringType(), True),
        ("source_name", StringType(), False),
        ("table_name", StringType(), False),
        ("status", StringType(), False),
        ("max_loaded_at", TimestamptzType(), False),
        ("snapshotted_at", TimestamptzType(), False),
        ("max_loaded_at_time_ago_in_s", DoubleType(), False),
        ("execution_time", DoubleType(), False),
        ("thread_id", StringType(), False),
        ("criteria", StringType(), False),
        ("message", StringType(), False),
        (PARTITION_COLUMN, DateType(), True),
    )
)

SCHEMAS: dict[str, Schema] = {
    INVOCATIONS: INVOCATIONS_SCHEMA,
    NODE_RESULTS: NODE_RESULTS_SCHEMA,
    SOURCE_FRESHNESS: SOURCE_FRESHNESS_SCHEMA,
}


def partition_spec(schema: Schema) -> PartitionSpec:
    """One partition per day: identity on the ``date`` column (no native transform library needed)."""
    source = schema.find_field(PARTITION_COLUMN)
    return PartitionSpec(
        PartitionField(source_id=source.field_id, field_id=1000, transform=IdentityTransform(), name=PARTITION_COLUMN)
    )
