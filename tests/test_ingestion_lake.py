"""The events lake: events written once as Parquet by event date, deduplicated on event_id as
they are written, registered with the manifest in one transaction; raw.events a view over it."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from ingestion_fixtures import Warehouse, open_warehouse, write_csv, write_parquet

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


# --- How a batch is written: one plain COPY per event date, a partitioned COPY for the rest ---


class _RecordingConnection:
    """The warehouse connection, recording every statement it executes."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def copies(self, *, partitioned: bool) -> list[str]:
        return [
            s
            for s in self.statements
            if s.startswith("COPY") and ("PARTITION_BY" in s) == partitioned
        ]


def _ingest_recorded(wh: Warehouse) -> tuple[loader.TableOutcome, _RecordingConnection]:
    recorder = _RecordingConnection(wh.conn)
    outcome = loader.ingest_table(
        recorder,  # type: ignore[arg-type]
        EVENTS,
        wh.landing,
        validation_dir=wh.validation_dir,
    )
    return outcome, recorder


def _parquet_events(wh: Warehouse, name: str, rows: list[dict[str, Any]]) -> None:
    """Events as a Parquet file whose columns are all text: every such file is one batch."""
    write_parquet(wh.landing, "events", name, {k: [r[k] for r in rows] for k in rows[0]})


def _lake_file_name_ok(path: str) -> bool:
    return (
        re.fullmatch(r"part-\d{8}T\d{12}-[0-9a-f]{8}-\d+\.parquet", path.rsplit("/", 1)[1])
        is not None
    )


def _files_per_day(wh: Warehouse) -> dict[str, int]:
    days: dict[str, int] = {}
    for f in _lake_files(wh):
        day = f.split("/")[2].split("=", 1)[1]
        days[day] = days.get(day, 0) + 1
    return days


def _assert_lake_consistent(wh: Warehouse) -> None:
    """Every row in its day's partition, every file registered with its true rows and date, no
    file holding event_date, JSON kept as text, nothing left in staging, names as before."""
    assert (
        wh.scalar("SELECT count(*) FROM raw.events WHERE event_date <> CAST(occurred_at AS DATE)")
        == 0
    )
    files = _lake_files(wh)
    assert files == _registered(wh)
    assert all(_lake_file_name_ok(f) for f in files)
    for path, day, rows in wh.rows(
        "SELECT path, CAST(event_date AS VARCHAR), rows FROM raw.lake_files ORDER BY 1"
    ):
        full = str(_lake(wh) / path)
        assert f"/event_date={day}/" in f"/{path}"
        assert wh.scalar("SELECT count(*) FROM read_parquet(?)", [full]) == rows
        assert (
            wh.scalar(
                "SELECT count(*) FROM read_parquet(?)"
                " WHERE CAST(occurred_at AS DATE) <> CAST(? AS DATE)",
                [full, day],
            )
            == 0
        )
        schema = dict(wh.rows("SELECT name, type FROM parquet_schema(?)", [full]))
        assert "event_date" not in schema and schema["properties"] == "BYTE_ARRAY"
    assert wh.scalar("SELECT sum(rows) FROM raw.lake_files") == wh.scalar(
        "SELECT count(*) FROM raw.events"
    )


def test_a_batch_of_one_day_files_and_files_of_many_days_puts_every_row_in_its_day(
    wh: Warehouse,
) -> None:
    _parquet_events(  # one day
        wh, "a.parquet", [_event(f"a{i}", f"2024-03-01T0{i}:00:00Z") for i in range(4)]
    )
    _parquet_events(  # mostly 03-02: a late event for 03-01 and one for 02-20, a bad row, a repeat
        wh,
        "b.parquet",
        [
            _event("b0", "2024-03-02T01:00:00Z"),
            _event("b1", "2024-03-02T02:00:00Z"),
            _event("b2", "2024-03-02T03:00:00Z"),
            _event("late1", "2024-03-01T23:00:00Z"),
            _event("late2", "2024-02-20T12:00:00Z"),
            _event("bad", "2024-03-02T04:00:00Z", user_id=""),
            _event("a0", "2024-03-02T05:00:00Z"),  # a's event again: not written twice
        ],
    )
    _parquet_events(  # no day holds half of it
        wh,
        "c.parquet",
        [_event(f"c{i}", f"2024-03-0{3 + i}T12:00:00Z") for i in range(3)],
    )
    _parquet_events(wh, "d.parquet", [_event("d0", "2024-03-02T09:00:00Z")])  # b's main day

    outcome, recorder = _ingest_recorded(wh)

    assert [
        (f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
        for f in outcome.files
    ] == [
        ("product/events/a.parquet", 4, 4, 0, 0),
        ("product/events/b.parquet", 7, 6, 1, 1),
        ("product/events/c.parquet", 3, 3, 0, 0),
        ("product/events/d.parquet", 1, 1, 0, 0),
    ]
    assert wh.rows(
        "SELECT CAST(event_date AS VARCHAR), list(event_id ORDER BY event_id) FROM raw.events"
        " GROUP BY 1 ORDER BY 1"
    ) == [
        ("2024-02-20", ["late2"]),
        ("2024-03-01", ["a0", "a1", "a2", "a3", "late1"]),
        ("2024-03-02", ["b0", "b1", "b2", "d0"]),
        ("2024-03-03", ["c0"]),
        ("2024-03-04", ["c1"]),
        ("2024-03-05", ["c2"]),
    ]
    assert wh.scalar("SELECT _source_file FROM raw.events WHERE event_id = 'a0'") == (
        "product/events/a.parquet"
    )
    _assert_lake_consistent(wh)
    # One file per day of a and of b+d (their main days); b's late row for 03-01 and the other
    # days' rows were written by one partitioned COPY, beside them.
    assert _files_per_day(wh) == {
        "2024-02-20": 1,
        "2024-03-01": 2,
        "2024-03-02": 1,
        "2024-03-03": 1,
        "2024-03-04": 1,
        "2024-03-05": 1,
    }
    assert len(recorder.copies(partitioned=True)) == 1
    assert len(recorder.copies(partitioned=False)) == 2


def test_files_of_one_day_each_are_written_without_a_partitioned_copy(wh: Warehouse) -> None:
    _parquet_events(
        wh, "d1.parquet", [_event(f"x{i}", f"2024-05-01T1{i}:00:00Z") for i in range(3)]
    )
    _parquet_events(wh, "d2.parquet", [_event("y0", "2024-05-02T00:00:00Z")])
    _parquet_events(wh, "d2b.parquet", [_event("y1", "2024-05-02T23:59:59Z")])
    write_csv(wh.landing, "events", "d3.csv", [_event("z0", "2024-05-03T08:00:00Z")])

    outcome, recorder = _ingest_recorded(wh)

    assert outcome.rows_loaded == 6
    assert recorder.copies(partitioned=True) == []
    assert len(recorder.copies(partitioned=False)) == 3  # 05-01, 05-02 (two files), the CSV
    assert _files_per_day(wh) == {"2024-05-01": 1, "2024-05-02": 1, "2024-05-03": 1}
    _assert_lake_consistent(wh)


def test_a_batch_of_several_days_skips_the_keys_already_in_the_lake(wh: Warehouse) -> None:
    _parquet_events(
        wh,
        "d1.parquet",
        [_event("e1", "2024-01-01T10:00:00Z"), _event("e2", "2024-01-01T11:00:00Z")],
    )
    wh.ingest("events")
    _parquet_events(
        wh,
        "d2.parquet",
        [_event("e2", "2024-01-02T10:00:00Z"), _event("e3", "2024-01-02T11:00:00Z")],
    )
    _parquet_events(
        wh,
        "d3.parquet",
        [_event("e1", "2024-01-03T10:00:00Z"), _event("e4", "2024-01-03T11:00:00Z")],
    )
    _parquet_events(
        wh,
        "d4.parquet",
        [_event("e5", "2024-01-04T10:00:00Z"), _event("e6", "2024-01-05T11:00:00Z")],
    )

    outcome = wh.ingest("events")

    assert [(f.outcome, f.rows_loaded, f.rows_duplicate) for f in outcome.files] == [
        ("skipped", 0, 0),
        ("loaded", 2, 1),
        ("loaded", 2, 1),
        ("loaded", 2, 0),
    ]
    assert wh.rows(
        "SELECT event_id, CAST(event_date AS VARCHAR), _source_file FROM raw.events ORDER BY 1"
    ) == [
        ("e1", "2024-01-01", "product/events/d1.parquet"),
        ("e2", "2024-01-01", "product/events/d1.parquet"),
        ("e3", "2024-01-02", "product/events/d2.parquet"),
        ("e4", "2024-01-03", "product/events/d3.parquet"),
        ("e5", "2024-01-04", "product/events/d4.parquet"),
        ("e6", "2024-01-05", "product/events/d4.parquet"),
    ]
    _assert_lake_consistent(wh)
    _assert_manifest_invariants(wh)


def test_the_write_plan_gives_each_file_its_main_day() -> None:
    d = [date(2024, 1, day) for day in range(1, 6)]
    plan = lake.plan_writes(
        [
            (0, d[0], 10),  # one day
            (1, d[1], 8),  # mostly d1, late rows of d0 and d3
            (1, d[0], 1),
            (1, d[3], 1),
            (2, d[1], 5),  # one day, d1 like file 1
            (3, d[2], 2),  # no day holds half of it
            (3, d[3], 2),
            (3, d[4], 1),
            (4, d[2], 2),  # half of it on d2 (the earlier of the two tied days)
            (4, d[4], 2),
            (5, None, 1),  # a row without a date (cannot be partitioned by a plain COPY)
            (5, d[0], 3),
        ]
    )
    assert plan.main_dates == {0: d[0], 1: d[1], 2: d[1], 4: d[2], 5: d[0]}
    assert plan.mixed == frozenset({1, 3, 4, 5})
    assert plan.files_by_main_date() == {d[0]: (0, 5), d[1]: (1, 2), d[2]: (4,)}


def _rows_select(*events: tuple[str, str]) -> str:
    """A SELECT of the lake's columns, one row per (event_id, occurred_at)."""
    values = ", ".join(f"('{e}', TIMESTAMP '{t}')" for e, t in events) or "('x', NULL)"
    where = "" if events else " WHERE false"
    return (
        "SELECT event_id, 'acc_1' AS account_id, 'u1' AS user_id, 'report_viewed' AS event_name,"
        " occurred_at, '{}' AS properties, 'f.csv' AS _source_file, 1 AS _source_row,"
        " 'sha' AS _file_sha256, TIMESTAMP '2024-02-01' AS _loaded_at"
        f" FROM (VALUES {values}) AS v(event_id, occurred_at){where}"
    )


def test_rows_said_to_be_of_one_day_that_are_not_are_refused(wh: Warehouse) -> None:
    ensure_warehouse(wh.conn, (EVENTS,), lake_dir=_lake(wh))
    part = lake.RowsToWrite(
        _rows_select(("e1", "2024-01-01 10:00:00"), ("e2", "2024-01-02 10:00:00")),
        event_date=date(2024, 1, 1),
    )
    with pytest.raises(lake.LakeError, match="2024-01-02"):
        lake.write_staging(
            wh.conn, _lake(wh), EVENTS, [part], batch_id="b" * 32, loaded_at=datetime(2024, 2, 1)
        )


def test_a_day_without_rows_writes_no_file(wh: Warehouse) -> None:
    ensure_warehouse(wh.conn, (EVENTS,), lake_dir=_lake(wh))
    staged = lake.write_staging(
        wh.conn,
        _lake(wh),
        EVENTS,
        [
            lake.RowsToWrite(_rows_select(), event_date=date(2024, 1, 1)),
            lake.RowsToWrite(
                _rows_select(("e2", "2024-01-02 10:00:00")), event_date=date(2024, 1, 2)
            ),
        ],
        batch_id="c" * 32,
        loaded_at=datetime(2024, 2, 1),
    )
    assert [(f.event_date, f.rows) for f in staged.files] == [(date(2024, 1, 2), 1)]
    assert [p.name for p in staged.directory.rglob("*.parquet")] == [staged.files[0].staged.name]


def test_a_batch_whose_staged_rows_differ_from_the_rows_counted_is_rolled_back(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(wh.landing, "events", "d1.csv", _day_rows())
    real = loader._rows_per_file_and_date

    def one_row_more(*args: Any) -> list[tuple[int, date | None, int]]:
        return [(f, d, n + 1) for f, d, n in real(*args)]

    with monkeypatch.context() as m:
        m.setattr(loader, "_rows_per_file_and_date", one_row_more)
        with pytest.raises(lake.LakeError, match="got 2 rows of the 4 counted"):
            wh.ingest("events")
    assert _lake_files(wh) == []
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0
    assert wh.ingest("events").rows_loaded == 2
