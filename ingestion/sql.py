"""Quoting values and names into DuckDB SQL text.

DuckDB table functions (``read_csv``, ``read_parquet``, ...) take their file path and options as
SQL literals, and contract column names become identifiers, so every generated statement goes
through these two functions.
"""

from __future__ import annotations


def ident(name: str) -> str:
    """A double-quoted SQL identifier (``a"b`` -> ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A single-quoted SQL string literal (``it's`` -> ``'it''s'``)."""
    return "'" + value.replace("'", "''") + "'"
