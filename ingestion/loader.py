"""Loading extract files into ``raw.<table>``: one transaction per batch, bad rows quarantined.

For each table (:func:`ingest_table`):

1. Hash every file; skip it if the manifest has this path and checksum as ``loaded``.
2. Open it with its DuckDB reader (:mod:`ingestion.readers`). A file that cannot be opened, or
   lacks a required column, is refused: a ``refused`` manifest row, a JSON report, no data.
3. Group the rest into batches: one file each, except the large events table, whose Parquet
   files sharing a schema load together (up to :data:`BATCH_MAX_BYTES`): one transaction per
   file cost 0.3 s per daily file at 10 million events, over 80% of the pipeline.
4. Per batch, in one transaction: check every row with the contract's SQL rules
   (:mod:`ingestion.rules`) and keep the rows that break one, or whose key repeats, in a small
   temporary table; insert the other rows, read and typed again, into ``raw.<table>`` (event
   tables: only keys not already there nor in an earlier file of the batch; the events table:
   written to the events lake instead, :mod:`ingestion.lake`, registered in the same
   transaction); one
   ``raw.quarantine`` row per rule a bad row breaks; per file, the great-expectations suite
   (:mod:`ingestion.expectations`, entity tables), a JSON report and the manifest row; commit.
   A read error at any stage of the batch (checking, inserting, counting, great-expectations
   all read the files) rolls back; a batch of several files is then loaded file by file so the
   unreadable file alone is refused, by name. Any other error rolls back and is raised: no
   partial rows, no manifest row, and the next run loads the files again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from ingestion import lake, manifest
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
    RESEND_ADVICE,
    FileSource,
    UnreadableFileError,
    batch_key,
    batch_source,
    describe_read_error,
    is_read_error,
    open_source,
)
from ingestion.rules import checked_rows_sql, typed_rows_sql
from ingestion.sql import ident, literal, relation_exists

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
_FLAGGED = "_ingest_flagged"
_FILES = "_ingest_files"
_EXISTING = "_ingest_existing"

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
    """Create ``raw.<table>`` from the contract; add contract columns a newer contract added.
    A lake table is a view over the lake instead (:func:`ensure_lake_table`): nothing to do."""
    if schema.lake:
        return
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
    conn: duckdb.DuckDBPyConnection,
    tables: tuple[TableSchema, ...] = TABLES,
    *,
    lake_dir: Path | None = None,
) -> None:
    """Schema ``raw``, the manifest, the quarantine, the lake registry and the raw tables, empty
    if new. With ``lake_dir``, lake tables are recovered, migrated and their view re-created
    (:func:`ensure_lake_table`); without it, a missing one gets an empty typed view."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    manifest.ensure_manifest(conn)
    conn.execute(QUARANTINE_DDL)
    lake.ensure_registry(conn)
    for schema in tables:
        if not schema.lake:
            ensure_raw_table(conn, schema)
        elif lake_dir is not None:
            ensure_lake_table(conn, schema, lake_dir)
        elif not _relation_exists(conn, schema):
            conn.execute(lake.empty_view_sql(schema))


def _relation_exists(conn: duckdb.DuckDBPyConnection, schema: TableSchema) -> bool:
    return relation_exists(conn, RAW_SCHEMA, schema.name)


def ensure_lake_table(conn: duckdb.DuckDBPyConnection, schema: TableSchema, lake_dir: Path) -> None:
    """Before loading a lake table: move lake files without a registry row to ``_orphans``
    (refused if the registry has none of the table: :func:`ingestion.lake.recover`), move a
    ``raw.<table>`` BASE TABLE of an older warehouse into the lake (once), and re-create the view
    (its path is absolute: a moved warehouse gets the right one here)."""
    lake.recover(conn, lake_dir, schema)  # logs where it moved unregistered files
    if lake.is_base_table(conn, schema):
        moved = lake.migrate_table(conn, lake_dir, schema, loaded_at=_now_utc())
        log.warning(
            "%s: moved %d rows of raw.%s into the lake", schema.asset_path, moved, schema.name
        )
    lake.ensure_view(conn, lake_dir, schema)


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


#: Upper bound on the bytes of Parquet files of a large table checked and loaded together:
#: about 65 million events at the generator's 8 bytes per row. Inserting grows worse than
#: linearly past that within DuckDB's memory limit (measured at 4 GB: 75 million rows 29 s, 150
#: million in one transaction 179 s), while a later batch only adds a probe of the raw keys.
BATCH_MAX_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class _Member:
    """A new or changed file, readable, with its required columns: ready to load."""

    version: _FileVersion
    source: FileSource
    report: Path


@dataclass(frozen=True)
class _Batch:
    """Files of one table loaded by one set of statements in one transaction: a single file, or
    (large tables) Parquet files that share a schema."""

    schema: TableSchema
    members: tuple[_Member, ...]
    loaded_at: datetime
    #: The lake of a lake table (None otherwise).
    lake_dir: Path | None = None
    #: A lake batch's rows once written to the lake's staging area.
    staged: lake.StagedBatch | None = None

    @property
    def source(self) -> FileSource:
        return batch_source([m.source for m in self.members])


def ingest_table(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    landing: Path,
    *,
    validation_dir: Path,
    event_sample_rows: int = DEFAULT_EVENT_SAMPLE_ROWS,
    lake_dir: Path | None = None,
) -> TableOutcome:
    """Load every new or changed file of one table; ``raw.<table>`` exists afterwards. A lake
    table's files go to ``lake_dir`` (default: :func:`ingestion.lake.lake_dir_for`)."""
    prepare_connection(conn)
    lake_root = (lake_dir or lake.lake_dir_for(validation_dir)) if schema.lake else None
    ensure_warehouse(conn, (schema,), lake_dir=lake_root)
    loaded_at = _now_utc()
    files = discover(landing, schema)
    outcomes: dict[str, FileOutcome] = {}
    ready: list[_Member] = []
    index = manifest.table_index(conn, schema.name)
    for file in files:
        prepared = _prepare(conn, index, file, loaded_at, validation_dir, event_sample_rows)
        if isinstance(prepared, FileOutcome):
            outcomes[file.relative] = prepared
        else:
            ready.append(prepared)
    for members in _batches(schema, ready):
        for outcome in _load_batch_or_its_files(
            conn, schema, members, event_sample_rows, lake_root
        ):
            outcomes[outcome.source_file] = outcome
    for file in files:
        outcome = outcomes[file.relative]
        log.info("%s: %s, %s", file.relative, outcome.outcome, outcome.message)
    return TableOutcome(schema, tuple(outcomes[f.relative] for f in files))


def _prepare(
    conn: duckdb.DuckDBPyConnection,
    index: manifest.TableIndex,
    file: LandingFile,
    loaded_at: datetime,
    validation_dir: Path,
    event_sample_rows: int,
) -> _Member | FileOutcome:
    """Skip an unchanged file, refuse an unreadable one, or open it for loading."""
    sha256 = sha256_of(file.path)
    previous = index.entries_for(file.relative, sha256)
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
        refused_before.file_version if refused_before else index.next_version(file.relative),
        loaded_at,
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
        except duckdb.Error as exc:
            if not is_read_error(exc):
                raise
            validation = None
        message = (
            f"{file.relative}: missing required column(s) {', '.join(missing)}"
            f" (the file has: {', '.join(source.declared)}). {RESEND_ADVICE}"
        )
        return _refuse(conn, version, message, report, validation)
    return _Member(version, source, report)


def _batches(schema: TableSchema, ready: list[_Member]) -> list[tuple[_Member, ...]]:
    """One batch per file, except for a large table's Parquet files: grouped by schema, in
    discovery order, up to :data:`BATCH_MAX_BYTES` each."""
    if not schema.large:
        return [(m,) for m in ready]
    open_batch: dict[object, list[_Member]] = {}  # per schema, the batch still filling up
    batches: list[list[_Member]] = []
    for member in ready:
        key = batch_key(member.source)
        batch = open_batch.get(key) if key is not None else None
        size = member.version.file.size
        if batch is None or sum(m.version.file.size for m in batch) + size > BATCH_MAX_BYTES:
            batch = []
            batches.append(batch)
            if key is not None:
                open_batch[key] = batch
        batch.append(member)
    return [tuple(b) for b in batches]


def _load_batch_or_its_files(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    members: tuple[_Member, ...],
    event_sample_rows: int,
    lake_dir: Path | None = None,
) -> list[FileOutcome]:
    """Load a batch in one transaction. A file of it that cannot be read, at any stage (check,
    insert, counts, great-expectations: each reads the files again), rolls the batch back; its
    files are then loaded one by one, so that file alone is refused, by name. A lake batch that
    rolls back has its renamed files deleted first (:func:`ingestion.lake.recover_after_rollback`): left in
    the lake, the retry would take their rows for duplicates."""
    batch = _stamped(schema, members, lake_dir)
    try:
        try:
            with transaction(conn):
                return _load_batch(conn, batch, event_sample_rows)
        except BaseException as error:
            if lake_dir is not None:
                lake.recover_after_rollback(conn, lake_dir, schema, batch.loaded_at, error)
            raise
    except (UnreadableFileError, duckdb.Error) as exc:
        if not isinstance(exc, UnreadableFileError) and not is_read_error(exc):
            raise  # a bug or the machine, not a file: the run fails, the next one retries
        if len(batch.members) == 1:
            member = batch.members[0]
            message = (
                str(exc)
                if isinstance(exc, UnreadableFileError)
                else describe_read_error(member.version.file, exc)
            )
            return [_refuse(conn, member.version, message, member.report, None)]
        log.warning(
            "%s: a file of a batch of %d could not be read; loading them one by one",
            schema.name,
            len(members),
        )
        return [
            outcome
            for member in members
            for outcome in _load_batch_or_its_files(
                conn, schema, (member,), event_sample_rows, lake_dir
            )
        ]


def _stamped(
    schema: TableSchema, members: tuple[_Member, ...], lake_dir: Path | None = None
) -> _Batch:
    """The batch, its files stamped with the time it loads: ``_loaded_at`` orders loads
    (staging's tie-break, the incremental event facts' watermark)."""
    now = _now_utc()
    stamped = tuple(replace(m, version=replace(m.version, loaded_at=now)) for m in members)
    return _Batch(schema, stamped, now, lake_dir)


def _sample_rows(schema: TableSchema, event_sample_rows: int) -> int | None:
    return event_sample_rows if schema.kind == "event" else None


def stage_flagged_rows(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    """Check every row of the batch (one scan) and keep only the rows that need a decision in
    ``_ingest_flagged``: rows breaking a rule, and rows whose key repeats in the batch."""
    key = ", ".join(ident(k) for k in batch.schema.key)
    source = batch.source
    try:
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {_FLAGGED} AS"
            f" SELECT _file_index, _source_row, {key}, _violations, _raw_values,"
            " false AS _batch_duplicate"
            f" FROM ({checked_rows_sql(batch.schema, source)})"
            " WHERE len(_violations) > 0 OR _repeated"
        )
    except duckdb.Error as exc:
        if not is_read_error(exc):
            raise
        raise UnreadableFileError(describe_read_error(source.file, exc)) from exc
    if batch.schema.kind == "event" and len(batch.members) > 1:
        # A key repeated in a later file of the batch: loaded but, like a key already in raw,
        # not inserted again (the first file in discovery order keeps it).
        conn.execute(
            f"UPDATE {_FLAGGED} AS f SET _batch_duplicate = true"
            f" FROM (SELECT _file_index, _source_row, row_number() OVER ("
            f"  PARTITION BY {key} ORDER BY _file_index, _source_row) AS _n"
            f"  FROM {_FLAGGED} WHERE len(_violations) = 0) AS d"
            " WHERE d._n > 1 AND f._file_index = d._file_index"
            " AND f._source_row = d._source_row"
        )


def _register_files(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {_FILES} (_file_index INTEGER, source_file VARCHAR,"
        " file_sha256 VARCHAR, file_version INTEGER)"
    )
    conn.executemany(
        f"INSERT INTO {_FILES} VALUES (?, ?, ?, ?)",
        [
            [i, m.version.file.relative, m.version.sha256, m.version.version]
            for i, m in enumerate(batch.members)
        ],
    )


def insert_good_rows(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> int:
    """Rows without violations into ``raw.<table>``; returns the number inserted.

    The rows are read and typed again (no checks this time) rather than copied from a staged
    copy of every row: the flagged rows are few, a full staged copy would be written twice.
    Event tables are append-only and deduplicated on their key: a row whose key is already in
    the raw table, or in an earlier file of the batch, is not inserted again.
    """
    schema = batch.schema
    columns = ", ".join(ident(c) for c in schema.column_names)
    lineage = ", ".join(name for name, _ in LINEAGE_COLUMNS)
    sql, params = _good_rows_sql(conn, batch)
    row = conn.execute(
        f"INSERT INTO {raw_table(schema)} ({columns}, {lineage}) {sql}", params
    ).fetchone()
    return int(row[0]) if row else 0


def write_good_rows_to_lake(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> lake.StagedBatch:
    """A lake table's rows without violations, deduplicated like :func:`insert_good_rows`, as
    Parquet files in the lake's ``_staging`` (renamed into the lake by :func:`_load_batch`).

    The rows to write are counted per file and event date first (a scan of ``occurred_at``, 2 s
    for 62 million native timestamps), then written per date as the
    :class:`ingestion.lake.WritePlan` says: one plain COPY per main date of the batch's files,
    one partitioned COPY for the rows outside their file's main date, if any."""
    assert batch.lake_dir is not None
    exclusions = _exclusions(conn, batch)
    counts = _rows_per_file_and_date(conn, batch, _where(batch.schema, exclusions))
    staged = lake.write_staging(
        conn,
        batch.lake_dir,
        batch.schema,
        _lake_parts(batch, lake.plan_writes(counts), exclusions),
        batch_id=lake.new_batch_id(),
        loaded_at=batch.loaded_at,
    )
    expected = sum(rows for _, _, rows in counts)
    written = sum(f.rows for f in staged.files)
    if written != expected:
        raise lake.LakeError(
            f"{batch.schema.asset_path}: the lake's staging got {written} rows of the"
            f" {expected} counted to write"
        )
    return staged


@dataclass(frozen=True)
class _Exclusions:
    """Which rows of a batch are not written: flagged ones (``_ingest_flagged``: a broken rule,
    a key repeated in the batch), and keys already in ``raw.<table>`` (``_ingest_existing``)."""

    flagged: bool
    existing: bool


def _exclusions(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> _Exclusions:
    existing = batch.schema.kind == "event" and _stage_keys_already_in_raw(conn, batch)
    return _Exclusions(_any_row_excluded(conn), existing)


def _where(schema: TableSchema, exclusions: _Exclusions, files: tuple[int, ...] = ()) -> str:
    """The conditions (`` AND ...``) keeping the typed rows ``t`` to write. ``files``: the rows
    are of those files (positions in the batch) only, and the anti-joins read only theirs."""
    within = f" IN ({', '.join(str(f) for f in files)})" if files else ""
    sql = ""
    if exclusions.flagged:
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM {_FLAGGED} AS q"
            "  WHERE q._file_index = t._file_index AND q._source_row = t._source_row"
            f"{f' AND q._file_index{within}' if within else ''}"
            "  AND (len(q._violations) > 0 OR q._batch_duplicate))"
        )
    if exclusions.existing:
        match = " AND ".join(f"e.{ident(k)} = t.{ident(k)}" for k in schema.key)
        if within:
            match = f"e._file_index{within} AND e._file_index = t._file_index AND {match}"
        sql += f" AND NOT EXISTS (SELECT 1 FROM {_EXISTING} AS e WHERE {match})"
    return sql


def _good_rows_sql(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> tuple[str, list[Any]]:
    """The SELECT of the rows to keep: contract columns then lineage columns, and its params."""
    where = _where(batch.schema, _exclusions(conn, batch))
    return _rows_select(batch, batch.source, where), [batch.loaded_at]


def _rows_select(batch: _Batch, source: FileSource, where: str) -> str:
    """Contract then lineage columns of the typed rows ``t`` of ``source`` (files of the batch)
    meeting ``where``; one parameter, the batch's ``_loaded_at``."""
    schema = batch.schema
    # Lineage by file position, from list literals: a join with the batch's file table made
    # DuckDB write 10 million materialised strings (9.0 s against 5.6 s at tier M).
    paths = ", ".join(literal(m.version.file.relative) for m in batch.members)
    hashes = ", ".join(literal(m.version.sha256) for m in batch.members)
    return (
        f"SELECT {', '.join(f't.{ident(c)}' for c in schema.column_names)},"
        f" [{paths}][t._file_index + 1] AS _source_file, t._source_row,"
        f" [{hashes}][t._file_index + 1] AS _file_sha256, CAST(? AS TIMESTAMP) AS _loaded_at"
        f" FROM ({typed_rows_sql(schema, source)}) AS t"
        f" WHERE true{where}"
    )


def _rows_per_file_and_date(
    conn: duckdb.DuckDBPyConnection, batch: _Batch, where: str
) -> list[tuple[int, date | None, int]]:
    """The rows to write (``where``) counted per (file, event date)."""
    rows = conn.execute(
        f"SELECT t._file_index, {lake.EVENT_DATE_SQL}, count(*)"
        f" FROM ({typed_rows_sql(batch.schema, batch.source)}) AS t WHERE true{where}"
        " GROUP BY ALL"
    ).fetchall()
    return [(int(file), day, int(n)) for file, day, n in rows]


def _lake_parts(
    batch: _Batch,
    plan: lake.WritePlan,
    exclusions: _Exclusions,
) -> list[lake.RowsToWrite]:
    """The SELECTs of the plan: per main date, its files' rows (of that date only when one of
    them holds other dates too); then the rows of the mixed files outside their main date."""
    by_date = plan.files_by_main_date()
    params = (batch.loaded_at,)
    parts = []
    for day, files in by_date.items():
        only_day = (
            f" AND {lake.EVENT_DATE_SQL} = {_date_sql(day)}" if plan.mixed & set(files) else ""
        )
        sql = _rows_select(
            batch, _files_source(batch, files), _where(batch.schema, exclusions, files) + only_day
        )
        parts.append(lake.RowsToWrite(sql, params, day))
    if plan.mixed:
        files = tuple(sorted(plan.mixed))
        where = _where(batch.schema, exclusions, files) + _outside_main_date(plan)
        parts.append(
            lake.RowsToWrite(_rows_select(batch, _files_source(batch, files), where), params)
        )
    return parts


def _date_sql(day: date) -> str:
    return f"DATE {literal(day.isoformat())}"


def _outside_main_date(plan: lake.WritePlan) -> str:
    """The condition on the rows ``t`` of the mixed files: not of their file's main date (every
    row of a file without one; a row without a date too)."""
    cases = " ".join(
        f"WHEN {f} THEN {_date_sql(plan.main_dates[f])}"
        for f in sorted(plan.mixed)
        if f in plan.main_dates
    )
    if not cases:
        return ""
    return f" AND NOT coalesce({lake.EVENT_DATE_SQL} = CASE t._file_index {cases} END, false)"


def _files_source(batch: _Batch, files: tuple[int, ...]) -> FileSource:
    """The batch's files at ``files`` as one source, ``_file_index`` still their batch position
    (the lineage lists and ``_ingest_flagged`` go by it)."""
    if files == tuple(range(len(batch.members))):
        return batch.source
    source = batch_source([batch.members[i].source for i in files])
    positions = ", ".join(str(i) for i in files)
    return replace(
        source,
        relation_sql=f"SELECT * REPLACE ([{positions}][_file_index + 1] AS _file_index)"
        f" FROM ({source.relation_sql})",
    )


def _any_row_excluded(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether a flagged row is kept out of the insert (an anti-join with an empty table still
    cost 3 s per 10 million rows)."""
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM {_FLAGGED} WHERE len(_violations) > 0 OR _batch_duplicate)"
    ).fetchone()
    return bool(row and row[0])


def _stage_keys_already_in_raw(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> bool:
    """The batch's keys already in ``raw.<table>``, with the file of the batch holding each, into
    ``_ingest_existing``; False when none.

    A join, hashing the smaller side (the batch's keys against a larger raw table) and streaming
    the other past it (a few seconds for 150 million rows). Written as an anti-join inside the
    INSERT, DuckDB hashed the raw side instead: 57 s more for a batch of 75 million events
    against 75 million. The file lets each COPY of a lake batch (one per event date) read the
    keys of its own files only: with every key of the batch, each read them all (0.36 s per COPY
    for 28 million keys); and it spares the DISTINCT of a semi join (17 s instead of 20 s for
    62 million keys of a batch of 62 million already in raw).
    """
    table = raw_table(batch.schema)
    row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
    if row is None or not row[0]:
        return False
    keys = ", ".join(ident(k) for k in batch.schema.key)
    match = " AND ".join(f"r.{ident(k)} = t.{ident(k)}" for k in batch.schema.key)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {_EXISTING} AS"
        f" SELECT t._file_index, {', '.join(f't.{ident(k)}' for k in batch.schema.key)}"
        f" FROM {table} AS r"
        f" JOIN (SELECT _file_index, {keys} FROM ({typed_rows_sql(batch.schema, batch.source)}))"
        f" AS t ON {match}"
    )
    row = conn.execute(f"SELECT count(*) FROM {_EXISTING}").fetchone()
    return bool(row and row[0])


def insert_quarantine(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    """One ``raw.quarantine`` row per (bad row, broken rule)."""
    conn.execute(
        f"INSERT INTO {QUARANTINE_TABLE} SELECT ?, f.source_file, f.file_sha256, f.file_version,"
        " q._source_row, q.v.rule, q.v.column_name, q.v.reason, q._raw_values, ?"
        f" FROM (SELECT _file_index, _source_row, _raw_values, unnest(_violations) AS v"
        f"  FROM {_FLAGGED} WHERE len(_violations) > 0) AS q"
        f" JOIN {_FILES} AS f USING (_file_index)",
        [batch.schema.name, batch.loaded_at],
    )


@dataclass(frozen=True)
class _FileCounts:
    rows_read: int = 0
    rows_quarantined: int = 0
    rows_inserted: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def _batch_counts(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> list[_FileCounts]:
    """Per file of the batch: rows read, quarantined, inserted (a lake batch: in its staged
    files; otherwise read back from ``raw.<table>``), and violations per rule."""

    def per_file(sql: str, params: list[Any] | None = None) -> dict[int, int]:
        return {int(i): int(n) for i, n in conn.execute(sql, params or []).fetchall()}

    read = per_file(f"SELECT _file_index, count(*) FROM ({batch.source.relation_sql}) GROUP BY ALL")
    quarantined = per_file(
        f"SELECT _file_index, count(*) FROM {_FLAGGED} WHERE len(_violations) > 0 GROUP BY ALL"
    )
    if batch.staged is not None:
        written = lake.inserted_per_source(conn, batch.staged)
        inserted = {
            i: written.get((m.version.file.relative, m.version.sha256), 0)
            for i, m in enumerate(batch.members)
        }
    else:
        inserted = per_file(
            f"SELECT f._file_index, count(*) FROM {raw_table(batch.schema)} AS r"
            f" JOIN {_FILES} AS f"
            " ON r._source_file = f.source_file AND r._file_sha256 = f.file_sha256"
            " WHERE r._loaded_at = ? GROUP BY ALL",
            [batch.loaded_at],
        )
    by_rule: dict[int, dict[str, int]] = {}
    for index, rule, n in conn.execute(
        "SELECT _file_index, v.rule || '(' || coalesce(v.column_name, '') || ')', count(*)"
        f" FROM (SELECT _file_index, unnest(_violations) AS v FROM {_FLAGGED}"
        "  WHERE len(_violations) > 0)"
        " GROUP BY ALL ORDER BY 1, 3 DESC, 2"
    ).fetchall():
        by_rule.setdefault(int(index), {})[rule] = int(n)
    return [
        _FileCounts(read.get(i, 0), quarantined.get(i, 0), inserted.get(i, 0), by_rule.get(i, {}))
        for i in range(len(batch.members))
    ]


def _load_batch(
    conn: duckdb.DuckDBPyConnection, batch: _Batch, event_sample_rows: int
) -> list[FileOutcome]:
    schema = batch.schema
    timer = _PhaseTimer()
    _register_files(conn, batch)
    stage_flagged_rows(conn, batch)
    timer.lap("check")
    if batch.lake_dir is not None:
        batch = replace(batch, staged=write_good_rows_to_lake(conn, batch))
        timer.lap("lake write")
    else:
        insert_good_rows(conn, batch)
        timer.lap("insert")
    insert_quarantine(conn, batch)
    counts_per_file = _batch_counts(conn, batch)
    timer.lap("count")
    outcomes = []
    entries: list[ManifestEntry] = []
    for member, counts in zip(batch.members, counts_per_file, strict=True):
        validation = (
            None
            if schema.large
            else validate_source(
                conn, schema, member.source, sample_rows=_sample_rows(schema, event_sample_rows)
            )
        )
        rows_loaded = counts.rows_read - counts.rows_quarantined
        rows_duplicate = rows_loaded - counts.rows_inserted
        message = _loaded_message(
            member.source, rows_loaded, counts.rows_quarantined, rows_duplicate, counts.by_rule
        )
        entry = _entry(
            member.version,
            "loaded",
            message,
            member.report,
            validation,
            rows_read=counts.rows_read,
            rows_loaded=rows_loaded,
            rows_quarantined=counts.rows_quarantined,
            rows_duplicate=rows_duplicate,
        )
        write_report(member.report, _report_payload(entry, validation, counts.by_rule))
        entries.append(entry)
        outcomes.append(
            FileOutcome(
                member.version.file.relative,
                "loaded",
                message,
                file_version=member.version.version,
                rows_read=counts.rows_read,
                rows_loaded=rows_loaded,
                rows_quarantined=counts.rows_quarantined,
                rows_duplicate=rows_duplicate,
                quarantine_by_rule=counts.by_rule,
                validation_report=str(member.report),
            )
        )
    if batch.staged is not None:
        assert batch.lake_dir is not None
        lake.publish(conn, batch.staged, schema, batch.loaded_at)
        lake.ensure_view(conn, batch.lake_dir, schema)
    manifest.record_many(conn, entries)
    for temporary in (_FLAGGED, _FILES, _EXISTING):
        conn.execute(f"DROP TABLE IF EXISTS {temporary}")
    timer.lap("record")
    log.info(
        "%s: batch of %d file(s), %d rows: %s",
        schema.name,
        len(batch.members),
        sum(o.rows_read for o in outcomes),
        timer.summary(),
    )
    return outcomes


class _PhaseTimer:
    """Seconds per phase of a batch, for the log (where a load spends its time)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._laps: list[tuple[str, float]] = []

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self._laps.append((phase, now - self._last))
        self._last = now

    def summary(self) -> str:
        return ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self._laps)


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
