"""Freshness of the extracts: one ``extract_freshness`` check (severity WARN) per raw table.

A table is flagged when no new file of it has loaded for more than ``extract_freshness_days``
days (``CSW_EXTRACT_FRESHNESS_DAYS``, default 3), and when no file of it has ever loaded.

*When a file arrived* is read from ``raw.ingest_manifest``: the newest ``loaded_at`` of a
``loaded`` row of the table. A row is written only for a file version ingestion has not seen
(a new path, or new content at a known path), so re-sending the same bytes or touching a file is
not an arrival, and a refused file is not one either: none of its rows reached the warehouse.
File modification times were not used: copy tools keep or reset them at will, and a file loaded
and then archived out of the landing directory would be forgotten.

Dagster's own ``FreshnessPolicy`` and ``build_last_update_freshness_checks`` measure the time of
the asset's last materialisation; an ingestion asset materialises on every run, new file or not
(the daily pipeline, any sensor run), so they would call a table fresh that has received nothing
for weeks. They also evaluate outside the run, so ``csw ingest``/``csw run`` would not show them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from ingestion import manifest
from ingestion.contract import TABLES, TableSchema
from orchestration.defs.ingestion.assets import asset_key
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

CHECK_NAME = "extract_freshness"
_SECONDS_PER_DAY = 86_400.0


def _now_utc() -> datetime:
    """Naive UTC, as ``loaded_at`` is stored."""
    return datetime.now(UTC).replace(tzinfo=None)


def last_arrival(conn: Any, schema: TableSchema) -> tuple[datetime, str] | None:
    """When the newest loaded file of ``schema`` loaded, and its path (None: never)."""
    if not manifest.exists(conn):
        return None
    row = conn.execute(
        f"SELECT max(loaded_at), arg_max(source_file, loaded_at) FROM {manifest.MANIFEST_TABLE}"
        " WHERE table_name = ? AND status = 'loaded'",
        [schema.name],
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None


def freshness_result(
    schema: TableSchema, arrival: tuple[datetime, str] | None, now: datetime, max_days: int
) -> dg.AssetCheckResult:
    """The check's verdict for one table, from its last arrival."""
    limit = f"more than {max_days} day(s) is flagged (CSW_EXTRACT_FRESHNESS_DAYS)"
    if arrival is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"no {schema.asset_path} file has ever loaded: put the extracts in"
            f" <landing>/{schema.asset_path}/",
            metadata={
                "last_file_at": "never",
                "days_since": dg.MetadataValue.null(),
                "last_file": dg.MetadataValue.null(),
                "max_days": max_days,
            },
        )
    loaded_at, source_file = arrival
    days = round((now - loaded_at).total_seconds() / _SECONDS_PER_DAY, 2)
    stale = days > max_days
    description = (
        f"no new {schema.asset_path} file for {days:.1f} days ({limit}); the last was {source_file}"
        if stale
        else f"last new {schema.asset_path} file {days:.1f} days ago ({source_file})"
    )
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "last_file_at": dg.MetadataValue.timestamp(loaded_at.replace(tzinfo=UTC)),
            "days_since": days,
            "last_file": source_file,
            "max_days": max_days,
        },
    )


def build_freshness_check(schema: TableSchema) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(schema),
        name=CHECK_NAME,
        description=f"A new {schema.asset_path} extract has loaded within the last"
        " CSW_EXTRACT_FRESHNESS_DAYS days (warning only).",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def _freshness_check(duckdb: DuckDBResource, settings: SettingsResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            arrival = last_arrival(conn, schema)
        return freshness_result(schema, arrival, _now_utc(), settings.extract_freshness_days)

    return _freshness_check


freshness_checks: list[dg.AssetChecksDefinition] = [build_freshness_check(t) for t in TABLES]
