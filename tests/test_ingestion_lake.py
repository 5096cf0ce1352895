"""The events lake: events written once as Parquet by event date, deduplicated on event_id as
they are written, registered with the manifest in one transaction; raw.events a view over it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from ingestion_fixtures import Warehouse, open_warehouse, write_csv

from ingestion import lake, loader, manifest
from ingestion.contract import table
from ingestion.loader import ensure_warehouse, raw_table_ddl

EVENTS = table("events")
LINEAGE = ["_source_file", "_source_row", "_file_sha256", "_loaded_at"]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _event(event_id: str, occurred_at: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "event_id": event_id,
        "account_id": "acc_1",
        "user_id": "u1",
        "event_name": "report_viewed",
        "occurred_at": occurred_at,
        "properties": '{"client": "web"}',
    }
    row.update(overrides)
    return row


def _lake(wh: Warehouse) -> Path:
    return wh.root / "lake"


def _lake_files(wh: Warehouse) -> list[str]:
    """Every file under the lake, relative, staging included (not the owner marker)."""
    root = _lake(wh)
    files = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(f for f in files if f != lake.OWNER_FILE)


def _registered(wh: Warehouse) -> list[str]:
    return [r[0] for r in wh.rows("SELECT path FROM raw.lake_files ORDER BY 1")]


def _events(wh: Warehouse) -> list[tuple]:
    return wh.rows(
        "SELECT event_id, CAST(occurred_at AS VARCHAR), CAST(event_date AS VARCHAR), _source_file"
        " FROM raw.events ORDER BY event_id"
    )


def _assert_manifest_invariants(wh: Warehouse) -> None:
    bad = wh.rows(
        "SELECT source_file FROM raw.ingest_manifest"
        " WHERE rows_read <> rows_loaded + rows_quarantined OR rows_duplicate > rows_loaded"
    )
    assert bad == []


def test_events_land_in_event_date_partitions_and_raw_events_is_a_view(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "events",
        "day1.csv",
        [
            _event("e1", "2024-01-01T10:00:00Z"),
            _event("e2", "2024-01-01T23:59:59Z"),
            _event("e3", "2024-01-02T00:00:00Z"),
        ],
    )
    outcome = wh.ingest("events")

    assert (outcome.rows_loaded, outcome.rows_duplicate) == (3, 0)
    files = _lake_files(wh)
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "product/events/event_date=2024-01-01",
        "product/events/event_date=2024-01-02",
    ]
    assert all(f.rsplit("/", 1)[1].startswith("part-") for f in files)
    assert _registered(wh) == files  # every file registered, no staging leftover
    assert wh.rows("SELECT CAST(event_date AS VARCHAR), rows FROM raw.lake_files ORDER BY 1") == [
        ("2024-01-01", 2),
        ("2024-01-02", 1),
    ]
    assert (
        wh.scalar(
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_schema = 'raw' AND table_name = 'events'"
        )
        == "VIEW"
    )
    assert _events(wh) == [
        ("e1", "2024-01-01 10:00:00", "2024-01-01", "product/events/day1.csv"),
        ("e2", "2024-01-01 23:59:59", "2024-01-01", "product/events/day1.csv"),
        ("e3", "2024-01-02 00:00:00", "2024-01-02", "product/events/day1.csv"),
    ]
    # The raw table's types as before (JSON stays JSON through the view), plus event_date.
    types = dict(wh.rows("SELECT column_name, column_type FROM (DESCRIBE raw.events)"))
    assert types == {
        **{c.name: c.type.duckdb_type for c in EVENTS.columns},
        "_source_file": "VARCHAR",
        "_source_row": "BIGINT",
        "_file_sha256": "VARCHAR",
        "_loaded_at": "TIMESTAMP",
        "event_date": "DATE",
    }
    # The event date is the partition directory only, not a column of the files.
    assert "event_date" not in [
        r[0] for r in wh.rows("SELECT name FROM parquet_schema(?)", [str(_lake(wh) / files[0])])
    ]


def test_a_resent_file_with_changes_adds_only_new_ids(wh: Warehouse) -> None:
    write_csv(
        wh.landing,
        "events",
        "day1.csv",
        [
            _event("e1", "2024-01-01T10:00:00Z"),
            _event("e2", "2024-01-01T11:00:00Z"),
            _event("e3", "not a time"),
        ],
    )
    first = wh.ingest("events")
    assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (3, 2, 1)
    lake_before = _lake_files(wh)

    # Re-sent: e1 changed (another time), e2 unchanged, e3 fixed, e4 new.
    write_csv(
        wh.landing,
        "events",
        "day1.csv",
        [
            _event("e1", "2024-01-03T09:00:00Z"),
            _event("e2", "2024-01-01T11:00:00Z"),
            _event("e3", "2024-01-01T12:00:00Z"),
            _event("e4", "2024-01-02T08:00:00Z"),
        ],
    )
    second = wh.ingest("events")

    (resent,) = second.files
    assert (resent.outcome, resent.file_version) == ("loaded", 2)
    assert (resent.rows_read, resent.rows_loaded, resent.rows_quarantined) == (4, 4, 0)
    assert resent.rows_duplicate == 2  # e1 and e2: the first version of an event wins
    _assert_manifest_invariants(wh)
    assert _events(wh) == [
        ("e1", "2024-01-01 10:00:00", "2024-01-01", "product/events/day1.csv"),
        ("e2", "2024-01-01 11:00:00", "2024-01-01", "product/events/day1.csv"),
        ("e3", "2024-01-01 12:00:00", "2024-01-01", "product/events/day1.csv"),
        ("e4", "2024-01-02 08:00:00", "2024-01-02", "product/events/day1.csv"),
    ]
    # Append-only: the first load's files are untouched; nothing of e1's new time was written.
    after = _lake_files(wh)
    assert set(lake_before) < set(after)
    assert not any("event_date=2024-01-03" in f for f in after)
    assert _registered(wh) == after
    assert wh.scalar("SELECT sum(rows) FROM raw.lake_files") == 4

    # Re-sent again, every id known: loaded as duplicates, no file written, nothing refused.
    write_csv(
        wh.landing,
        "events",
        "day1.csv",
        [_event(i, "2024-01-05T00:00:00Z") for i in ("e4", "e3", "e2", "e1")],
    )
    (third,) = wh.ingest("events").files
    assert (third.outcome, third.rows_loaded, third.rows_duplicate) == ("loaded", 4, 4)
    assert _lake_files(wh) == after
    _assert_manifest_invariants(wh)


def test_late_events_for_an_old_day_land_in_that_days_partition(wh: Warehouse) -> None:
    write_csv(wh.landing, "events", "d2.csv", [_event("e1", "2024-01-02T10:00:00Z")])
    wh.ingest("events")
    (old_file,) = _lake_files(wh)
    old_bytes = (_lake(wh) / old_file).read_bytes()

    write_csv(
        wh.landing,
        "events",
        "d3.csv",
        [_event("e2", "2024-01-03T10:00:00Z"), _event("late", "2024-01-02T23:00:00Z")],
    )
    outcome = wh.ingest("events")

    assert outcome.rows_loaded == 2
    day2 = [f for f in _lake_files(wh) if "event_date=2024-01-02/" in f]
    assert len(day2) == 2 and old_file in day2  # a new file beside the old one
    assert (_lake(wh) / old_file).read_bytes() == old_bytes
    assert wh.rows(
        "SELECT event_id, _source_file FROM raw.events WHERE event_date = DATE '2024-01-02'"
        " ORDER BY 1"
    ) == [("e1", "product/events/d2.csv"), ("late", "product/events/d3.csv")]
    assert (
        wh.scalar(
            "SELECT count(DISTINCT _loaded_at) FROM raw.events WHERE event_date = DATE '2024-01-02'"
        )
        == 2
    )


def _fail_after_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between rename and commit")

    monkeypatch.setattr(manifest, "record_many", crash)


def _day_rows() -> list[dict[str, Any]]:
    return [_event("e1", "2024-01-01T10:00:00Z"), _event("e2", "2024-01-02T10:00:00Z")]


def test_a_failure_after_the_rename_leaves_no_file_in_the_lake(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    with monkeypatch.context() as m:
        _fail_after_rename(m)
        with pytest.raises(RuntimeError, match="killed"):
            wh.ingest("events")
    assert _lake_files(wh) == []
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0

    outcome = wh.ingest("events")
    assert (outcome.rows_loaded, outcome.rows_duplicate) == (2, 0)
    assert [r[0] for r in _events(wh)] == ["e1", "e2"]


def test_a_crash_after_the_rename_is_recovered_with_no_duplicate_and_nothing_lost(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(wh.landing, "events", "d0.csv", [_event("e0", "2024-01-01T09:00:00Z")])
    wh.ingest("events")
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    with monkeypatch.context() as m:
        _fail_after_rename(m)
        m.setattr(lake, "recover", lambda *args, **kwargs: [])  # the process died: no cleanup
        with pytest.raises(RuntimeError, match="killed"):
            wh.ingest("events")
        (staging_debris := _lake(wh) / "_staging" / "dead" / "x.parquet").parent.mkdir(parents=True)
        staging_debris.write_bytes(b"half a file")
    left = set(_lake_files(wh)) - set(_registered(wh))
    assert len(left) == 3  # the crashed batch's two files and the staging debris
    crashed = sorted(f for f in left if not f.startswith("_staging/"))

    outcome = wh.ingest("events")

    assert [(f.source_file, f.outcome) for f in outcome.files] == [
        ("product/events/d0.csv", "skipped"),
        ("product/events/d1.csv", "loaded"),
    ]
    assert (outcome.rows_loaded, outcome.rows_duplicate) == (2, 0)
    assert [r[0] for r in _events(wh)] == ["e0", "e1", "e2"]  # the view reads no orphan
    assert _orphans(wh) == crashed  # moved aside, not deleted
    assert [f for f in _lake_files(wh) if not f.startswith("_orphans/")] == _registered(wh)
    _assert_manifest_invariants(wh)


def test_a_registered_file_that_is_missing_is_an_error_naming_it(wh: Warehouse) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    wh.ingest("events")
    gone = _registered(wh)[0]
    (_lake(wh) / gone).unlink()
    write_csv(wh.landing, "events", "d2.csv", [_event("e9", "2024-01-05T10:00:00Z")])

    with pytest.raises(lake.LakeError, match=gone):
        wh.ingest("events")


def test_an_existing_raw_events_table_moves_into_the_lake_with_every_row(wh: Warehouse) -> None:
    """A warehouse from before the lake: its raw.events table is moved once, row for row."""
    loader.prepare_connection(wh.conn)
    wh.conn.execute("CREATE SCHEMA raw")
    wh.conn.execute(raw_table_ddl(EVENTS))
    loaded_at = datetime(2024, 1, 3, 6, 0)
    wh.conn.execute(
        "INSERT INTO raw.events SELECT 'old' || i, 'acc_1', 'u1', 'report_viewed',"
        " TIMESTAMP '2024-01-01 20:00:00' + INTERVAL (i) HOUR,"
        " CASE WHEN i % 2 = 0 THEN '{\"n\": 1}'::JSON END,"
        " 'product/events/old.csv', i + 1, 'sha-old', ? FROM range(10) t(i)",
        [loaded_at],
    )
    before = wh.rows("SELECT * FROM raw.events ORDER BY ALL")
    write_csv(
        wh.landing,
        "events",
        "new.csv",
        [_event("old3", "2024-01-02T00:00:00Z"), _event("new1", "2024-01-04T00:00:00Z")],
    )

    outcome = wh.ingest("events")

    assert (
        wh.scalar(
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_schema = 'raw' AND table_name = 'events'"
        )
        == "VIEW"
    )
    columns = ", ".join([c.name for c in EVENTS.columns] + LINEAGE)
    assert wh.rows(f"SELECT {columns} FROM raw.events WHERE event_id LIKE 'old%' ORDER BY ALL") == (
        before
    )
    assert outcome.rows_duplicate == 1  # old3 was in the table: the migrated row wins
    assert wh.scalar("SELECT count(*) FROM raw.events") == 11
    assert wh.scalar("SELECT sum(rows) FROM raw.lake_files") == 11
    assert wh.rows(
        "SELECT CAST(event_date AS VARCHAR), count(*) FROM raw.events GROUP BY 1 ORDER BY 1"
    ) == [("2024-01-01", 4), ("2024-01-02", 6), ("2024-01-04", 1)]
    assert _lake_files(wh) == _registered(wh)


def test_an_empty_lake_gives_a_typed_empty_view(wh: Warehouse) -> None:
    outcome = wh.ingest("events")  # no file at all

    assert outcome.files == ()
    assert wh.scalar("SELECT count(*) FROM raw.events") == 0
    types = dict(wh.rows("SELECT column_name, column_type FROM (DESCRIBE raw.events)"))
    assert types["occurred_at"] == "TIMESTAMP"
    assert types["properties"] == "JSON"
    assert types["event_date"] == "DATE"
    assert list(types)[-5:] == [*LINEAGE, "event_date"]

    # Every row quarantined: still no lake file, still the empty view, nothing left in staging.
    write_csv(wh.landing, "events", "bad.csv", [_event("e1", "never")])
    bad = wh.ingest("events")
    assert (bad.rows_read, bad.rows_quarantined) == (1, 1), bad.files
    assert _lake_files(wh) == []
    assert wh.scalar("SELECT count(*) FROM raw.events") == 0


def test_a_warehouse_made_without_a_lake_dir_has_the_empty_events_view(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path)
    ensure_warehouse(wh.conn)
    assert wh.scalar("SELECT count(*) FROM raw.events") == 0
    assert wh.scalar("SELECT count(*) FROM raw.lake_files") == 0


def test_two_warehouses_in_one_folder_do_not_share_a_lake(wh: Warehouse) -> None:
    write_csv(wh.landing, "events", "day1.csv", [_event("e1", "2024-01-01T10:00:00Z")])
    wh.ingest("events")
    kept = _lake_files(wh)
    other = Warehouse(wh.root, duckdb.connect(str(wh.root / "other.duckdb")))
    with pytest.raises(lake.LakeError) as refused:
        other.ingest("events")
    assert "warehouse.duckdb" in str(refused.value) and "other.duckdb" in str(refused.value)
    assert _lake_files(wh) == kept  # the other warehouse's recovery deleted nothing
    assert [r[0] for r in _events(wh)] == ["e1"]


def test_a_warehouse_moved_away_from_its_old_path_keeps_its_lake(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path)
    write_csv(wh.landing, "events", "day1.csv", [_event("e1", "2024-01-01T10:00:00Z")])
    wh.ingest("events")
    wh.conn.close()
    (tmp_path / "warehouse.duckdb").rename(tmp_path / "renamed.duckdb")
    moved = Warehouse(tmp_path, duckdb.connect(str(tmp_path / "renamed.duckdb")))
    write_csv(moved.landing, "events", "day2.csv", [_event("e2", "2024-01-02T10:00:00Z")])
    moved.ingest("events")
    assert [r[0] for r in _events(moved)] == ["e1", "e2"]


def _orphans(wh: Warehouse) -> list[str]:
    """Files under ``<lake>/_orphans``, relative to their stamp folder (the lake-relative path)."""
    root = _lake(wh) / lake.ORPHANS
    return sorted(
        p.relative_to(root).as_posix().split("/", 1)[1] for p in root.rglob("*") if p.is_file()
    )


def _reopen(wh: Warehouse) -> Warehouse:
    return Warehouse(wh.root, duckdb.connect(str(wh.root / "warehouse.duckdb")))


def test_a_rebuilt_warehouse_beside_a_kept_lake_is_refused_and_deletes_nothing(
    wh: Warehouse,
) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    wh.ingest("events")
    kept = _lake_files(wh)
    wh.conn.close()
    (wh.root / "warehouse.duckdb").unlink()  # deleted and rebuilt at the same path, lake kept
    rebuilt = _reopen(wh)

    with pytest.raises(lake.LakeError) as refused:
        rebuilt.ingest("events")

    message = str(refused.value).lower()
    assert (
        "restore the warehouse" in message
        and "delete" in message
        and str(_lake(wh)).lower() in message
    )
    assert _lake_files(wh) == kept  # every committed event still in the lake


def test_a_warehouse_restored_from_an_older_backup_moves_newer_lake_files_to_orphans(
    wh: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    wh.ingest("events")
    wh.conn.close()
    backup = (wh.root / "warehouse.duckdb").read_bytes()
    wh = _reopen(wh)
    older = set(_registered(wh))
    write_csv(wh.landing, "events", "d2.csv", [_event("e3", "2024-01-03T10:00:00Z")])
    wh.ingest("events")
    newer = sorted(set(_registered(wh)) - older)
    assert newer
    wh.conn.close()
    (wh.root / "warehouse.duckdb").write_bytes(backup)  # the backup knows d1's files only
    restored = _reopen(wh)

    with caplog.at_level("WARNING"):
        outcome = restored.ingest("events")

    assert _orphans(restored) == newer  # moved, not deleted
    (folder,) = (_lake(wh) / lake.ORPHANS).iterdir()
    assert str(folder) in caplog.text
    # d2 had no manifest row in the backup: it loads again, once, beside d1's events
    assert [(f.source_file, f.outcome) for f in outcome.files] == [
        ("product/events/d1.csv", "skipped"),
        ("product/events/d2.csv", "loaded"),
    ]
    assert [r[0] for r in _events(restored)] == ["e1", "e2", "e3"]
    _assert_manifest_invariants(restored)


def test_a_failed_recovery_after_a_rollback_does_not_hide_the_original_error(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    real_recover = lake.recover
    calls: list[int] = []

    def recover_fails_after_rollback(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:  # the first call is the recovery before the load
            raise lake.LakeError("recovery broke")
        return real_recover(*args, **kwargs)

    with monkeypatch.context() as m:
        _fail_after_rename(m)
        m.setattr(lake, "recover", recover_fails_after_rollback)
        with pytest.raises(RuntimeError, match="killed") as raised:
            wh.ingest("events")
    assert not isinstance(raised.value, lake.LakeError)
    assert "recovery broke" in " ".join(getattr(raised.value, "__notes__", []))
