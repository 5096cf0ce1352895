"""Row-level rules quarantine bad rows; the GX suite mirrors the contract; reports are written."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from ingestion_fixtures import Warehouse, example_row, open_warehouse, write_csv, write_jsonl

from ingestion.contract import TABLES, table
from ingestion.expectations import build_suite
from ingestion.landing import discover
from ingestion.readers import open_source
from ingestion.rules import checked_rows_sql


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _quarantine(wh: Warehouse) -> list[tuple]:
    return wh.rows(
        "SELECT source_row, rule, column_name, reason FROM raw.quarantine ORDER BY source_row, rule"
    )


def test_wrong_type_is_quarantined_with_rule_and_column(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "subscription_items",
        "items.csv",
        [
            example_row("subscription_items", item_id="si_1"),
            example_row("subscription_items", item_id="si_2", quantity="ten"),
            example_row("subscription_items", item_id="si_3", valid_from="last tuesday"),
            example_row("subscription_items", item_id="si_4", quantity="2.5"),
        ],
    )

    outcome = wh.ingest("subscription_items")

    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 3)
    assert _quarantine(wh) == [
        (2, "type", "quantity", "'ten' is not a whole number"),
        (
            3,
            "type",
            "valid_from",
            "'last tuesday' is not an ISO 8601 date or timestamp"
            " (YYYY-MM-DD[THH:MM:SS[.fff][Z|±HH:MM]]) or epoch seconds/ms/µs/ns",
        ),
        (4, "type", "quantity", "'2.5' is not a whole number"),
    ]
    assert wh.scalar("SELECT item_id FROM raw.subscription_items") == "si_1"


def test_quarantine_keeps_the_original_text_as_json(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "accounts",
        "a.csv",
        [example_row("accounts", segment="Gold", created_at="2024-01-15T10:00:00+01:00")],
    )
    wh.ingest("accounts")
    raw_values, loaded_at, sha = wh.rows(
        "SELECT raw_values, loaded_at, file_sha256 FROM raw.quarantine"
    )[0]
    assert json.loads(raw_values)["segment"] == "Gold"
    assert json.loads(raw_values)["created_at"] == "2024-01-15T10:00:00+01:00"
    assert loaded_at is not None
    assert sha == wh.scalar("SELECT file_sha256 FROM raw.ingest_manifest")


def test_bad_enum_is_quarantined_and_good_enums_are_lower_cased(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "support_tickets",
        "t.csv",
        [
            example_row("support_tickets", ticket_id="t1", severity="HIGH", status="Open"),
            example_row("support_tickets", ticket_id="t2", severity="urgent"),
        ],
    )
    wh.ingest("support_tickets")
    assert wh.rows("SELECT ticket_id, severity, status FROM raw.support_tickets") == [
        ("t1", "high", "open")
    ]
    assert _quarantine(wh) == [
        (2, "accepted_values", "severity", "'urgent' is not one of: low, normal, high, critical")
    ]


def test_duplicate_key_within_a_file_keeps_the_latest_valid_row(wh: Warehouse) -> None:
    """Equal ``updated_at`` (the example rows share one): the later valid row of the file wins,
    as staging's tie-break does across files (the updated_at cases: test_ingestion_semantics)."""
    write_csv(
        wh.landing,
        "users",
        "u.csv",
        [
            example_row("users", user_id="u1", role="admin"),
            example_row("users", user_id="u1", role="viewer"),
            example_row("users", user_id="u1", role="bogus"),  # invalid: never the kept row
            example_row("users", user_id="u2"),
        ],
    )
    outcome = wh.ingest("users")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (4, 2, 2)
    assert wh.rows("SELECT user_id, role, _source_row FROM raw.users ORDER BY 1") == [
        ("u1", "viewer", 2),
        ("u2", "admin", 4),
    ]
    assert _quarantine(wh) == [
        (
            1,
            "duplicate_key_in_file",
            "user_id",
            "key user_id=u1 appears again at row 2 of this file with the same updated_at"
            " 2025-03-01 09:30:00; of equal versions the later row is kept",
        ),
        (3, "accepted_values", "role", "'bogus' is not one of: admin, member, viewer"),
    ]


def test_compound_key_duplicates(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "fx_rates",
        "fx.csv",
        [
            example_row("fx_rates", currency="EUR", month="2024-01-01"),
            example_row("fx_rates", currency="EUR", month="2024-02-01"),
            example_row("fx_rates", currency="eur", month="2024-01-01"),
        ],
    )
    wh.ingest("fx_rates")
    assert [r[:3] for r in _quarantine(wh)] == [(3, "duplicate_key_in_file", "currency, month")]


def test_required_currency_range_and_row_rules(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "nps_responses",
        "n.csv",
        [
            example_row("nps_responses", response_id="n1", score="11"),
            example_row("nps_responses", response_id="n2", score="-1"),
            example_row("nps_responses", response_id="n3", account_id=""),
            example_row("nps_responses", response_id="n4", score="10"),
        ],
    )
    write_csv(
        wh.landing,
        "subscriptions",
        "s.csv",
        [
            example_row(
                "subscriptions",
                subscription_id="s1",
                started_at="2024-02-01T00:00:00Z",
                trial_end="",
                ended_at="2024-01-01T00:00:00Z",
            )
        ],
    )
    write_csv(wh.landing, "customers", "c.csv", [example_row("customers", currency="usdollar")])
    wh.ingest("nps_responses")
    wh.ingest("subscriptions")
    wh.ingest("customers")
    assert wh.rows(
        "SELECT table_name, source_row, rule, column_name FROM raw.quarantine ORDER BY ALL"
    ) == [
        ("customers", 1, "currency", "currency"),
        ("nps_responses", 1, "max_value", "score"),
        ("nps_responses", 2, "min_value", "score"),
        ("nps_responses", 3, "required", "account_id"),
        ("subscriptions", 1, "ended_not_before_started", "started_at, ended_at"),
    ]
    reason = wh.scalar("SELECT reason FROM raw.quarantine WHERE table_name = 'subscriptions'")
    assert reason == (
        "expected ended_at is on or after started_at"
        " (started_at=2024-02-01 00:00:00, ended_at=2024-01-01 00:00:00)"
    )


def test_bad_json_properties_are_quarantined(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "events",
        "e.csv",
        [
            example_row("events", event_id="e1", properties='{"a": 1}'),
            example_row("events", event_id="e2", properties="[1, 2]"),
            example_row("events", event_id="e3", properties="{not json"),
            example_row("events", event_id="e4", properties=""),
        ],
    )
    outcome = wh.ingest("events")
    assert outcome.rows_loaded == 2
    assert [r[:3] for r in _quarantine(wh)] == [
        (2, "type", "properties"),
        (3, "type", "properties"),
    ]


def test_one_row_breaking_several_rules_is_counted_once(wh: Warehouse) -> None:
    write_csv(
        wh.landing, "accounts", "a.csv", [example_row("accounts", segment="x", created_at="y")]
    )
    outcome = wh.ingest("accounts")
    assert (outcome.rows_read, outcome.rows_quarantined) == (1, 1)
    assert wh.scalar("SELECT count(*) FROM raw.quarantine") == 2


@pytest.mark.parametrize("schema", TABLES, ids=lambda t: t.asset_path)
def test_rules_sql_compiles_for_every_table(tmp_path: Path, schema) -> None:
    wh = open_warehouse(tmp_path)
    write_csv(wh.landing, schema.name, "x.csv", [example_row(schema.name)])
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    source = open_source(conn, discover(wh.landing, schema)[0])
    rows = conn.execute(
        f"SELECT _violations, _repeated FROM ({checked_rows_sql(schema, source)})"
    ).fetchall()
    assert rows == [([], False)]  # no violations for the contract's own example


def _expectations(schema_name: str) -> set[tuple]:
    suite = build_suite(table(schema_name))
    found = set()
    for e in suite.expectations:
        config = e.configuration
        kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "row_condition"}}
        column = kwargs.pop("column", None) or tuple(kwargs.pop("column_list", ()))
        found.add(
            (config.type, column, e.meta["contract_rule"], json.dumps(kwargs, sort_keys=True))
        )
    return found


def test_gx_suite_is_generated_from_the_contract() -> None:
    nps = _expectations("nps_responses")
    assert ("expect_column_to_exist", "response_id", "required_column", "{}") in nps
    assert ("expect_column_values_to_not_be_null", "score", "required", "{}") in nps
    assert ("expect_column_values_to_not_be_null", "score", "type", "{}") in nps
    assert (
        "expect_column_values_to_be_between",
        "score",
        "range",
        '{"max_value": 10.0, "min_value": 0.0}',
    ) in nps
    assert ("expect_column_values_to_be_unique", "response_id", "unique_key", "{}") in nps
    assert not any(e[1] == "contact_id" and e[2] == "required" for e in nps)  # optional

    items = _expectations("subscription_items")
    assert (
        "expect_compound_columns_to_be_unique",
        ("item_id", "valid_from"),
        "unique_key",
        "{}",
    ) in items
    assert any(
        e[0] == "expect_column_values_to_be_in_set"
        and e[1] == "rule__valid_from_before_valid_to"
        and e[3] == '{"value_set": [true]}'
        for e in items
    )
    assert any(e[1] == "quantity" and e[0] == "expect_column_values_to_be_between" for e in items)
    assert any(e[1] == "currency" and e[2] == "currency" for e in items)
    accounts = _expectations("accounts")
    assert (
        "expect_column_values_to_be_in_set",
        "segment",
        "accepted_values",
        '{"value_set": ["enterprise", "mid_market", "smb"]}',
    ) in accounts


def test_validation_report_says_what_failed_and_where(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "nps_responses",
        "n.csv",
        [
            example_row("nps_responses", response_id="n1"),
            example_row("nps_responses", response_id="n2", score="12"),
        ],
    )
    outcome = wh.ingest("nps_responses")
    report_file = Path(outcome.files[0].validation_report or "")
    assert report_file.parent == wh.validation_dir / "nps_responses"
    assert report_file.name.startswith("n.csv-")
    report = json.loads(report_file.read_text())
    assert report["status"] == "loaded"
    assert report["rows_quarantined"] == 1
    assert report["quarantine_by_rule"] == {"max_value(score)": 1}
    assert report["expectations"]["failed_expectations"] == [
        "expect_column_values_to_be_between(score) [range]"
    ]
    failed = next(r for r in report["expectations"]["result"]["results"] if not r["success"])
    assert failed["result"]["partial_unexpected_index_list"] == [{"score": 12, "_source_row": 2}]
    assert wh.scalar("SELECT expectations_failed FROM raw.ingest_manifest") == 1


def test_small_event_files_are_validated_by_gx_on_a_bounded_sample(wh: Warehouse) -> None:
    rows = [example_row("nps_responses", response_id=f"r{i}") for i in range(50)]
    rows.append(example_row("nps_responses", response_id="late", responded_at="never"))
    write_jsonl(wh.landing, "nps_responses", "n.jsonl", rows)

    outcome = wh.ingest("nps_responses", event_sample_rows=10)

    report = json.loads(Path(outcome.files[0].validation_report or "").read_text())
    assert report["expectations"]["rows_validated"] == 10
    assert "first 10 rows" in report["expectations"]["note"]
    assert report["expectations"]["success"] is True  # the bad row is beyond the sample...
    assert outcome.rows_quarantined == 1  # ...but the SQL rules checked every row


def test_the_large_events_table_is_validated_by_the_sql_rules_alone(wh: Warehouse) -> None:
    rows = [example_row("events", event_id=f"e{i}") for i in range(5)]
    rows.append(example_row("events", event_id="bad", occurred_at="never"))
    write_jsonl(wh.landing, "events", "e.jsonl", rows)

    outcome = wh.ingest("events")

    report = json.loads(Path(outcome.files[0].validation_report or "").read_text())
    assert report["expectations"] is None
    assert "SQL rules on every row" in report["expectations_note"]
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (5, 1)
