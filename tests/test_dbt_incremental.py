"""The incremental daily facts: an incremental run gives exactly the tables a full build gives.

``int_user_daily_events`` rebuilds only the UTC dates of the events loaded since its last run, and
the daily facts built from it (user and account activity, feature usage) only the dates whose
fact rows changed since theirs (docs/health-model.md "Incremental event facts"). Each test builds one warehouse step by step
(full build, then events land with a later ``_loaded_at``, then an incremental build) and a second
warehouse from the same raw rows in one full build, and compares the daily fact and the health
history row for row. The raw rows are the customer-success fixture of test_dbt_customer_success.

The incremental health chain (spine, measures, scores; docs/health-model.md "Incremental runs")
is checked the same way, scenario by scenario (issue 16 point 5): one base warehouse is built once
per module, each scenario copies it, applies a change (a new day, late events, a corrected entity
row, a new health model, a re-sent file), runs an incremental build, then builds a copy of that
warehouse with --full-refresh from the same raw rows and compares the two row by row.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, failures, query
from pinned_model import pinned_dbt_vars, pinned_health_config
from test_dbt_customer_success import AS_OF, RAW, days, event

from ingestion.contract import table as contract_table
from metrics.dbt_vars import dbt_vars
from metrics.health_config import HealthConfig

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


def append_events(
    warehouse: Path, rows: list[dict[str, Any]], loaded_at: datetime, source_file: str = ""
) -> None:
    """Insert event rows into raw.events as one ingestion load would (new ids, one _loaded_at)."""
    append_rows(warehouse, "product/events", rows, loaded_at, source_file)


def append_rows(
    warehouse: Path,
    table: str,
    rows: list[dict[str, Any]],
    loaded_at: datetime,
    source_file: str = "",
) -> None:
    """Insert rows (new versions of entity rows, new events) into raw.<table> as one ingestion
    load of ``source_file`` would (one _loaded_at)."""
    contract = contract_table(table)
    names = [*contract.column_names]
    con = duckdb.connect(str(warehouse))
    try:
        (start,) = con.execute(f"select count(*) from raw.{contract.name}").fetchone() or (0,)
        values = [
            [
                *(row.get(c) for c in names),
                source_file or f"{contract.name}-{loaded_at:%Y%m%d}.csv",
                start + n,
                "0" * 64,
                loaded_at,
            ]
            for n, row in enumerate(rows, start=1)
        ]
        placeholders = ", ".join("?" for _ in range(len(names) + 4))
        con.executemany(
            f"insert into raw.{contract.name} ({', '.join(names)}, _source_file, _source_row,"
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


# --- the incremental health chain: incremental run == full rebuild, scenario by scenario -------

BASE_AS_OF = (date.fromisoformat(AS_OF) - timedelta(days=1)).isoformat()  # the day before
HEALTH_MODELS = (
    "intermediate.int_account_signal_history",
    "intermediate.int_account_health_spine",
    "intermediate.int_account_health_measures",
    "intermediate.int_account_health_scores",
    "intermediate.int_account_churn_features",
)
#: Bookkeeping of the incremental health models: when and from what a row was built, which
#: legitimately differs between a row kept from an earlier run and the same row rebuilt.
BOOKKEEPING = ("built_from_loaded_at", "code_version", "built_as_of")
INCREMENTAL_MODELS = (*HEALTH_MODELS, "intermediate.int_account_monthly_adoption")
HEALTH_COMPARED = (
    *DAILY_FACTS,
    *HEALTH_MODELS,
    "intermediate.int_account_monthly_adoption",
    "marts.fct_account_health",
    "marts.adoption_alerts",
    "marts.risk_list",
    "marts.expansion_list",
)
#: Only what is compared is built (tests of the models are covered elsewhere).
HEALTH_SELECTION = (
    "--select",
    "+fct_account_health",
    "+adoption_alerts",
    "+risk_list",
    "+expansion_list",
    "+int_account_monthly_adoption",
    "+int_account_churn_features",
    "--exclude-resource-type",
    "test",
    "unit_test",
)


def health_snapshot(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table in a total order, columns by name (a health model change can move
    the history's windowed columns to the end of an incremental table), the health models without
    their bookkeeping."""
    con = duckdb.connect(str(warehouse))
    try:
        snapshot = {}
        for name in HEALTH_COMPARED:
            schema, table = name.split(".")
            columns = [
                c
                for (c,) in query(
                    con,
                    "select column_name from information_schema.columns"
                    f" where table_schema = '{schema}' and table_name = '{table}'"
                    " order by column_name",
                )
                if not (name in INCREMENTAL_MODELS and c in BOOKKEEPING)
            ]
            snapshot[name] = [
                (*columns,),
                *query(con, f"select {', '.join(columns)} from {name} order by all"),
            ]
        return snapshot
    finally:
        con.close()


@pytest.fixture(scope="module")
def health_base(dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base warehouse, built once: the fixture's rows before the new day, the day before."""
    warehouse = tmp_path_factory.mktemp("health_base") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {**RAW, "events": base_events()}, loaded_at=FIRST_LOAD)
    build(dbt, warehouse, *HEALTH_SELECTION, as_of=BASE_AS_OF)
    return warehouse


def changed_health_model() -> dict[str, Any]:
    """The pinned model with other bands and a shorter breadth window (a history window)."""
    model = pinned_health_config().model_dump(mode="json")
    model["health_score"]["bands"]["green"] = 75
    model["health_score"]["usage"]["breadth"]["window_days"] = 14
    return dbt_vars(date.fromisoformat(BASE_AS_OF), HealthConfig.model_validate(model))


def _new_day(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    new_day = [e for e in RAW["events"] if e["occurred_at"].date().isoformat() == NEW_DAY]
    append_events(warehouse, new_day, SECOND_LOAD)
    return {"as_of": AS_OF}


def _week_later(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    """A run a week later with nothing new: the old as_of (a Saturday) stays as a helper date
    (the new as_of - 7), no longer reported."""
    return {"as_of": (date.fromisoformat(BASE_AS_OF) + timedelta(days=7)).isoformat()}


def _late_events(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    late = [e for e in landed_events() if e["occurred_at"].date().isoformat() != NEW_DAY]
    append_events(warehouse, late, SECOND_LOAD)
    return {}


def _corrected_entity_rows(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    """A ticket re-created earlier (and resolved), a business review moved later (only its old
    version has the first date that changes) and a champion who left later than first said: new
    versions (later updated_at) loaded after the base build."""
    ticket = next(t for t in RAW["support_tickets"] if t["ticket_id"] == "t_a1")
    review = next(a for a in RAW["activities"] if a["activity_id"] == "act_a1")
    contact = next(c for c in RAW["contacts"] if c["contact_id"] == "c_r1")
    updated = datetime(2024, 6, 29, 12, 0)
    append_rows(
        warehouse,
        "crm/support_tickets",
        [
            {
                **ticket,
                "created_at": datetime(2024, 5, 20, 9, 0),
                "resolved_at": datetime(2024, 6, 3, 9, 0),
                "status": "resolved",
                "updated_at": updated,
            }
        ],
        SECOND_LOAD,
    )
    append_rows(
        warehouse,
        "crm/activities",
        [{**review, "occurred_at": datetime(2024, 6, 25, 14, 0), "updated_at": updated}],
        SECOND_LOAD,
    )
    append_rows(
        warehouse,
        "crm/contacts",
        [{**contact, "ended_at": date(2024, 6, 26), "updated_at": updated}],
        SECOND_LOAD,
    )
    return {}


def _corrected_billing_rows(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    """An invoice re-exported as failed (its payment failures count from its due date) and a
    seat count corrected on a price row: billing versions loaded after the base build."""
    invoice = next(i for i in RAW["invoices"] if i["invoice_id"] == "in_a1")
    item = next(i for i in RAW["subscription_items"] if i["item_id"] == "si_a")
    append_rows(
        warehouse,
        "billing/invoices",
        [{**invoice, "status": "open", "amount_paid": 0, "attempt_count": 3, "paid_at": None}],
        SECOND_LOAD,
    )
    append_rows(
        warehouse,
        "billing/subscription_items",
        [{**item, "quantity": item["quantity"] + 5}],
        SECOND_LOAD,
    )
    return {}


def _changed_health_model(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    return {"vars_override": changed_health_model()}


def _resent_file(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    """A re-sent events file: new event ids for old dates; and a re-sent users file, same name,
    holding a new version of a user (deprovisioned)."""
    events = [
        event("acc_g", "g1", "login", "2024-06-12", hour=15),
        event("acc_a", "a2", "dashboard_viewed", "2024-06-03", hour=16),
    ]
    append_events(warehouse, events, SECOND_LOAD, source_file="events-20240629.csv")
    user = next(u for u in RAW["users"] if u["account_id"] == "acc_a")
    append_rows(
        warehouse,
        "product/users",
        [
            {
                **user,
                "deprovisioned_at": datetime(2024, 6, 15, 8, 0),
                "updated_at": datetime(2024, 6, 29, 12, 0),
            }
        ],
        SECOND_LOAD,
        source_file="users.csv",
    )
    return {}


def _as_of_back_and_forth(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
    """A run as of an earlier date (15 May: the later dates and months go, May is cut at the
    15th), then the run compared, back as of the base date (May is whole again)."""
    build(dbt, warehouse, *HEALTH_SELECTION, as_of="2024-05-15")
    return {}


SCENARIOS: dict[str, Callable[[Dbt, Path], dict[str, Any]]] = {
    "new_day": _new_day,
    "week_later": _week_later,
    "late_events": _late_events,
    "corrected_entity_rows": _corrected_entity_rows,
    "corrected_billing_rows": _corrected_billing_rows,
    "changed_health_model": _changed_health_model,
    "resent_file": _resent_file,
    "as_of_back_and_forth": _as_of_back_and_forth,
}


def copy_warehouse(source: Path, target: Path) -> None:
    """Copy a warehouse file after a checkpoint: the dbt run's connection in this process may
    still hold the last writes in the write-ahead log, which a file copy would miss."""
    con = duckdb.connect(str(source))
    try:
        con.execute("checkpoint")
    finally:
        con.close()
    shutil.copy(source, target)


def run_scenario(
    dbt: Dbt, base: Path, work: Path, change: Callable[[Dbt, Path], dict[str, Any]]
) -> tuple[Path, Path]:
    """Copy the base, apply the change, build incrementally; copy that and rebuild it in full."""
    incremental = work / "incremental" / "warehouse.duckdb"
    full = work / "full" / "warehouse.duckdb"
    incremental.parent.mkdir()
    full.parent.mkdir()
    copy_warehouse(base, incremental)
    options = {"as_of": BASE_AS_OF, **change(dbt, incremental)}
    build(dbt, incremental, *HEALTH_SELECTION, **options)
    copy_warehouse(incremental, full)
    build(dbt, full, *HEALTH_SELECTION, "--full-refresh", **options)
    return incremental, full


def assert_same_tables(incremental: Path, full: Path) -> None:
    got, want = health_snapshot(incremental), health_snapshot(full)
    assert got["marts.fct_account_health"], "the fixture has scored accounts"
    for name in HEALTH_COMPARED:
        assert got[name] == want[name], name


def built_from(warehouse: Path) -> dict[str, dict[datetime, int]]:
    """Rows of each incremental health model by the load they were built from."""
    con = duckdb.connect(str(warehouse))
    try:
        return {
            name: dict(
                query(con, f"select built_from_loaded_at, count(*) from {name} group by all")
            )
            for name in HEALTH_MODELS
        }
    finally:
        con.close()


CHURN_FEATURES = "intermediate.int_account_churn_features"
#: The scenarios whose load brings event names the base never saw (late_events: comment_added,
#: api_request).
NEW_EVENT_NAMES = ("late_events",)

#: Two or three builds each (~6 s a build): these run in the e2e tier, the others by default.
E2E_SCENARIOS = ("late_events", "resent_file", "as_of_back_and_forth", "corrected_billing_rows")


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(s, marks=pytest.mark.e2e) if s in E2E_SCENARIOS else s for s in SCENARIOS],
)
def test_incremental_health_chain_equals_a_full_rebuild(
    dbt: Dbt, health_base: Path, tmp_path: Path, scenario: str
) -> None:
    incremental, full = run_scenario(dbt, health_base, tmp_path, SCENARIOS[scenario])
    assert_same_tables(incremental, full)
    con = duckdb.connect(str(incremental))
    try:
        versions = query(
            con,
            "select health_model_version, count(*) from intermediate.int_account_health_scores"
            " group by all",
        )
    finally:
        con.close()
    if scenario == "changed_health_model":
        # every row rescored under the new model (no load since the base build)
        version = changed_health_model()["health_model_version"]["version"]
        assert [v for v, _ in versions] == [version]
    elif scenario in ("week_later", "as_of_back_and_forth"):
        # nothing loaded: no account invalidated, only the dates' rows changed
        con = duckdb.connect(str(incremental))
        try:
            assert query(con, "select * from intermediate.int_account_health_invalidation") == []
        finally:
            con.close()
    else:
        # incremental: the rows of the changed accounts and dates were rebuilt from the new load,
        # the others kept from the base build
        for name, counts in built_from(incremental).items():
            if name == CHURN_FEATURES and scenario in NEW_EVENT_NAMES:
                # a new event name is a new feature of every pair: every row rebuilt
                assert set(counts) == {SECOND_LOAD}, (name, counts)
            else:
                assert set(counts) == {FIRST_LOAD, SECOND_LOAD}, (name, counts)


def not_activity_model() -> dict[str, Any]:
    """The pinned model plus an event that counts as no activity and maps to no feature: it
    reaches only the events per name (the churn features' event_30d:ad_viewed)."""
    model = pinned_health_config().model_dump(mode="json")
    model["events"]["ad_viewed"] = {"feature": None, "core": False, "counts_as_activity": False}
    return dbt_vars(date.fromisoformat(BASE_AS_OF), HealthConfig.model_validate(model))


@pytest.mark.e2e
def test_late_events_that_are_no_activity_recompute_the_churn_features(
    dbt: Dbt, tmp_path: Path
) -> None:
    """Late events of a name that is neither activity nor a feature change no daily activity or
    feature usage, only the events per name: the invalidation reads those too."""
    vars_ = not_activity_model()
    base = tmp_path / "base" / "warehouse.duckdb"
    base.parent.mkdir()
    ad_view = event("acc_a", "a1", "ad_viewed", "2024-06-10")
    create_raw_warehouse(base, {**RAW, "events": [*base_events(), ad_view]}, loaded_at=FIRST_LOAD)
    build(dbt, base, *HEALTH_SELECTION, as_of=BASE_AS_OF, vars_override=vars_)

    def late_ad_views(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
        append_events(warehouse, [event("acc_a", "a1", "ad_viewed", "2024-06-12")], SECOND_LOAD)
        return {"vars_override": vars_}

    incremental, full = run_scenario(dbt, base, tmp_path, late_ad_views)
    assert_same_tables(incremental, full)
    con = duckdb.connect(str(incremental))
    try:
        counted = query(
            con,
            f"select max(value) from {CHURN_FEATURES}"
            " where account_id = 'acc_a' and feature = 'event_30d:ad_viewed'",
        )
    finally:
        con.close()
    assert counted == [(2.0,)], "both ad views are in acc_a's 30-day window on some date"


@pytest.mark.parametrize("fact", DAILY_FACTS)
def test_a_daily_fact_grain_test_reads_the_dates_of_the_latest_load(
    dbt: Dbt, incremental: Path, tmp_path: Path, fact: str
) -> None:
    """A date is written whole by the run that rebuilds it, so the grain test groups only the
    dates holding rows of the latest load: a duplicate there fails it; one in a date only the
    first load (a day earlier) wrote is outside what it reads (the full build tested that)."""
    warehouse = tmp_path / "warehouse.duckdb"
    copy_warehouse(incremental, warehouse)
    first_load_only = (
        f"select max(activity_date) from {fact} where activity_date not in"
        f" (select activity_date from {fact} where max_loaded_at = timestamp '{SECOND_LOAD}')"
    )
    latest_load = (
        f"select max(activity_date) from {fact} where max_loaded_at = timestamp '{SECOND_LOAD}'"
    )
    selection = ("--select", f"{fact.split('.')[1]},test_name:unique_combination_of_columns")
    for day_sql, caught in ((first_load_only, False), (latest_load, True)):
        con = duckdb.connect(str(warehouse))
        try:
            con.execute(
                f"insert into {fact} select * from {fact} where activity_date = ({day_sql}) limit 1"
            )
        finally:
            con.close()
        assert dbt.invoke(warehouse, "test", *selection).success is not caught, day_sql


def eur_fixture() -> dict[str, list[dict[str, Any]]]:
    """The fixture's raw rows with acc_g billed in EUR (4 seats x 25.00, from January) at 1.1 USD
    a euro for every month from August 2023 to July 2024."""
    months = [date(2023 + (7 + n) // 12, (7 + n) % 12 + 1, 1) for n in range(12)]
    return {
        **RAW,
        "events": base_events(),
        "customers": [
            {**c, "currency": "EUR"} if c["account_id"] == "acc_g" else c for c in RAW["customers"]
        ],
        "subscription_items": [
            {**i, "currency": "EUR"} if i["item_id"] == "si_g" else i
            for i in RAW["subscription_items"]
        ],
        "fx_rates": [{"currency": "EUR", "month": m, "rate_to_usd": "1.10000000"} for m in months],
    }


def test_a_corrected_fx_rate_recomputes_only_the_mrr_readers_from_its_month(
    dbt: Dbt, tmp_path: Path
) -> None:
    """A new rate for June changes MRR from 1 June on, for every account that may bill in the
    currency, and nothing the signal history reads: the chain's MRR readers recompute every
    account from June (earlier rows and the whole signal history are kept), and the result is
    the full rebuild's."""
    base = tmp_path / "base" / "warehouse.duckdb"
    base.parent.mkdir()
    create_raw_warehouse(base, eur_fixture(), loaded_at=FIRST_LOAD)
    build(dbt, base, *HEALTH_SELECTION, as_of=BASE_AS_OF)

    def corrected_june_rate(dbt: Dbt, warehouse: Path) -> dict[str, Any]:
        rate = {"currency": "EUR", "month": date(2024, 6, 1), "rate_to_usd": "1.20000000"}
        append_rows(warehouse, "billing/fx_rates", [rate], SECOND_LOAD)
        return {}

    incremental, full = run_scenario(dbt, base, tmp_path, corrected_june_rate)
    assert_same_tables(incremental, full)
    spine = "intermediate.int_account_health_spine"
    mrr_on_june_dates = (
        f"select as_of_date, mrr_usd from {spine}"
        " where account_id = 'acc_g' and as_of_date >= date '2024-06-01' order by as_of_date"
    )
    con = duckdb.connect(str(incremental))
    try:
        invalidation = query(
            con,
            "select account_id, recompute_from"
            " from intermediate.int_account_health_invalidation where account_id is null",
        )
        june = query(con, mrr_on_june_dates)
        rebuilt = {
            name: query(
                con,
                f"select {'changed_on' if name.endswith('signal_history') else 'as_of_date'}"
                f" >= date '2024-06-01', built_from_loaded_at, count(*) from {name}"
                " group by all order by all",
            )
            for name in HEALTH_MODELS
        }
    finally:
        con.close()
    assert invalidation == [(None, date(2024, 6, 1))]
    assert june and all(mrr == Decimal("120.0000") for _, mrr in june), june
    for name, groups in rebuilt.items():
        if name.endswith("signal_history"):
            assert {loaded for _, loaded, _ in groups} == {FIRST_LOAD}, (name, groups)
        else:
            # before June kept from the base build, June rebuilt from the new load
            assert [(june, loaded) for june, loaded, _ in groups] == [
                (False, FIRST_LOAD),
                (True, SECOND_LOAD),
            ], (name, groups)


def test_the_churn_features_grain_test_reads_the_pairs_built_last(
    dbt: Dbt, health_base: Path, tmp_path: Path
) -> None:
    """The churn features' uniqueness test groups only the (account, date) pairs holding rows of
    the latest build (a rebuilt pair is written whole, next to the rows it may duplicate): a
    duplicate there fails it; one in a pair only the base build wrote is outside what it reads,
    even on a date where another account's pair was rebuilt."""
    warehouse = tmp_path / "warehouse.duckdb"
    copy_warehouse(health_base, warehouse)
    # one late login of acc_a (a name the base knows): acc_a's pairs from 10 May are rebuilt
    append_events(warehouse, [event("acc_a", "a1", "login", "2024-05-10", hour=18)], SECOND_LOAD)
    build(dbt, warehouse, *HEALTH_SELECTION, as_of=BASE_AS_OF)
    latest = f"built_from_loaded_at = timestamp '{SECOND_LOAD}'"
    kept_beside_rebuilt = (
        f"not exists (select 1 from {CHURN_FEATURES} as n where n.{latest}"
        " and n.account_id = f.account_id and n.as_of_date = f.as_of_date)"
        f" and as_of_date in (select as_of_date from {CHURN_FEATURES} where {latest})"
    )
    selection = (
        "--select",
        "int_account_churn_features,test_name:unique_combination_of_columns",
    )
    for where, caught in ((kept_beside_rebuilt, False), (latest, True)):
        con = duckdb.connect(str(warehouse))
        try:
            (inserted,) = con.execute(
                f"insert into {CHURN_FEATURES} select * from {CHURN_FEATURES} as f"
                f" where {where} limit 1"
            ).fetchone() or (0,)
        finally:
            con.close()
        assert inserted == 1, where
        assert dbt.invoke(warehouse, "test", *selection, as_of=BASE_AS_OF).success is not caught, (
            where
        )
