"""The events lake: a large event table kept once, as append-only Parquet files by event date.

Layout (Hive partitions, read alike by DuckDB, Spark and Trino)::

    <lake>/<system>/<table>/event_date=YYYY-MM-DD/part-<loaded_at>-<batch8>-<n>.parquet
    <lake>/_staging/<batch_id>/...      files of a batch in flight (a leading "_": not data)
    <lake>/_orphans/<utc stamp>/...     unregistered lake files recovery moved aside

The lake lives beside the warehouse file (:func:`lake_dir_for`). A file holds the contract
columns (JSON columns as text: Spark has no JSON type) and the lineage columns; ``event_date``
(the UTC date of ``occurred_at``) exists only as the partition directory.

A batch is written day by day (:class:`WritePlan`): the rows of the files whose rows are of one
day (a daily extract), or mostly, by one plain COPY per day into that day's partition; the rest
(late events, a file of many days) by one COPY partitioned by date. So a batch adds one file to
each day it covers, two to a day that is some file's day and has late events of other files.

A batch is written to ``_staging``, counted there, renamed into its partitions and registered in
``raw.lake_files`` in the transaction that records its manifest rows. A lake file is data once
its registry row is committed; :func:`recover` moves files without one (a crash between the
rename and the commit) to ``_orphans`` and empties ``_staging``, so the landing file, which has no
manifest row either, loads again in full on the next run: nothing doubled, nothing lost.

Files are never rewritten: late events for an old day are a new file in that day's directory.
``raw.<table>`` is a view over the lake (:func:`ensure_view`), typed and empty while the lake
has no file yet (``read_parquet`` refuses an empty glob).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingestion.contract import ColumnType, TableSchema
from ingestion.sql import ident, literal

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
#: Names the warehouse file the lake belongs to (:func:`claim`).
OWNER_FILE = "_warehouse"
LAKE_FILES_TABLE = f"{RAW_SCHEMA}.lake_files"
STAGING = "_staging"
#: Where recovery moves lake files without a registry row (outside the view's glob).
ORPHANS = "_orphans"
#: The partition column, the UTC date of :data:`DATE_SOURCE`.
PARTITION_COLUMN = "event_date"
DATE_SOURCE = "occurred_at"
#: Lineage columns of a lake file (as in every raw table).
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_file_sha256", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
)

LAKE_FILES_DDL = f"""
CREATE TABLE IF NOT EXISTS {LAKE_FILES_TABLE} (
    path VARCHAR NOT NULL PRIMARY KEY,
    table_name VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    batch_id VARCHAR NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    rows BIGINT NOT NULL CHECK (rows > 0),
    bytes BIGINT NOT NULL
)"""


class LakeError(RuntimeError):
    """The lake and its registry disagree in a way recovery must not paper over."""


def lake_dir_for(validation_dir: Path) -> Path:
    """``<warehouse dir>/lake``: beside the validation reports, which sit beside the warehouse."""
    return validation_dir.parent / "lake"


def table_dir(lake: Path, schema: TableSchema) -> Path:
    return lake / schema.system / schema.name


def staging_root(lake: Path) -> Path:
    return lake / STAGING


def ensure_registry(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(LAKE_FILES_DDL)


def _view_name(schema: TableSchema) -> str:
    return f"{RAW_SCHEMA}.{ident(schema.name)}"


def _column_types(schema: TableSchema) -> list[tuple[str, str]]:
    contract = [(c.name, c.type.duckdb_type) for c in schema.columns]
    return [*contract, *LINEAGE_COLUMNS, (PARTITION_COLUMN, "DATE")]


def _glob(lake: Path, schema: TableSchema) -> str:
    return str(table_dir(lake, schema).resolve() / f"{PARTITION_COLUMN}=*" / "*.parquet")


def empty_view_sql(schema: TableSchema) -> str:
    """``CREATE OR REPLACE VIEW raw.<table>`` of typed nulls and no row: ``read_parquet`` refuses
    a glob that matches no file, so this stands for an empty lake."""
    columns = ", ".join(f"CAST(NULL AS {t}) AS {ident(n)}" for n, t in _column_types(schema))
    return f"CREATE OR REPLACE VIEW {_view_name(schema)} AS SELECT {columns} WHERE false"


def events_view_sql(lake: Path, schema: TableSchema, *, empty: bool) -> str:
    """``CREATE OR REPLACE VIEW raw.<table>`` over the lake's files (absolute path), with the
    raw table's columns and types plus ``event_date``; ``empty``: :func:`empty_view_sql`."""
    if empty:
        return empty_view_sql(schema)
    columns = ", ".join(
        f"CAST({ident(n)} AS {t}) AS {ident(n)}" if t == ColumnType.JSON.duckdb_type else ident(n)
        for n, t in _column_types(schema)
    )
    return (
        f"CREATE OR REPLACE VIEW {_view_name(schema)} AS SELECT {columns}"
        f" FROM read_parquet({literal(_glob(lake, schema))}, hive_partitioning = true,"
        f" hive_types = {{{literal(PARTITION_COLUMN)}: DATE}})"
    )


def ensure_view(conn: duckdb.DuckDBPyConnection, lake: Path, schema: TableSchema) -> None:
    """(Re)create ``raw.<table>`` over the lake as the registry has it."""
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM {LAKE_FILES_TABLE} WHERE table_name = ?)", [schema.name]
    ).fetchone()
    conn.execute(events_view_sql(lake, schema, empty=not (row and row[0])))


def _warehouse_file(conn: duckdb.DuckDBPyConnection) -> str:
    row = conn.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return str(Path(row[0]).resolve()) if row and row[0] else ""


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:
        return a == b


def claim(conn: duckdb.DuckDBPyConnection, lake: Path) -> None:
    """Make ``lake`` the lake of this connection's warehouse file, recorded in ``_warehouse``.

    Recovery moves aside every file the warehouse has not registered, so a lake shared by two
    warehouses (two files in one folder) would hide the other one's events: refused. A lake whose
    recorded warehouse file no longer exists follows the warehouse (it was moved or renamed)."""
    warehouse = _warehouse_file(conn)
    marker = lake / OWNER_FILE
    owner = marker.read_text(encoding="utf-8").strip() if marker.exists() else ""
    if owner and warehouse and Path(owner).exists() and not _same_file(owner, warehouse):
        raise LakeError(
            f"the events lake {lake} belongs to the warehouse {owner}, not to {warehouse}:"
            " two warehouses cannot share one lake — give this warehouse its own folder"
            " (CSW_WAREHOUSE_PATH=<other folder>/warehouse.duckdb)"
        )
    if warehouse and owner != warehouse:
        lake.mkdir(parents=True, exist_ok=True)
        marker.write_text(warehouse + "\n", encoding="utf-8")


def _registered(conn: duckdb.DuckDBPyConnection, schema: TableSchema) -> set[str]:
    rows = conn.execute(
        f"SELECT path FROM {LAKE_FILES_TABLE} WHERE table_name = ?", [schema.name]
    ).fetchall()
    return {r[0] for r in rows}


def _orphan_folder(lake: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return lake / ORPHANS / stamp


def _move_orphans(lake: Path, relative: list[str]) -> Path:
    """Move the lake files ``relative`` to ``_orphans/<utc stamp>/<same path>``: out of the
    view's glob, kept for the user to inspect; returns the folder."""
    folder = _orphan_folder(lake)
    for rel in relative:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (lake / rel).replace(target)
    return folder


def recover_after_rollback(
    conn: duckdb.DuckDBPyConnection,
    lake: Path,
    schema: TableSchema,
    loaded_at: datetime,
    error: BaseException,
) -> None:
    """:func:`recover` after the batch ``loaded_at`` rolled back because of ``error``. A failure
    of the recovery itself is logged and noted on ``error``, which the caller re-raises: the
    cause of the rollback is the error the user must see (the next load recovers again)."""
    try:
        recover(conn, lake, schema, rolled_back=loaded_at)
    except Exception as failure:
        log.error("%s: recovery after a rolled-back load failed: %s", schema.asset_path, failure)
        error.add_note(f"recovering the lake after this error failed too: {failure}")


def _batch_prefix(loaded_at: datetime) -> str:
    return f"part-{loaded_at:%Y%m%dT%H%M%S%f}-"


def recover(
    conn: duckdb.DuckDBPyConnection,
    lake: Path,
    schema: TableSchema,
    *,
    rolled_back: datetime | None = None,
) -> list[Path]:
    """Make the lake agree with the registry before (or after) a load of the table; returns
    where the unregistered lake files went.

    * ``rolled_back``: the ``loaded_at`` of a batch this process just rolled back; its renamed
      files (named after it) are deleted: never committed, their landing files load again.
    * A registered file that is missing raises :class:`LakeError` naming it.
    * Lake files while the registry has none of the table raise :class:`LakeError`: the
      warehouse was rebuilt or restored beside a kept lake; nothing is touched.
    * Other unregistered files (a crash between the rename and the commit, or a warehouse
      restored from an older backup) are moved to ``_orphans/<utc stamp>/``, never deleted,
      with a warning naming the folder.
    * ``_staging`` is emptied (files there were never renamed into the lake)."""
    ensure_registry(conn)
    claim(conn, lake)
    registered = _registered(conn, schema)
    root = table_dir(lake, schema)
    on_disk = {p.relative_to(lake).as_posix(): p for p in root.glob("*/*.parquet")}
    missing = sorted(registered - on_disk.keys())
    if missing:
        raise LakeError(
            f"{len(missing)} lake file(s) of {schema.asset_path} registered in"
            f" {LAKE_FILES_TABLE} are missing under {lake}: {', '.join(missing[:5])}"
            " — restore them from a backup, or rebuild the warehouse and its lake together"
        )
    unregistered = sorted(rel for rel in on_disk if rel not in registered)
    if rolled_back is not None:
        ours = [
            rel for rel in unregistered if on_disk[rel].name.startswith(_batch_prefix(rolled_back))
        ]
        for rel in ours:
            on_disk[rel].unlink()
        unregistered = [rel for rel in unregistered if rel not in ours]
    if unregistered and not registered:
        raise LakeError(
            f"the events lake {lake} holds {len(unregistered)} file(s) of {schema.asset_path}"
            f" but this warehouse has none in {LAKE_FILES_TABLE}: it was rebuilt or restored"
            " beside a lake it does not own. Restore the warehouse file that owns the lake"
            f" (the one it was built with), or delete the lake folder {lake} too to reload"
            " every event from the landing files (only if none of them was archived)."
        )
    moved: list[Path] = []
    if unregistered:
        folder = _move_orphans(lake, unregistered)
        moved = [folder / rel for rel in unregistered]
        log.warning(
            "%s: moved %d lake file(s) the warehouse has not registered to %s (a load that"
            " did not commit, or a warehouse restored from an older backup); their landing"
            " files load again if the manifest lacks them. Inspect that folder, then delete it.",
            schema.asset_path,
            len(unregistered),
            folder,
        )
    shutil.rmtree(staging_root(lake), ignore_errors=True)
    return moved


@dataclass(frozen=True)
class LakeFile:
    """A file of a batch: where it is staged, where it goes, its partition and size."""

    staged: Path
    path: str  # relative to the lake, POSIX
    event_date: date
    rows: int
    bytes: int


@dataclass(frozen=True)
class StagedBatch:
    lake: Path
    batch_id: str
    directory: Path
    files: tuple[LakeFile, ...]


def new_batch_id() -> str:
    return uuid.uuid4().hex


#: A row's event date (its partition), in SQL over a relation with the ``occurred_at`` column.
EVENT_DATE_SQL = f"CAST({ident(DATE_SOURCE)} AS DATE)"


@dataclass(frozen=True)
class RowsToWrite:
    """A SELECT of the contract and lineage columns (by name) and its parameters. ``event_date``:
    the event date of every one of its rows, written by a plain COPY into that partition (checked:
    :func:`write_staging`); None: rows of any dates, written by a COPY partitioned by date."""

    sql: str
    params: tuple[object, ...] = ()
    event_date: date | None = None


@dataclass(frozen=True)
class WritePlan:
    """Which COPY writes which rows of a batch (:func:`plan_writes`).

    A file's *main date* is the event date of at least half its rows (of all of them, for a
    daily extract). The files sharing a main date have their rows of that date written by one
    plain COPY straight into its partition; the other rows of the ``mixed`` files (late events,
    a file of many days) by one COPY partitioned by date, which then holds few rows.

    A partitioned COPY keeps the rows of every day it writes in memory until it ends: over a
    batch of 200 daily files (62 million events, 2 threads) it took 86 s and 4 GB, against 59 s
    and 0.6 GB for a plain COPY per day (411 s and 5.2 GB for 151 million events). Partitioned
    COPYs of 2 or 8 files at a time took 56 and 54 s but 1.1 and 1.7 GB."""

    #: File -> its main date (a file without one is in ``mixed`` only).
    main_dates: Mapping[int, date]
    #: Files with rows outside their main date, or without a main date.
    mixed: frozenset[int]

    def files_by_main_date(self) -> dict[date, tuple[int, ...]]:
        by_date: dict[date, list[int]] = {}
        for file, day in sorted(self.main_dates.items()):
            by_date.setdefault(day, []).append(file)
        return {day: tuple(files) for day, files in sorted(by_date.items())}


def plan_writes(counts: Iterable[tuple[int, date | None, int]]) -> WritePlan:
    """The :class:`WritePlan` of rows counted per (file, event date, rows); a date of None (a
    row without ``occurred_at``) is never a main date. Of two dates with as many rows, the
    earlier is the main one."""
    per_file: dict[int, dict[date | None, int]] = {}
    for file, day, rows in counts:
        days = per_file.setdefault(file, {})
        days[day] = days.get(day, 0) + rows
    main_dates: dict[int, date] = {}
    for file, days in per_file.items():
        dated = [(-rows, day) for day, rows in days.items() if day is not None]
        if dated:
            rows, day = min(dated)
            if 2 * -rows >= sum(days.values()):
                main_dates[file] = day
    mixed = frozenset(f for f, days in per_file.items() if len(days) > 1 or f not in main_dates)
    return WritePlan(main_dates, mixed)


def _file_columns(schema: TableSchema) -> str:
    """The columns of a lake file (no ``event_date``), JSON ones as text."""
    return ", ".join(
        f"CAST({ident(n)} AS VARCHAR) AS {ident(n)}"
        if t == ColumnType.JSON.duckdb_type
        else ident(n)
        for n, t in _column_types(schema)[:-1]
    )


def write_staging(
    conn: duckdb.DuckDBPyConnection,
    lake: Path,
    schema: TableSchema,
    parts: Sequence[RowsToWrite],
    *,
    batch_id: str,
    loaded_at: datetime,
) -> StagedBatch:
    """COPY the rows of ``parts`` (the contract and lineage columns, deduplicated) to
    ``_staging/<batch_id>/event_date=<UTC date of occurred_at>/``: a part of one date with a
    plain COPY into its partition, the one part of several dates (at most) with a COPY
    partitioned by date. No row, no file. A file whose rows are not all of its partition's date
    raises :class:`LakeError`."""
    several = [p for p in parts if p.event_date is None]
    if len(several) > 1:
        raise ValueError("write_staging takes at most one part of several dates")
    directory = staging_root(lake) / batch_id
    directory.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{_batch_prefix(loaded_at)}{batch_id[:8]}-"
    for part in several:  # first: DuckDB writes partitions into a new directory only
        _copy_partitioned(conn, schema, part, directory, prefix)
    for part in parts:
        if part.event_date is not None:
            _copy_one_date(conn, schema, part, directory / _partition(part.event_date), prefix)
    return StagedBatch(lake, batch_id, directory, _staged_files(conn, lake, schema, directory))


def _partition(day: date) -> str:
    return f"{PARTITION_COLUMN}={day.isoformat()}"


def _copy_partitioned(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    part: RowsToWrite,
    directory: Path,
    prefix: str,
) -> None:
    conn.execute(
        f"COPY (SELECT {_file_columns(schema)}, {EVENT_DATE_SQL} AS {PARTITION_COLUMN}"
        f" FROM ({part.sql})) TO {literal(str(directory))} (FORMAT parquet,"
        f" PARTITION_BY ({PARTITION_COLUMN}), FILENAME_PATTERN {literal(prefix + '{i}')},"
        " COMPRESSION zstd)",
        list(part.params),
    )


def _copy_one_date(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    part: RowsToWrite,
    folder: Path,
    prefix: str,
) -> None:
    """One file in ``folder`` named ``<prefix><n>.parquet``, the first ``n`` free (a partitioned
    COPY of the batch may have written ``0`` there); none if the part has no row."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while (target := folder / f"{prefix}{n}.parquet").exists():
        n += 1
    row = conn.execute(
        f"COPY (SELECT {_file_columns(schema)} FROM ({part.sql})) TO {literal(str(target))}"
        " (FORMAT parquet, COMPRESSION zstd)",
        list(part.params),
    ).fetchone()
    if not (row and row[0]):  # a plain COPY of no row still writes a file
        target.unlink(missing_ok=True)


def _staged_files(
    conn: duckdb.DuckDBPyConnection, lake: Path, schema: TableSchema, directory: Path
) -> tuple[LakeFile, ...]:
    """The staged files, their rows, and their partition's date, checked against the range of
    ``occurred_at`` in the file's statistics (its footer)."""
    paths = sorted(directory.glob(f"{PARTITION_COLUMN}=*/*.parquet"))
    if not paths:
        return ()
    listed = ", ".join(literal(str(p)) for p in paths)
    stats = {
        name: (int(rows), low, high)
        for name, rows, low, high in conn.execute(
            f"SELECT f.file_name, f.num_rows, d.low, d.high"
            f" FROM parquet_file_metadata([{listed}]) AS f LEFT JOIN ("
            "  SELECT file_name, CAST(min(CAST(stats_min_value AS TIMESTAMP)) AS DATE) AS low,"
            "   CAST(max(CAST(stats_max_value AS TIMESTAMP)) AS DATE) AS high"
            f"  FROM parquet_metadata([{listed}]) WHERE path_in_schema = ?"
            "  GROUP BY ALL) AS d USING (file_name)",
            [DATE_SOURCE],
        ).fetchall()
    }
    target = table_dir(lake, schema)
    files = []
    for p in paths:
        rows, low, high = stats[str(p)]
        day = date.fromisoformat(p.parent.name.split("=", 1)[1])
        if not low == high == day:
            raise LakeError(
                f"staged lake file {p} is in the partition of {day} but its {DATE_SOURCE}"
                f" spans {low} to {high}: not publishing it"
            )
        path = (target / p.parent.name / p.name).relative_to(lake).as_posix()
        files.append(LakeFile(p, path, day, rows, p.stat().st_size))
    return tuple(files)


def inserted_per_source(
    conn: duckdb.DuckDBPyConnection, staged: StagedBatch
) -> dict[tuple[str, str], int]:
    """Rows written per (``_source_file``, ``_file_sha256``), read from the staged files."""
    if not staged.files:
        return {}
    listed = ", ".join(literal(str(f.staged)) for f in staged.files)
    return {
        (source, sha): int(n)
        for source, sha, n in conn.execute(
            f"SELECT _source_file, _file_sha256, count(*) FROM read_parquet([{listed}])"
            " GROUP BY ALL"
        ).fetchall()
    }


def publish(
    conn: duckdb.DuckDBPyConnection, staged: StagedBatch, schema: TableSchema, loaded_at: datetime
) -> None:
    """Rename the staged files into their partitions and insert their registry rows. Call inside
    the batch's transaction: until it commits, :func:`recover` treats the files as debris."""
    for f in staged.files:
        target = staged.lake / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise LakeError(f"lake file {target} already exists; not overwriting it")
        f.staged.replace(target)
    if not staged.files:  # every row quarantined or already in the lake
        shutil.rmtree(staged.directory, ignore_errors=True)
        return
    conn.executemany(
        f"INSERT INTO {LAKE_FILES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            [f.path, schema.name, f.event_date, staged.batch_id, loaded_at, f.rows, f.bytes]
            for f in staged.files
        ],
    )
    shutil.rmtree(staged.directory, ignore_errors=True)


def is_base_table(conn: duckdb.DuckDBPyConnection, schema: TableSchema) -> bool:
    row = conn.execute(
        "SELECT table_type FROM information_schema.tables"
        " WHERE table_schema = ? AND table_name = ?",
        [RAW_SCHEMA, schema.name],
    ).fetchone()
    return row is not None and row[0] == "BASE TABLE"


def append_rows(
    conn: duckdb.DuckDBPyConnection,
    lake: Path,
    schema: TableSchema,
    rows_sql: str,
    *,
    loaded_at: datetime,
) -> int:
    """Append the rows of ``rows_sql`` (contract then lineage columns, by name) to the lake as
    one registered batch, in one transaction; returns the rows written. Nothing is checked or
    deduplicated: for rows already validated (a migrated table) or made by a test."""
    conn.execute("BEGIN TRANSACTION")
    try:
        written = _append_in_transaction(conn, lake, schema, rows_sql, loaded_at)
    except BaseException as error:
        conn.execute("ROLLBACK")
        recover_after_rollback(conn, lake, schema, loaded_at, error)
        raise
    conn.execute("COMMIT")
    return written


def _append_in_transaction(
    conn: duckdb.DuckDBPyConnection,
    lake: Path,
    schema: TableSchema,
    rows_sql: str,
    loaded_at: datetime,
) -> int:
    ensure_registry(conn)
    staged = write_staging(
        conn, lake, schema, [RowsToWrite(rows_sql)], batch_id=new_batch_id(), loaded_at=loaded_at
    )
    publish(conn, staged, schema, loaded_at)
    ensure_view(conn, lake, schema)
    return sum(f.rows for f in staged.files)


def migrate_table(
    conn: duckdb.DuckDBPyConnection, lake: Path, schema: TableSchema, *, loaded_at: datetime
) -> int:
    """One-off: move an existing ``raw.<table>`` BASE TABLE (a warehouse from before the lake)
    into the lake as one registered batch, drop it, create the view; returns the rows moved.
    One transaction: a failure leaves the table as it was, and no file in the lake."""
    table = _view_name(schema)
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    expected = int(row[0]) if row else 0
    # The view cannot take the table's name while the table exists: stage, publish, drop, view.
    conn.execute("BEGIN TRANSACTION")
    try:
        staged = write_staging(
            conn,
            lake,
            schema,
            [RowsToWrite(f"SELECT * FROM {table}")],
            batch_id=new_batch_id(),
            loaded_at=loaded_at,
        )
        moved = sum(f.rows for f in staged.files)
        if moved != expected:
            raise LakeError(f"migrating {table} to the lake wrote {moved} of {expected} rows")
        publish(conn, staged, schema, loaded_at)
        conn.execute(f"DROP TABLE {table}")
        ensure_view(conn, lake, schema)
    except BaseException as error:
        conn.execute("ROLLBACK")
        recover_after_rollback(conn, lake, schema, loaded_at, error)
        raise
    conn.execute("COMMIT")
    return moved
