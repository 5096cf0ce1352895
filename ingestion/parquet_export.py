"""The raw layer as Parquet, for an engine that does not read the DuckDB file (Spark, Trino).

Ingestion validates and loads into the DuckDB file as always; this writes each raw table beside
it, in the lake's layout (``<lake>/<system>/<table>``), so the dbt project on Spark reads the very
rows ingestion accepted (``register_raw_sources`` in ``dbt_project/macros/engines.sql``):

* a lake table (the events) is already Parquet there, Hive-partitioned by ``event_date``;
  nothing is written. A warehouse whose ``raw.<table>`` is still a table (built before the
  lake, or by hand in a test) gets the same layout, one file per ``event_date``.
* every other table is one file, ``<lake>/<system>/<table>/part-0.parquet``, replaced whole
  each time (written to a temporary name, then renamed: a reader sees the old file or the new).

JSON columns are written as text, as in the lake (Spark has no JSON type). An empty table is a
file with the table's columns and no row, so a reader gets the schema, not an error: for a lake
table that is ``<lake>/<system>/<table>/empty.parquet``, outside the partitions (the lake's own
readers and its recovery look only inside them) and removed once the lake has a file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingestion.contract import TABLES, ColumnType, TableSchema
from ingestion.lake import PARTITION_COLUMN, RAW_SCHEMA, table_dir
from ingestion.sql import ident, literal, relation_exists

ENTITY_FILE = "part-0.parquet"
#: A lake table with no file yet: its columns, no row (without ``event_date``).
EMPTY_FILE = "empty.parquet"


@dataclass(frozen=True)
class Exported:
    table: str
    rows: int
    #: False: the table is the lake itself, nothing was written.
    written: bool


def _is_view(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = conn.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [RAW_SCHEMA, name],
    ).fetchone()
    return row is not None and row[0] == "VIEW"


def _select(conn: duckdb.DuckDBPyConnection, schema: TableSchema) -> str:
    described = conn.execute(f"DESCRIBE {RAW_SCHEMA}.{ident(schema.name)}").fetchall()
    columns = [
        f"CAST({ident(name)} AS VARCHAR) AS {ident(name)}"
        if type_ == ColumnType.JSON.duckdb_type
        else ident(name)
        for name, type_, *_ in described
    ]
    return f"SELECT {', '.join(columns)} FROM {RAW_SCHEMA}.{ident(schema.name)}"


def _write_file(conn: duckdb.DuckDBPyConnection, select: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    conn.execute(f"COPY ({select}) TO {literal(str(partial))} (FORMAT parquet)")
    partial.replace(target)


def _export_lake(
    conn: duckdb.DuckDBPyConnection, schema: TableSchema, folder: Path, rows: int
) -> bool:
    """The lake is the table's Parquet: write only the empty file while it has no file."""
    empty = folder / EMPTY_FILE
    if rows:
        empty.unlink(missing_ok=True)
        return False
    _write_file(conn, f"{_select(conn, schema)} WHERE false", empty)
    return True


def _export_partitioned(
    conn: duckdb.DuckDBPyConnection, schema: TableSchema, folder: Path, rows: int
) -> None:
    """A raw events *table* (no lake yet) in the lake's layout, replacing what is there."""
    if folder.exists():
        shutil.rmtree(folder)
    select = _select(conn, schema)
    if rows == 0:
        _write_file(conn, select, folder / EMPTY_FILE)
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    conn.execute(
        f"COPY (SELECT *, CAST(occurred_at AS DATE) AS {PARTITION_COLUMN} FROM ({select}))"
        f" TO {literal(str(folder))} (FORMAT parquet, PARTITION_BY ({PARTITION_COLUMN}))"
    )


def export_raw_tables(conn: duckdb.DuckDBPyConnection, lake: Path) -> list[Exported]:
    """Write every raw table of the contract under ``lake`` (see the module docstring)."""
    missing = [t.name for t in TABLES if not relation_exists(conn, RAW_SCHEMA, t.name)]
    if missing:
        raise LookupError(
            f"raw.{', raw.'.join(missing)} not in the warehouse: run ingestion (`csw ingest`)"
            " first; nothing was exported"
        )
    exported = []
    for schema in TABLES:
        rows_row = conn.execute(
            f"SELECT count(*) FROM {RAW_SCHEMA}.{ident(schema.name)}"
        ).fetchone()
        rows = int(rows_row[0]) if rows_row else 0
        folder = table_dir(lake, schema)
        if schema.lake and _is_view(conn, schema.name):
            written = _export_lake(conn, schema, folder, rows)
        elif schema.lake:
            _export_partitioned(conn, schema, folder, rows)
            written = True
        else:
            _write_file(conn, _select(conn, schema), folder / ENTITY_FILE)
            written = True
        exported.append(Exported(schema.asset_path, rows, written=written))
    return exported
