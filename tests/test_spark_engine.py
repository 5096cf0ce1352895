"""One dbt project, two engines: what builds on Spark gives DuckDB's marts, row for row.

Two inputs: the hand-computed revenue fixture (tests/test_dbt_revenue.py, every number worked by
hand there) loaded as a raw warehouse, and the demo sample (`csw demo`'s extracts: 200 accounts,
18 months, three currencies) generated and loaded by `csw ingest`. For each, DuckDB builds the
selector ``spark_ready`` (dbt_project/selectors.yml) in the warehouse file; the raw tables are
exported to Parquet beside it (ingestion/parquet_export.py) and Spark, in local mode (dbt-spark's
session method), builds the same selector from them. Every mart is then compared: the same
columns with the same types, and the same rows (money to the cent, ratios exactly), both ways.

Spark tier: `make test-spark` (installs the `spark` extra; needs Java 17). Spark's dbt runs in a
process of its own per warehouse: a Spark session keeps its first warehouse folder and metastore
for the life of the process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import PROJECT_DIR, Dbt, create_raw_warehouse, failures, project_args, ts
from pinned_model import pinned_dbt_vars
from test_dbt_revenue import AS_OF, RAW

from ingestion.parquet_export import export_raw_tables
from ingestion.synthetic import GeneratorConfig, generate_extracts

pytestmark = pytest.mark.spark

SELECTOR = "spark_ready"
DBT = Path(sys.executable).parent / "dbt"
REPO = PROJECT_DIR.parent


def _require_spark() -> None:
    pytest.importorskip("pyspark", reason='the Spark tier needs `pip install -e ".[spark]"`')
    java = shutil.which("java")
    if java is None:
        pytest.fail(
            "Java is missing: Spark needs a JDK 17 on PATH (Debian: apt install openjdk-17-jdk)"
        )
    version = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    assert '"17' in version or '"2' in version, f"Spark 4 needs Java 17 or newer, found: {version}"


def spark_dbt(
    work: Path,
    warehouse: Path,
    as_of: str,
    *args: str,
    vars_override: dict[str, Any] | None = None,
) -> str:
    """``dbt <args>`` on Spark against ``warehouse``'s Parquet, in its own process, with the
    tests' pinned vars (``vars_override`` replacing some); its output."""
    work.mkdir(parents=True, exist_ok=True)
    command = [
        str(DBT),
        *args,
        *project_args(work),
        "--vars",
        json.dumps({**pinned_dbt_vars(date.fromisoformat(as_of)), **(vars_override or {})}),
    ]
    environment = {**os.environ, "CSW_ENGINE": "spark", "CSW_WAREHOUSE_PATH": str(warehouse)}
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=1200, check=False
    )
    errors = [line for line in done.stdout.splitlines() if "ERROR" in line or "FAIL" in line]
    assert done.returncode == 0, "\n".join(errors[-20:] or done.stdout.splitlines()[-30:])
    return done.stdout


@dataclass(frozen=True)
class Built:
    warehouse: Path
    as_of: str
    work: Path
    duckdb_dbt: Dbt

    @property
    def spark_marts(self) -> Path:
        return self.warehouse.parent / "spark" / "warehouse" / "marts.db"


def _build_both(
    work: Path, warehouse: Path, as_of: str, vars_override: dict[str, Any] | None = None
) -> Built:
    duckdb_dbt = Dbt(work / "duckdb", as_of=as_of)
    built = duckdb_dbt.build(warehouse, "--selector", SELECTOR, vars_override=vars_override)
    assert failures(built) == []
    with duckdb.connect(str(warehouse)) as con:
        export_raw_tables(con, warehouse.parent / "lake")
    spark_dbt(
        work / "spark",
        warehouse,
        as_of,
        "build",
        "--selector",
        SELECTOR,
        vars_override=vars_override,
    )
    return Built(warehouse, as_of, work, duckdb_dbt)


def _fixture(work: Path) -> Built:
    warehouse = work / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    create_raw_warehouse(warehouse, RAW)
    return _build_both(work, warehouse, AS_OF)


def _demo(work: Path) -> Built:
    """The demo sample's extracts, loaded by `csw ingest` as a deployment would."""
    home = work / "home"
    result = generate_extracts(home / "landing", GeneratorConfig())
    environment = {**os.environ, "CSW_HOME": str(home)}
    environment.pop("CSW_WAREHOUSE_PATH", None)
    ingest = subprocess.run(
        [str(DBT.parent / "csw"), "ingest"],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stdout[-3000:] + ingest.stderr[-3000:]
    return _build_both(work, home / "warehouse.duckdb", result.as_of.isoformat())


@pytest.fixture(scope="module", params=["fixture", "demo"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    _require_spark()
    work = tmp_path_factory.mktemp(f"engines-{request.param}")
    return _fixture(work) if request.param == "fixture" else _demo(work)


@pytest.fixture(scope="module")
def con(built: Built) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(built.warehouse)) as connection:
        yield connection


def _marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
            " order by 1"
        ).fetchall()
    ]


def assert_same_table(con: duckdb.DuckDBPyConnection, duck: str, spark_folder: Path) -> int:
    """DuckDB's ``duck`` and the table Spark wrote to ``spark_folder`` (partitioned or not):
    the same columns with the same types, and the same rows both ways. Returns the row count."""
    assert spark_folder.is_dir(), f"Spark did not build {spark_folder}"
    described = con.execute(f"describe {duck}").fetchall()
    columns = ", ".join(c[0] for c in described)
    spark = (
        f"(select {columns} from read_parquet('{spark_folder}/**/*.parquet',"
        " hive_partitioning = true))"
    )
    assert [c[:2] for c in con.execute(f"describe {spark}").fetchall()] == [
        c[:2] for c in described
    ]
    for left, right in ((duck, spark), (spark, duck)):
        extra = con.execute(f"select * from {left} except all select * from {right} limit 5")
        assert extra.fetchall() == [], f"rows of {left} not in {right}"
    rows = con.execute(f"select count(*) from {duck}").fetchone()
    return rows[0] if rows else 0


def test_spark_builds_every_mart_duckdb_builds(
    built: Built, con: duckdb.DuckDBPyConnection
) -> None:
    marts = _marts(con)
    # the revenue marts and dim_accounts, company totals and per segment
    assert {"fct_mrr_monthly", "fct_mrr_bridge", "fct_revenue_retention", "dim_accounts"} <= set(
        marts
    )
    assert {p.name for p in built.spark_marts.iterdir()} == set(marts)


@pytest.mark.parametrize(
    "mart",
    [
        "dim_accounts",
        "fct_mrr_monthly",
        "fct_mrr_bridge",
        "fct_mrr_bridge_by_segment",
        "fct_mrr_movements",
        "fct_mrr_movements_by_segment",
        "fct_revenue_retention",
        "fct_revenue_retention_by_segment",
    ],
)
def test_a_mart_is_identical_on_both_engines(
    built: Built, con: duckdb.DuckDBPyConnection, mart: str
) -> None:
    rows = assert_same_table(con, f"marts.{mart}", built.spark_marts / mart)
    assert rows > 0, f"{mart} is empty: the comparison would prove nothing"


@pytest.mark.parametrize("built", ["demo"], indirect=True)
def test_the_demo_sample_converts_currencies(built: Built, con: duckdb.DuckDBPyConnection) -> None:
    """The comparison covers FX conversion: the demo bills in more than one currency."""
    currencies = con.execute(
        "select count(distinct currency) from intermediate.int_subscription_item_mrr_monthly"
    ).fetchone()
    assert currencies is not None and currencies[0] >= 2


# --- the daily event facts, built in full and then incrementally on both engines ----------------

DAILY_FACTS = (
    "int_user_daily_events",
    "int_user_daily_activity",
    "int_account_daily_activity",
    "int_account_daily_feature_usage",
)


def _event(n: int, account: str, user: str, name: str, at: str) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "account_id": account,
        "user_id": user,
        "event_name": name,
        "occurred_at": ts(at),
        "properties": f'{{"n": {n}}}',
    }


#: Loaded first (2024-06-15): two accounts, three users, four days, activity and feature events.
FIRST_EVENTS = [
    _event(1, "acc_a", "u1", "login", "2024-06-10 08:00:00"),
    _event(2, "acc_a", "u1", "dashboard_viewed", "2024-06-10 08:05:00"),
    _event(3, "acc_a", "u2", "report_created", "2024-06-11 23:59:59"),
    _event(4, "acc_b", "u3", "api_request", "2024-06-12 00:00:00"),
    _event(5, "acc_b", "u3", "api_request", "2024-06-12 10:00:00"),
    _event(6, "acc_a", "u2", "settings_updated", "2024-06-14 12:00:00"),
]
#: Loaded next (2024-06-16): a new day, and late events for 2024-06-10 (one of a name the first
#: load did not have).
LATER_EVENTS = [
    _event(7, "acc_a", "u1", "dashboard_viewed", "2024-06-16 09:00:00"),
    _event(8, "acc_b", "u3", "login", "2024-06-16 09:30:00"),
    _event(9, "acc_a", "u2", "comment_added", "2024-06-10 17:00:00"),
    _event(10, "acc_a", "u1", "dashboard_viewed", "2024-06-10 18:00:00"),
]


def _spark_intermediate(warehouse: Path, fact: str) -> Path:
    return warehouse.parent / "spark" / "warehouse" / "intermediate.db" / fact


def _partition_files(warehouse: Path, fact: str) -> dict[str, float]:
    """Spark's files of a daily fact, ``activity_date=<d>/<file>`` -> modification time."""
    folder = _spark_intermediate(warehouse, fact)
    return {p.parent.name + "/" + p.name: p.stat().st_mtime for p in folder.glob("*/*.parquet")}


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, dict[str, float]]:
    """Both engines build the first load in full, then the later events incrementally; returns
    the build and Spark's int_user_daily_events files (name -> mtime) after the first build."""
    _require_spark()
    work = tmp_path_factory.mktemp("engines-incremental")
    warehouse = work / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    create_raw_warehouse(warehouse, {**RAW, "events": FIRST_EVENTS})
    _build_both(work, warehouse, AS_OF)
    first_files = _partition_files(warehouse, DAILY_FACTS[0])
    later = work / "later" / "warehouse.duckdb"
    later.parent.mkdir()
    create_raw_warehouse(later, {"events": LATER_EVENTS}, loaded_at=ts("2024-06-16 06:00:00"))
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"attach '{later}' as later (read_only)")
        con.execute("insert into raw.events select * from later.raw.events")
    built = _build_both(work, warehouse, "2024-06-16")
    return built, first_files


@pytest.mark.parametrize("fact", DAILY_FACTS)
def test_a_daily_fact_is_identical_after_an_incremental_run(
    incremental: tuple[Built, dict[str, float]], fact: str
) -> None:
    built, _ = incremental
    with duckdb.connect(str(built.warehouse)) as con:
        folder = _spark_intermediate(built.warehouse, fact)
        assert assert_same_table(con, f"intermediate.{fact}", folder) > 0
        # the late events are counted: 2024-06-10 holds events 1, 2, 9 and 10
        day = con.execute(
            "select sum(events) from intermediate.int_user_daily_events"
            " where activity_date = date '2024-06-10'"
        ).fetchone()
        assert day == (4,)


@pytest.mark.parametrize("built", ["demo"], indirect=True)
@pytest.mark.parametrize("fact", DAILY_FACTS)
def test_a_daily_fact_is_identical_on_the_demo_sample(
    built: Built, con: duckdb.DuckDBPyConnection, fact: str
) -> None:
    folder = _spark_intermediate(built.warehouse, fact)
    assert assert_same_table(con, f"intermediate.{fact}", folder) > 1000


def test_spark_rewrote_only_the_touched_dates(incremental: tuple[Built, dict[str, float]]) -> None:
    """insert_overwrite replaced the partitions of 2024-06-10 and 2024-06-16 and no other."""
    built, before = incremental
    after = _partition_files(built.warehouse, DAILY_FACTS[0])
    kept = {f for f in before if f in after and after[f] == before[f]}
    dates = lambda files: {f.split("/")[0] for f in files}  # noqa: E731
    assert dates(kept) == {
        "activity_date=2024-06-11",
        "activity_date=2024-06-12",
        "activity_date=2024-06-14",
    }
    assert dates(after) - dates(kept) == {"activity_date=2024-06-10", "activity_date=2024-06-16"}


@pytest.fixture(scope="module")
def reconfigured(incremental: tuple[Built, dict[str, float]]) -> Built:
    """After the incremental builds (the tests above read them first), both engines build again
    with a feature map in which api_request is no feature: 2024-06-12, whose only events are
    api requests, has no feature usage row any more."""
    built, _ = incremental
    feature_map = [
        {**row, "feature": None} if row["event_name"] == "api_request" else row
        for row in pinned_dbt_vars(date.fromisoformat("2024-06-16"))["feature_map"]
    ]
    return _build_both(built.work, built.warehouse, "2024-06-16", {"feature_map": feature_map})


def test_a_changed_feature_map_leaves_no_row_of_the_old_one(reconfigured: Built) -> None:
    """DuckDB deletes the old map's rows before rebuilding; Spark, which cannot delete,
    truncates: a date with no row under the new map keeps none (insert_overwrite alone would)."""
    fact = "int_account_daily_feature_usage"
    folder = _spark_intermediate(reconfigured.warehouse, fact)
    with duckdb.connect(str(reconfigured.warehouse)) as con:
        assert assert_same_table(con, f"intermediate.{fact}", folder) > 0
        spark_days = con.execute(
            f"select distinct activity_date from read_parquet('{folder}/**/*.parquet',"
            " hive_partitioning = true) order by 1"
        ).fetchall()
    assert date(2024, 6, 12) not in [d for (d,) in spark_days]
    assert date(2024, 6, 10) in [d for (d,) in spark_days]


# --- the exact division, on values chosen to break a careless one ----------------------------

#: (numerator, denominator) of div_round_half_up (denominator_digits 17 on Spark): halves of
#: both signs, a unit either side of a half with the largest denominators Spark's version takes
#: (17 digits; a quotient rounded at fewer decimals first would get these wrong), and a numerator
#: of 21 digits, the most it takes.
DIVISIONS = [
    (5, 2),
    (-5, 2),
    (7, 3),
    (-7, 3),
    (1, 10**17 - 1),
    (99_999_999_999_999_998 * 1234 + 49_999_999_999_999_999, 99_999_999_999_999_998),
    (99_999_999_999_999_998 * 1234 + 49_999_999_999_999_998, 99_999_999_999_999_998),
    (-(99_999_999_999_999_998 * 1234 + 49_999_999_999_999_999), 99_999_999_999_999_998),
    (99_999_999_999_999_999 * 9876 + 49_999_999_999_999_999, 99_999_999_999_999_999),
    (99_999_999_999_999_999 * 9876 + 50_000_000_000_000_000, 99_999_999_999_999_999),
    (10**21 - 1, 3),
]

#: (numerator, denominator) of decimal_ratio: DECIMALs with 4 decimals, ratio at 6 decimals.
RATIOS = [
    ("1850.0000", "1400.0000"),
    ("0.0001", "3.0000"),
    ("0.0005", "1000.0000"),
    ("-0.0005", "1000.0000"),
    ("123456789.1234", "0.0007"),
    ("2.0000", "0.0000"),
]


def _half_away(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers (exact)."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def _ratio(numerator: str, denominator: str) -> Decimal | None:
    if Decimal(denominator) == 0:
        return None
    with localcontext() as context:
        context.prec = 60
        quotient = Decimal(numerator) / Decimal(denominator)
    return quotient.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _show(built: Built, engine: str, sql: str) -> list[Decimal | None]:
    """The one row of ``sql`` on ``engine``, every column cast to text by the caller."""
    if engine == "duckdb":
        result = built.duckdb_dbt.invoke(
            built.warehouse, "show", "--inline", sql, "--limit", "1", as_of=built.as_of
        )
        assert result.success, failures(result)
        row = list(result.result.results[0].agate_table.rows[0])
    else:
        output = spark_dbt(
            built.work / "spark-show",
            built.warehouse,
            built.as_of,
            "show",
            "--quiet",
            "--inline",
            sql,
            "--limit",
            "1",
            "--output",
            "json",
        )
        row = list(json.loads(output[output.index("{") :])["show"][0].values())
    return [None if v is None else Decimal(str(v)) for v in row]


def _division_sql() -> str:
    scaled = "to_scaled_int('cast({} as decimal(38, 0))', 0)"
    columns = [
        f"cast({{{{ div_round_half_up({scaled.format(n)}, {scaled.format(d)}) }}}} as string)"
        f" as q{i}"
        for i, (n, d) in enumerate(DIVISIONS)
    ]
    columns += [
        f"cast({{{{ decimal_ratio('cast({n} as decimal(18, 4))', 'cast({d} as decimal(18, 4))') }}}}"
        f" as string) as r{i}"
        for i, (n, d) in enumerate(RATIOS)
    ]
    return "select " + ", ".join(columns)


@pytest.mark.parametrize("built", ["fixture"], indirect=True)
def test_the_exact_division_is_exact_on_both_engines(built: Built) -> None:
    expected: list[Decimal | None] = [Decimal(_half_away(n, d)) for n, d in DIVISIONS]
    expected += [_ratio(n, d) for n, d in RATIOS]
    # a half goes away from zero; a unit below or above it does not
    assert expected[5:10] == [1235, 1234, -1235, 9876, 9877]
    sql = _division_sql()
    for engine in ("duckdb", "spark"):
        assert _show(built, engine, sql) == expected, engine
