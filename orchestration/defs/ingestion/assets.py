"""Ingestion as Dagster assets: one asset per contract table, one contract check per asset.

Asset ``[<system>, <table>]`` (group ``<system>``) loads the new and changed extract files of
``<landing>/<system>/<table>/`` into ``raw.<table>`` through the ``duckdb`` resource (see
:mod:`ingestion.loader`). A refused file does not fail the asset: it is reported in the
materialisation metadata, in ``raw.ingest_manifest`` and by the ``contract_expectations`` check.

The check ``contract_expectations`` passes when no extract currently in the landing directory is
refused (the newest version of each path has loaded) and no more than ``max_quarantine_share``
of any such file's rows, or of the table's, was quarantined (a file with every row quarantined
always fails); its metadata gives per file the rows read and quarantined, the refused files
with their reasons, the failed great-expectations expectations of the files' current versions,
and where the JSON reports are.

A table asset fails when the landing directory itself does not exist (a mistyped path must not
look like "no new files"); a missing table folder is fine (the raw table is created empty).

Asset ``landing/unrecognised_files`` (group ``landing``) lists the files under the landing
directory that no table asset loads (:func:`ingestion.landing.unrecognised_files`), records them
in ``raw.ingest_ignored`` and in its metadata; its check ``no_blocking_files`` fails while any of
them looks like data (a typo such as ``crm/acounts/``, a file one level too high).
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ingestion import manifest
from ingestion.contract import CONTRACT_VERSION, TABLES, TableSchema
from ingestion.landing import UnrecognisedFile, discover, table_dir, unrecognised_files
from ingestion.loader import RAW_SCHEMA, TableOutcome, ingest_table, raw_table
from ingestion.manifest import IgnoredFile, ManifestEntry
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource
from orchestration.run_state import raw_data_versions

CHECK_NAME = "contract_expectations"
UNRECOGNISED_FILES_KEY = dg.AssetKey(["landing", "unrecognised_files"])
UNRECOGNISED_CHECK_NAME = "no_blocking_files"
OWNERS = ["team:data-engineering"]


@cache
def raw_code_version() -> str:
    """The contract version and a digest of the ingestion code (``ingestion/*.py``): what loads a
    raw table. The Dagster UI shows it, and a change marks the tables' dependents stale."""
    package = Path(__file__).resolve().parents[3] / "ingestion"
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"contract-{CONTRACT_VERSION}-{digest.hexdigest()[:12]}"


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


def require_landing(landing: Path) -> None:
    """Fail the asset when the landing directory itself is missing: with a mistyped path every
    table would otherwise load nothing and the run would publish empty marts."""
    if not landing.is_dir():
        raise dg.Failure(
            description=(
                f"the landing directory {landing} does not exist. Point CSW_LANDING_DIR (or"
                " `csw ... --landing`) at the folder holding <system>/<table>/ extracts, or"
                " create it; nothing was loaded."
            ),
            allow_retries=False,
        )


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


def build_raw_asset(schema: TableSchema, deps: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """``deps``: assets that write the table's extracts (the adapters, orchestration/defs/adapters)."""

    @dg.asset(
        key=asset_key(schema),
        deps=list(deps),
        group_name=schema.system,
        description=(
            f"raw.{schema.name}: {schema.description} Loaded from"
            f" <landing>/{schema.asset_path}/ ({schema.kind} table, key"
            f" {', '.join(schema.key)})."
        ),
        kinds={"duckdb"},
        pool=WAREHOUSE_WRITER_POOL,
        owners=OWNERS,
        code_version=raw_code_version(),
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
        require_landing(landing)
        if not table_dir(landing, schema).is_dir():
            context.log.info(
                f"{table_dir(landing, schema)} does not exist: no {schema.asset_path} extracts;"
                f" raw.{schema.name} is created empty"
            )
        Path(settings.warehouse_path).parent.mkdir(parents=True, exist_ok=True)
        with duckdb.get_connection() as conn:
            outcome = ingest_table(conn, schema, landing, validation_dir=validation_dir(settings))
            row = conn.execute(f"SELECT count(*) FROM {raw_table(schema)}").fetchone()
            version = raw_data_versions(conn, only=schema.asset_path).get(schema.asset_path, "")
        for refused in outcome.refused:
            context.log.error(f"refused {refused.message} (report: {refused.validation_report})")
        # The data version stays the same while no file is loaded into the table, so the dbt
        # models downstream are not stale in the UI and their step can skip dbt.
        return dg.MaterializeResult(
            metadata=outcome_metadata(outcome, int(row[0]) if row else 0),
            data_version=dg.DataVersion(version) if version else None,
        )

    return _raw_table


def _current_entries(
    conn: Any, schema: TableSchema, landing: Path
) -> tuple[list[ManifestEntry], list[str]]:
    """Manifest state of the files now in the landing directory, and the ones not seen yet."""
    present = [f.relative for f in discover(landing, schema)]
    latest = manifest.latest_entries(conn, schema.name) if manifest.exists(conn) else {}
    return [latest[p] for p in present if p in latest], [p for p in present if p not in latest]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _quarantine_line(entry: ManifestEntry) -> str:
    return (
        f"{entry.source_file}: {entry.rows_quarantined} of {entry.rows_read} rows quarantined"
        f" ({_share(entry.rows_quarantined, entry.rows_read):.1%})"
    )


def quarantined_beyond(quarantined: int, read: int, max_share: float) -> bool:
    """The one rule for "too many rows quarantined", of a file or a table: more than
    ``max_share`` of the rows read, or every one of them (even when the share allows 100%)."""
    return read > 0 and quarantined > 0 and (quarantined == read or quarantined / read > max_share)


def over_quarantined(entries: list[ManifestEntry], max_share: float) -> list[ManifestEntry]:
    """Loaded files quarantined beyond ``max_share``; every loaded file with quarantined rows
    when the table as a whole is."""
    loaded = [e for e in entries if e.status == "loaded"]
    over = [e for e in loaded if quarantined_beyond(e.rows_quarantined, e.rows_read, max_share)]
    table_quarantined = sum(e.rows_quarantined for e in loaded)
    if not over and quarantined_beyond(
        table_quarantined, sum(e.rows_read for e in loaded), max_share
    ):
        over = [e for e in loaded if e.rows_quarantined]
    return over


def _over_description(
    schema: TableSchema,
    current: list[ManifestEntry],
    over: list[ManifestEntry],
    max_share: float,
) -> str:
    loaded = [e for e in current if e.status == "loaded"]
    read = sum(e.rows_read for e in loaded)
    quarantined = sum(e.rows_quarantined for e in loaded)
    return (
        f"too many rows quarantined (more than {max_share:.1%} of a file's or the table's rows,"
        f" or all of a file's): " + "; ".join(_quarantine_line(e) for e in over) + "."
        f" {schema.asset_path} in all: {quarantined} of {read} rows ({_share(quarantined, read):.1%})."
        " Fix the rows at the source and re-send the files (raw.quarantine says why each row was"
        " refused), or raise CSW_MAX_QUARANTINE_SHARE if this share is expected."
    )


def build_contract_check(schema: TableSchema) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(schema),
        name=CHECK_NAME,
        pool=WAREHOUSE_WRITER_POOL,  # it opens the warehouse: one process at a time
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
        over = over_quarantined(current, settings.max_quarantine_share)
        metadata: dict[str, Any] = {
            "files_checked": len(current),
            "files_refused": len(refused),
            "files_over_quarantine_share": len(over),
            "files_not_ingested_yet": len(unseen),
            "rows_read": sum(e.rows_read for e in current),
            "rows_quarantined": sum(e.rows_quarantined for e in current),
            "max_quarantine_share": settings.max_quarantine_share,
            "expectations_failed": sum(e.expectations_failed or 0 for e in current),
            "refused_files": _md_list([f"`{e.source_file}`: {e.message}" for e in refused]),
            "quarantined_files": _md_list([_quarantine_line(e) for e in quarantined]),
            "files": dg.MetadataValue.json(
                [
                    {
                        "source_file": e.source_file,
                        "status": e.status,
                        "rows_read": e.rows_read,
                        "rows_quarantined": e.rows_quarantined,
                        "quarantined_share": round(_share(e.rows_quarantined, e.rows_read), 4),
                    }
                    for e in current
                ]
            ),
            "validation_reports": str(validation_dir(settings) / schema.name),
        }
        problems = []
        if refused:
            problems.append(
                f"{len(refused)} file(s) refused: " + "; ".join(e.message for e in refused)
            )
        if over:
            problems.append(_over_description(schema, current, over, settings.max_quarantine_share))
        if problems:
            description = " ".join(problems)
        else:
            description = (
                f"{len(current)} file(s) loaded, none refused, quarantined rows within"
                f" {settings.max_quarantine_share:.1%} per file"
                if current
                else "no extracts in the landing directory yet"
            )
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=description,
        )

    return _contract_check


def _ignored_record(file: UnrecognisedFile) -> IgnoredFile:
    return IgnoredFile(
        file.source_file, file.reason, file.blocking, file.closest_table, file.size, file.message
    )


def unrecognised_metadata(files: list[UnrecognisedFile]) -> dict[str, Any]:
    """Materialisation metadata of ``landing/unrecognised_files``; ``csw`` reads these keys."""
    return {
        "files_ignored": len(files),
        "files_blocking": sum(1 for f in files if f.blocking),
        "files": dg.MetadataValue.json(
            [
                {
                    "source_file": f.source_file,
                    "outcome": "ignored",
                    "blocking": f.blocking,
                    "reason": f.reason,
                    "closest_table": f.closest_table,
                    "message": f.message,
                }
                for f in files
            ]
        ),
    }


@dg.asset(
    key=UNRECOGNISED_FILES_KEY,
    group_name="landing",
    description=(
        "Files under the landing directory that no table asset loads: unknown system or table"
        " folders (with the closest table for a typo), files directly under the landing root or"
        " a system folder, hidden and marker files. Recorded in raw.ingest_ignored."
    ),
    kinds={"duckdb"},
    pool=WAREHOUSE_WRITER_POOL,
    owners=OWNERS,
)
def unrecognised_files_asset(
    context: AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
) -> dg.MaterializeResult:
    landing = Path(settings.landing_dir)
    require_landing(landing)
    files = unrecognised_files(landing)
    Path(settings.warehouse_path).parent.mkdir(parents=True, exist_ok=True)
    with duckdb.get_connection() as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        manifest.ensure_manifest(conn)
        seen_at = datetime.now(UTC).replace(tzinfo=None)
        manifest.record_ignored(conn, [_ignored_record(f) for f in files], seen_at)
    for file in files:
        if file.blocking:
            context.log.error(file.message)
        else:
            context.log.info(file.message)
    return dg.MaterializeResult(metadata=unrecognised_metadata(files))


@dg.asset_check(
    asset=UNRECOGNISED_FILES_KEY,
    name=UNRECOGNISED_CHECK_NAME,
    description=(
        "No file that looks like data lies outside the <system>/<table>/ folders of the landing"
        " directory (hidden and marker files do not count)."
    ),
)
def no_blocking_files_check(settings: SettingsResource) -> dg.AssetCheckResult:
    files = unrecognised_files(Path(settings.landing_dir))
    blocking = [f for f in files if f.blocking]
    return dg.AssetCheckResult(
        passed=not blocking,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "files_ignored": len(files),
            "files_blocking": len(blocking),
            "blocking_files": _md_list([f.message for f in blocking]),
        },
        description=(
            f"{len(blocking)} file(s) outside the table folders would not be loaded: "
            + " ".join(f.message for f in blocking)
            if blocking
            else f"every data file is in a table folder ({len(files)} hidden or marker file(s))"
        ),
    )


ingestion_assets: list[dg.AssetsDefinition] = [build_raw_asset(t) for t in TABLES] + [
    unrecognised_files_asset
]
ingestion_asset_checks: list[dg.AssetChecksDefinition] = [
    build_contract_check(t) for t in TABLES
] + [no_blocking_files_check]
