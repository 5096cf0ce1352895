"""History stays point-in-time: rows dated after D never change a result as of D, in every mart.

One warehouse is built from a small generated dataset as of D (a day in the middle of a month, so
data after D already exists in the extracts), every mart is snapshotted, then later-dated rows
are added to EVERY raw table and the warehouse is rebuilt as of D (incremental models pick the
new rows up, as a real run would). Every mart must be identical, row for row, value for value.

The later rows are copies of a sample of each table's rows with fresh keys and every date and
timestamp column (read from the extract contract) moved past D, twice: once with the rows'
spacing kept, once packed on the days right after D (see :func:`late_rows_sql`); new accounts
created after D,
users provisioned, events, tickets, NPS responses, contacts, meetings, deals, subscriptions,
price versions and invoices dated after D on the EXISTING accounts, users and subscriptions (the
foreign keys are kept, so a model that forgets a filter on D sees them), plus FX rates for
months after the last one. The marts are discovered from the dbt manifest (every model under
models/marts), so a new mart is covered without touching this test.

The same build also checks the marts' shapes (docs/marts.md): every `_by_segment` mart adds up
to its totals mart, no mart holds a segment `all`, every mart states its grain and tests it, and
the lists' long-form marts are checked in tests/test_dbt_customer_success.py, whose fixture has
list rows with several reasons and signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, failures, query

from ingestion import lake
from ingestion.contract import TABLES, ColumnType, TableSchema
from ingestion.loader import ingest_table
from ingestion.synthetic import GeneratorConfig, generate_extracts

#: Small and cheap: a few accounts over five months; D is mid-April, data runs to May 31.
SAMPLE = GeneratorConfig(accounts=20, months=5, seed=11, start=date(2024, 1, 1))
AS_OF = date(2024, 4, 17)
LATE_LOAD = datetime(2030, 1, 1)
#: Rows copied per table (events: more, they are many and cheap).
SAMPLE_ROWS = 40
SAMPLE_EVENTS = 2000
DATED = (ColumnType.DATE, ColumnType.TIMESTAMP)
LATE = "late_"
#: Churn horizon of the runs: short enough that dates before D have a complete outcome, so the
#: backtest marts have rows (the default 90 days reaches past D on this sample).
HORIZON_DAYS = 28
#: Marts with no rows without a fitted churn model (no scorer has a probability to calibrate).
EMPTY_WITHOUT_CHURN_MODEL = {
    "fct_health_backtest_calibration",
    "fct_health_backtest_calibration_by_segment",
}


@dataclass(frozen=True)
class Built:
    dbt: Dbt
    warehouse: Path
    marts: tuple[str, ...]


@dataclass(frozen=True)
class Compared:
    """The warehouse and every mart as of D, before and after the later rows were added."""

    built: Built
    before: dict[str, list[tuple[Any, ...]]]
    after: dict[str, list[tuple[Any, ...]]]
    #: later rows added per raw table
    added: dict[str, int]


def _ingest(landing: Path, root: Path) -> Path:
    warehouse = root / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        for schema in TABLES:
            outcome = ingest_table(con, schema, landing, validation_dir=root / "validation")
            assert outcome.files_refused == 0, schema.name
    finally:
        con.close()
    return warehouse


def mart_names(dbt: Dbt) -> tuple[str, ...]:
    """Every model under models/marts, from the parsed manifest (as ``mart_names()`` reads it)."""
    return tuple(
        sorted(
            node.name
            for node in dbt.manifest.nodes.values()
            if node.resource_type == "model" and node.fqn[1:2] == ["marts"]
        )
    )


def run(built: Built) -> None:
    result = built.dbt.invoke(
        built.warehouse, "run", vars_override={"churn_horizon_days": HORIZON_DAYS}
    )
    assert result.success, failures(result)


def snapshot(built: Built) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart, every column, in a total order (DECIMAL money compares exactly)."""
    con = duckdb.connect(str(built.warehouse))
    try:
        return {m: query(con, f"select * from marts.{m} order by all") for m in built.marts}
    finally:
        con.close()


# --- the later-dated rows -----------------------------------------------------------------------


def _key_ids(schema: TableSchema) -> list[str]:
    """The key columns that are ids (strings that are not currencies): made fresh by a prefix."""
    return [
        c
        for c in schema.key
        if schema.column(c).type == ColumnType.STRING and not schema.column(c).is_currency
    ]


def _dated(schema: TableSchema) -> list[str]:
    return [c.name for c in schema.columns if c.type in DATED]


def _shifted_sql(schema: TableSchema, column: str, step: str) -> str:
    """``column`` moved by ``shift`` steps (days or months), keeping its type."""
    return f'cast("{column}" + shift * interval 1 {step} as {schema.column(column).type.value})'


def _packed_sql(schema: TableSchema, column: str, as_of: date) -> str:
    """``column`` on day D + 1 + r, r the number of the row's dates before it (its time of day
    kept): every date of the row right after D, in the same order, equal ones still equal."""
    mine = f'cast("{column}" as timestamp)'
    earlier = " + ".join(
        f'(case when cast("{other}" as timestamp) < {mine} then 1 else 0 end)'
        for other in _dated(schema)
    )
    day = f"(date '{as_of + timedelta(days=1)}' + {earlier})"
    time_of_day = f"({mine} - date_trunc('day', {mine}))"
    return f"cast({day} + {time_of_day} as {schema.column(column).type.value})"


def _copies_sql(schema: TableSchema, as_of: date, packed: bool) -> str:
    """The select of one kind of copy of the sampled rows (see :func:`late_rows_sql`)."""
    dated, ids = _dated(schema), _key_ids(schema)
    earliest = f"least({', '.join(f'cast({c} as date)' for c in dated)})"
    if ids:
        step = "day"
        shift = f"(date '{as_of + timedelta(days=1)}' - min({earliest}) over ())"
    else:
        step = "month"
        shift = f"(datediff('month', min({earliest}) over (), max({earliest}) over ()) + 1)"
    # Packed copies are one entity per row (their versions would collide on the same days).
    prefix = f"'{LATE}' || row_number() over () || '_'" if packed else f"'{LATE}'"
    values = []
    for c in schema.column_names:
        if c in ids:
            values.append(f'{prefix} || "{c}"')
        elif c in dated:
            values.append(
                _packed_sql(schema, c, as_of) if packed else _shifted_sql(schema, c, step)
            )
        else:
            values.append(f'"{c}"')
    limit = SAMPLE_EVENTS if schema.name == "events" else SAMPLE_ROWS
    key = ", ".join(f'"{c}"' for c in schema.key)
    return f"""
        select {", ".join(f'{v} as "{c}"' for v, c in zip(values, schema.column_names, strict=True))}
        from (
            select *, {shift} as shift
            from (select * from raw.{schema.name} order by hash({key}), {key} limit {limit})
        )
    """


def late_rows_sql(schema: TableSchema, as_of: date) -> str:
    """An insert of copies of sampled rows of ``schema``, every date column moved past ``as_of``.

    Tables keyed by an id get two copies of each sampled row, with fresh ids: one moved by a
    single shift in days for the table that puts the sample's earliest date on the day after
    ``as_of`` (the rows keep their spacing: a deal's contract still ends a year after it
    closes), and one packed right after ``as_of`` (every date of the row on D+1, D+2, ... in its
    order: a renewal two days after D, an event on D+1). A table keyed by a date (FX rates by
    month) gets one copy, shifted in whole months past its last month.
    """
    assert _dated(schema), f"{schema.asset_path} has no date column to move past D"
    copies = [_copies_sql(schema, as_of, packed=False)]
    if _key_ids(schema):
        copies.append(_copies_sql(schema, as_of, packed=True))
    columns = ", ".join(f'"{c}"' for c in schema.column_names)
    return f"""
        insert into raw.{schema.name} ({columns}, _source_file, _source_row, _file_sha256, _loaded_at)
        {late_rows_select(schema, copies)}
    """


def late_rows_select(schema: TableSchema, copies: list[str]) -> str:
    """The late copies with their lineage columns, named as in the raw table."""
    return f"""
        select *, 'late/{schema.name}.csv' as _source_file, row_number() over () as _source_row,
            '{"0" * 64}' as _file_sha256, timestamp '{LATE_LOAD}' as _loaded_at
        from ({" union all ".join(copies)})
    """


def add_late_lake_rows(
    con: duckdb.DuckDBPyConnection, lake_dir: Path, schema: TableSchema, as_of: date
) -> None:
    """The late copies of a lake table (events): appended to the lake as one registered batch."""
    copies = [_copies_sql(schema, as_of, packed=False)]
    if _key_ids(schema):
        copies.append(_copies_sql(schema, as_of, packed=True))
    lake.append_rows(con, lake_dir, schema, late_rows_select(schema, copies), loaded_at=LATE_LOAD)


def add_late_rows(warehouse: Path, as_of: date) -> dict[str, int]:
    """Later-dated rows in every raw table; returns how many each table got."""
    con = duckdb.connect(str(warehouse))
    try:
        added = {}
        for schema in TABLES:
            before = query(con, f"select count(*) from raw.{schema.name}")[0][0]
            if schema.lake:
                add_late_lake_rows(
                    con, lake.lake_dir_for(warehouse.parent / "validation"), schema, as_of
                )
            else:
                con.execute(late_rows_sql(schema, as_of))
            after = query(con, f"select count(*) from raw.{schema.name}")[0][0]
            added[schema.name] = after - before
            dated = _dated(schema)
            # every copied row is dated after D in every date column it has
            on_or_before = query(
                con,
                f"select count(*) from raw.{schema.name} where _source_file like 'late/%' and ("
                + " or ".join(f"cast({c} as date) <= date '{as_of}'" for c in dated)
                + ")",
            )
            assert on_or_before == [(0,)], schema.name
        return added
    finally:
        con.close()


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Compared:
    root = tmp_path_factory.mktemp("point_in_time")
    generate_extracts(root / "landing", SAMPLE)
    warehouse = _ingest(root / "landing", root)
    dbt = Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF.isoformat())
    built = Built(dbt, warehouse, mart_names(dbt))
    run(built)
    before = snapshot(built)
    added = add_late_rows(warehouse, AS_OF)
    run(built)
    return Compared(built, before, snapshot(built), added)


def _difference(before: list[tuple], after: list[tuple]) -> str:
    gone = [r for r in before if r not in after][:3]
    new = [r for r in after if r not in before][:3]
    return f"{len(before)} rows before, {len(after)} after; only before: {gone}; only after: {new}"


def test_rows_dated_after_d_change_no_mart_as_of_d(compared: Compared) -> None:
    before, after = compared.before, compared.after
    assert {"dim_accounts", "fct_cohort_adoption", "fct_account_health"} <= set(before)
    # the dataset exercises every mart (an empty mart proves nothing) and every raw table got
    # later rows
    assert {
        m: len(rows)
        for m, rows in before.items()
        if not rows and m not in EMPTY_WITHOUT_CHURN_MODEL
    } == {}
    assert {t: n for t, n in compared.added.items() if n == 0} == {}
    changed = {m: _difference(before[m], after[m]) for m in before if before[m] != after[m]}
    assert changed == {}, "marts as of D changed by rows dated after D:\n" + "\n".join(
        f"  {m}: {why}" for m, why in changed.items()
    )


def test_the_later_rows_do_count_once_the_reporting_date_passes_them(compared: Compared) -> None:
    """The same warehouse as of a date after every later row: the new accounts are there (the
    test above does not pass because the later rows are invisible to the models)."""
    built = compared.built
    later = (AS_OF + timedelta(days=400)).isoformat()
    result = built.dbt.invoke(built.warehouse, "run", "--select", "dim_accounts", as_of=later)
    assert result.success, failures(result)
    con = duckdb.connect(str(built.warehouse))
    try:
        late = f"account_id like '{LATE}%'"
        in_raw = query(con, f"select count(distinct account_id) from raw.accounts where {late}")
        in_mart = query(con, f"select count(*) from marts.dim_accounts where {late}")
    finally:
        con.close()
    assert in_raw[0][0] > 0
    assert in_mart == in_raw


# --- the marts' shapes (issue 15, docs/marts.md), on the same build ------------------------------

#: Per pair of marts (totals, by segment): the columns to group both by and the columns that add
#: up over the segments (money and counts; never ratios, AUCs, medians or distinct counts).
ADDITIVE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fct_mrr_bridge": (
        ("month",),
        (
            "starting_mrr_usd",
            "new_mrr_usd",
            "expansion_mrr_usd",
            "reactivation_mrr_usd",
            "contraction_mrr_usd",
            "churned_mrr_usd",
            "ending_mrr_usd",
            "starting_accounts",
            "new_accounts",
            "expansion_accounts",
            "reactivation_accounts",
            "contraction_accounts",
            "churned_accounts",
            "ending_accounts",
        ),
    ),
    "fct_mrr_movements": (("month", "movement"), ("mrr_usd", "accounts")),
    "fct_revenue_retention": (
        ("period_grain", "period_start"),
        (
            "cohort_accounts",
            "starting_mrr_usd",
            "ending_mrr_usd",
            "expansion_mrr_usd",
            "contraction_mrr_usd",
            "churned_mrr_usd",
        ),
    ),
    "fct_ttv_cohorts": (
        ("start_month",),
        (
            "accounts",
            "reached_accounts",
            "censored_accounts",
            *(f"accounts_reached_within_{n}d" for n in (7, 14, 30, 60, 90)),
            *(f"observed_{n}d_accounts" for n in (7, 14, 30, 60, 90)),
        ),
    ),
    "fct_health_backtest": (
        ("health_model_version", "horizon_days", "scorer"),
        ("scored_rows", "churned_rows"),
    ),
    "fct_health_backtest_bands": (
        ("health_model_version", "horizon_days", "scorer", "band"),
        ("scored_rows", "churned_rows"),
    ),
    # deciles are cut within each segment: only a scorer's totals over its deciles add up
    "fct_health_backtest_deciles": (
        ("health_model_version", "horizon_days", "scorer"),
        ("scored_rows", "churned_rows"),
    ),
    "fct_health_backtest_calibration": (
        ("health_model_version", "horizon_days", "scorer", "probability_bin"),
        ("scored_rows", "churned_rows"),
    ),
}
SEGMENTS = "_by_segment"


def _mart_nodes(dbt: Dbt) -> dict[str, Any]:
    return {
        node.name: node
        for node in dbt.manifest.nodes.values()
        if node.resource_type == "model" and node.fqn[1:2] == ["marts"]
    }


def _summed(
    con: duckdb.DuckDBPyConnection, mart: str, keys: tuple[str, ...], columns: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    sums = ", ".join(f"sum({c}) as {c}" for c in columns)
    group = ", ".join(keys)
    return query(con, f"select {group}, {sums} from marts.{mart} group by all order by {group}")


def test_every_by_segment_mart_adds_up_to_its_totals_mart(compared: Compared) -> None:
    """Money (DECIMAL, to the cent and beyond) and counts summed over the segments equal the
    totals mart's, for every pair of marts the manifest has."""
    marts = set(compared.built.marts)
    pairs = {m for m in marts if f"{m}{SEGMENTS}" in marts}
    assert pairs == set(ADDITIVE)
    con = duckdb.connect(str(compared.built.warehouse))
    try:
        for mart, (keys, columns) in ADDITIVE.items():
            totals = _summed(con, mart, keys, columns)
            by_segment = _summed(con, f"{mart}{SEGMENTS}", keys, columns)
            assert totals == by_segment, mart
            if mart not in EMPTY_WITHOUT_CHURN_MODEL:
                assert totals, f"{mart} has no rows: the comparison proves nothing"
    finally:
        con.close()


def test_no_mart_mixes_a_segment_all_row_with_per_segment_rows(compared: Compared) -> None:
    con = duckdb.connect(str(compared.built.warehouse))
    try:
        with_segment = [
            r[0]
            for r in query(
                con,
                "select table_name from information_schema.columns"
                " where table_schema = 'marts' and column_name = 'segment'",
            )
        ]
        assert len(with_segment) >= len(ADDITIVE)
        mixed = {
            m: n
            for m in with_segment
            if (n := query(con, f"select count(*) from marts.{m} where segment = 'all'")[0][0])
        }
    finally:
        con.close()
    assert mixed == {}
    # the totals marts have no segment column at all
    assert set(ADDITIVE).isdisjoint(with_segment)


def test_every_mart_states_its_grain_and_tests_that_it_is_unique(compared: Compared) -> None:
    """meta.grain in the mart's YAML, and a uniqueness test on exactly those columns
    (unique_combination_of_columns, or unique on a one-column grain)."""
    dbt = compared.built.dbt
    nodes = _mart_nodes(dbt)
    assert set(nodes) == set(compared.built.marts)
    unique_on: dict[str, set[frozenset[str]]] = {}
    for test in dbt.manifest.nodes.values():
        if test.resource_type != "test" or not getattr(test, "test_metadata", None):
            continue
        kwargs = test.test_metadata.kwargs
        if test.test_metadata.name == "unique_combination_of_columns":
            columns = frozenset(kwargs["combination_of_columns"])
        elif test.test_metadata.name == "unique":
            columns = frozenset([kwargs["column_name"]])
        else:
            continue
        unique_on.setdefault(test.attached_node, set()).add(columns)
    missing = {name: node.config.meta.get("grain") for name, node in nodes.items()}
    missing = {
        name: grain
        for name, grain in missing.items()
        if not grain or frozenset(grain) not in unique_on.get(nodes[name].unique_id, set())
    }
    assert missing == {}, "marts without meta.grain or a uniqueness test on it"
    # the grain names real columns of the contract
    for name, node in nodes.items():
        assert set(node.config.meta["grain"]) <= set(node.columns), name
