"""A hand-made warehouse: every mart of the project, in the columns and types its dbt contract
declares (from the manifest), with a few rows, plus a private e-mail column that publication must
never let out. The columns publication reads carry values, other numbers count up, the rest is NULL.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from orchestration.defs.dbt.project import mart_names, prepared_manifest

#: The month the hand-made finance close reports, and the reporting date of the marts.
CLOSED_MONTH = "2024-03"
AS_OF = date(2024, 4, 30)

_VALUES = {
    "list_rank": "range + 1",
    "account_id": "'acct-' || range",
    "month": f"date '{CLOSED_MONTH}-01'",
    "end_month": f"date '{CLOSED_MONTH}-01'",
    "period_start": f"date '{CLOSED_MONTH}-01'",
    "is_complete": "true",
    "period_grain": "'month'",
    "segment": "'enterprise'",
    "is_reporting_date": "true",
    "as_of_date": f"date '{AS_OF.isoformat()}'",
}


def _default(data_type: str) -> str:
    """Numbers count up (a report drawn from these marts has figures to draw); the rest is NULL."""
    numeric = ("decimal", "int", "double", "float", "numeric")
    return "range" if data_type.lower().startswith(numeric) else "null"


def mart_columns() -> dict[str, dict[str, str]]:
    """Every mart's columns and their declared types, in the manifest's order."""
    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    marts = set(mart_names())
    return {
        node["name"]: {
            name: column.get("data_type") or "varchar" for name, column in node["columns"].items()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"] in marts
    }


def write_marts(warehouse: Path, rows: int, **rows_of: int) -> None:
    """Every mart with ``rows`` rows (``rows_of[mart]`` for some), replacing what was there."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists marts")
        for name, columns in mart_columns().items():
            select = [
                f"cast({_VALUES.get(column, _default(data_type))} as {data_type}) as {column}"
                for column, data_type in columns.items()
            ]
            con.execute(
                f"create or replace table marts.{name} as select {', '.join(select)},"
                f" 'cs@example.com' as email from range({rows_of.get(name, rows)})"
            )
