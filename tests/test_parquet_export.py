"""The raw layer exported as Parquet for Spark (ingestion/parquet_export.py): every row of every
raw table, in the lake's layout, JSON as text; an empty table keeps its columns; the events lake
is read where it is, never copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import create_raw_warehouse, ts

from ingestion.contract import TABLES
from ingestion.lake import PARTITION_COLUMN, table_dir
from ingestion.parquet_export import EMPTY_FILE, ENTITY_FILE, export_raw_tables

ROWS: dict[str, list[dict[str, Any]]] = {
    "accounts": [
        {"account_id": "acc_a", "name": "A, Inc.", "segment": "smb"},
        {"account_id": "acc_b", "name": "B 'quoted'", "segment": "enterprise"},
    ],
    "events": [
        {
            "event_id": "e1",
            "account_id": "acc_a",
            "user_id": "u1",
            "event_name": "login",
            "occurred_at": ts("2024-06-01 23:59:59"),
            "properties": '{"plan": "pro", "n": 2}',
        },
        {
            "event_id": "e2",
            "account_id": "acc_b",
            "user_id": "u2",
            "event_name": "export",
            "occurred_at": ts("2024-06-02 00:00:00"),
            "properties": None,
        },
    ],
    "fx_rates": [{"currency": "EUR", "month": ts("2024-06-01"), "rate_to_usd": "1.07250000"}],
}


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(path, ROWS)
    return path


def _as_text(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The relation with JSON columns as text, as the export writes them."""
    described = con.execute(f"describe select * from {relation}").fetchall()
    columns = [
        f'cast("{name}" as varchar) as "{name}"' if type_ == "JSON" else f'"{name}"'
        for name, type_, *_ in described
    ]
    return f"select {', '.join(columns)} from {relation}"


def test_every_raw_table_is_exported_row_for_row(warehouse: Path) -> None:
    lake = warehouse.parent / "lake"
    with duckdb.connect(str(warehouse)) as con:
        exported = export_raw_tables(con, lake)
        assert [e.table for e in exported] == [t.asset_path for t in TABLES]
        assert all(e.written for e in exported)
        for schema in TABLES:
            folder = table_dir(lake, schema)
            if schema.lake:
                parquet = (
                    f"read_parquet('{folder}/*/*.parquet', hive_partitioning = true,"
                    f" hive_types = {{'{PARTITION_COLUMN}': DATE}})"
                )
                raw = (
                    f"select *, cast(occurred_at as date) as {PARTITION_COLUMN}"
                    f" from ({_as_text(con, f'raw.{schema.name}')})"
                )
            else:
                parquet = f"read_parquet('{folder / ENTITY_FILE}')"
                raw = _as_text(con, f"raw.{schema.name}")
            count = con.execute(f"select count(*) from raw.{schema.name}").fetchone()
            assert count is not None and count[0] == len(ROWS.get(schema.name, []))
            parquet = f"select * from {parquet}"
            for left, right in ((raw, parquet), (parquet, raw)):
                extra = con.execute(f"{left} except all select * from ({right})").fetchall()
                assert extra == [], f"{schema.asset_path}: {extra}"
        # JSON is text (Spark has no JSON type)
        properties = con.execute(
            f"select typeof(properties) from '{lake}/product/events/*/*.parquet' limit 1"
        ).fetchone()
        assert properties == ("VARCHAR",)
    # the events are one partition per UTC date of occurred_at
    events = lake / "product" / "events"
    assert sorted(p.name for p in events.iterdir()) == [
        "event_date=2024-06-01",
        "event_date=2024-06-02",
    ]


def test_an_empty_table_keeps_its_columns(warehouse: Path) -> None:
    lake = warehouse.parent / "lake"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw.events")
        export_raw_tables(con, lake)
        for name, folder in (("contacts", lake / "crm" / "contacts" / ENTITY_FILE),):
            columns = con.execute(f"describe select * from '{folder}'").fetchall()
            assert [c[0] for c in columns] == [
                c[0] for c in con.execute(f"describe raw.{name}").fetchall()
            ]
            assert con.execute(f"select count(*) from '{folder}'").fetchone() == (0,)
        events = lake / "product" / "events"
        assert [p.name for p in events.iterdir()] == [EMPTY_FILE]
        described = con.execute(f"describe select * from '{events / EMPTY_FILE}'").fetchall()
        columns = [c[0] for c in described]
        assert "event_id" in columns and PARTITION_COLUMN not in columns


def test_a_second_export_replaces_the_first(warehouse: Path) -> None:
    lake = warehouse.parent / "lake"
    with duckdb.connect(str(warehouse)) as con:
        export_raw_tables(con, lake)
        con.execute("delete from raw.accounts where account_id = 'acc_b'")
        con.execute("delete from raw.events where event_id = 'e2'")
        export_raw_tables(con, lake)
        accounts = lake / "crm" / "accounts"
        assert [p.name for p in accounts.iterdir()] == [ENTITY_FILE]  # no partial file left
        assert con.execute(f"select account_id from '{accounts / ENTITY_FILE}'").fetchall() == [
            ("acc_a",)
        ]
        assert [p.name for p in (lake / "product" / "events").iterdir()] == [
            "event_date=2024-06-01"
        ]


def test_the_events_lake_is_read_where_it_is(warehouse: Path) -> None:
    """raw.events a view over the lake: nothing is written but the empty file while the lake has
    no file, and that one goes once it has."""
    lake = warehouse.parent / "lake"
    events = lake / "product" / "events"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table raw.events_rows as select * from raw.events")
        con.execute("drop table raw.events")
        con.execute("create view raw.events as select * from raw.events_rows where false")
        exported = {e.table: e for e in export_raw_tables(con, lake)}
        assert exported["product/events"].written
        assert [p.name for p in events.iterdir()] == [EMPTY_FILE]

        partition = events / "event_date=2024-06-01"
        partition.mkdir()
        con.execute(f"copy raw.events_rows to '{partition / 'part-1.parquet'}' (format parquet)")
        con.execute("create or replace view raw.events as select * from raw.events_rows")
        exported = {e.table: e for e in export_raw_tables(con, lake)}
        assert not exported["product/events"].written
        assert exported["product/events"].rows == 2
        assert [p.name for p in events.iterdir()] == ["event_date=2024-06-01"]
        assert [p.name for p in partition.iterdir()] == ["part-1.parquet"]


def test_a_warehouse_without_ingestion_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw")
        with pytest.raises(LookupError, match=r"raw\.accounts.*csw ingest"):
            export_raw_tables(con, tmp_path / "lake")
    assert not (tmp_path / "lake").exists()
