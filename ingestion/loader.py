"""Loading extract files into ``raw.<table>``: one transaction per file, bad rows quarantined.

For each file of a table (:func:`ingest_table` -> :func:`load_file`):

1. Hash it; skip it if the manifest has this path and checksum as ``loaded``.
2. Open it with its DuckDB reader (:mod:`ingestion.readers`). A file that cannot be opened, or
   lacks a required column, is refused: a ``refused`` manifest row, a JSON report, no data.
3. In one transaction: stage the file into a temporary table with the contract's SQL rules
   applied (:mod:`ingestion.rules`); run the great-expectations suite on it
   (:mod:`ingestion.expectations`); insert the good rows into ``raw.<table>`` (event tables:
   only keys not already there); insert one ``raw.quarantine`` row per rule a bad row breaks;
   record the manifest row; commit. A read error found while staging (a malformed CSV line, a
   truncated gzip) rolls back and refuses the file. Any other error rolls back and is raised: no
   partial rows, no manifest row, and the next run loads the file again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from ingestion import manifest
from ingestion.contract import CONTRACT_VERSION, TABLES, TableSchema
from ingestion.expectations import (
    DEFAULT_EVENT_SAMPLE_ROWS,
    ValidationResult,
    report_path,
    validate_source,
    write_report,
)
from ingestion.landing import LandingFile, discover, sha256_of
from ingestion.manifest import ManifestEntry
from ingestion.readers import (
    READ_ERRORS,
    RESEND_ADVICE,
    FileSource,
    UnreadableFileError,
    describe_read_error,
    open_source,
)
from ingestion.rules import checked_rows_sql
from ingestion.sql import ident, literal

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
#: Lineage columns after the contract columns of every raw table.
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_file_sha256", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
)
_STAGE = "_ingest_checked"

QUARANTINE_DDL = f"""
CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
    table_name VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    file_version INTEGER NOT NULL,
    source_row BIGINT NOT NULL,
    rule VARCHAR NOT NULL,
    column_name VARCHAR,
    reason VARCHAR NOT NULL,
    raw_values VARCHAR NOT NULL,
    loaded_at TIMESTAMP NOT NULL
)"""


def raw_table(schema: TableSchema) -> str:
    return f"{RAW_SCHEMA}.{ident(schema.name)}"


def raw_table_ddl(schema: TableSchema) -> str:
    columns = [f"{ident(c.name)} {c.type.duckdb_type}" for c in schema.columns]
    columns += [f"{name} {type_} NOT NULL" for name, type_ in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {raw_table(schema)} (\n    " + ",\n    ".join(columns) + ")"


def prepare_connection(conn: duckdb.DuckDBPyConnection) -> None:
    """Session settings the rules rely on: offset-less timestamps are UTC."""
    conn.execute("SET TimeZone = 'UTC'")


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, schema: TableSchema) -> None:
    """Create ``raw.<table>`` from the contract; add contract columns a newer contract added."""
    conn.execute(raw_table_ddl(schema))
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ?",
            [RAW_SCHEMA, schema.name],
        ).fetchall()
    }
    for c in schema.columns:
        if c.name not in existing:
            conn.execute(
                f"ALTER TABLE {raw_table(schema)} ADD COLUMN {ident(c.name)} {c.type.duckdb_type}"
            )


def ensure_warehouse(
    conn: duckdb.DuckDBPyConnection, tables: tuple[TableSchema, ...] = TABLES
) -> None:
    """Schema ``raw``, the manifest, the quarantine and the raw tables, empty if new."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    manifest.ensure_manifest(conn)
    conn.execute(QUARANTINE_DDL)
    for schema in tables:
        ensure_raw_table(conn, schema)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


Outcome = Literal["loaded", "skipped", "refused"]


@dataclass(frozen=True)
class FileOutcome:
    source_file: str
    outcome: Outcome
    message: str
    file_version: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    #: Quarantine rows per ``rule(column)``.
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    validation_report: str | None = None


@dataclass(frozen=True)
class TableOutcome:
    table: TableSchema
    files: tuple[FileOutcome, ...]

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def files_loaded(self) -> int:
        return self._count("loaded")

    @property
    def files_skipped(self) -> int:
        return self._count("skipped")

    @property
    def files_refused(self) -> int:
        return self._count("refused")

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def rows_duplicate(self) -> int:
        return sum(f.rows_duplicate for f in self.files)

    @property
    def refused(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if f.outcome == "refused")


@dataclass(frozen=True)
class _FileVersion:
    file: LandingFile
    sha256: str
    version: int
    loaded_at: datetime
    #: The manifest's earlier refusal of this same version, if any.
    refused_before: ManifestEntry | None

    @property
    def schema(self) -> TableSchema:
        return self.file.table


def _now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ingest_table(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    landing: Path,
    *,
    validation_dir: Path,
    event_sample_rows: int = DEFAULT_EVENT_SAMPLE_ROWS,
) -> TableOutcome:
    """Load every new or changed file of one table; ``raw.<table>`` exists afterwards."""
    prepare_connection(conn)
    ensure_warehouse(conn, (schema,))
    outcomes = []
    for file in discover(landing, schema):
        outcome = load_file(
            conn, file, validation_dir=validation_dir, event_sample_rows=event_sample_rows
        )
        log.info("%s: %s, %s", file.relative, outcome.outcome, outcome.message)
        outcomes.append(outcome)
    return TableOutcome(schema, tuple(outcomes))


def load_file(
    conn: duckdb.DuckDBPyConnection,
    file: LandingFile,
    *,
    validation_dir: Path,
    event_sample_rows: int = DEFAULT_EVENT_SAMPLE_ROWS,
) -> FileOutcome:
    """Load one file in one transaction, or skip or refuse it (see the module docstring)."""
    sha256 = sha256_of(file.path)
    previous = manifest.entries_for(conn, file.relative, sha256)
    loaded = next((e for e in previous if e.status == "loaded"), None)
    if loaded is not None:
        return FileOutcome(
            file.relative,
            "skipped",
            f"unchanged since it was loaded as version {loaded.file_version}"
            f" at {loaded.loaded_at:%Y-%m-%d %H:%M:%S} UTC",
            file_version=loaded.file_version,
            validation_report=loaded.validation_report,
        )
    refused_before = next((e for e in previous if e.status == "refused"), None)
    version = _FileVersion(
        file,
        sha256,
        refused_before.file_version
        if refused_before
        else manifest.next_version(conn, file.relative),
        _now_utc(),
        refused_before,
    )
    report = report_path(validation_dir, file.table, file.name, sha256)
    try:
        source = open_source(conn, file)
    except UnreadableFileError as exc:
        return _refuse(conn, version, str(exc), report, None)
    missing = [c for c in file.table.required_columns if c not in source.declared]
    if missing:
        try:  # GX shows what the file does have; it may also be unreadable further in
            validation: ValidationResult | None = validate_source(
                conn, file.table, source, sample_rows=_sample_rows(file.table, event_sample_rows)
            )
        except READ_ERRORS:
            validation = None
        message = (
            f"{file.relative}: missing required column(s) {', '.join(missing)}"
            f" (the file has: {', '.join(source.declared)}). {RESEND_ADVICE}"
        )
        return _refuse(conn, version, message, report, validation)
    try:
        with transaction(conn):
            return _load_in_transaction(conn, version, source, report, event_sample_rows)
    except UnreadableFileError as exc:
        return _refuse(conn, version, str(exc), report, None)


def _sample_rows(schema: TableSchema, event_sample_rows: int) -> int | None:
    return event_sample_rows if schema.kind == "event" else None


def stage_checked_rows(
    conn: duckdb.DuckDBPyConnection, schema: TableSchema, source: FileSource
) -> None:
    """The whole file, typed and checked, into a temporary table (one scan of the file)."""
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS {checked_rows_sql(schema, source)}")
    except READ_ERRORS as exc:
        raise UnreadableFileError(describe_read_error(source.file, exc)) from exc


def insert_good_rows(conn: duckdb.DuckDBPyConnection, version: _FileVersion) -> int:
    """Rows without violations into ``raw.<table>``; returns the number inserted.

    Event tables are append-only and deduplicated on their key: a row whose key is already in
    the raw table (from an earlier file) is not inserted again.
    """
    schema = version.schema
    columns = ", ".join(ident(c) for c in schema.column_names)
    lineage = ", ".join(name for name, _ in LINEAGE_COLUMNS)
    dedup = ""
    if schema.kind == "event":
        match = " AND ".join(f"r.{ident(k)} = c.{ident(k)}" for k in schema.key)
        dedup = f" AND NOT EXISTS (SELECT 1 FROM {raw_table(schema)} AS r WHERE {match})"
    row = conn.execute(
        f"INSERT INTO {raw_table(schema)} ({columns}, {lineage})"
        f" SELECT {columns}, ?, _source_row, ?, ? FROM {_STAGE} AS c"
        f" WHERE len(c._violations) = 0{dedup}",
        [version.file.relative, version.sha256, version.loaded_at],
    ).fetchone()
    return int(row[0]) if row else 0


def insert_quarantine(conn: duckdb.DuckDBPyConnection, version: _FileVersion) -> None:
    """One ``raw.quarantine`` row per (bad row, broken rule)."""
    conn.execute(
        f"INSERT INTO {QUARANTINE_TABLE} SELECT ?, ?, ?, ?, _source_row, v.rule, v.column_name,"
        " v.reason, _raw_values, ?"
        f" FROM (SELECT _source_row, _raw_values, unnest(_violations) AS v FROM {_STAGE}"
        " WHERE len(_violations) > 0)",
        [
            version.schema.name,
            version.file.relative,
            version.sha256,
            version.version,
            version.loaded_at,
        ],
    )


def _stage_counts(conn: duckdb.DuckDBPyConnection) -> tuple[int, int, dict[str, int]]:
    """Rows read, rows with violations, and violations per ``rule(column)``."""
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE len(_violations) > 0) FROM {_STAGE}"
    ).fetchone()
    assert row is not None
    by_rule = conn.execute(
        f"SELECT v.rule || '(' || coalesce(v.column_name, '') || ')', count(*)"
        f" FROM (SELECT unnest(_violations) AS v FROM {_STAGE} WHERE len(_violations) > 0)"
        " GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    return int(row[0]), int(row[1]), {rule: int(n) for rule, n in by_rule}


def _load_in_transaction(
    conn: duckdb.DuckDBPyConnection,
    version: _FileVersion,
    source: FileSource,
    report: Path,
    event_sample_rows: int,
) -> FileOutcome:
    schema = version.schema
    stage_checked_rows(conn, schema, source)
    rows_read, rows_quarantined, by_rule = _stage_counts(conn)
    rows_loaded = rows_read - rows_quarantined
    validation = (
        None
        if schema.large
        else validate_source(
            conn, schema, source, sample_rows=_sample_rows(schema, event_sample_rows)
        )
    )
    inserted = insert_good_rows(conn, version)
    insert_quarantine(conn, version)
    rows_duplicate = rows_loaded - inserted
    message = _loaded_message(source, rows_loaded, rows_quarantined, rows_duplicate, by_rule)
    entry = _entry(
        version,
        "loaded",
        message,
        report,
        validation,
        rows_read=rows_read,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        rows_duplicate=rows_duplicate,
    )
    write_report(report, _report_payload(entry, validation, by_rule))
    manifest.record(conn, entry)
    conn.execute(f"DROP TABLE {_STAGE}")
    return FileOutcome(
        version.file.relative,
        "loaded",
        message,
        file_version=version.version,
        rows_read=rows_read,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        rows_duplicate=rows_duplicate,
        quarantine_by_rule=by_rule,
        validation_report=str(report),
    )


def _loaded_message(
    source: FileSource,
    rows_loaded: int,
    rows_quarantined: int,
    rows_duplicate: int,
    by_rule: dict[str, int],
) -> str:
    schema = source.file.table
    parts = [f"{rows_loaded} rows loaded"]
    if rows_duplicate:
        parts.append(f"{rows_duplicate} of them already in raw by key, not inserted again")
    if rows_quarantined:
        rules = ", ".join(f"{rule} x{n}" for rule, n in by_rule.items())
        parts.append(f"{rows_quarantined} rows quarantined ({rules})")
    extra = [c for c in source.declared if c not in schema.column_names]
    if extra:
        parts.append(f"ignored non-contract columns: {', '.join(extra)}")
    absent = [c for c in schema.column_names if c not in source.declared]
    if absent:
        parts.append(f"optional columns not in the file, loaded as null: {', '.join(absent)}")
    return "; ".join(parts)


def _entry(
    version: _FileVersion,
    status: manifest.FileStatus,
    message: str,
    report: Path,
    validation: ValidationResult | None,
    **counts: int,
) -> ManifestEntry:
    file = version.file
    return ManifestEntry(
        source_file=file.relative,
        system=file.table.system,
        table_name=file.table.name,
        file_format=file.file_format,
        file_size=file.size,
        file_sha256=version.sha256,
        file_version=version.version,
        status=status,
        rows_read=counts.get("rows_read", 0),
        rows_loaded=counts.get("rows_loaded", 0),
        rows_quarantined=counts.get("rows_quarantined", 0),
        rows_duplicate=counts.get("rows_duplicate", 0),
        message=message,
        validation_report=str(report),
        expectations_failed=validation.failed if validation else None,
        loaded_at=version.loaded_at,
    )


def _refuse(
    conn: duckdb.DuckDBPyConnection,
    version: _FileVersion,
    message: str,
    report: Path,
    validation: ValidationResult | None,
) -> FileOutcome:
    """Record a refusal (unless the same version was refused before for the same reason)."""
    entry = _entry(version, "refused", message, report, validation)
    write_report(report, _report_payload(entry, validation, {}))
    if version.refused_before is None or version.refused_before.message != message:
        manifest.record(conn, entry)
    return FileOutcome(
        version.file.relative,
        "refused",
        message,
        file_version=version.version,
        validation_report=str(report),
    )


def _report_payload(
    entry: ManifestEntry, validation: ValidationResult | None, by_rule: dict[str, int]
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "contract_version": CONTRACT_VERSION,
        "table": f"{entry.system}/{entry.table_name}",
        "source_file": entry.source_file,
        "file_sha256": entry.file_sha256,
        "file_version": entry.file_version,
        "status": entry.status,
        "message": entry.message,
        "rows_read": entry.rows_read,
        "rows_loaded": entry.rows_loaded,
        "rows_quarantined": entry.rows_quarantined,
        "rows_duplicate": entry.rows_duplicate,
        "quarantine_by_rule": by_rule,
        "quarantine_query": (
            f"SELECT * FROM {QUARANTINE_TABLE} WHERE source_file = {literal(entry.source_file)}"
            f" AND file_sha256 = {literal(entry.file_sha256)} ORDER BY source_row"
        ),
        "loaded_at": entry.loaded_at.isoformat(),
    }
    if validation is None:
        payload["expectations"] = None
        payload["expectations_note"] = (
            "not run: a large table, validated by the contract's SQL rules on every row"
            if entry.status == "loaded"
            else "not run: the file could not be read"
        )
        return payload
    payload["expectations"] = {
        "success": validation.success,
        "evaluated": validation.evaluated,
        "failed": validation.failed,
        "failed_expectations": validation.failed_expectations(),
        "rows_validated": validation.rows_validated,
        "note": (
            f"great-expectations ran on the first {validation.sample_rows} rows at most"
            " (event table: a bounded sample; the SQL rules checked every row)"
            if validation.sample_rows
            else "great-expectations ran on every row of the file"
        ),
        "result": validation.details,
    }
    return payload
