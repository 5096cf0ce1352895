"""Every extract format loads into the same typed raw table, with lineage columns."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from ingestion_fixtures import (
    Warehouse,
    example_row,
    open_warehouse,
    table_path,
    write_csv,
    write_jsonl,
    write_parquet,
)

from ingestion.contract import TABLES, table
from ingestion.landing import discover, file_format


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _account(i: int, **overrides: str) -> dict[str, str]:
    return example_row("accounts", account_id=f"acc_{i}", name=f"Account {i}", **overrides)


@pytest.mark.parametrize("file_name", ["a.csv", "a.csv.gz", "a.jsonl", "a.jsonl.gz", "a.json.gz"])
def test_text_formats_load(wh: Warehouse, file_name: str) -> None:
    rows = [_account(1), _account(2, segment="SMB")]
    writer = write_csv if ".csv" in file_name else write_jsonl
    writer(wh.landing, "accounts", file_name, rows)

    outcome = wh.ingest("accounts")

    assert [f.outcome for f in outcome.files] == ["loaded"]
    assert wh.rows(
        "SELECT account_id, segment, created_at, _source_file, _source_row"
        " FROM raw.accounts ORDER BY _source_row"
    ) == [
        ("acc_1", "enterprise", datetime(2024, 1, 15, 10), f"crm/accounts/{file_name}", 1),
        ("acc_2", "smb", datetime(2024, 1, 15, 10), f"crm/accounts/{file_name}", 2),
    ]


def test_parquet_with_native_types_loads(wh: Warehouse) -> None:
    paris = ZoneInfo("Europe/Paris")
    write_parquet(
        wh.landing,
        "events",
        "2024-06-01.parquet",
        {
            "event_id": ["e1", "e2", "e3"],
            "account_id": ["acc_1"] * 3,
            "user_id": ["u1", "u2", "u3"],
            "event_name": ["login", "dashboard_viewed", "login"],
            "occurred_at": pa.array(
                [
                    datetime(2024, 6, 1, 12, tzinfo=paris),
                    datetime(2024, 6, 1, 13, tzinfo=paris),
                    datetime(2024, 6, 2, tzinfo=paris),
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
            "properties": pa.array(
                [{"source": "web"}, None, {"source": "ios"}],
                pa.struct([("source", pa.string())]),
            ),
        },
    )

    outcome = wh.ingest("events")

    assert outcome.files[0].rows_loaded == 3
    rows = wh.rows(
        "SELECT event_id, occurred_at, properties->>'source', _source_row"
        " FROM raw.events ORDER BY event_id"
    )
    # Europe/Paris is UTC+2 in June: stored as naive UTC.
    assert rows == [
        ("e1", datetime(2024, 6, 1, 10), "web", 1),
        ("e2", datetime(2024, 6, 1, 11), None, 2),
        ("e3", datetime(2024, 6, 1, 22), "ios", 3),
    ]


def test_several_files_of_mixed_formats_per_table(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "2024-01-01.csv", [_account(1), _account(2)])
    write_jsonl(wh.landing, "accounts", "2024-01-02.jsonl.gz", [_account(3)])
    write_csv(wh.landing, "accounts", "backfill/2023.csv.gz", [_account(4)])

    outcome = wh.ingest("accounts")

    assert outcome.files_loaded == 3
    assert wh.rows("SELECT _source_file, count(*) FROM raw.accounts GROUP BY 1 ORDER BY 1") == [
        ("crm/accounts/2024-01-01.csv", 2),
        ("crm/accounts/2024-01-02.jsonl.gz", 1),
        ("crm/accounts/backfill/2023.csv.gz", 1),
    ]


def test_raw_table_shape_is_contract_columns_then_lineage(wh: Warehouse) -> None:
    wh.ingest("subscription_items")
    described = wh.rows(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'raw' AND table_name = 'subscription_items'"
        " ORDER BY ordinal_position"
    )
    schema = table("subscription_items")
    assert described == [
        *((c.name, c.type.duckdb_type) for c in schema.columns),
        ("_source_file", "VARCHAR"),
        ("_source_row", "BIGINT"),
        ("_file_sha256", "VARCHAR"),
        ("_loaded_at", "TIMESTAMP"),
    ]


def test_every_table_loads_its_contract_example_row(wh: Warehouse) -> None:
    for schema in TABLES:
        write_csv(wh.landing, schema.name, "example.csv", [example_row(schema.name)])
        outcome = wh.ingest(schema.name)
        assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 0), outcome.files
    # great-expectations agrees: no expectation fails on the contract's own examples (large
    # tables are validated by the SQL rules alone, so GX reports nothing for them).
    assert wh.rows(
        "SELECT DISTINCT expectations_failed FROM raw.ingest_manifest WHERE table_name <> 'events'"
    ) == [(0,)]
    assert wh.rows(
        "SELECT expectations_failed FROM raw.ingest_manifest WHERE table_name = 'events'"
    ) == [(None,)]


def test_utf8_bom_header_is_tolerated(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "bom.csv", [_account(1)], bom=True)
    outcome = wh.ingest("accounts")
    assert outcome.rows_loaded == 1
    assert wh.scalar("SELECT account_id FROM raw.accounts") == "acc_1"


def test_quoted_newlines_and_commas_inside_a_csv_field(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "nps_responses",
        "nps.csv",
        [
            example_row("nps_responses", response_id="r1", comment='Great,\n"really"\r\ngreat'),
            example_row("nps_responses", response_id="r2", comment="ok"),
        ],
    )
    outcome = wh.ingest("nps_responses")
    assert outcome.rows_loaded == 2
    assert wh.rows(
        "SELECT response_id, comment, _source_row FROM raw.nps_responses ORDER BY 1"
    ) == [
        ("r1", 'Great,\n"really"\r\ngreat', 1),
        ("r2", "ok", 2),
    ]


def test_header_only_csv_is_a_valid_extract_with_no_rows(wh: Warehouse) -> None:
    path = table_path(wh.landing, "plans", "empty.csv")
    path.write_text(",".join(table("plans").column_names) + "\n")

    outcome = wh.ingest("plans")

    assert [(f.outcome, f.rows_read) for f in outcome.files] == [("loaded", 0)]
    assert wh.scalar("SELECT count(*) FROM raw.plans") == 0
    assert wh.scalar("SELECT status FROM raw.ingest_manifest") == "loaded"


def test_table_without_files_gets_an_empty_raw_table(wh: Warehouse) -> None:
    outcome = wh.ingest("invoices")
    assert outcome.files == ()
    assert wh.scalar("SELECT count(*) FROM raw.invoices") == 0


def test_timestamps_with_offsets_become_naive_utc(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "activities",
        "a.csv",
        [
            example_row("activities", activity_id="a1", occurred_at="2024-03-10T09:00:00+02:00"),
            example_row("activities", activity_id="a2", occurred_at="2024-03-10T09:00:00-05:30"),
            example_row("activities", activity_id="a3", occurred_at="2024-03-10T09:00:00Z"),
            example_row("activities", activity_id="a4", occurred_at="2024-03-10 09:00:00"),
            example_row("activities", activity_id="a5", occurred_at="2024-03-10"),
        ],
    )
    wh.conn.execute("SET TimeZone = 'America/New_York'")  # the loader must not depend on it
    wh.ingest("activities")
    assert wh.rows("SELECT activity_id, occurred_at FROM raw.activities ORDER BY 1") == [
        ("a1", datetime(2024, 3, 10, 7)),
        ("a2", datetime(2024, 3, 10, 14, 30)),
        ("a3", datetime(2024, 3, 10, 9)),
        ("a4", datetime(2024, 3, 10, 9)),
        ("a5", datetime(2024, 3, 10)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False)],
)
def test_booleans_parse_from_the_contract_spellings(
    wh: Warehouse, text: str, expected: bool
) -> None:
    write_csv(wh.landing, "contacts", "c.csv", [example_row("contacts", is_active=text)])
    wh.ingest("contacts")
    assert wh.scalar("SELECT is_active FROM raw.contacts") is expected


def test_typed_values_money_dates_json(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "subscription_items",
        "i.csv",
        [example_row("subscription_items", unit_amount="1200.50", discount_percent="12.5")],
    )
    write_jsonl(
        wh.landing,
        "events",
        "e.jsonl",
        [example_row("events", properties={"source": "web", "n": 2})],
    )
    wh.ingest("subscription_items")
    wh.ingest("events")
    assert wh.rows(
        "SELECT unit_amount, discount_percent, currency FROM raw.subscription_items"
    ) == [(Decimal("1200.5000"), Decimal("12.5000"), "USD")]
    assert json.loads(wh.scalar("SELECT properties FROM raw.events")) == {"source": "web", "n": 2}
    write_csv(wh.landing, "fx_rates", "fx.csv", [example_row("fx_rates", currency="eur")])
    wh.ingest("fx_rates")
    assert wh.rows("SELECT currency, month FROM raw.fx_rates") == [("EUR", date(2024, 2, 1))]


def test_extra_columns_ignored_and_missing_optional_columns_null(wh: Warehouse) -> None:
    row = _account(1, legacy_code="X9")
    del row["industry"]
    write_csv(wh.landing, "accounts", "a.csv", [row])

    outcome = wh.ingest("accounts")

    assert outcome.rows_loaded == 1
    assert "ignored non-contract columns: legacy_code" in outcome.files[0].message
    assert "loaded as null: industry" in outcome.files[0].message
    assert wh.scalar("SELECT industry FROM raw.accounts") is None


def test_header_names_match_case_insensitively(wh: Warehouse) -> None:
    row = {k.upper(): v for k, v in _account(1).items()}
    write_csv(wh.landing, "accounts", "a.csv", [row])
    assert wh.ingest("accounts").rows_loaded == 1


def test_discovery_ignores_hidden_and_marker_files(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "a.csv", [_account(1)])
    table_path(wh.landing, "accounts", ".a.csv.swp").write_text("x")
    table_path(wh.landing, "accounts", "_SUCCESS").write_text("")
    found = discover(wh.landing, table("accounts"))
    assert [f.relative for f in found] == ["crm/accounts/a.csv"]
    assert file_format("X.JSON.GZ") == "json"
    assert file_format("x.xlsx") is None
