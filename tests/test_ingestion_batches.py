"""The large events table loads its Parquet files in batches, with the same per-file accounting
as a file-by-file load: what each file read, loaded, quarantined and repeated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingestion_fixtures import Warehouse, open_warehouse, table_path, write_parquet

from ingestion import loader

_T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z in microseconds


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(tmp_path)


def _event_columns(ids: list[str], *, start: int = 0) -> dict[str, Any]:
    n = len(ids)
    return {
        "event_id": ids,
        "account_id": ["acc_1"] * n,
        "user_id": ["u1"] * n,
        "event_name": ["report_viewed"] * n,
        "occurred_at": pa.array(
            [_T0 + (start + i) * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC")
        ),
        "properties": ['{"client": "web"}'] * n,
    }


def _events(wh: Warehouse, name: str, ids: list[str], **overrides: list[Any]) -> Path:
    columns = _event_columns(ids)
    columns.update(overrides)
    return write_parquet(wh.landing, "events", name, columns)


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Members per call of the checking statement."""
    sizes: list[int] = []
    real = loader.stage_flagged_rows

    def spy(conn, batch):  # type: ignore[no-untyped-def]
        sizes.append(len(batch.members))
        return real(conn, batch)

    monkeypatch.setattr(loader, "stage_flagged_rows", spy)
    return sizes


def test_event_files_load_in_one_batch_with_per_file_accounting(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _count_batches(monkeypatch)
    _events(wh, "d1.parquet", ["e1", "e2", "e3"])
    # d2: e3 re-delivered from d1, e4 twice in the file, a row without user_id
    _events(wh, "d2.parquet", ["e3", "e4", "e4", "e9"], user_id=["u1", "u1", "u1", None])
    _events(wh, "d3.parquet", ["e5"])

    outcome = wh.ingest("events")

    assert batches == [3]
    assert [
        (f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
        for f in outcome.files
    ] == [
        ("product/events/d1.parquet", 3, 3, 0, 0),
        ("product/events/d2.parquet", 4, 2, 2, 1),
        ("product/events/d3.parquet", 1, 1, 0, 0),
    ]
    assert outcome.files[1].quarantine_by_rule == {
        "duplicate_key_in_file(event_id)": 1,
        "required(user_id)": 1,
    }
    assert wh.rows("SELECT event_id, _source_file, _source_row FROM raw.events ORDER BY 1") == [
        ("e1", "product/events/d1.parquet", 1),
        ("e2", "product/events/d1.parquet", 2),
        ("e3", "product/events/d1.parquet", 3),
        ("e4", "product/events/d2.parquet", 2),
        ("e5", "product/events/d3.parquet", 1),
    ]
    assert wh.rows(
        "SELECT source_file, source_row, rule, file_version FROM raw.quarantine ORDER BY 2"
    ) == [
        ("product/events/d2.parquet", 3, "duplicate_key_in_file", 1),
        ("product/events/d2.parquet", 4, "required", 1),
    ]
    manifest = wh.rows(
        "SELECT source_file, rows_read, rows_loaded, rows_quarantined, rows_duplicate"
        " FROM raw.ingest_manifest ORDER BY 1"
    )
    assert manifest == [
        (f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
        for f in outcome.files
    ]


def test_native_parquet_timestamps_load_as_naive_utc_like_text(wh: Warehouse) -> None:
    _events(wh, "typed.parquet", ["e1"])
    write_parquet(
        wh.landing,
        "events",
        "text.parquet",
        {**_event_columns(["e2"]), "occurred_at": ["2023-11-15T00:13:20+02:00"]},
    )
    wh.ingest("events")
    assert wh.rows("SELECT event_id, CAST(occurred_at AS VARCHAR) FROM raw.events ORDER BY 1") == [
        ("e1", "2023-11-14 22:13:20"),
        ("e2", "2023-11-14 22:13:20"),
    ]


def test_batches_are_split_by_schema_and_size(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _count_batches(monkeypatch)
    for day in range(4):
        _events(wh, f"d{day}.parquet", [f"e{day}"])
    # Same columns, but event_id written as integers: another schema, read on its own.
    write_parquet(
        wh.landing,
        "events",
        "d9.parquet",
        {**_event_columns(["x"]), "event_id": pa.array([99], pa.int64())},
    )
    size = (wh.landing / "product" / "events" / "d0.parquet").stat().st_size
    monkeypatch.setattr(loader, "BATCH_MAX_BYTES", 2 * size)

    outcome = wh.ingest("events")

    assert sorted(batches) == [1, 2, 2]
    assert outcome.rows_loaded == 5
    assert wh.scalar("SELECT count(DISTINCT event_id) FROM raw.events") == 5


def test_an_unreadable_file_in_a_batch_is_refused_alone(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _count_batches(monkeypatch)
    _events(wh, "d1.parquet", ["e1", "e2"])
    ids = [f"c{i}" for i in range(5000)]
    corrupt = table_path(wh.landing, "events", "d2.parquet")
    pq.write_table(pa.table(_event_columns(ids)), corrupt, compression="zstd")
    data = bytearray(corrupt.read_bytes())
    data[40:400] = b"Z" * 360  # a data page, not the footer: the schema still reads
    corrupt.write_bytes(bytes(data))
    _events(wh, "d3.parquet", ["e3"])

    outcome = wh.ingest("events")

    assert batches == [3, 1, 1, 1]  # the batch failed and was rolled back, then file by file
    assert [(f.source_file, f.outcome, f.rows_loaded) for f in outcome.files] == [
        ("product/events/d1.parquet", "loaded", 2),
        ("product/events/d2.parquet", "refused", 0),
        ("product/events/d3.parquet", "loaded", 1),
    ]
    assert "product/events/d2.parquet: cannot be read as PARQUET" in outcome.files[1].message
    assert wh.scalar("SELECT count(*) FROM raw.events") == 3
    assert wh.rows("SELECT source_file, status FROM raw.ingest_manifest ORDER BY 1") == [
        ("product/events/d1.parquet", "loaded"),
        ("product/events/d2.parquet", "refused"),
        ("product/events/d3.parquet", "loaded"),
    ]


def test_a_later_batch_skips_keys_already_in_raw(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _events(wh, "d1.parquet", ["e1", "e2"])
    wh.ingest("events")
    _events(wh, "d2.parquet", ["e2", "e3"])
    _events(wh, "d3.parquet", ["e3", "e4"])
    batches = _count_batches(monkeypatch)

    outcome = wh.ingest("events")

    assert batches == [2]
    assert [(f.outcome, f.rows_loaded, f.rows_duplicate) for f in outcome.files] == [
        ("skipped", 0, 0),
        ("loaded", 2, 1),
        ("loaded", 2, 1),
    ]
    assert wh.rows("SELECT event_id, _source_file FROM raw.events ORDER BY 1") == [
        ("e1", "product/events/d1.parquet"),
        ("e2", "product/events/d1.parquet"),
        ("e3", "product/events/d2.parquet"),
        ("e4", "product/events/d3.parquet"),
    ]


def test_a_crash_in_a_batch_leaves_nothing_and_the_rerun_loads_every_file(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _events(wh, "d1.parquet", ["e1", "e2"])
    _events(wh, "d2.parquet", ["e3"])

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("simulated crash after the rows were inserted")

    monkeypatch.setattr(loader, "insert_quarantine", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        wh.ingest("events")
    assert wh.scalar("SELECT count(*) FROM raw.events") == 0
    assert wh.scalar("SELECT count(*) FROM raw.ingest_manifest") == 0

    monkeypatch.undo()
    assert wh.ingest("events").rows_loaded == 3
    assert wh.scalar("SELECT count(*) FROM raw.events") == 3
