"""Ingestion as Dagster assets: one asset per contract table, one contract check per asset.

Asset ``[<system>, <table>]`` (group ``<system>``) loads the new and changed extract files of
``<landing>/<system>/<table>/`` into ``raw.<table>`` through the ``duckdb`` resource (see
:mod:`ingestion.loader`). A refused file does not fail the asset: it is reported in the
materialisation metadata, in ``raw.ingest_manifest`` and by the ``contract_expectations`` check.

The check ``contract_expectations`` passes when no extract currently in the landing directory is
refused (the newest version of each path has loaded); its metadata gives the refused files with
their reasons, the quarantined rows and the failed great-expectations expectations of the files'
current versions, and where the JSON reports are.
"""

from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ingestion import manifest
from ingestion.contract import TABLES, TableSchema
from ingestion.landing import discover, table_dir
from ingestion.loader import TableOutcome, ingest_table, raw_table
from ingestion.manifest import ManifestEntry
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

CHECK_NAME = "contract_expectations"


def asset_key(schema: TableSchema) -> dg.AssetKey:
    return dg.AssetKey([schema.system, schema.name])


def validation_dir(settings: SettingsResource) -> Path:
    """JSON validation reports live beside the warehouse file."""
    return Path(settings.warehouse_path).parent / "validation"


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    columns = [
        dg.TableColumn(
            c.name,
            c.type.duckdb_type,
            description=c.description,
            constraints=dg.TableColumnConstraints(nullable=not c.required),
        )
        for c in schema.columns
    ]
    columns += [
        dg.TableColumn("_source_file", "VARCHAR", description="Path relative to the landing dir"),
        dg.TableColumn("_source_row", "BIGINT", description="1-based data row in the file"),
        dg.TableColumn("_file_sha256", "VARCHAR", description="SHA-256 of the file"),
        dg.TableColumn("_loaded_at", "TIMESTAMP", description="Load time (UTC)"),
    ]
    return dg.TableSchema(columns=columns)


def _md_list(lines: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or "none")


def outcome_metadata(outcome: TableOutcome, row_count: int) -> dict[str, Any]:
    """Materialisation metadata; ``csw ingest`` prints its summary from these keys."""
    return {
        "table": f"raw.{outcome.table.name}",
        "files_loaded": outcome.files_loaded,
        "files_skipped": outcome.files_skipped,
        "files_refused": outcome.files_refused,
        "rows_loaded": outcome.rows_loaded,
        "rows_quarantined": outcome.rows_quarantined,
        "rows_duplicate": outcome.rows_duplicate,
        "dagster/row_count": row_count,
        "refused_files": _md_list([f"`{f.source_file}`: {f.message}" for f in outcome.refused]),
        "files": dg.MetadataValue.json(
            [
                {
                    "source_file": f.source_file,
                    "outcome": f.outcome,
                    "file_version": f.file_version,
                    "rows_read": f.rows_read,
                    "rows_loaded": f.rows_loaded,
                    "rows_quarantined": f.rows_quarantined,
                    "rows_duplicate": f.rows_duplicate,
                    "message": f.message,
                    "validation_report": f.validation_report,
                }
                for f in outcome.files
            ]
        ),
    }


def build_raw_asset(schema: TableSchema) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(schema),
        group_name=schema.system,
        description=(
            f"raw.{schema.name}: {schema.description} Loaded from"
            f" <landing>/{schema.asset_path}/ ({schema.kind} table, key"
            f" {', '.join(schema.key)})."
        ),
        kinds={"duckdb"},
        pool=WAREHOUSE_WRITER_POOL,
        metadata={
            "table": f"raw.{schema.name}",
            "kind": schema.kind,
            "key": ", ".join(schema.key),
            "dagster/column_schema": _column_schema(schema),
        },
    )
    def _raw_table(
        context: AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        landing = Path(settings.landing_dir)
        if not table_dir(landing, schema).is_dir():
            context.log.info(
                f"{table_dir(landing, schema)} does not exist: no {schema.asset_path} extracts;"
                f" raw.{schema.name} is created empty"
            )
        Path(settings.warehouse_path).parent.mkdir(parents=True, exist_ok=True)
        with duckdb.get_connection() as conn:
            outcome = ingest_table(conn, schema, landing, validation_dir=validation_dir(settings))
            row = conn.execute(f"SELECT count(*) FROM {raw_table(schema)}").fetchone()
        for refused in outcome.refused:
            context.log.error(f"refused {refused.message} (report: {refused.validation_report})")
        return dg.MaterializeResult(metadata=outcome_metadata(outcome, int(row[0]) if row else 0))

    return _raw_table


def _current_entries(
    conn: Any, schema: TableSchema, landing: Path
) -> tuple[list[ManifestEntry], list[str]]:
    """Manifest state of the files now in the landing directory, and the ones not seen yet."""
    present = [f.relative for f in discover(landing, schema)]
    latest = manifest.latest_entries(conn, schema.name) if manifest.exists(conn) else {}
    return [latest[p] for p in present if p in latest], [p for p in present if p not in latest]


def build_contract_check(schema: TableSchema) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(schema),
        name=CHECK_NAME,
        description=(
            f"Every {schema.asset_path} extract in the landing directory passed the contract"
            " (readable, required columns present); reports quarantined rows and failed"
            " great-expectations expectations."
        ),
    )
    def _contract_check(duckdb: DuckDBResource, settings: SettingsResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            current, unseen = _current_entries(conn, schema, Path(settings.landing_dir))
        refused = [e for e in current if e.status == "refused"]
        quarantined = [e for e in current if e.rows_quarantined]
        metadata: dict[str, Any] = {
            "files_checked": len(current),
            "files_refused": len(refused),
            "files_not_ingested_yet": len(unseen),
            "rows_quarantined": sum(e.rows_quarantined for e in current),
            "expectations_failed": sum(e.expectations_failed or 0 for e in current),
            "refused_files": _md_list([f"`{e.source_file}`: {e.message}" for e in refused]),
            "quarantined_files": _md_list(
                [f"`{e.source_file}`: {e.rows_quarantined} rows" for e in quarantined]
            ),
            "validation_reports": str(validation_dir(settings) / schema.name),
        }
        if refused:
            description = f"{len(refused)} file(s) refused: " + "; ".join(
                e.message for e in refused
            )
        else:
            description = (
                f"{len(current)} file(s) loaded, none refused"
                if current
                else "no extracts in the landing directory yet"
            )
        return dg.AssetCheckResult(
            passed=not refused,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=description,
        )

    return _contract_check


ingestion_assets: list[dg.AssetsDefinition] = [build_raw_asset(t) for t in TABLES]
ingestion_asset_checks: list[dg.AssetChecksDefinition] = [build_contract_check(t) for t in TABLES]
