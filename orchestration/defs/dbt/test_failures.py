"""The failures dbt stored for its tests (``store_failures: true``), read back for a run's summary.

The referential checks (``orphan_keys`` tests and the singular ``events_without_crm_account``,
``assert_billing_customers_mapped_to_crm``; docs/metrics.md "Referential checks") warn with one
row per missing key and store those rows in the schema ``audit`` as a table named after the test,
replaced on every build. dagster-dbt names the asset check after the test too, so a check name
is all it takes to find the rows that explain a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

#: The schema the referential checks store their failures in (their ``schema`` config).
AUDIT_SCHEMA = "audit"


@dataclass(frozen=True)
class StoredFailures:
    """The stored failures of one dbt test: how many rows, and the first few as text."""

    check_name: str
    #: ``audit.<table>``, for a user who wants every row (``select * from audit.<table>``).
    relation: str
    count: int
    columns: tuple[str, ...]
    #: Up to ``limit`` rows, largest ``child_rows`` first when the table has that column.
    sample: tuple[tuple[str, ...], ...]

    def sample_lines(self) -> list[str]:
        """One line per sample row: ``account_id=acc_zz, child_rows=3``."""
        return [
            ", ".join(f"{c}={v}" for c, v in zip(self.columns, row, strict=True))
            for row in self.sample
        ]


def stored_failures(
    warehouse: Path, check_names: Iterable[str], limit: int = 5
) -> dict[str, StoredFailures]:
    """The stored failures of each of ``check_names`` (dbt test names = Dagster check names) that
    has a table in the audit schema; names without one (a test that stores no failures, or a
    warehouse never built) are left out. Opens the warehouse read-only; a warehouse another
    process is writing raises ``duckdb.IOException`` (the caller decides whether to wait).
    """
    names = sorted(set(check_names))
    if not names or not warehouse.is_file():
        return {}
    with _connect(warehouse) as con:
        tables = _audit_tables(con, names)
        return {name: _read(con, name, limit) for name in names if name in tables}


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection; or, when this process already has the warehouse open (dbt run
    in-process, as the pytest harness does), a connection to that open database: DuckDB refuses
    a second configuration for a file one process holds. Only SELECTs are run either way."""
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise
        return duckdb.connect(str(warehouse))


def _audit_tables(con: duckdb.DuckDBPyConnection, names: list[str]) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_name in (select unnest(?))",
        [AUDIT_SCHEMA, names],
    ).fetchall()
    return {r[0] for r in rows}


def _read(con: duckdb.DuckDBPyConnection, name: str, limit: int) -> StoredFailures:
    relation = f'{AUDIT_SCHEMA}."{name}"'
    count = con.execute(f"select count(*) from {relation}").fetchone()
    columns = tuple(
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [AUDIT_SCHEMA, name],
        ).fetchall()
    )
    order = "child_rows desc, 1" if "child_rows" in columns else "all"
    select = ", ".join(f'cast("{c}" as varchar)' for c in columns)
    rows = con.execute(
        f"select {select} from {relation} order by {order} limit {int(limit)}"
    ).fetchall()
    return StoredFailures(
        check_name=name,
        relation=f"{AUDIT_SCHEMA}.{name}",
        count=int(count[0]) if count else 0,
        columns=columns,
        sample=tuple(tuple("null" if v is None else v for v in row) for row in rows),
    )
