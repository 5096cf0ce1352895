"""Contract semantics that hold for every format: the latest ``updated_at`` wins inside a file,
headers and keys match the contract the same way, keys are trimmed and blank keys quarantined,
an unreadable file is refused by name while its table loads, and errors name the right line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingestion_fixtures import (
    Warehouse,
    csv_text,
    example_row,
    open_warehouse,
    table_path,
    write_csv,
    write_jsonl,
    write_parquet,
)

from ingestion import loader

_T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z in microseconds


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _write(wh: Warehouse, table_name: str, fmt: str, rows: list[dict[str, Any]]) -> str:
    """The rows as one file of the given format; returns its landing-relative path."""
    name = f"f.{fmt}"
    if fmt in ("csv", "csv.gz"):
        path = write_csv(wh.landing, table_name, name, rows)
    elif fmt in ("jsonl", "jsonl.gz"):
        path = write_jsonl(wh.landing, table_name, name, rows)
    else:
        columns = {c: [r.get(c) for r in rows] for c in rows[0]}
        path = write_parquet(wh.landing, table_name, name, columns)
    return path.relative_to(wh.landing).as_posix()


def _quarantine(wh: Warehouse) -> list[tuple]:
    return wh.rows(
        "SELECT source_row, rule, column_name, reason FROM raw.quarantine ORDER BY source_row, rule"
    )


def _manifest_counts(wh: Warehouse) -> list[tuple]:
    return wh.rows(
        "SELECT source_file, status, rows_read, rows_loaded, rows_quarantined"
        " FROM raw.ingest_manifest ORDER BY source_file"
    )


# --- 1. the latest updated_at wins inside a file -------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_latest_updated_at_wins_inside_a_file(wh: Warehouse, fmt: str) -> None:
    rows = [
        example_row("accounts", account_id="a1", name="newest", updated_at="2025-03-03T00:00:00Z"),
        example_row("accounts", account_id="a1", name="oldest", updated_at="2025-03-01T00:00:00Z"),
        example_row("accounts", account_id="a2", name="only"),
        example_row("accounts", account_id="a1", name="middle", updated_at="2025-03-02T00:00:00Z"),
    ]
    _write(wh, "accounts", fmt, rows)

    outcome = wh.ingest("accounts")

    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (4, 2, 2)
    assert wh.rows("SELECT account_id, name, _source_row FROM raw.accounts ORDER BY 1") == [
        ("a1", "newest", 1),
        ("a2", "only", 3),
    ]
    quarantine = _quarantine(wh)
    assert [(r[0], r[1], r[2]) for r in quarantine] == [
        (2, "duplicate_key_in_file", "account_id"),
        (4, "duplicate_key_in_file", "account_id"),
    ]
    assert quarantine[0][3] == (
        "key account_id=a1 has a newer version at row 1 of this file"
        " (updated_at 2025-03-03 00:00:00 there, 2025-03-01 00:00:00 here);"
        " the row with the latest updated_at is kept"
    )
    assert "row 1 of this file" in quarantine[1][3]
    assert "2025-03-02 00:00:00 here" in quarantine[1][3]
    assert _manifest_counts(wh) == [(f"crm/accounts/f.{fmt}", "loaded", 4, 2, 2)]


def test_equal_updated_at_keeps_the_later_row_of_the_file(wh: Warehouse) -> None:
    stamp = "2025-03-01T00:00:00Z"
    write_csv(
        wh.landing,
        "users",
        "u.csv",
        [
            example_row("users", user_id="u1", role="admin", updated_at=stamp),
            example_row("users", user_id="u1", role="viewer", updated_at=stamp),
        ],
    )
    wh.ingest("users")
    assert wh.rows("SELECT user_id, role, _source_row FROM raw.users") == [("u1", "viewer", 2)]
    assert [r[:2] for r in _quarantine(wh)] == [(1, "duplicate_key_in_file")]
    assert "row 2 of this file" in _quarantine(wh)[0][3]


def test_an_invalid_newer_row_does_not_hide_the_valid_older_one(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "users",
        "u.csv",
        [
            example_row("users", user_id="u1", role="admin", updated_at="2025-01-01T00:00:00Z"),
            example_row("users", user_id="u1", role="bogus", updated_at="2025-06-01T00:00:00Z"),
        ],
    )
    wh.ingest("users")
    assert wh.rows("SELECT user_id, role FROM raw.users") == [("u1", "admin")]
    assert [r[:2] for r in _quarantine(wh)] == [(2, "accepted_values")]


def test_compound_key_versions_keep_the_latest_updated_at(wh: Warehouse) -> None:
    base = {"item_id": "si_1", "valid_from": "2024-01-01T00:00:00Z"}
    write_csv(
        wh.landing,
        "subscription_items",
        "si.csv",
        [
            example_row("subscription_items", **base, quantity="5", updated_at="2025-02-01"),
            example_row("subscription_items", **base, quantity="9", updated_at="2025-01-01"),
        ],
    )
    wh.ingest("subscription_items")
    assert wh.rows("SELECT item_id, quantity FROM raw.subscription_items") == [("si_1", 5)]
    assert [r[:3] for r in _quarantine(wh)] == [(2, "duplicate_key_in_file", "item_id, valid_from")]


def test_event_tables_keep_the_first_row_of_a_repeated_key(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "nps_responses",
        "n.csv",
        [
            example_row("nps_responses", response_id="r1", score="9"),
            example_row("nps_responses", response_id="r1", score="3"),
        ],
    )
    wh.ingest("nps_responses")
    assert wh.rows("SELECT response_id, score FROM raw.nps_responses") == [("r1", 9)]
    quarantine = _quarantine(wh)
    assert [r[:2] for r in quarantine] == [(2, "duplicate_key_in_file")]
    assert quarantine[0][3] == (
        "key response_id=r1 already appears at row 1 of this file; the first valid row is kept"
    )


# --- 2. headers and keys match the contract the same way in every format ---------------------


def _odd_case_account(account_id: str = "a1") -> dict[str, Any]:
    row = example_row("accounts", account_id=account_id)
    return {
        f" {k.upper()} " if k in ("account_id", "name") else k.title(): v for k, v in row.items()
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "jsonl.gz", "parquet"])
def test_column_names_match_trimmed_and_case_insensitively_in_every_format(
    wh: Warehouse, fmt: str
) -> None:
    _write(wh, "accounts", fmt, [_odd_case_account("a1"), _odd_case_account("a2")])
    outcome = wh.ingest("accounts")
    assert outcome.files[0].outcome == "loaded", outcome.files[0].message
    assert wh.rows("SELECT account_id, name, segment FROM raw.accounts ORDER BY 1") == [
        ("a1", "Northwind Ltd", "enterprise"),
        ("a2", "Northwind Ltd", "enterprise"),
    ]


def test_jsonl_keys_that_mean_the_same_column_refuse_the_file(wh: Warehouse) -> None:
    good = example_row("accounts", account_id="a1")
    other = {("Account_ID" if k == "account_id" else k): v for k, v in good.items()}
    write_jsonl(wh.landing, "accounts", "twice.jsonl", [good, other])
    outcome = wh.ingest("accounts")
    (refused,) = outcome.files
    assert refused.outcome == "refused"
    assert refused.message.startswith("crm/accounts/twice.jsonl: ")
    assert "'account_id' and 'Account_ID'" in refused.message
    assert "column account_id" in refused.message


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_columns_that_mean_the_same_contract_column_refuse_the_file(
    wh: Warehouse, fmt: str
) -> None:
    row = {**example_row("accounts"), "SEGMENT ": "smb"}
    source_file = _write(wh, "accounts", fmt, [row])
    (refused,) = wh.ingest("accounts").files
    assert refused.outcome == "refused"
    assert refused.message.startswith(f"{source_file}: ")
    assert "'segment' and 'SEGMENT '" in refused.message


# --- 3. keys are trimmed, blank keys quarantined -----------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_key_values_are_trimmed_and_blank_keys_quarantined(wh: Warehouse, fmt: str) -> None:
    rows = [
        example_row("accounts", account_id=" a1 ", updated_at="2025-01-01T00:00:00Z"),
        example_row("accounts", account_id="   "),
        example_row("accounts", account_id="a1", updated_at="2025-02-01T00:00:00Z"),
        example_row("accounts", account_id="\ta2"),
    ]
    _write(wh, "accounts", fmt, rows)
    outcome = wh.ingest("accounts")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (4, 2, 2)
    assert wh.rows("SELECT account_id, _source_row FROM raw.accounts ORDER BY 1") == [
        ("a1", 3),
        ("a2", 4),
    ]
    assert [r[:3] for r in _quarantine(wh)] == [
        (1, "duplicate_key_in_file", "account_id"),
        (2, "required", "account_id"),
    ]


def test_blank_key_of_an_event_table_is_quarantined(wh: Warehouse) -> None:
    write_parquet(
        wh.landing,
        "events",
        "e.parquet",
        {
            "event_id": ["e1", " ", " e2"],
            "account_id": ["acc_1"] * 3,
            "user_id": ["u1"] * 3,
            "event_name": ["x"] * 3,
            "occurred_at": pa.array([_T0] * 3, pa.timestamp("us", tz="UTC")),
        },
    )
    wh.ingest("events")
    assert wh.rows("SELECT event_id FROM raw.events ORDER BY 1") == [("e1",), ("e2",)]
    assert [r[:3] for r in _quarantine(wh)] == [(2, "required", "event_id")]


# --- 4. an unreadable file is refused by name; the rest of its table loads -------------------


def _event_columns(ids: list[str]) -> dict[str, Any]:
    n = len(ids)
    return {
        "event_id": ids,
        "account_id": ["acc_1"] * n,
        "user_id": ["u1"] * n,
        "event_name": ["report_viewed"] * n,
        "occurred_at": pa.array([_T0 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
        "properties": ['{"client": "web"}'] * n,
    }


def _corrupt_page_header(path: Path, column: int = 0) -> None:
    """Overwrite the first page header of a column chunk: the footer and schema still read,
    the data does not (DuckDB raises a bare ``duckdb.Error``, "invalid TType")."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 40] = b"Z" * 40
    path.write_bytes(bytes(data))


def test_a_corrupt_parquet_page_in_a_batch_is_refused_by_name(wh: Warehouse) -> None:
    write_parquet(wh.landing, "events", "d1.parquet", _event_columns(["e1", "e2"]))
    bad = write_parquet(wh.landing, "events", "d2.parquet", _event_columns(["c1", "c2", "c3"]))
    _corrupt_page_header(bad)
    write_parquet(wh.landing, "events", "d3.parquet", _event_columns(["e3"]))

    outcome = wh.ingest("events")

    assert [(f.source_file, f.outcome, f.rows_loaded) for f in outcome.files] == [
        ("product/events/d1.parquet", "loaded", 2),
        ("product/events/d2.parquet", "refused", 0),
        ("product/events/d3.parquet", "loaded", 1),
    ]
    assert outcome.files[1].message.startswith(
        "product/events/d2.parquet: cannot be read as PARQUET"
    )
    assert wh.scalar("SELECT count(*) FROM raw.events") == 3
    assert _manifest_counts(wh)[1] == ("product/events/d2.parquet", "refused", 0, 0, 0)


def test_a_corrupt_parquet_page_of_an_entity_file_is_refused_by_name(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "good.csv", [example_row("accounts", account_id="a1")])
    rows = [example_row("accounts", account_id=f"b{i}") for i in range(50)]
    bad = write_parquet(
        wh.landing, "accounts", "bad.parquet", {c: [r[c] for r in rows] for c in rows[0]}
    )
    _corrupt_page_header(bad, column=1)

    outcome = wh.ingest("accounts")

    by_file = {f.source_file: f for f in outcome.files}
    assert by_file["crm/accounts/good.csv"].outcome == "loaded"
    assert by_file["crm/accounts/bad.parquet"].outcome == "refused"
    assert "crm/accounts/bad.parquet: cannot be read as PARQUET" in (
        by_file["crm/accounts/bad.parquet"].message
    )
    assert wh.rows("SELECT account_id FROM raw.accounts") == [("a1",)]


def test_a_truncated_parquet_file_is_refused_by_name(wh: Warehouse) -> None:
    write_parquet(wh.landing, "events", "d1.parquet", _event_columns(["e1"]))
    cut = write_parquet(wh.landing, "events", "d2.parquet", _event_columns(["c1", "c2"]))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])

    outcome = wh.ingest("events")

    assert [(f.source_file, f.outcome) for f in outcome.files] == [
        ("product/events/d1.parquet", "loaded"),
        ("product/events/d2.parquet", "refused"),
    ]
    assert "product/events/d2.parquet: cannot be read as PARQUET" in outcome.files[1].message


def test_a_read_error_in_any_stage_of_a_batch_refuses_only_its_file(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts, the insert and the checks each read the files again: a read error there is
    attributed to its file like one while checking."""
    for name, ids in (("d1", ["e1"]), ("d2", ["e2"]), ("d3", ["e3"])):
        write_parquet(wh.landing, "events", f"{name}.parquet", _event_columns(ids))
    real = loader._batch_counts

    def counts(conn: duckdb.DuckDBPyConnection, batch: Any) -> Any:
        if any(m.version.file.name == "d2.parquet" for m in batch.members):
            raise duckdb.Error("invalid TType")  # what a corrupt page header raises
        return real(conn, batch)

    monkeypatch.setattr(loader, "_batch_counts", counts)
    outcome = wh.ingest("events")

    assert [(f.source_file, f.outcome) for f in outcome.files] == [
        ("product/events/d1.parquet", "loaded"),
        ("product/events/d2.parquet", "refused"),
        ("product/events/d3.parquet", "loaded"),
    ]
    assert "product/events/d2.parquet: cannot be read as PARQUET: invalid TType" in (
        outcome.files[1].message
    )
    assert wh.rows("SELECT event_id FROM raw.events ORDER BY 1") == [("e1",), ("e3",)]


def test_a_bug_is_not_mistaken_for_an_unreadable_file(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parquet(wh.landing, "events", "d1.parquet", _event_columns(["e1"]))

    def broken(conn: duckdb.DuckDBPyConnection, batch: Any) -> Any:
        raise duckdb.BinderException("a bug in generated SQL")

    monkeypatch.setattr(loader, "_batch_counts", broken)
    with pytest.raises(duckdb.BinderException):
        wh.ingest("events")
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0


def _corrupt_gzip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["bad.csv.gz", "bad.jsonl.gz"])
def test_a_corrupt_gzip_text_file_is_refused_by_name(wh: Warehouse, name: str) -> None:
    write_csv(wh.landing, "accounts", "good.csv", [example_row("accounts", account_id="a1")])
    rows = [example_row("accounts", account_id=f"b{i}", name=f"n{i}" * 20) for i in range(3000)]
    writer = write_csv if name.endswith(".csv.gz") else write_jsonl
    _corrupt_gzip(writer(wh.landing, "accounts", name, rows))

    outcome = wh.ingest("accounts")

    by_file = {f.source_file: f for f in outcome.files}
    assert by_file["crm/accounts/good.csv"].outcome == "loaded"
    assert by_file[f"crm/accounts/{name}"].outcome == "refused"
    assert by_file[f"crm/accounts/{name}"].message.startswith(f"crm/accounts/{name}: ")
    assert wh.rows("SELECT account_id FROM raw.accounts") == [("a1",)]


# --- 5. errors name the right line ---------------------------------------------------------


def _jsonl_lines(rows: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) for r in rows]


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.jsonl.gz"])
def test_malformed_jsonl_record_is_refused_with_its_physical_line(wh: Warehouse, name: str) -> None:
    rows = _jsonl_lines([example_row("accounts", account_id=f"a{i}") for i in range(4)])
    # line 1, 2, blank 3, line 4, blank 5, whitespace 6, malformed 7, line 8
    lines = [rows[0], rows[1], "", rows[2], "", "   ", '{"account_id": "x", "name": ', rows[3]]
    data = ("\n".join(lines) + "\n").encode()
    path = table_path(wh.landing, "accounts", name)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)

    (refused,) = wh.ingest("accounts").files

    assert refused.outcome == "refused"
    assert refused.message.startswith(f"crm/accounts/{name}: line 7 is not valid JSON")
    assert '{"account_id": "x", "name": ' in refused.message


def test_jsonl_line_that_is_not_an_object_is_refused_with_its_line(wh: Warehouse) -> None:
    rows = _jsonl_lines([example_row("accounts", account_id=f"a{i}") for i in range(2)])
    path = table_path(wh.landing, "accounts", "arr.jsonl")
    path.write_text("\n".join([rows[0], "", "[1, 2]", rows[1]]) + "\n")
    (refused,) = wh.ingest("accounts").files
    assert refused.message.startswith("crm/accounts/arr.jsonl: line 3 is not a JSON object")


@pytest.mark.parametrize("name", ["q.jsonl", "q.jsonl.gz"])
def test_jsonl_quarantine_names_the_data_row_after_blank_lines(wh: Warehouse, name: str) -> None:
    rows = _jsonl_lines(
        [
            example_row("accounts", account_id="a1"),
            example_row("accounts", account_id="a2"),
            example_row("accounts", account_id="a3", segment="nope"),
        ]
    )
    data = ("\n".join(["", rows[0], "", "", rows[1], "  ", rows[2]]) + "\n").encode()
    path = table_path(wh.landing, "accounts", name)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)

    outcome = wh.ingest("accounts")

    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (3, 2, 1)
    assert [r[:2] for r in _quarantine(wh)] == [(3, "accepted_values")]
    assert wh.rows("SELECT account_id, _source_row FROM raw.accounts ORDER BY 1") == [
        ("a1", 1),
        ("a2", 2),
    ]


@pytest.mark.parametrize("name", ["bad.csv", "bad.csv.gz"])
def test_malformed_csv_record_after_blank_lines_names_its_line(wh: Warehouse, name: str) -> None:
    lines = csv_text([example_row("accounts", account_id=f"a{i}") for i in range(3)]).splitlines()
    # header 1, row 2, blank 3, row 4, blank 5, surplus field on line 6
    text = "\n".join([lines[0], lines[1], "", lines[2], "", lines[3] + ",surplus"]) + "\n"
    path = table_path(wh.landing, "accounts", name)
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())

    (refused,) = wh.ingest("accounts").files

    assert refused.outcome == "refused"
    assert "CSV Error on Line: 6" in refused.message


def test_csv_quarantine_names_the_data_row_after_blank_lines(wh: Warehouse) -> None:
    lines = csv_text(
        [
            example_row("accounts", account_id="a1"),
            example_row("accounts", account_id="a2", segment="nope"),
        ]
    ).splitlines()
    path = table_path(wh.landing, "accounts", "q.csv")
    path.write_text("\n".join([lines[0], "", lines[1], "", lines[2]]) + "\n")
    wh.ingest("accounts")
    assert [r[:2] for r in _quarantine(wh)] == [(2, "accepted_values")]
