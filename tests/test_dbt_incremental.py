"""The incremental daily facts: an incremental run gives exactly the tables a full build gives.

``int_user_daily_events`` rebuilds only the UTC dates of the events loaded since its last run, and
the daily facts built from it (user and account activity, feature usage) only the dates whose
fact rows changed since theirs (docs/health-model.md "Incremental event facts"). Each test builds one warehouse step by step
(full build, then events land with a later ``_loaded_at``, then an incremental build) and a second
warehouse from the same raw rows in one full build, and compares the daily fact and the health
history row for row. The raw rows are the customer-success fixture of test_dbt_customer_success.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, failures, query
from pinned_model import pinned_dbt_vars
from test_dbt_customer_success import AS_OF, RAW, days, event

from ingestion.contract import table as contract_table

FIRST_LOAD = datetime(2024, 6, 29, 23, 0)
SECOND_LOAD = datetime(2024, 6, 30, 23, 0)
THIRD_LOAD = datetime(2024, 7, 1, 23, 0)
NEW_DAY = "2024-06-30"
FACT = "intermediate.int_user_daily_events"
FEATURE_USAGE = "intermediate.int_account_daily_feature_usage"
DAILY_FACTS = (
    FACT,
    "intermediate.int_user_daily_activity",
    "intermediate.int_account_daily_activity",
    FEATURE_USAGE,
)
COMPARED = (*DAILY_FACTS, "marts.fct_account_health")


def base_events() -> list[dict[str, Any]]:
    """The fixture's events before the new day."""
    return [e for e in RAW["events"] if e["occurred_at"].date().isoformat() != NEW_DAY]


def landed_events() -> list[dict[str, Any]]:
    """What lands in the second load: the new day, plus late events for old days (one for a day
    that had events of the same user and name, some for days and users without any yet)."""
    new_day = [e for e in RAW["events"] if e["occurred_at"].date().isoformat() == NEW_DAY]
    late = [
        event("acc_a", "a1", "login", "2024-05-10", hour=18),  # adds to an existing row
        event("acc_a", "a6", "comment_added", "2024-06-11"),  # a6's first event
        *[event("acc_r", "r5", "api_request", day) for day in days("2024-06-11", "2024-06-20")],
    ]
    return new_day + late


def append_events(warehouse: Path, rows: list[dict[str, Any]], loaded_at: datetime) -> None:
    """Insert event rows into raw.events as one ingestion load would (new ids, one _loaded_at)."""
    names = [*contract_table("product/events").column_names]
    con = duckdb.connect(str(warehouse))
    try:
        (start,) = con.execute("select count(*) from raw.events").fetchone() or (0,)
        values = [
            [
                *(row.get(c) for c in names),
                f"events-{loaded_at:%Y%m%d}.csv",
                start + n,
                "0" * 64,
                loaded_at,
            ]
            for n, row in enumerate(rows, start=1)
        ]
        placeholders = ", ".join("?" for _ in range(len(names) + 4))
        con.executemany(
            f"insert into raw.events ({', '.join(names)}, _source_file, _source_row,"
            f" _file_sha256, _loaded_at) values ({placeholders})",
            values,
        )
    finally:
        con.close()


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)


def build(dbt: Dbt, warehouse: Path, *args: str, **kwargs: Any) -> Any:
    result = dbt.build(warehouse, *args, **kwargs)
    assert result.success, failures(result)
    return result


def snapshot(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table, all columns, in a total order."""
    con = duckdb.connect(str(warehouse))
    try:
        return {name: query(con, f"select * from {name} order by all") for name in COMPARED}
    finally:
        con.close()


def compiled_sql(result: Any, model: str) -> str:
    for r in result.result.results:
        if r.node.name == model:
            return r.node.compiled_code
    raise AssertionError(f"{model} did not run")


def date_ranges(sql: str, column: str = "occurred_at") -> list[tuple[str, str]]:
    """The (first date, day after the last) ranges of dates an incremental run read."""
    return re.findall(
        rf"{column} >= (?:timestamp|date) '([0-9-]+)' and {column} < (?:timestamp|date) '([0-9-]+)'",
        sql,
    )


INCREMENTAL_SQL: dict[str, str] = {}


@pytest.fixture(scope="module")
def incremental(dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Full build on the first load, then the second load lands and an incremental build runs."""
    warehouse = tmp_path_factory.mktemp("incremental") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    build(dbt, warehouse)
    append_events(warehouse, landed_events(), SECOND_LOAD)
    result = build(dbt, warehouse)
    for model in DAILY_FACTS:
        INCREMENTAL_SQL[model] = compiled_sql(result, model.split(".")[1])
    yield warehouse


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, dbt: Dbt) -> Path:
    """The same raw rows (and load times), built once from nothing."""
    warehouse = tmp_path_factory.mktemp("full") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    append_events(warehouse, landed_events(), SECOND_LOAD)
    build(dbt, warehouse)
    return warehouse


def test_incremental_run_after_a_new_day_and_late_events_equals_a_full_build(
    incremental: Path, full: Path
) -> None:
    # only the touched dates were read: the late 10 May, 11 .. 20 June, and the new day, by the
    # event fact from the events and by the other daily facts from the fact(s) they are built on
    touched = [
        ("2024-05-10", "2024-05-11"),
        ("2024-06-11", "2024-06-21"),
        ("2024-06-30", "2024-07-01"),
    ]
    assert date_ranges(INCREMENTAL_SQL[FACT]) == touched
    for model in DAILY_FACTS[1:]:
        assert date_ranges(INCREMENTAL_SQL[model], "activity_date") == touched, model
    got, want = snapshot(incremental), snapshot(full)
    assert got[FACT], "the fixture has events"
    for name in COMPARED:
        assert got[name] == want[name], name
    # the late events are counted: a1's second login on 10 May, a6 and r5 on old days
    con = duckdb.connect(str(incremental))
    try:
        assert query(
            con,
            f"select events, max_loaded_at from {FACT} where user_id = 'a1'"
            " and activity_date = '2024-05-10' and event_name = 'login'",
        ) == [(2, SECOND_LOAD)]
        assert query(con, f"select count(*) from {FACT} where user_id = 'r5'") == [(10,)]
        assert query(con, f"select max(max_loaded_at) from {FACT}") == [(SECOND_LOAD,)]
    finally:
        con.close()


def test_a_run_with_nothing_new_changes_nothing(dbt: Dbt, incremental: Path) -> None:
    before = snapshot(incremental)
    result = build(dbt, incremental, "--select", *(m.split(".")[1] for m in DAILY_FACTS))
    assert date_ranges(compiled_sql(result, "int_user_daily_events")) == []  # no date read
    for model in DAILY_FACTS[1:]:
        sql = compiled_sql(result, model.split(".")[1])
        assert date_ranges(sql, "activity_date") == [], model
        assert "where false" in " ".join(sql.split()), model
    assert snapshot(incremental) == before


def _feature_map_without(feature: str) -> list[dict[str, Any]]:
    """The configured feature map with one feature's events mapped to no feature."""
    return [
        {**row, "feature": None} if row["feature"] == feature else row
        for row in pinned_dbt_vars(date.fromisoformat(AS_OF))["feature_map"]
    ]


def test_a_new_feature_map_rebuilds_every_date_of_the_feature_usage(
    dbt: Dbt, tmp_path: Path
) -> None:
    """Rows depend on the map: after a change, the run deletes the old rows and rebuilds every
    date, giving what a full build under the new map gives (even for dates left with none)."""
    new_map = {"feature_map": _feature_map_without("reports")}
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    build(dbt, warehouse)
    before = snapshot(warehouse)[FEATURE_USAGE]
    assert any(row[2] == "reports" for row in before), "the fixture uses the reports feature"
    build(dbt, warehouse, "--select", FEATURE_USAGE.split(".")[1], vars_override=new_map)

    reference = tmp_path / "full" / "warehouse.duckdb"
    reference.parent.mkdir()
    create_raw_warehouse(reference, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    build(dbt, reference, vars_override=new_map)
    got, want = snapshot(warehouse)[FEATURE_USAGE], snapshot(reference)[FEATURE_USAGE]
    assert got == want
    assert not any(row[2] == "reports" for row in got)
    assert len(got) < len(before)


def test_full_refresh_rebuilds_the_same_table(dbt: Dbt, incremental: Path, full: Path) -> None:
    build(dbt, incremental, "--full-refresh")
    assert snapshot(incremental) == snapshot(full)


def test_events_landing_on_an_empty_warehouse(dbt: Dbt, tmp_path: Path) -> None:
    """Empty raw: the fact is empty; a run with nothing new keeps it empty; then events land."""
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": []}, loaded_at=FIRST_LOAD)
    build(dbt, warehouse)
    build(dbt, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        assert query(con, f"select count(*) from {FACT}") == [(0,)]
    finally:
        con.close()
    append_events(warehouse, base_events(), SECOND_LOAD)
    append_events(warehouse, landed_events(), THIRD_LOAD)
    build(dbt, warehouse)

    reference = tmp_path / "full" / "warehouse.duckdb"
    reference.parent.mkdir()
    create_raw_warehouse(reference, {**RAW, "events": []}, loaded_at=FIRST_LOAD)
    append_events(reference, base_events(), SECOND_LOAD)
    append_events(reference, landed_events(), THIRD_LOAD)
    build(dbt, reference)
    assert snapshot(warehouse) == snapshot(reference)


def test_a_table_built_before_the_watermark_column_is_upgraded(dbt: Dbt, tmp_path: Path) -> None:
    """A fact built by the previous (table) version has no max_loaded_at: the next run rebuilds
    every date and adds the column, giving the table a full build gives."""
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    build(dbt, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"alter table {FACT} drop column max_loaded_at")
    finally:
        con.close()
    append_events(warehouse, landed_events(), SECOND_LOAD)
    build(dbt, warehouse)

    reference = tmp_path / "full" / "warehouse.duckdb"
    reference.parent.mkdir()
    create_raw_warehouse(reference, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    append_events(reference, landed_events(), SECOND_LOAD)
    build(dbt, reference)
    got = duckdb.connect(str(warehouse))
    try:
        # column order may differ after the upgrade: compare by name
        fact = query(
            got,
            "select account_id, user_id, activity_date, event_name, events, max_loaded_at"
            f" from {FACT} order by all",
        )
    finally:
        got.close()
    assert fact == snapshot(reference)[FACT]
