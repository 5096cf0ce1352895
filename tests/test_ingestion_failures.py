"""Unreadable files are refused whole, the run goes on, and a crash mid-file leaves nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from ingestion_fixtures import (
    Warehouse,
    csv_text,
    example_row,
    open_warehouse,
    table_path,
    write_csv,
)

from ingestion import loader
from ingestion.contract import TABLES


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _good_accounts(wh: Warehouse, name: str = "good.csv") -> None:
    write_csv(
        wh.landing,
        "accounts",
        name,
        [example_row("accounts", account_id=f"a{i}") for i in range(3)],
    )


def _refusal(wh: Warehouse, name: str) -> str:
    outcome = wh.ingest("accounts")
    by_file = {f.source_file: f for f in outcome.files}
    assert by_file["crm/accounts/good.csv"].outcome == "loaded"  # the run goes on
    refused = by_file[f"crm/accounts/{name}"]
    assert refused.outcome == "refused"
    assert wh.rows(
        "SELECT status, rows_read, rows_loaded, rows_quarantined, message"
        " FROM raw.ingest_manifest WHERE source_file = ?",
        [refused.source_file],
    ) == [("refused", 0, 0, 0, refused.message)]
    assert (
        wh.scalar("SELECT count(*) FROM raw.accounts WHERE _source_file = ?", [refused.source_file])
        == 0
    )
    return refused.message


def test_missing_required_column_refuses_the_file(wh: Warehouse) -> None:
    _good_accounts(wh)
    rows = [example_row("accounts")]
    del rows[0]["segment"]
    write_csv(wh.landing, "accounts", "no_segment.csv", rows)

    message = _refusal(wh, "no_segment.csv")

    assert message.startswith("crm/accounts/no_segment.csv: missing required column(s) segment")
    assert "re-send" in message
    report = json.loads(
        next((wh.validation_dir / "accounts").glob("no_segment.csv-*.json")).read_text()
    )
    assert report["status"] == "refused"
    assert (
        "expect_column_to_exist(segment) [required_column]"
        in (report["expectations"]["failed_expectations"])
    )


def test_zero_byte_file_is_refused(wh: Warehouse) -> None:
    _good_accounts(wh)
    table_path(wh.landing, "accounts", "zero.csv").write_bytes(b"")
    assert "the file is empty (0 bytes)" in _refusal(wh, "zero.csv")


def test_truncated_gzip_is_refused(wh: Warehouse) -> None:
    _good_accounts(wh)
    rows = [example_row("accounts", account_id=f"a{i}", name="x" * 50) for i in range(2000)]
    data = gzip.compress(csv_text(rows).encode())
    table_path(wh.landing, "accounts", "cut.csv.gz").write_bytes(data[: len(data) // 2])

    message = _refusal(wh, "cut.csv.gz")

    assert message.startswith("crm/accounts/cut.csv.gz: cannot be read as CSV")
    assert "gzip" in message.lower()


def test_malformed_csv_line_is_refused_with_its_line_number(wh: Warehouse) -> None:
    _good_accounts(wh)
    text = csv_text([example_row("accounts", account_id=f"a{i}") for i in range(3)])
    lines = text.splitlines()
    lines[2] += ",surplus"
    table_path(wh.landing, "accounts", "bad.csv").write_text("\n".join(lines) + "\n")

    message = _refusal(wh, "bad.csv")

    assert "CSV Error on Line: 3" in message
    assert "Expected Number of Columns: 8 Found: 9" in message


def test_unterminated_quote_and_bad_encoding_are_refused(wh: Warehouse) -> None:
    _good_accounts(wh)
    header = ",".join(example_row("accounts"))
    table_path(wh.landing, "accounts", "quote.csv").write_text(header + '\na1,"never closed\n')
    table_path(wh.landing, "accounts", "latin1.csv").write_bytes(
        (header + "\na1,Caf\xe9,smb,,,,2024-01-01,2024-01-01\n").encode("latin-1")
    )
    outcome = wh.ingest("accounts")
    refused = {f.source_file: f.message for f in outcome.files if f.outcome == "refused"}
    assert "unterminated quote" in refused["crm/accounts/quote.csv"]
    assert "not utf-8" in refused["crm/accounts/latin1.csv"]


def test_unparseable_parquet_and_json_and_unknown_types_are_refused(wh: Warehouse) -> None:
    _good_accounts(wh)
    table_path(wh.landing, "accounts", "junk.parquet").write_text("not parquet at all")
    table_path(wh.landing, "accounts", "junk.jsonl").write_text('{"account_id": "a1"}\n{"acc\n')
    table_path(wh.landing, "accounts", "accounts.xlsx").write_bytes(b"PK\x03\x04")

    outcome = wh.ingest("accounts")

    refused = {f.source_file: f.message for f in outcome.files if f.outcome == "refused"}
    assert set(refused) == {
        "crm/accounts/junk.parquet",
        "crm/accounts/junk.jsonl",
        "crm/accounts/accounts.xlsx",
    }
    assert "cannot be read as PARQUET" in refused["crm/accounts/junk.parquet"]
    assert refused["crm/accounts/junk.jsonl"].startswith(
        "crm/accounts/junk.jsonl: line 2 is not valid JSON"
    )
    assert "unsupported file type" in refused["crm/accounts/accounts.xlsx"]


def test_refused_file_is_retried_without_duplicate_manifest_rows_then_loads_when_fixed(
    wh: Warehouse,
) -> None:
    _good_accounts(wh)
    path = table_path(wh.landing, "accounts", "late.csv")
    path.write_bytes(b"")
    wh.ingest("accounts")
    before = wh.rows("SELECT * FROM raw.ingest_manifest ORDER BY ALL")

    again = wh.ingest("accounts")

    assert [f.outcome for f in again.files] == ["skipped", "refused"]
    assert wh.rows("SELECT * FROM raw.ingest_manifest ORDER BY ALL") == before

    write_csv(wh.landing, "accounts", "late.csv", [example_row("accounts", account_id="z1")])
    fixed = wh.ingest("accounts")
    assert {f.source_file: (f.outcome, f.file_version) for f in fixed.files} == {
        "crm/accounts/good.csv": ("skipped", 1),
        "crm/accounts/late.csv": ("loaded", 2),
    }


def test_crash_after_good_rows_inserted_leaves_nothing_and_rerun_loads_fully(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [example_row("accounts", account_id=f"a{i}") for i in range(1000)]
    rows[10]["segment"] = "bogus"
    write_csv(wh.landing, "accounts", "big.csv", rows)
    real_insert = loader.insert_good_rows
    inserted: list[int] = []

    def insert_then_crash(conn, version):
        inserted.append(real_insert(conn, version))
        # The good rows are in raw.accounts inside the open transaction...
        assert conn.execute("SELECT count(*) FROM raw.accounts").fetchone() == (999,)
        raise RuntimeError("simulated crash before the quarantine and the commit")

    monkeypatch.setattr(loader, "insert_good_rows", insert_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        wh.ingest("accounts")

    assert inserted == [999]
    assert wh.scalar("SELECT count(*) FROM raw.accounts") == 0
    assert wh.scalar("SELECT count(*) FROM raw.quarantine") == 0
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0

    monkeypatch.undo()
    rerun = wh.ingest("accounts")
    assert [(f.outcome, f.rows_loaded, f.rows_quarantined) for f in rerun.files] == [
        ("loaded", 999, 1)
    ]
    assert wh.scalar("SELECT count(*) FROM raw.accounts") == 999


def test_crash_while_recording_the_manifest_also_rolls_back(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(wh.landing, "accounts", "a.csv", [example_row("accounts", segment="bad")])

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(loader.manifest, "record_many", fail)
    with pytest.raises(OSError, match="disk full"):
        wh.ingest("accounts")
    monkeypatch.undo()
    assert wh.scalar("SELECT count(*) FROM raw.quarantine") == 0
    assert wh.ingest("accounts").rows_quarantined == 1


def test_every_raw_table_exists_when_no_file_ever_arrived(wh: Warehouse) -> None:
    for schema in TABLES:
        wh.ingest(schema.name)
    counts = {
        schema.name: wh.scalar(f"SELECT count(*) FROM raw.{schema.name}") for schema in TABLES
    }
    assert counts == {schema.name: 0 for schema in TABLES}
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0
    assert wh.scalar("SELECT count(*) FROM raw.quarantine") == 0


def test_truncated_gzip_lacking_a_required_column_is_refused_not_crashed(wh: Warehouse) -> None:
    _good_accounts(wh)
    rows = [example_row("accounts", account_id=f"a{i}", name="x" * 50) for i in range(2000)]
    for row in rows:
        del row["segment"]
    data = gzip.compress(csv_text(rows).encode())
    table_path(wh.landing, "accounts", "cut.csv.gz").write_bytes(data[: len(data) // 2])
    assert "missing required column(s) segment" in _refusal(wh, "cut.csv.gz")
