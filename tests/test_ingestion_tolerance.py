"""A tolerant contract (issue 14, point 3): date and timestamp columns take what real exports
send (an ISO timestamp in a date column, a date in a timestamp column, ``Z`` and offsets, a
``T`` or a space, fractional seconds to nanoseconds, epoch numbers), in every format, and refuse
anything else with a reason naming the file, row and column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from ingestion_fixtures import (
    Warehouse,
    example_row,
    open_warehouse,
    write_csv,
    write_jsonl,
    write_parquet,
)
from typer.testing import CliRunner

from ingestion.contract import table
from ingestion.landing import discover
from ingestion.readers import FileSource, open_source
from orchestration.cli import app

NOT_ISO = (
    " is not an ISO 8601 date or timestamp (YYYY-MM-DD[THH:MM:SS[.fff][Z|±HH:MM]])"
    " or epoch seconds/ms/µs/ns"
)
AMBIGUOUS = (
    " is ambiguous as an epoch number: seconds have 9-10 digits, milliseconds 12-13,"
    " microseconds 15-16, nanoseconds 18-19 (1973-03-03 to 2286-11-20);"
    " send an ISO 8601 date or timestamp instead"
)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _quarantine(wh: Warehouse) -> list[tuple]:
    return wh.rows(
        "SELECT source_file, source_row, rule, column_name, reason FROM raw.quarantine"
        " ORDER BY source_file, source_row, column_name"
    )


# --- the failing case of the issue ------------------------------------------------------------


@pytest.mark.parametrize("file_name", ["contacts.csv", "contacts.jsonl"])
def test_crm_contacts_with_iso_timestamps_in_date_columns_load(
    wh: Warehouse, file_name: str
) -> None:
    """contacts.started_at/ended_at are DATE columns; a CRM export sends timestamps there. Each
    loads as its UTC date: 23:30 at -05:00 on 1 March is 2 March in UTC."""
    rows = [
        example_row(
            "contacts",
            contact_id="c1",
            started_at="2024-03-01T23:30:00-05:00",
            ended_at="2024-06-30T10:00:00.000Z",
        ),
        example_row("contacts", contact_id="c2", started_at="2024-01-20 08:00:00", ended_at=""),
        example_row("contacts", contact_id="c3", started_at="2024-01-20", ended_at=None),
    ]
    writer = write_csv if file_name.endswith(".csv") else write_jsonl
    writer(wh.landing, "contacts", file_name, rows)

    outcome = wh.ingest("contacts")

    assert (outcome.rows_loaded, outcome.rows_quarantined) == (3, 0), _quarantine(wh)
    assert wh.rows("SELECT contact_id, started_at, ended_at FROM raw.contacts ORDER BY 1") == [
        ("c1", date(2024, 3, 2), date(2024, 6, 30)),
        ("c2", date(2024, 1, 20), None),
        ("c3", date(2024, 1, 20), None),
    ]


# --- text variants --------------------------------------------------------------------------

#: 2024-03-01T23:30:00Z as epoch seconds.
EPOCH_S = 1709335800

TIMESTAMP_TEXTS: list[tuple[str, datetime]] = [
    ("2024-03-01T23:30:00Z", datetime(2024, 3, 1, 23, 30)),
    ("2024-03-01T23:30:00-05:00", datetime(2024, 3, 2, 4, 30)),
    ("2024-03-01T23:30:00+0530", datetime(2024, 3, 1, 18)),
    ("2024-03-01T23:30:00+01", datetime(2024, 3, 1, 22, 30)),
    ("2024-03-01 23:30:00+00:00", datetime(2024, 3, 1, 23, 30)),
    ("2024-03-01 23:30:00", datetime(2024, 3, 1, 23, 30)),
    ("2024-03-01T23:30", datetime(2024, 3, 1, 23, 30)),
    ("2024-03-01T23:30:00.5Z", datetime(2024, 3, 1, 23, 30, 0, 500000)),
    ("2024-03-01 23:30:00.123456+02:00", datetime(2024, 3, 1, 21, 30, 0, 123456)),
    # 7 to 9 digits: truncated to microseconds, never rounded into the next second
    ("2024-03-01T23:30:00.123456789Z", datetime(2024, 3, 1, 23, 30, 0, 123456)),
    ("2024-03-01T23:59:59.9999999+01:00", datetime(2024, 3, 1, 22, 59, 59, 999999)),
    ("2024-03-01", datetime(2024, 3, 1)),
    (str(EPOCH_S), datetime(2024, 3, 1, 23, 30)),
    (f"{EPOCH_S}.25", datetime(2024, 3, 1, 23, 30, 0, 250000)),
    (f"{EPOCH_S}123", datetime(2024, 3, 1, 23, 30, 0, 123000)),
    (f"{EPOCH_S}123456", datetime(2024, 3, 1, 23, 30, 0, 123456)),
    (f"{EPOCH_S}123456789", datetime(2024, 3, 1, 23, 30, 0, 123456)),
]


def _json_value(text: str) -> object:
    """Epoch numbers as JSON numbers, as a connector's JSON sends them."""
    if text.replace(".", "", 1).isdigit():
        return float(text) if "." in text else int(text)
    return text


@pytest.mark.parametrize("file_name", ["a.csv", "a.jsonl"])
def test_timestamp_columns_accept_the_common_variants(wh: Warehouse, file_name: str) -> None:
    rows = [
        example_row(
            "activities",
            activity_id=f"a{i:02d}",
            occurred_at=text if file_name.endswith(".csv") else _json_value(text),
        )
        for i, (text, _) in enumerate(TIMESTAMP_TEXTS)
    ]
    writer = write_csv if file_name.endswith(".csv") else write_jsonl
    writer(wh.landing, "activities", file_name, rows)

    outcome = wh.ingest("activities")

    assert outcome.rows_quarantined == 0, _quarantine(wh)
    loaded = wh.rows("SELECT activity_id, occurred_at FROM raw.activities ORDER BY 1")
    assert loaded == [(f"a{i:02d}", ts) for i, (_, ts) in enumerate(TIMESTAMP_TEXTS)]


DATE_TEXTS: list[tuple[str, date]] = [
    ("2024-03-01", date(2024, 3, 1)),
    ("2024-03-01T00:30:00+01:00", date(2024, 2, 29)),  # its UTC date
    ("2024-03-01T23:59:59.999999999Z", date(2024, 3, 1)),  # truncated, not rounded to 2 March
    ("2024-03-01 12:00:00", date(2024, 3, 1)),
    ("1709251200000", date(2024, 3, 1)),  # HubSpot: a date property is epoch ms at midnight UTC
    ("1709335800", date(2024, 3, 1)),
]


def test_date_columns_take_the_utc_date_of_a_timestamp_or_epoch(wh: Warehouse) -> None:
    contacts = [
        example_row("contacts", contact_id=f"c{i}", started_at=text, ended_at=text)
        for i, (text, _) in enumerate(DATE_TEXTS)
    ]
    write_csv(wh.landing, "contacts", "c.csv", contacts)

    wh.ingest("contacts")

    assert _quarantine(wh) == []
    assert wh.rows("SELECT contact_id, started_at, ended_at FROM raw.contacts ORDER BY 1") == [
        (f"c{i}", d, d) for i, (_, d) in enumerate(DATE_TEXTS)
    ]


# --- refused, with a reason -----------------------------------------------------------------

REFUSED: list[tuple[str, str]] = [
    ("03/01/2024", NOT_ISO),
    # DuckDB's own cast takes these five
    ("2024-03-01 10:00:00 Europe/Paris", NOT_ISO),  # a zone name is not ISO 8601
    ("infinity", NOT_ISO),
    ("epoch", NOT_ISO),
    ("2024/03/01", NOT_ISO),
    ("2024 03 01", NOT_ISO),
    ("2024-02-30", NOT_ISO),
    ("-1709335800", NOT_ISO),
    ("20240301", AMBIGUOUS),  # a compact date, or epoch seconds of 1970-08-23?
    ("17093358001", AMBIGUOUS),  # 11 digits: seconds in 2511 or milliseconds in 1970
    ("17093358001234", AMBIGUOUS),
]


def test_other_values_are_quarantined_naming_file_row_column_and_reason(wh: Warehouse) -> None:
    rows = [example_row("activities", activity_id="ok")] + [
        example_row("activities", activity_id=f"bad{i}", occurred_at=text)
        for i, (text, _) in enumerate(REFUSED)
    ]
    write_csv(wh.landing, "activities", "a.csv", rows)
    contact = example_row("contacts", started_at="03/01/2024")
    write_csv(wh.landing, "contacts", "c.csv", [contact])

    outcome = wh.ingest("activities")
    wh.ingest("contacts")

    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, len(REFUSED))
    assert _quarantine(wh) == [
        ("crm/activities/a.csv", row, "type", "occurred_at", f"'{text}'{reason}")
        for row, (text, reason) in enumerate(REFUSED, start=2)
    ] + [("crm/contacts/c.csv", 1, "type", "started_at", f"'03/01/2024'{NOT_ISO}")]


# --- Parquet: typed columns, no text round trip ----------------------------------------------


def _source_of(wh: Warehouse, table_name: str) -> FileSource:
    (file,) = discover(wh.landing, table(table_name))
    return open_source(wh.conn, file)


def test_parquet_timestamps_and_dates_convert_natively_in_both_directions(wh: Warehouse) -> None:
    """A date column takes a Parquet TIMESTAMP (TZ or not, any unit) as its UTC date; a timestamp
    column takes a DATE (midnight UTC), nanoseconds (truncated) and INT64 epoch numbers."""
    new_york = ZoneInfo("America/New_York")
    late = datetime(2024, 3, 1, 23, 30, tzinfo=new_york)  # 2 March 04:30 UTC
    contact = example_row("contacts")
    write_parquet(
        wh.landing,
        "contacts",
        "c.parquet",
        {
            **{k: [v] for k, v in contact.items()},
            "started_at": pa.array([late], pa.timestamp("us", tz="America/New_York")),
            "ended_at": pa.array(
                [1719791999999999999], pa.timestamp("ns")
            ),  # 30 June, 23:59:59.99..
            "updated_at": pa.array([date(2025, 3, 1)], pa.date32()),
        },
    )
    ns = int(datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9 + 999_999_999
    activities = [example_row("activities", activity_id=f"a{i}") for i in range(3)]
    write_parquet(
        wh.landing,
        "activities",
        "a.parquet",
        {
            **{k: [r[k] for r in activities] for k in activities[0]},
            "occurred_at": pa.array([EPOCH_S * 1000, EPOCH_S, 20240301], pa.int64()),
            "updated_at": pa.array([ns, ns, ns], pa.timestamp("ns", tz="UTC")),
        },
    )

    contacts_source = _source_of(wh, "contacts")
    activities_source = _source_of(wh, "activities")
    wh.ingest("contacts")
    wh.ingest("activities")

    native = {**contacts_source.native_types, **activities_source.native_types}
    assert {c: native.get(c) for c in ("started_at", "ended_at", "occurred_at")} == {
        "started_at": "TIMESTAMP WITH TIME ZONE",
        "ended_at": "TIMESTAMP_NS",
        "occurred_at": "BIGINT",
    }
    assert contacts_source.native_types["updated_at"] == "DATE"
    assert wh.rows("SELECT started_at, ended_at, updated_at FROM raw.contacts") == [
        (date(2024, 3, 2), date(2024, 6, 30), datetime(2025, 3, 1))
    ]
    assert wh.rows("SELECT activity_id, occurred_at, updated_at FROM raw.activities") == [
        ("a0", datetime(2024, 3, 1, 23, 30), datetime(2024, 3, 1, 23, 59, 59, 999999)),
        ("a1", datetime(2024, 3, 1, 23, 30), datetime(2024, 3, 1, 23, 59, 59, 999999)),
    ]
    (reason,) = wh.rows("SELECT reason FROM raw.quarantine WHERE source_row = 3")[0]
    assert reason == "'20240301'" + AMBIGUOUS
    assert _quarantine(wh)[0][:4] == ("crm/activities/a.parquet", 3, "type", "occurred_at")


def test_a_parquet_integer_out_of_range_is_quarantined_not_a_crash(wh: Warehouse) -> None:
    """The reason of a range rule quotes the value: a native integer column must be shown as
    text (it failed with a binder error, so the whole table asset crashed)."""
    plan = example_row("plans")
    columns = {k: [v] for k, v in plan.items()}
    columns["seat_limit"] = pa.array([-1], pa.int64())
    write_parquet(wh.landing, "plans", "p.parquet", columns)

    outcome = wh.ingest("plans")

    assert outcome.rows_quarantined == 1
    assert _quarantine(wh) == [
        ("billing/plans/p.parquet", 1, "min_value", "seat_limit", "'-1' is below the minimum 0")
    ]


# --- a table whose every row is quarantined fails the run -------------------------------------


def test_csw_ingest_fails_naming_a_table_whose_every_row_was_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the share allows every row (CSW_MAX_QUARANTINE_SHARE=1): a table that loaded
    nothing of what it read is not a success."""
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    landing = tmp_path / "landing"
    write_csv(landing, "plans", "p.csv", [example_row("plans")])
    rows = [example_row("contacts", contact_id=f"c{n}", started_at="03/01/2024") for n in range(3)]
    write_csv(landing, "contacts", "c.csv", rows)
    args = ["ingest", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb")]

    result = CliRunner().invoke(app, [*args, "--max-quarantine-share", "1.0"], terminal_width=200)

    assert result.exit_code == 1, result.output
    assert "crm/contacts/c.csv: 3 of 3 rows quarantined" in result.output, result.output
    assert "crm/contacts:contract_expectations" in result.output, result.output
    assert "Ingestion succeeded" not in result.output
