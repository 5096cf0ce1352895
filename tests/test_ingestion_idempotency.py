"""Re-running changes nothing; changed files load as new versions; events dedupe on their key."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingestion_fixtures import Warehouse, example_row, open_warehouse, write_csv, write_parquet

from ingestion.contract import table


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _accounts(names: dict[str, str], updated_at: str = "2024-03-01T00:00:00Z") -> list[dict]:
    return [
        example_row("accounts", account_id=key, name=name, updated_at=updated_at)
        for key, name in names.items()
    ]


#: A staging-style "latest version per key" query, as the dbt staging models do it.
LATEST_ACCOUNTS = """
SELECT account_id, name FROM raw.accounts
QUALIFY row_number() OVER (
    PARTITION BY account_id
    ORDER BY updated_at DESC, _loaded_at DESC, _source_file DESC, _source_row DESC) = 1
ORDER BY account_id"""


def test_second_run_on_the_same_landing_changes_nothing(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "a.csv", _accounts({"a1": "One", "a2": "Two"}))
    write_csv(wh.landing, "accounts", "b.csv.gz", [*_accounts({"a3": "Three"}), {"account_id": ""}])
    first = wh.ingest("accounts")
    before = wh.snapshot(table("accounts"))

    second = wh.ingest("accounts")

    assert first.files_loaded == 2
    assert [f.outcome for f in second.files] == ["skipped", "skipped"]
    assert second.rows_loaded == 0
    assert wh.snapshot(table("accounts")) == before


def test_resent_file_with_one_changed_row_is_a_new_version(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "daily.csv", _accounts({"a1": "One", "a2": "Two"}))
    wh.ingest("accounts")
    # Same name, one row changed (same updated_at: the later load must still win).
    write_csv(wh.landing, "accounts", "daily.csv", _accounts({"a1": "One", "a2": "Two (renamed)"}))

    outcome = wh.ingest("accounts")

    assert [(f.outcome, f.file_version) for f in outcome.files] == [("loaded", 2)]
    assert wh.rows(
        "SELECT file_version, status, rows_loaded FROM raw.ingest_manifest ORDER BY 1"
    ) == [(1, "loaded", 2), (2, "loaded", 2)]
    assert wh.scalar("SELECT count(*) FROM raw.accounts") == 4  # every version is kept
    assert wh.rows(LATEST_ACCOUNTS) == [("a1", "One"), ("a2", "Two (renamed)")]


def test_latest_updated_at_wins_whichever_file_it_came_from(wh: Warehouse) -> None:
    write_csv(wh.landing, "accounts", "2024-03-02.csv", _accounts({"a1": "New"}, "2024-03-02"))
    write_csv(
        wh.landing, "accounts", "2024-03-03-backfill.csv", _accounts({"a1": "Old"}, "2024-01-01")
    )
    wh.ingest("accounts")
    assert wh.rows(LATEST_ACCOUNTS) == [("a1", "New")]


def _events(landing: Path, name: str, ids: list[str]) -> None:
    write_parquet(
        landing,
        "events",
        name,
        {
            "event_id": ids,
            "account_id": ["acc_1"] * len(ids),
            "user_id": ["u1"] * len(ids),
            "event_name": ["login"] * len(ids),
            "occurred_at": ["2024-06-01T10:00:00Z"] * len(ids),
        },
    )


def test_events_are_deduplicated_on_their_key_across_files(wh: Warehouse) -> None:
    _events(wh.landing, "day1.parquet", ["e1", "e2", "e3"])
    _events(wh.landing, "day2.parquet", ["e3", "e4"])  # e3 re-delivered

    outcome = wh.ingest("events")

    assert [(f.rows_read, f.rows_loaded, f.rows_duplicate) for f in outcome.files] == [
        (3, 3, 0),
        (2, 2, 1),
    ]
    assert wh.rows("SELECT event_id, _source_file FROM raw.events ORDER BY 1") == [
        ("e1", "product/events/day1.parquet"),
        ("e2", "product/events/day1.parquet"),
        ("e3", "product/events/day1.parquet"),
        ("e4", "product/events/day2.parquet"),
    ]
    assert "1 of them already in raw by key" in outcome.files[1].message


def test_changed_event_file_only_adds_new_keys(wh: Warehouse) -> None:
    _events(wh.landing, "day1.parquet", ["e1", "e2"])
    wh.ingest("events")
    _events(wh.landing, "day1.parquet", ["e1", "e2", "e5"])
    outcome = wh.ingest("events")
    assert [(f.file_version, f.rows_loaded, f.rows_duplicate) for f in outcome.files] == [(2, 3, 2)]
    assert wh.scalar("SELECT count(*) FROM raw.events") == 3


def test_rows_read_is_loaded_plus_quarantined_on_every_manifest_row(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "users",
        "u.csv",
        [
            example_row("users", user_id="u1"),
            example_row("users", user_id="u1"),
            example_row("users", user_id="u2", role="root"),
            example_row("users", user_id="u3", provisioned_at=""),
        ],
    )
    write_csv(wh.landing, "users", "v.csv", [example_row("users", user_id="u9")])
    (wh.landing / "product" / "users" / "broken.csv").write_bytes(b"")
    _events(wh.landing, "a.parquet", ["e1", "e2"])
    _events(wh.landing, "b.parquet", ["e2", "e3"])
    wh.ingest("users")
    wh.ingest("events")

    manifest = wh.rows(
        "SELECT source_file, status, rows_read, rows_loaded, rows_quarantined, rows_duplicate"
        " FROM raw.ingest_manifest ORDER BY 1"
    )
    assert manifest == [
        ("product/events/a.parquet", "loaded", 2, 2, 0, 0),
        ("product/events/b.parquet", "loaded", 2, 2, 0, 1),
        ("product/users/broken.csv", "refused", 0, 0, 0, 0),
        ("product/users/u.csv", "loaded", 4, 1, 3, 0),
        ("product/users/v.csv", "loaded", 1, 1, 0, 0),
    ]
    for _, _, read, loaded, quarantined, _ in manifest:
        assert read == loaded + quarantined
    # The counts agree with what the tables hold.
    assert wh.scalar("SELECT count(*) FROM raw.users") == 2
    assert wh.scalar("SELECT count(DISTINCT source_row) FROM raw.quarantine") == 3
    inserted = wh.scalar("SELECT sum(rows_loaded - rows_duplicate) FROM raw.ingest_manifest")
    assert inserted == wh.scalar(
        "SELECT (SELECT count(*) FROM raw.users) + count(*) FROM raw.events"
    )
