import re
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import (
    ISO_4217_CURRENCIES,
    SYSTEMS,
    TABLES,
    ColumnType,
    table,
)
from ingestion.contract_doc import render_contract

SHARED_CONTRACT = Path(__file__).resolve().parents[1].parent / "shared" / "extract-contract.md"

EXPECTED_TABLES = {
    "crm": {
        "accounts",
        "contacts",
        "opportunities",
        "activities",
        "support_tickets",
        "nps_responses",
    },
    "product": {"users", "events"},
    "billing": {
        "customers",
        "plans",
        "subscriptions",
        "subscription_items",
        "invoices",
        "fx_rates",
    },
}


def test_contract_has_the_fourteen_tables_by_system() -> None:
    assert {s: {t.name for t in TABLES if t.system == s} for s in SYSTEMS} == EXPECTED_TABLES


def test_every_key_column_exists_and_is_required() -> None:
    for schema in TABLES:
        for key in schema.key:
            assert schema.column(key).required, f"{schema.asset_path}.{key} is a key"


def test_entity_tables_carry_updated_at_and_event_tables_do_not_need_it() -> None:
    for schema in TABLES:
        if schema.kind == "entity":
            assert schema.version_column == "updated_at", schema.asset_path


def test_money_is_never_a_float() -> None:
    money = [
        c
        for t in TABLES
        for c in t.columns
        if c.name in {"amount", "unit_amount", "amount_due", "amount_paid"}
    ]
    assert money and all(c.type is ColumnType.MONEY for c in money)
    assert (
        "DOUBLE" not in ColumnType.MONEY.duckdb_type and "FLOAT" not in ColumnType.MONEY.duckdb_type
    )


def test_every_column_type_is_a_valid_duckdb_type() -> None:
    con = duckdb.connect()
    for t in ColumnType:
        con.execute(f"SELECT CAST(NULL AS {t.duckdb_type})")


def test_row_rules_are_valid_sql_over_the_table_columns() -> None:
    con = duckdb.connect()
    for schema in TABLES:
        cols = ", ".join(f"CAST(NULL AS {c.type.duckdb_type}) AS {c.name}" for c in schema.columns)
        for rule in schema.row_rules:
            con.execute(f"SELECT ({rule.predicate_sql}) FROM (SELECT {cols})")


def test_lookup_by_path_or_name_and_a_helpful_error() -> None:
    assert table("billing/fx_rates") is table("fx_rates")
    with pytest.raises(KeyError, match="the contract has: billing/customers"):
        table("crm/deals")


def test_currencies_include_the_ones_we_bill_in() -> None:
    assert {"USD", "EUR", "GBP"} <= ISO_4217_CURRENCIES
    assert "XYZ" not in ISO_4217_CURRENCIES


@pytest.mark.skipif(not SHARED_CONTRACT.exists(), reason="shared/ is not beside the checkout")
def test_code_keeps_every_column_of_the_shared_contract() -> None:
    """Columns may be added, never renamed or dropped: every contract column must be in code."""
    text = SHARED_CONTRACT.read_text()
    for schema in TABLES:
        row = next(line for line in text.splitlines() if line.startswith(f"| {schema.name} |"))
        listed = row.split("|")[3]
        for name, note in re.findall(r"(\w+)(?: \(([^)]*)\))?", listed):
            assert name in schema.column_names, f"{schema.asset_path} lost contract column {name}"
            enum = tuple(re.findall(r"`([a-z_]+)`", note))
            if len(enum) > 1:
                assert schema.column(name).accepted_values == enum, f"{schema.asset_path}.{name}"


def test_committed_contract_page_matches_the_code() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "extract-contract.md"
    assert page.read_text() == render_contract(), (
        "docs/extract-contract.md is stale: run `python -m ingestion.contract_doc > docs/extract-contract.md`"
    )
