"""The events' uniqueness test reads the lake partitions of the latest load only
(dbt_project/tests/generic/unique_in_latest_load.sql): ingestion keeps event_id unique across the
whole lake, so a duplicate can only come in with a load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, failures

AS_OF = "2024-06-30"
TEST = "unique_in_latest_load_stg_product__events_event_id__events"


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)


def _event(event_id: str, day: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": "acc_1",
        "user_id": "usr_1",
        "event_name": "login",
        "occurred_at": f"{day} 10:00:00",
    }


def _warehouse(
    tmp_path: Path,
    events: list[dict[str, Any]],
    loads: dict[str, str] | None,
    other_table_loads: dict[str, str] | None = None,
) -> Path:
    """raw.events with ``events``; with ``loads`` (event date -> when its file was loaded), a
    lake registry naming them."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(path, {"events": events})
    if loads is not None:
        with duckdb.connect(str(path)) as con:
            con.execute(
                "create table raw.lake_files (path varchar primary key, table_name varchar,"
                " event_date date, batch_id varchar, loaded_at timestamp, rows bigint,"
                " bytes bigint)"
            )
            for table, table_loads in (("events", loads), ("clicks", other_table_loads or {})):
                for day, loaded_at in table_loads.items():
                    con.execute(
                        "insert into raw.lake_files values (?, ?, ?, ?, ?, 1, 1)",
                        [f"product/{table}/event_date={day}/p.parquet", table, day, day, loaded_at],
                    )
    return path


def _uniqueness_failed(dbt: Dbt, warehouse: Path) -> bool:
    result = dbt.build(warehouse, "--select", "stg_product__events")
    assert result.result is not None, result.exception
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert TEST in statuses, sorted(statuses)
    return statuses[TEST] == "fail"


OLD, NEW = "2024-06-01", "2024-06-29"
# two loads minutes apart (a full load, then the next day's): only the latest one's partitions
LOADS = {OLD: "2024-06-30 00:50:00", NEW: "2024-06-30 01:00:00"}


def test_a_duplicate_in_the_latest_loads_partitions_fails(dbt: Dbt, tmp_path: Path) -> None:
    events = [_event("e1", OLD), _event("e2", NEW), _event("e2", NEW)]
    assert _uniqueness_failed(dbt, _warehouse(tmp_path, events, LOADS))


def test_partitions_loaded_earlier_are_not_read_again(dbt: Dbt, tmp_path: Path) -> None:
    # ingestion never writes this (it anti-joins every load against the whole lake); the test
    # shows the scope: the old partition is not scanned
    events = [_event("e1", OLD), _event("e1", OLD), _event("e2", NEW)]
    assert not _uniqueness_failed(dbt, _warehouse(tmp_path, events, LOADS))


def test_without_a_lake_registry_every_event_is_checked(dbt: Dbt, tmp_path: Path) -> None:
    events = [_event("e1", OLD), _event("e1", OLD), _event("e2", NEW)]
    assert _uniqueness_failed(dbt, _warehouse(tmp_path, events, None))
    clean = [_event("e1", OLD), _event("e2", NEW)]
    result = dbt.build(
        _warehouse(tmp_path / "clean", clean, None), "--select", "stg_product__events"
    )
    assert result.success, failures(result)


def test_a_later_load_of_another_lake_table_does_not_move_the_scope(
    dbt: Dbt, tmp_path: Path
) -> None:
    events = [_event("e1", OLD), _event("e2", NEW), _event("e2", NEW)]
    later = {"2024-05-01": "2024-06-30 02:00:00"}
    assert _uniqueness_failed(dbt, _warehouse(tmp_path, events, LOADS, other_table_loads=later))
