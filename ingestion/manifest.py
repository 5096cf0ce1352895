"""``raw.ingest_manifest``: one row per extract file version that ingestion decided on.

A file is identified by its path relative to the landing directory plus its SHA-256:

* same path and checksum as a ``loaded`` row -> skipped (nothing is read or written);
* same path, new checksum -> a new ``file_version`` of the path, loaded in full;
* same path and checksum as a ``refused`` row -> tried again on every run (a refusal may have
  been caused by the code or the machine rather than the file); if it is refused again with
  the same message nothing is written, and if it loads, a ``loaded`` row with the same
  ``file_version`` joins the ``refused`` one.

Counts: ``rows_read = rows_loaded + rows_quarantined`` for every row (a CHECK constraint).
``rows_loaded`` counts the rows that passed validation; for event tables ``rows_duplicate`` of
them were already in the raw table under the same key (from an earlier file) and were therefore
not inserted again, so ``rows_loaded - rows_duplicate`` rows were inserted. A refused file has
all counts 0: none of its rows entered the warehouse.

``raw.ingest_ignored`` lists the files under the landing directory that no table loads (unknown
folders, files one level too high, hidden and marker files), as of the last inventory: with the
manifest, every file under the landing directory is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Literal

import duckdb
import polars as pl

from ingestion.sql import relation_exists

MANIFEST_TABLE = "raw.ingest_manifest"

FileStatus = Literal["loaded", "refused"]

MANIFEST_DDL = f"""
CREATE TABLE IF NOT EXISTS {MANIFEST_TABLE} (
    source_file VARCHAR NOT NULL,
    system VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    file_format VARCHAR,
    file_size BIGINT NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    file_version INTEGER NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('loaded', 'refused')),
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    message VARCHAR NOT NULL,
    validation_report VARCHAR,
    expectations_failed INTEGER,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source_file, file_sha256, status),
    CHECK (rows_read = rows_loaded + rows_quarantined),
    CHECK (rows_duplicate <= rows_loaded)
)"""


@dataclass(frozen=True)
class ManifestEntry:
    source_file: str
    system: str
    table_name: str
    file_format: str | None
    file_size: int
    file_sha256: str
    file_version: int
    status: FileStatus
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    message: str
    #: Path of the JSON validation report written for this file version.
    validation_report: str | None
    #: great-expectations expectations that failed on the file (None: not run).
    expectations_failed: int | None
    loaded_at: datetime


_COLUMNS = ", ".join(f.name for f in fields(ManifestEntry))


def ensure_manifest(conn: duckdb.DuckDBPyConnection) -> None:
    """The manifest and its other half, ``raw.ingest_ignored`` (files no table loads)."""
    conn.execute(MANIFEST_DDL)
    conn.execute(IGNORED_DDL)


def exists(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether ingestion ever ran against this warehouse."""
    return relation_exists(conn, "raw", "ingest_manifest")


def _entries(conn: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> list:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {MANIFEST_TABLE} WHERE {where}"
        " ORDER BY source_file, file_version, loaded_at",
        params,
    ).fetchall()
    return [ManifestEntry(*row) for row in rows]


@dataclass(frozen=True)
class TableIndex:
    """A table's manifest rows read once, by file version: an ingest looks every landing file
    up in it (one query per file cost 2.4 ms, 1.8 s for the 730 daily event files at M)."""

    by_version: Mapping[tuple[str, str], tuple[ManifestEntry, ...]]
    newest: Mapping[str, int]

    def entries_for(self, source_file: str, sha256: str) -> tuple[ManifestEntry, ...]:
        """The rows of one file version (at most one ``loaded`` and one ``refused``)."""
        return self.by_version.get((source_file, sha256), ())

    def next_version(self, source_file: str) -> int:
        """The version number a changed file at ``source_file`` gets."""
        return self.newest.get(source_file, 0) + 1


def table_index(conn: duckdb.DuckDBPyConnection, table_name: str) -> TableIndex:
    """The manifest rows of ``table_name`` as they are now."""
    by_version: dict[tuple[str, str], list[ManifestEntry]] = {}
    newest: dict[str, int] = {}
    for entry in _entries(conn, "table_name = ?", [table_name]):
        by_version.setdefault((entry.source_file, entry.file_sha256), []).append(entry)
        newest[entry.source_file] = max(newest.get(entry.source_file, 0), entry.file_version)
    return TableIndex({k: tuple(v) for k, v in by_version.items()}, newest)


def record(conn: duckdb.DuckDBPyConnection, entry: ManifestEntry) -> None:
    """Insert (or, for a changed refusal of the same version, replace) one manifest row."""
    placeholders = ", ".join("?" for _ in fields(ManifestEntry))
    conn.execute(
        f"INSERT OR REPLACE INTO {MANIFEST_TABLE} ({_COLUMNS}) VALUES ({placeholders})",
        list(astuple(entry)),
    )


def record_many(conn: duckdb.DuckDBPyConnection, entries: list[ManifestEntry]) -> None:
    """:func:`record` for the files of a batch, in one statement (one ``INSERT`` per row cost
    4 ms, 3 s for a batch of 730 daily files)."""
    if not entries:
        return
    frame = pl.DataFrame(
        [astuple(e) for e in entries],
        schema=[f.name for f in fields(ManifestEntry)],
        orient="row",
        infer_schema_length=None,
    )
    conn.register("_manifest_rows", frame)
    try:
        conn.execute(
            f"INSERT OR REPLACE INTO {MANIFEST_TABLE} ({_COLUMNS})"
            f" SELECT {_COLUMNS} FROM _manifest_rows"
        )
    finally:
        conn.unregister("_manifest_rows")


def latest_entries(conn: duckdb.DuckDBPyConnection, table_name: str) -> dict[str, ManifestEntry]:
    """The current state of every path of a table: its newest version, ``loaded`` winning over
    ``refused`` for the same version."""
    latest: dict[str, ManifestEntry] = {}
    for entry in _entries(conn, "table_name = ?", [table_name]):
        current = latest.get(entry.source_file)
        if current is None or (entry.file_version, entry.status == "loaded") >= (
            current.file_version,
            current.status == "loaded",
        ):
            latest[entry.source_file] = entry
    return latest


IGNORED_TABLE = "raw.ingest_ignored"

IGNORED_DDL = f"""
CREATE TABLE IF NOT EXISTS {IGNORED_TABLE} (
    source_file VARCHAR PRIMARY KEY,
    reason VARCHAR NOT NULL,
    blocking BOOLEAN NOT NULL,
    closest_table VARCHAR,
    file_size BIGINT NOT NULL,
    message VARCHAR NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
)"""


@dataclass(frozen=True)
class IgnoredFile:
    """A file under the landing directory that no table asset loads (see
    :func:`ingestion.landing.unrecognised_files`), as recorded in ``raw.ingest_ignored``."""

    source_file: str
    reason: str
    blocking: bool
    closest_table: str | None
    file_size: int
    message: str


def record_ignored(
    conn: duckdb.DuckDBPyConnection, files: list[IgnoredFile], seen_at: datetime
) -> None:
    """Make ``raw.ingest_ignored`` the landing directory's current list of ignored files.

    Idempotent: a file still there keeps its ``first_seen_at``; a file gone (moved into its
    table folder, deleted) leaves the list. The manifest keeps one row per file ingestion
    decided on; this table is the other half of "every file is accounted for".
    """
    conn.execute(IGNORED_DDL)
    frame = pl.DataFrame(
        [astuple(f) for f in files],
        schema={
            "source_file": pl.String,
            "reason": pl.String,
            "blocking": pl.Boolean,
            "closest_table": pl.String,
            "file_size": pl.Int64,
            "message": pl.String,
        },
        orient="row",
    )
    conn.register("_ignored_now", frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            f"DELETE FROM {IGNORED_TABLE}"
            " WHERE source_file NOT IN (SELECT source_file FROM _ignored_now)"
        )
        conn.execute(
            f"INSERT INTO {IGNORED_TABLE} SELECT n.*, coalesce(o.first_seen_at, ?), ?"
            f" FROM _ignored_now AS n LEFT JOIN {IGNORED_TABLE} AS o USING (source_file)"
            " ON CONFLICT (source_file) DO UPDATE SET reason = excluded.reason,"
            " blocking = excluded.blocking, closest_table = excluded.closest_table,"
            " file_size = excluded.file_size, message = excluded.message,"
            " last_seen_at = excluded.last_seen_at",
            [seen_at, seen_at],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("_ignored_now")
