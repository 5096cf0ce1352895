"""Small extract files and a warehouse for the ingestion tests (no synthetic generator)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.contract import TableSchema, table
from ingestion.loader import TableOutcome, ingest_table

Row = Mapping[str, Any]


def example_row(table_name: str, **overrides: Any) -> dict[str, Any]:
    """A valid row of a contract table from the contract's example values."""
    schema = table(table_name)
    row: dict[str, Any] = {c.name: c.example for c in schema.columns}
    row.update(overrides)
    return row


def table_path(landing: Path, table_name: str, file_name: str) -> Path:
    schema = table(table_name)
    path = landing / schema.system / schema.name / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def csv_text(rows: Iterable[Row], columns: list[str] | None = None) -> str:
    rows = list(rows)
    header = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in header])
    return out.getvalue()


def write_csv(
    landing: Path,
    table_name: str,
    file_name: str,
    rows: Iterable[Row],
    *,
    columns: list[str] | None = None,
    bom: bool = False,
) -> Path:
    path = table_path(landing, table_name, file_name)
    data = (("\ufeff" if bom else "") + csv_text(rows, columns)).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if file_name.endswith(".gz") else data)
    return path


def write_jsonl(landing: Path, table_name: str, file_name: str, rows: Iterable[Row]) -> Path:
    path = table_path(landing, table_name, file_name)
    data = "".join(json.dumps(dict(r)) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if file_name.endswith(".gz") else data)
    return path


def write_parquet(
    landing: Path, table_name: str, file_name: str, columns: Mapping[str, pa.Array | list]
) -> Path:
    path = table_path(landing, table_name, file_name)
    pq.write_table(pa.table(dict(columns)), path)
    return path


@dataclass
class Warehouse:
    """A landing directory and a DuckDB warehouse in a temporary directory."""

    root: Path
    conn: duckdb.DuckDBPyConnection

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def validation_dir(self) -> Path:
        return self.root / "validation"

    def ingest(self, table_name: str, **kwargs: Any) -> TableOutcome:
        return ingest_table(
            self.conn,
            table(table_name),
            self.landing,
            validation_dir=self.validation_dir,
            **kwargs,
        )

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self.conn.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.conn.execute(sql, params or []).fetchone()
        assert row is not None
        return row[0]

    def snapshot(self, schema: TableSchema) -> dict[str, list[tuple]]:
        """Everything ingestion writes, for before/after comparisons."""
        return {
            "raw": self.rows(f"SELECT * FROM raw.{schema.name} ORDER BY ALL"),
            "manifest": self.rows("SELECT * FROM raw.ingest_manifest ORDER BY ALL"),
            "quarantine": self.rows("SELECT * FROM raw.quarantine ORDER BY ALL"),
        }


def open_warehouse(root: Path) -> Warehouse:
    (root / "landing").mkdir(parents=True, exist_ok=True)
    return Warehouse(root, duckdb.connect(str(root / "warehouse.duckdb")))
