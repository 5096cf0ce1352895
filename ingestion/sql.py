"""Quoting values and names into DuckDB SQL text.

DuckDB table functions (``read_csv``, ``read_parquet``, ...) take their file path and options as
SQL literals, and contract column names become identifiers, so every generated statement goes
through these two functions.
"""

from __future__ import annotations

import duckdb


def ident(name: str) -> str:
    """A double-quoted SQL identifier (``a"b`` -> ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'


def relation_exists(conn: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether ``schema.name`` is a table or view of the connection's database."""
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def literal(value: str) -> str:
    """A single-quoted SQL string literal (``it's`` -> ``'it''s'``)."""
    return "'" + value.replace("'", "''") + "'"
