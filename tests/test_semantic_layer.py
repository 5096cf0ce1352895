"""The semantic layer (dbt_project/models/semantic) gives the marts' figures, and the exposures
resolve.

One small generated warehouse is built once for the module; every metric is queried through
MetricFlow's Python API (metrics/semantic.py, what ``mf query`` runs) and compared row by row
with the marts: MRR per month and quarter, each movement per month, NRR/GRR per period of every
grain in total and per segment, logo churn, median TTV and the share that reached first value,
the shares at first value within n days per start month (in total and per segment) and quarter,
mean health and accounts per band. Money to the cent, ratios to 1e-9 against the mart columns
they are made of (and to the rounding of the marts' DECIMAL(18,6) nrr/grr). ``mf validate-configs``
runs against the same warehouse.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from dbt_harness import PROJECT_DIR, Dbt, failures
from vendor_shapes import ingest_tables

from ingestion.contract import TABLES
from ingestion.synthetic import GeneratorConfig, generate_extracts
from metrics import html_report
from metrics.semantic import metricflow_engine, query
from orchestration.defs.publishing import publisher

#: Fifteen months of a few accounts: periods of every retention grain (the year 2025 and three
#: trailing 12 months included), churn, every segment, TTV and health.
SAMPLE = GeneratorConfig(accounts=30, months=15, seed=5, start=date(2024, 1, 1))
AS_OF = SAMPLE.last_day
CENT = 0.005
RATIO = 1e-9
#: The marts round nrr and grr half away from zero to 6 decimals.
ROUNDED_RATIO = 5e-7 + 1e-12
GRAINS = ("month", "quarter", "year", "trailing_12m")
MF = Path(sys.executable).with_name("mf")

MARTS = (
    "fct_mrr_monthly",
    "fct_mrr_bridge",
    "fct_mrr_bridge_by_segment",
    "fct_mrr_movements",
    "fct_revenue_retention",
    "fct_revenue_retention_by_segment",
    "fct_time_to_value",
    "fct_ttv_cohorts",
    "fct_ttv_cohorts_by_segment",
    "fct_account_health",
)


@dataclass(frozen=True)
class Layer:
    dbt: Dbt
    warehouse: Path
    marts: dict[str, pl.DataFrame]
    #: ``mf validate-configs`` run on the warehouse before the engine opened it
    validated: subprocess.CompletedProcess[str]
    engine: Any

    def metrics(
        self, metrics: list[str], group_by: list[str], where: tuple[str, ...] = ()
    ) -> pl.DataFrame:
        """The metrics as MetricFlow computes them, time columns as dates."""
        frame = query(self.engine, metrics, group_by, where)
        return frame.with_columns(pl.col(pl.Datetime).dt.date())


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layer]:
    root = tmp_path_factory.mktemp("semantic")
    generate_extracts(root / "landing", SAMPLE)
    ingest_tables(root / "landing", root, [t.name for t in TABLES]).close()
    warehouse = root / "warehouse.duckdb"
    dbt = Dbt(tmp_path_factory.mktemp("semantic_dbt"), as_of=AS_OF.isoformat())
    result = dbt.invoke(warehouse, "run")
    assert result.success, failures(result)
    con = duckdb.connect(str(warehouse))
    try:
        marts = {name: con.sql(f"select * from marts.{name}").pl() for name in MARTS}
    finally:
        con.close()
    release_warehouse()
    validated = validate_configs(dbt, warehouse, root / "project")
    saved = {k: os.environ.get(k) for k in ("CSW_WAREHOUSE_PATH", "DBT_LOG_PATH")}
    os.environ["CSW_WAREHOUSE_PATH"] = str(warehouse)
    os.environ["DBT_LOG_PATH"] = str(dbt.work / "logs")
    try:
        engine = metricflow_engine(dbt.work / "target" / "semantic_manifest.json")
        yield Layer(dbt, warehouse, marts, validated, engine)
    finally:
        from dbt.adapters.factory import reset_adapters

        reset_adapters()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a build (it holds
    the file's lock, which another process needs)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    DuckDBConnectionManager.close_all_connections()
    gc.collect()


def validate_configs(dbt: Dbt, warehouse: Path, project: Path) -> subprocess.CompletedProcess[str]:
    """``mf validate-configs`` as a user runs it, in a project whose target/ holds the semantic
    manifest (here a copy of dbt_project/ made of links, so dbt_project/target is not written).
    A separate process: it must run before this process's engine holds the warehouse's lock."""
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml", "models", "macros"):
        (project / name).symlink_to(PROJECT_DIR / name)
    (project / "target").symlink_to(dbt.work / "target")
    env = {**os.environ, "CSW_WAREHOUSE_PATH": str(warehouse)}
    return subprocess.run(
        [str(MF), "validate-configs"], cwd=project, env=env, capture_output=True, text=True
    )


def assert_same(
    got: pl.DataFrame, expected: pl.DataFrame, keys: list[str], columns: dict[str, float]
) -> None:
    """Same keys, and each of ``columns`` equal within its tolerance (nulls where nulls)."""
    assert got.height > 0, "MetricFlow returned no rows"
    assert sorted(got.select(keys).rows()) == sorted(expected.select(keys).rows())
    joined = got.join(expected, on=keys, how="inner", suffix="_mart", nulls_equal=True)
    for column, tolerance in columns.items():
        mine, theirs = pl.col(column).cast(pl.Float64), pl.col(f"{column}_mart").cast(pl.Float64)
        wrong = joined.filter(
            (mine.is_null() != theirs.is_null()) | ((mine - theirs).abs() > tolerance)
        )
        assert wrong.is_empty(), f"{column}: {wrong.select(*keys, column, f'{column}_mart')}"


def by_month(metric_time: str = "metric_time__month") -> pl.Expr:
    return pl.col(metric_time).alias("month")


# --- MRR and the movements ----------------------------------------------------------------------


def test_mrr_per_month_is_the_bridges_ending_mrr(layer: Layer) -> None:
    got = layer.metrics(["mrr"], ["metric_time__month"]).select(by_month(), "mrr")
    bridge = layer.marts["fct_mrr_bridge"].select("month", pl.col("ending_mrr_usd").alias("mrr"))
    assert_same(got, bridge, ["month"], {"mrr": CENT})


def test_mrr_per_month_and_segment_is_the_segment_bridges(layer: Layer) -> None:
    got = layer.metrics(["mrr"], ["metric_time__month", "account_month__segment"]).select(
        by_month(), pl.col("account_month__segment").alias("segment"), "mrr"
    )
    bridge = layer.marts["fct_mrr_bridge_by_segment"].select(
        "month", "segment", pl.col("ending_mrr_usd").alias("mrr")
    )
    # The segment mart has every month and segment, MetricFlow those with an account-month row:
    # the others must be zero in the mart.
    present = layer.marts["fct_mrr_monthly"].select("month", "segment").unique()
    absent = bridge.join(present, on=["month", "segment"], how="anti")
    assert absent.filter(pl.col("mrr") != 0).is_empty(), absent
    assert_same(
        got, bridge.join(present, on=["month", "segment"]), ["month", "segment"], {"mrr": CENT}
    )


def test_mrr_per_quarter_is_its_last_months_not_a_sum(layer: Layer) -> None:
    got = layer.metrics(["mrr"], ["metric_time__quarter"]).select(
        pl.col("metric_time__quarter").alias("quarter"), "mrr"
    )
    last_months = (
        layer.marts["fct_mrr_bridge"]
        .sort("month")
        .group_by(pl.col("month").dt.truncate("1q").alias("quarter"))
        .agg(pl.col("ending_mrr_usd").last().alias("mrr"))
    )
    assert_same(got, last_months, ["quarter"], {"mrr": CENT})


MOVEMENTS = {
    "new_mrr": ("new_mrr_usd", "new"),
    "expansion_mrr": ("expansion_mrr_usd", "expansion"),
    "reactivation_mrr": ("reactivation_mrr_usd", "reactivation"),
    "contraction_mrr": ("contraction_mrr_usd", "contraction"),
    "churned_mrr": ("churned_mrr_usd", "churn"),
}


def test_each_movement_per_month_is_the_bridges(layer: Layer) -> None:
    got = layer.metrics([*MOVEMENTS, "starting_mrr", "ending_mrr"], ["metric_time__month"])
    got = got.with_columns(by_month()).drop("metric_time__month")
    bridge = layer.marts["fct_mrr_bridge"].select(
        "month",
        *(pl.col(column).alias(metric) for metric, (column, _) in MOVEMENTS.items()),
        pl.col("starting_mrr_usd").alias("starting_mrr"),
        pl.col("ending_mrr_usd").alias("ending_mrr"),
    )
    assert bridge.select(pl.col("churned_mrr").sum()).item() > 0, "no churn in the sample"
    assert_same(
        got, bridge, ["month"], dict.fromkeys([*MOVEMENTS, "starting_mrr", "ending_mrr"], CENT)
    )


def test_each_movement_per_month_is_the_movements_mart_as_a_magnitude(layer: Layer) -> None:
    got = layer.metrics(list(MOVEMENTS), ["metric_time__month"])
    got = got.with_columns(by_month()).drop("metric_time__month")
    movements = layer.marts["fct_mrr_movements"]
    signed = movements.pivot(on="movement", index="month", values="mrr_usd")
    expected = signed.select(
        "month",
        *(
            (
                pl.col(movement).abs() if movement in {"contraction", "churn"} else pl.col(movement)
            ).alias(metric)
            for metric, (_, movement) in MOVEMENTS.items()
        ),
    )
    assert_same(got, expected, ["month"], dict.fromkeys(MOVEMENTS, CENT))


def test_logo_churn_per_month_is_churned_over_starting_accounts(layer: Layer) -> None:
    got = layer.metrics(["logo_churn_rate"], ["metric_time__month"]).select(
        by_month(), "logo_churn_rate"
    )
    bridge = layer.marts["fct_mrr_bridge"].select(
        "month",
        pl.when(pl.col("starting_accounts") > 0)
        .then(pl.col("churned_accounts") / pl.col("starting_accounts"))
        .alias("logo_churn_rate"),
    )
    assert bridge["logo_churn_rate"].max() > 0, "no churned account in the sample"
    assert_same(got, bridge, ["month"], {"logo_churn_rate": RATIO})


# --- NRR and GRR ---------------------------------------------------------------------------------


def grain_filter(grain: str) -> tuple[str, ...]:
    return (f"{{{{ Dimension('retention_period__period_grain') }}}} = '{grain}'",)


def retention_expected(mart: pl.DataFrame, grain: str, keys: list[str]) -> pl.DataFrame:
    """NRR and GRR from the mart's money columns, and the mart's own rounded ratios."""
    starting = pl.col("starting_mrr_usd").cast(pl.Float64)
    retained = (
        pl.col("starting_mrr_usd") - pl.col("contraction_mrr_usd") - pl.col("churned_mrr_usd")
    )
    positive = pl.col("starting_mrr_usd") > 0
    return mart.filter(pl.col("period_grain") == grain).select(
        *keys,
        pl.when(positive).then(pl.col("ending_mrr_usd").cast(pl.Float64) / starting).alias("nrr"),
        pl.when(positive).then(retained.cast(pl.Float64) / starting).alias("grr"),
        pl.col("nrr").alias("nrr_rounded"),
        pl.col("grr").alias("grr_rounded"),
    )


def retention_got(layer: Layer, grain: str, group_by: list[str]) -> pl.DataFrame:
    got = layer.metrics(["nrr", "grr"], ["metric_time__month", *group_by], grain_filter(grain))
    return got.rename(
        {"metric_time__month": "period_start", **{g: g.split("__")[-1] for g in group_by}}
    ).with_columns(pl.col("nrr").alias("nrr_rounded"), pl.col("grr").alias("grr_rounded"))


@pytest.mark.parametrize("grain", GRAINS)
def test_nrr_and_grr_per_period_are_the_retention_marts(layer: Layer, grain: str) -> None:
    got = retention_got(layer, grain, [])
    expected = retention_expected(layer.marts["fct_revenue_retention"], grain, ["period_start"])
    assert expected["nrr"].drop_nulls().len() > 0, f"no {grain} period in the sample"
    tolerances = {"nrr": RATIO, "grr": RATIO, "nrr_rounded": ROUNDED_RATIO}
    assert_same(got, expected, ["period_start"], {**tolerances, "grr_rounded": ROUNDED_RATIO})


def test_nrr_and_grr_per_quarter_and_segment_are_the_segment_marts(layer: Layer) -> None:
    got = retention_got(layer, "quarter", ["retention_period__segment"])
    expected = retention_expected(
        layer.marts["fct_revenue_retention_by_segment"], "quarter", ["period_start", "segment"]
    )
    assert expected["segment"].n_unique() > 1
    assert expected["grr"].drop_nulls().min() < 1, "the sample loses no revenue"
    tolerances = {"nrr": RATIO, "grr": RATIO, "nrr_rounded": ROUNDED_RATIO}
    assert_same(
        got, expected, ["period_start", "segment"], {**tolerances, "grr_rounded": ROUNDED_RATIO}
    )


# --- Time to value and health --------------------------------------------------------------------


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_median_ttv_and_share_reached_per_start_period(layer: Layer, grain: str) -> None:
    """Per start month (fct_ttv_cohorts' grain) and per quarter: the quarter's cohorts are large
    enough here that a median differs from a mean, so the median is really tested."""
    metric_time = f"metric_time__{grain}"
    got = layer.metrics(
        ["median_ttv_days_of_reached_accounts", "first_value_reached_share"], [metric_time]
    ).select(pl.col(metric_time).alias("start"), pl.exclude(metric_time))
    start = pl.col("start_month").dt.truncate("1q" if grain == "quarter" else "1mo").alias("start")
    reached_days = pl.col("ttv_days").filter(pl.col("has_reached_first_value"))
    medians = (
        layer.marts["fct_time_to_value"]
        .group_by(start)
        .agg(
            reached_days.median().alias("median_ttv_days_of_reached_accounts"),
            reached_days.mean().alias("mean_ttv_days"),
        )
    )
    cohorts = (
        layer.marts["fct_ttv_cohorts"]
        .group_by(start)
        .agg(
            (pl.col("reached_accounts").sum() / pl.col("accounts").sum()).alias(
                "first_value_reached_share"
            )
        )
    )
    expected = medians.join(cohorts, on="start", how="full", coalesce=True)
    if grain == "quarter":
        differ = expected.filter(
            pl.col("median_ttv_days_of_reached_accounts") != pl.col("mean_ttv_days")
        )
        assert not differ.is_empty(), "no quarter's median differs from its mean"
    assert_same(
        got,
        expected.drop("mean_ttv_days"),
        ["start"],
        {"median_ttv_days_of_reached_accounts": RATIO, "first_value_reached_share": RATIO},
    )


@pytest.mark.parametrize("segmented", [False, True], ids=["total", "by_segment"])
def test_km_median_ttv_per_start_month_is_the_cohort_marts(layer: Layer, segmented: bool) -> None:
    """The Kaplan-Meier median of fct_ttv_cohorts(_by_segment).median_ttv_days per start month
    (and segment), not the median of the accounts that reached first value (which this sample
    makes differ in some month, young cohorts' slow accounts being censored)."""
    mart = layer.marts["fct_ttv_cohorts_by_segment" if segmented else "fct_ttv_cohorts"]
    keys = ["start_month", "segment"] if segmented else ["start_month"]
    metric = "km_median_ttv_days_per_segment" if segmented else "km_median_ttv_days"
    group_by = ["metric_time__month", *(["ttv_cohort__segment"] if segmented else [])]
    reached = [] if segmented else ["median_ttv_days_of_reached_accounts"]
    got = layer.metrics([metric, *reached], group_by).rename(
        {"metric_time__month": "start_month", "ttv_cohort__segment": "segment", metric: "km"},
        strict=False,
    )
    expected = mart.select(*keys, pl.col("median_ttv_days").alias("km"))
    assert expected["km"].drop_nulls().len() > 0, "no cohort has a Kaplan-Meier median"
    assert_same(got.select(*keys, "km"), expected, keys, {"km": 0})
    if reached:
        differ = got.filter(pl.col("km").ne_missing(pl.col(reached[0])))
        assert not differ.is_empty(), "the two medians agree on every start month of the sample"


def test_a_metric_named_like_a_mart_column_is_made_of_that_column(layer: Layer) -> None:
    """A metric with the name of a mart column (nrr, grr, the TTV shares, ...) reads marts that
    have that column: the name promises the column's numbers."""
    manifest = layer.dbt.manifest
    columns = {
        node.name: set(node.columns)
        for node in manifest.nodes.values()
        if node.resource_type == "model" and node.fqn[1:2] == ["marts"]
    }
    read_by = {
        measure.name: model.depends_on.nodes[0].rsplit(".", 1)[-1]
        for model in manifest.semantic_models.values()
        for measure in model.measures
    }
    named = {
        metric.name: {read_by[m.name] for m in metric.type_params.input_measures}
        for metric in manifest.metrics.values()
        if any(metric.name in cols for cols in columns.values())
    }
    assert {"nrr", "reached_within_30d_share"} <= set(named)
    wrong = {
        name: marts for name, marts in named.items() if any(name not in columns[m] for m in marts)
    }
    assert wrong == {}, "rename these metrics, or build them from the mart column they name"


TTV_DAYS = (7, 14, 30, 60, 90)
TTV_SHARES = [f"reached_within_{n}d_share" for n in TTV_DAYS]


def ttv_shares_expected(cohorts: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per ``keys``: each n-day share as the sum of accounts_reached_within_<n>d over the sum of
    observed_<n>d_accounts of the mart's rows (null when none observed), and, where a key is
    one mart row, the mart's own rounded share."""
    shares = []
    for n in TTV_DAYS:
        observed = pl.col(f"observed_{n}d_accounts").sum()
        reached = pl.col(f"accounts_reached_within_{n}d").sum()
        shares.append(
            pl.when(observed > 0).then(reached / observed).alias(f"reached_within_{n}d_share")
        )
    return cohorts.group_by(keys).agg(*shares)


@pytest.mark.parametrize("segmented", [False, True], ids=["total", "by_segment"])
def test_ttv_shares_per_start_month_are_the_cohort_marts(layer: Layer, segmented: bool) -> None:
    """Each share metric per start month (and segment) is the cohort mart's own share, to its
    rounding, and its counts' ratio to 1e-9."""
    mart = layer.marts["fct_ttv_cohorts_by_segment" if segmented else "fct_ttv_cohorts"]
    keys = ["start_month", "segment"] if segmented else ["start_month"]
    group_by = ["metric_time__month", *(["ttv_cohort__segment"] if segmented else [])]
    got = layer.metrics(TTV_SHARES, group_by).rename(
        {"metric_time__month": "start_month", "ttv_cohort__segment": "segment"}, strict=False
    )
    got = got.with_columns(pl.col(TTV_SHARES).name.suffix("_rounded"))
    expected = ttv_shares_expected(mart, keys).join(
        mart.select(*keys, pl.col(TTV_SHARES).name.suffix("_rounded")), on=keys
    )
    # the sample has accounts left out of a share (not observed 90 days), and a share below 1
    assert (mart["observed_90d_accounts"] < mart["accounts"]).any()
    assert expected["reached_within_7d_share"].drop_nulls().min() < 1
    tolerances = dict.fromkeys(TTV_SHARES, RATIO)
    tolerances |= {f"{share}_rounded": ROUNDED_RATIO for share in TTV_SHARES}
    assert_same(got, expected, keys, tolerances)


def test_ttv_shares_per_start_quarter_divide_summed_counts(layer: Layer) -> None:
    """Over a quarter a share is its months' numerators over their denominators (never a mean of
    the months' shares): the quarter's counts come from the totals mart."""
    got = layer.metrics(TTV_SHARES, ["metric_time__quarter"]).rename(
        {"metric_time__quarter": "quarter"}
    )
    cohorts = layer.marts["fct_ttv_cohorts"].with_columns(
        pl.col("start_month").dt.truncate("1q").alias("quarter")
    )
    expected = ttv_shares_expected(cohorts, ["quarter"])
    means = cohorts.group_by("quarter").agg(pl.col("reached_within_30d_share").mean())
    differ = expected.join(means, on="quarter", suffix="_mean").filter(
        (pl.col("reached_within_30d_share") - pl.col("reached_within_30d_share_mean")).abs() > 1e-6
    )
    assert not differ.is_empty(), "no quarter's share differs from the mean of its months'"
    assert_same(got, expected, ["quarter"], dict.fromkeys(TTV_SHARES, RATIO))


def test_mean_health_and_accounts_per_band_per_reported_date(layer: Layer) -> None:
    health = layer.marts["fct_account_health"]
    got = layer.metrics(["average_health_score"], ["metric_time__day"]).select(
        pl.col("metric_time__day").alias("as_of_date"), "average_health_score"
    )
    means = health.group_by("as_of_date").agg(
        pl.col("health_score").mean().alias("average_health_score")
    )
    assert_same(got, means, ["as_of_date"], {"average_health_score": RATIO})

    bands = layer.metrics(["scored_accounts"], ["metric_time__day", "account_day__health_band"])
    bands = bands.select(
        pl.col("metric_time__day").alias("as_of_date"),
        pl.col("account_day__health_band").alias("health_band"),
        "scored_accounts",
    )
    counts = health.group_by("as_of_date", "health_band").agg(pl.len().alias("scored_accounts"))
    assert counts["health_band"].n_unique() > 1
    assert_same(bands, counts, ["as_of_date", "health_band"], {"scored_accounts": 0})


def test_accounts_per_band_over_a_month_are_its_last_reported_dates(layer: Layer) -> None:
    health = layer.marts["fct_account_health"]
    got = layer.metrics(["scored_accounts"], ["metric_time__month"]).select(
        by_month(), "scored_accounts"
    )
    last_dates = health.group_by(pl.col("as_of_date").dt.truncate("1mo").alias("month")).agg(
        pl.col("as_of_date").max()
    )
    expected = (
        health.join(last_dates, on="as_of_date")
        .group_by("month")
        .agg(pl.col("account_id").n_unique().alias("scored_accounts"))
    )
    assert_same(got, expected, ["month"], {"scored_accounts": 0})


# --- MetricFlow's own validation, the time spine, the exposures ---------------------------------


def test_mf_validate_configs_passes_against_the_warehouse(layer: Layer) -> None:
    done = layer.validated
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Successfully validated the semantics" in done.stdout
    assert "• ERROR" not in done.stdout


def test_the_time_spine_is_built_and_is_not_a_mart(layer: Layer) -> None:
    node = layer.dbt.manifest.nodes["model.cs_warehouse.metricflow_time_spine"]
    assert node.fqn[1:2] != ["marts"]
    assert node.time_spine is not None
    assert node.time_spine.standard_granularity_column == "date_day"
    con = duckdb.connect(str(layer.warehouse))
    try:
        first, last, days = con.execute(
            "select min(date_day), max(date_day), count(distinct date_day)"
            " from semantic.metricflow_time_spine"
        ).fetchone()
    finally:
        con.close()
    months = layer.marts["fct_mrr_monthly"]["month"]
    assert first <= months.min() and last >= AS_OF
    assert days == (last - first).days + 1


#: Who owns each exposure, and its type.
OWNERS = {
    "weekly_risk_list": ("Customer success", "application"),
    "weekly_expansion_list": ("Customer success", "application"),
    "weekly_adoption_alerts": ("Customer success", "application"),
    "finance_close": ("Finance", "analysis"),
    "html_report": ("Customer success", "dashboard"),
}


def marts_named_in(source: str, marts: set[str]) -> set[str]:
    """The marts a module's source names (``marts.<name>`` in SQL or ``"<name>"`` in Python)."""
    words = set(re.findall(r"marts\.([a-z_0-9]+)", source))
    words |= set(re.findall(r"[\"']([a-z_0-9]+)[\"']", source))
    return words & marts


def exposure_reads(layer: Layer) -> dict[str, set[str]]:
    """What each exposure must depend on, read from the code that feeds it."""
    lists = {mart.removeprefix("marts.") for mart in publisher.LIST_MARTS.values()}
    marts = {
        node.name
        for node in layer.dbt.manifest.nodes.values()
        if node.resource_type == "model" and node.fqn[1:2] == ["marts"]
    }
    return {
        "weekly_risk_list": {m for m in lists if m.startswith("risk_list")},
        "weekly_expansion_list": {m for m in lists if m.startswith("expansion_list")},
        "weekly_adoption_alerts": {m for m in lists if m.startswith("adoption_alerts")},
        "finance_close": set(publisher.FINANCE_MARTS),
        "html_report": marts_named_in(Path(html_report.__file__).read_text(), marts),
    }


def test_every_exposure_resolves_to_the_marts_its_code_reads(layer: Layer) -> None:
    manifest = layer.dbt.manifest
    exposures = {e.name: e for e in manifest.exposures.values()}
    expected = exposure_reads(layer)
    assert set(exposures) == set(OWNERS) == set(expected)
    lists = {m for name in OWNERS if name.startswith("weekly_") for m in expected[name]}
    assert lists == {m.removeprefix("marts.") for m in publisher.LIST_MARTS.values()}
    for name, (owner, kind) in OWNERS.items():
        exposure = exposures[name]
        nodes = [manifest.nodes[uid] for uid in exposure.depends_on.nodes]
        assert len(nodes) == len(exposure.refs), f"{name}: a ref did not resolve"
        assert {n.name for n in nodes} == expected[name], name
        assert all(n.resource_type == "model" and n.fqn[1:2] == ["marts"] for n in nodes), name
        assert (exposure.owner.name, str(exposure.type)) == (owner, kind), name
