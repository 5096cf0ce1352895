"""The learned churn model (metrics/churn_model.py, docs/churn-model.md): fitted out of time,
accepted only when it beats the configured score, applied in SQL exactly as scikit-learn does.

One small generated warehouse is built once for the module (a 30-day churn horizon, so a short
history has complete outcome windows on both sides of the split). Each test copies it and
replaces the churn outcomes by a rule of its own, so what should predict churn is known: one
event name's usage (the model must find it), or nothing at all (the model must be refused).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from dbt_harness import Dbt, failures, query
from ingestion_fixtures import open_warehouse
from pinned_model import pinned_dbt_vars

from ingestion.contract import TABLES
from ingestion.synthetic import GeneratorConfig, generate_extracts
from metrics.churn_model import FEATURES_TABLE as _FEATURES_TABLE
from metrics.churn_model import SCORES_TABLE as _SCORES_TABLE
from metrics.churn_model import (
    ChurnModelError,
    ChurnModelFit,
    ChurnModelSettings,
    Split,
    _verdict,
    fit_churn_model,
)
from metrics.health_config import HealthConfigError, load_health_config

SAMPLE = GeneratorConfig(accounts=60, months=8, seed=5, start=date(2024, 1, 1))
AS_OF = SAMPLE.last_day
HORIZON = 30
OUTCOMES = "intermediate.int_account_churn_outcomes"
FEATURES = "intermediate.int_account_churn_features"
#: The models that apply a fit, rebuilt after one (the backtest too: it evaluates the fit).
APPLY = (
    "int_churn_predictions",
    "fct_account_health",
    "risk_list",
    "int_backtest_scores",
    "fct_health_backtest",
    "fct_health_backtest_calibration",
)


@dataclass(frozen=True)
class Base:
    dbt: Dbt
    warehouse: Path


@dataclass(frozen=True)
class Fitted:
    """A copy of the base warehouse with its own outcomes, fitted, and the models rebuilt."""

    warehouse: Path
    fit: ChurnModelFit
    publish: Path


def _vars(**risk: Any) -> dict[str, Any]:
    """The dbt vars of the tests' model with the test horizon (and risk-list keys changed)."""
    vars_ = pinned_dbt_vars(AS_OF)
    vars_["health_model"]["lists"]["risk"].update(risk)
    return {**vars_, "churn_horizon_days": HORIZON}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("churn_base")
    generate_extracts(root / "landing", SAMPLE)
    loaded = open_warehouse(root)
    try:
        for schema in TABLES:
            assert loaded.ingest(schema.name).files_refused == 0, schema.name
    finally:
        loaded.conn.close()
    dbt = Dbt(root / "dbt", AS_OF.isoformat())
    warehouse = root / "warehouse.duckdb"
    # unit tests have their own module (tests/test_dbt_*.py); models and data tests here
    result = dbt.build(warehouse, "--exclude-resource-type", "unit_test", vars_override=_vars())
    assert result.success, failures(result)
    return Base(dbt, warehouse)


def _copy(base: Base, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    target = root / "warehouse.duckdb"
    with duckdb.connect(str(base.warehouse)) as con:
        con.execute("checkpoint")  # dbt's in-process connection may hold the rest in the WAL
    shutil.copyfile(base.warehouse, target)
    return target


def _relabel(warehouse: Path, churned_sql: str) -> None:
    """Replace churned_within_horizon of every complete outcome by ``churned_sql``, an expression
    over the row's features (pivoted: feature names quoted) and ``r``, a number in [0, 1) drawn
    from a hash of the row's key (the same on every run, whatever order DuckDB reads in)."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            f"""
            create or replace temp table labels as
            with wide as (
                pivot (select account_id, as_of_date, feature, value from {FEATURES})
                on feature using first(value) group by account_id, as_of_date
            ),
            drawn as (
                select *, (hash(account_id || '/' || as_of_date) % 1000000) / 1e6 as r from wide
            )
            select account_id, as_of_date, ({churned_sql}) as churned from drawn
            """
        )
        con.execute(
            f"""
            update {OUTCOMES} set churned_within_horizon = labels.churned
            from labels
            where labels.account_id = {OUTCOMES}.account_id
              and labels.as_of_date = {OUTCOMES}.as_of_date
              and {OUTCOMES}.outcome_complete
            """
        )


def _fit_and_apply(base: Base, root: Path, churned_sql: str, **risk: Any) -> Fitted:
    warehouse = _copy(base, root)
    _relabel(warehouse, churned_sql)
    publish = root / "published"
    with duckdb.connect(str(warehouse)) as con:
        fit = fit_churn_model(con, as_of=AS_OF, horizon_days=HORIZON, publish_dir=publish)
    result = base.dbt.invoke(warehouse, "run", "--select", *APPLY, vars_override=_vars(**risk))
    assert result.success, failures(result)
    return Fitted(warehouse, fit, publish)


def _signal_event(base: Base) -> str:
    """An event name that about half the complete rows used in their 30 days (not all, not none)."""
    with duckdb.connect(str(base.warehouse)) as con:
        [(name,)] = query(
            con,
            f"""
            select feature from {FEATURES} join {OUTCOMES} using (account_id, as_of_date)
            where outcome_complete and feature like 'event_30d:%'
            group by feature
            order by abs(avg(case when value > 0 then 1.0 else 0.0 end) - 0.5), feature
            limit 1
            """,
        )
    return name


@pytest.fixture(scope="module")
def signal(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    """Churn follows one event name: an account churns when it used it in the 30 days (think
    of a cancellation page), whatever else it does; more activity is no protection."""
    name = _signal_event(base)
    return _fit_and_apply(
        base,
        tmp_path_factory.mktemp("signal"),
        f'"{name}" > 0',
        rank_by="expected_arr_lost",
        # every scored account on the list, so its order has something to show
        health_bands=["red", "yellow", "green"],
    )


@pytest.fixture(scope="module")
def noise(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    """Nothing predicts churn: a coin (a hash of the key), one in five."""
    return _fit_and_apply(
        base, tmp_path_factory.mktemp("noise"), "r < 0.2", rank_by="expected_arr_lost"
    )


def _rows(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse)) as con:
        return con.sql(sql).pl()


# --- before any fit ---------------------------------------------------------------------------


def test_a_warehouse_never_fitted_builds_without_probabilities(base: Base) -> None:
    with duckdb.connect(str(base.warehouse)) as con:
        schemas = {s for (s,) in query(con, "select schema_name from information_schema.schemata")}
        assert "ml" not in schemas
        assert query(con, "select count(*) from intermediate.int_churn_predictions") == [(0,)]
        assert query(
            con, "select count(churn_probability), count(*) > 0 from marts.fct_account_health"
        ) == [(0, True)]
        assert {r for (r,) in query(con, "select distinct ranked_by from marts.risk_list")} <= {
            "arr_at_risk_usd"
        }


def test_features_are_long_per_reported_date_with_every_event_name(base: Base) -> None:
    with duckdb.connect(str(base.warehouse)) as con:
        per_row = query(
            con,
            f"select count(distinct feature), min(n), max(n) from (select account_id, as_of_date,"
            f" count(*) as n from {FEATURES} group by all), {FEATURES}",
        )
        events = {n for (n,) in query(con, "select distinct event_name from raw.events")}
        named = {
            f.removeprefix("event_30d:")
            for (f,) in query(con, f"select distinct feature from {FEATURES}")
            if f.startswith("event_30d:")
        }
        reported = query(
            con,
            "select count(*) from marts.fct_account_health h anti join"
            f" (select distinct account_id, as_of_date from {FEATURES}) f"
            " using (account_id, as_of_date)",
        )
    [(features, least, most)] = per_row
    assert least == most == features, "every (account, date) has every feature"
    assert named == events, "usage per event name, whether the feature map knows it or not"
    assert reported == [(0,)]


# --- the split ---------------------------------------------------------------------------------


def test_no_training_outcome_window_reaches_into_the_validation_dates(signal: Fitted) -> None:
    split = signal.fit.split
    assert split is not None and split.kind == "out_of_time", signal.fit.verdict
    assert split.train_to + timedelta(days=HORIZON) <= split.validation_from
    assert split.calibration_folds >= 2, "calibrated on cross-validated training predictions"
    complete = _rows(
        signal.warehouse,
        f"select distinct as_of_date from {OUTCOMES} where outcome_complete order by 1",
    )["as_of_date"].to_list()
    assert split.validation_to == complete[-1], "validated on the latest complete dates"
    assert split.validation_from < split.validation_to
    fits = _rows(signal.warehouse, "select train_to, validation_from from ml.churn_model_fits")
    assert fits.rows() == [(split.train_to, split.validation_from)]


# --- accepted: churn follows one event name ---------------------------------------------------


def test_a_model_finds_churn_that_follows_one_event_name(signal: Fitted) -> None:
    fit, metrics = signal.fit, signal.fit.metrics
    assert fit.accepted, fit.verdict
    assert fit.verdict.startswith("used: AUC")
    assert metrics["auc_model"] > 0.9
    assert metrics["auc_model"] > metrics["auc_baseline"] + 0.2
    assert metrics["auc_model"] > max(metrics["auc_health_score"], metrics["auc_churn_risk"])
    artifact = json.loads(fit.artifact_path.read_text()) if fit.artifact_path else {}
    assert fit.artifact_path == signal.publish / "models" / "churn" / f"{fit.version}.json"
    assert artifact["churn_model_version"] == fit.version and artifact["accepted"] is True
    assert len(artifact["coefficients"]) == len(fit.coefficients) > 0
    stored = _rows(
        signal.warehouse,
        "select churn_model_version, accepted, auc_model, verdict from ml.churn_model_fits",
    )
    assert stored.rows() == [(fit.version, True, metrics["auc_model"], fit.verdict)]


def test_sql_probabilities_equal_scikit_learns(signal: Fitted) -> None:
    fit = signal.fit
    assert fit.estimator is not None and fit.split is not None
    predicted = _rows(
        signal.warehouse,
        "select account_id, as_of_date, churn_model_version, churn_probability"
        " from intermediate.int_churn_predictions",
    )
    long = _rows(
        signal.warehouse,
        f"select account_id, as_of_date, feature, value from {FEATURES}"
        f" where as_of_date >= date '{fit.split.validation_from}'",
    )
    wide = long.pivot(on="feature", index=["account_id", "as_of_date"], values="value")
    joined = wide.join(predicted, on=["account_id", "as_of_date"], how="left")
    assert joined.height == predicted.height > 0, "every out-of-sample row gets a probability"
    assert set(predicted["churn_model_version"]) == {fit.version}
    matrix = joined.select(pl.col(f).cast(pl.Float64) for f in fit.features).to_numpy()
    expected = fit.estimator.predict_proba(matrix)[:, 1]
    assert np.max(np.abs(joined["churn_probability"].to_numpy() - expected)) < 1e-9
    assert predicted["as_of_date"].min() == fit.split.validation_from


def test_fct_account_health_carries_probability_and_expected_arr_lost(signal: Fitted) -> None:
    health = _rows(
        signal.warehouse,
        "select h.as_of_date, h.arr_usd, h.churn_probability, h.churn_model_version,"
        " h.expected_arr_lost_usd, p.churn_probability as predicted"
        " from marts.fct_account_health h left join intermediate.int_churn_predictions p"
        " using (account_id, as_of_date)",
    )
    scored = health.filter(pl.col("churn_probability").is_not_null())
    assert scored.height > 0
    assert scored["as_of_date"].min() == signal.fit.split.validation_from  # type: ignore[union-attr]
    assert (scored["churn_probability"] == scored["predicted"]).all()
    assert set(scored["churn_model_version"]) == {signal.fit.version}
    loss = (scored["churn_probability"] * scored["arr_usd"].cast(pl.Float64)).round(4)
    assert (scored["expected_arr_lost_usd"].cast(pl.Float64) - loss).abs().max() < 1e-4


def test_the_backtest_evaluates_the_fit_out_of_sample_as_the_fit_did(signal: Fitted) -> None:
    """The SQL backtest's churn_probability rows are the fit's validation rows (its dates on or
    after validation_from whose outcome is complete): its AUC and Brier score are the ones the fit
    measured in Python, and its calibration bins hold every one of those rows."""
    [row] = _rows(
        signal.warehouse,
        "select auc, brier_score, scored_rows, first_scored_date, baseline_auc"
        " from marts.fct_health_backtest where scorer = 'churn_probability'",
    ).to_dicts()
    split = signal.fit.split
    assert split is not None
    assert row["first_scored_date"] == split.validation_from
    assert row["auc"] == pytest.approx(signal.fit.metrics["auc_model"], abs=1e-9)
    assert row["brier_score"] == pytest.approx(signal.fit.metrics["brier_score"], abs=1e-9)
    assert row["baseline_auc"] == pytest.approx(signal.fit.metrics["auc_baseline"], abs=1e-9)
    [(binned,)] = _rows(
        signal.warehouse,
        "select sum(scored_rows) from marts.fct_health_backtest_calibration"
        " where scorer = 'churn_probability'",
    ).rows()
    assert binned == row["scored_rows"]


def test_the_risk_list_ranks_by_expected_arr_lost_when_configured(signal: Fitted) -> None:
    listed = _rows(
        signal.warehouse,
        "select list_rank, account_id, arr_at_risk_usd, expected_arr_lost_usd, ranked_by"
        " from marts.risk_list order by list_rank",
    )
    assert listed.height >= 10, "a list long enough for the order to mean something"
    assert listed["expected_arr_lost_usd"].null_count() == 0
    expected = listed.sort(
        ["expected_arr_lost_usd", "arr_at_risk_usd", "account_id"],
        descending=[True, True, False],
    )
    assert listed["account_id"].to_list() == expected["account_id"].to_list()
    by_arr = listed.sort(["arr_at_risk_usd", "account_id"], descending=[True, False])
    assert listed["account_id"].to_list() != by_arr["account_id"].to_list(), (
        "the data must tell the two orders apart"
    )
    assert set(listed["ranked_by"]) == {f"expected_arr_lost_usd (churn model {signal.fit.version})"}


def test_the_risk_list_keeps_arr_order_by_default(signal: Fitted, base: Base) -> None:
    result = base.dbt.invoke(
        signal.warehouse, "run", "--select", "risk_list", vars_override=_vars()
    )
    assert result.success, failures(result)
    listed = _rows(
        signal.warehouse,
        "select account_id, arr_at_risk_usd, ranked_by from marts.risk_list order by list_rank",
    )
    by_arr = listed.sort(["arr_at_risk_usd", "account_id"], descending=[True, False])
    assert listed["account_id"].to_list() == by_arr["account_id"].to_list()
    assert set(listed["ranked_by"]) == {"arr_at_risk_usd"}
    # back to the fixture's configuration for the other tests
    result = base.dbt.invoke(
        signal.warehouse,
        "run",
        "--select",
        "risk_list",
        vars_override=_vars(rank_by="expected_arr_lost", health_bands=["red", "yellow", "green"]),
    )
    assert result.success, failures(result)


def test_the_fit_asset_records_its_verdict_in_dagster(signal: Fitted, tmp_path: Path) -> None:
    from orchestration.defs.churn_model import churn_model_asset
    from orchestration.defs.settings_resource import SettingsResource
    from orchestration.resources import WarehouseResource

    warehouse = _copy(Base(Dbt.__new__(Dbt), signal.warehouse), tmp_path)
    settings = SettingsResource(
        landing_dir=str(tmp_path / "landing"),
        warehouse_path=str(warehouse),
        publish_dir=str(tmp_path / "published"),
        as_of=AS_OF.isoformat(),
        duckdb_memory_limit="1GB",
        duckdb_threads=1,
        dbt_threads=1,
        churn_horizon_days=HORIZON,
    )
    result = dg.materialize(
        [churn_model_asset],
        resources={"duckdb": WarehouseResource(database=str(warehouse)), "settings": settings},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("ml__churn_model")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["version"] == signal.fit.version, "same data, same settings: same version"
    assert meta["accepted"] is True and meta["verdict"] == signal.fit.verdict
    assert meta["auc_model"] == pytest.approx(signal.fit.metrics["auc_model"])
    assert (tmp_path / "published" / "models" / "churn" / f"{signal.fit.version}.json").is_file()


# --- refused: nothing predicts churn ------------------------------------------------------------


def test_a_model_of_noise_is_refused_and_gives_no_probabilities(noise: Fitted) -> None:
    fit = noise.fit
    assert not fit.accepted
    assert fit.verdict.startswith("not used: AUC"), fit.verdict
    health = _rows(
        noise.warehouse, "select count(churn_probability) as n from marts.fct_account_health"
    )
    assert health["n"].to_list() == [0]
    stored = _rows(noise.warehouse, "select accepted, verdict from ml.churn_model_fits")
    assert stored.rows() == [(False, fit.verdict)]
    ranked = _rows(noise.warehouse, "select distinct ranked_by from marts.risk_list")
    [reason] = ranked["ranked_by"].to_list()
    assert reason.startswith("arr_at_risk_usd: lists.risk.rank_by is expected_arr_lost, but no")


def test_too_little_history_is_a_verdict_not_a_crash(base: Base, tmp_path: Path) -> None:
    warehouse = _copy(base, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"update {OUTCOMES} set outcome_complete = false")
        fit = fit_churn_model(con, as_of=AS_OF, horizon_days=HORIZON, publish_dir=tmp_path)
        stored = query(con, "select accepted, verdict from ml.churn_model_fits")
        coefficients = query(con, "select count(*) from ml.churn_model_coefficients")
    assert not fit.accepted and fit.split is None
    assert "too little history" in fit.verdict and f"{HORIZON}-day" in fit.verdict
    assert stored == [(False, fit.verdict)] and coefficients == [(0,)]


def test_a_fit_refuses_another_horizon_or_a_later_warehouse(base: Base) -> None:
    with duckdb.connect(str(base.warehouse)) as con:
        with pytest.raises(ChurnModelError, match="CSW_CHURN_HORIZON_DAYS=90"):
            fit_churn_model(con, as_of=AS_OF, horizon_days=90, write=False)
        with pytest.raises(ChurnModelError, match="after the fit's date"):
            fit_churn_model(con, as_of=AS_OF - timedelta(days=7), horizon_days=HORIZON, write=False)


def test_a_fit_is_deterministic(signal: Fitted) -> None:
    with duckdb.connect(str(signal.warehouse)) as con:
        again = fit_churn_model(con, as_of=AS_OF, horizon_days=HORIZON, write=False)
        other = fit_churn_model(
            con,
            as_of=AS_OF,
            horizon_days=HORIZON,
            write=False,
            settings=ChurnModelSettings(regularisation_c=1.0),
        )
    assert again.version == signal.fit.version
    assert again.coefficients == signal.fit.coefficients
    assert other.version != signal.fit.version, "settings are part of the version"


# --- configuration --------------------------------------------------------------------------------


def test_rank_by_is_validated(tmp_path: Path) -> None:
    from pinned_model import PINNED_HEALTH_MODEL

    text = PINNED_HEALTH_MODEL.read_text()
    assert "rank_by: arr " in text
    bad = tmp_path / "health_model.yaml"
    bad.write_text(text.replace("rank_by: arr ", "rank_by: expected_loss "))
    with pytest.raises(HealthConfigError) as raised:
        load_health_config(bad)
    assert "lists.risk.rank_by = expected_loss: must be 'arr' or 'expected_arr_lost'" in str(
        raised.value
    )
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("rank_by: arr ", "rank_by: expected_arr_lost "))
    assert load_health_config(good).lists.risk.rank_by == "expected_arr_lost"


def test_the_daily_pipeline_does_not_fit_and_the_churn_job_does(tmp_path: Path) -> None:
    from orchestration.definitions import build_definitions
    from orchestration.defs.jobs import CHURN_MODEL_JOB, CHURN_MODEL_KEY, PIPELINE_JOB
    from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL
    from orchestration.settings import Settings

    defs = build_definitions(Settings(home=tmp_path))
    pipeline = defs.resolve_job_def(PIPELINE_JOB).asset_layer.selected_asset_keys
    churn = defs.resolve_job_def(CHURN_MODEL_JOB).asset_layer.selected_asset_keys
    assert CHURN_MODEL_KEY not in pipeline
    names = {k.to_user_string() for k in churn}
    assert {
        "ml/churn_model",
        "intermediate/int_churn_predictions",
        "marts/fct_account_health",
        "marts/risk_list",
    } <= names
    assert not any(n.startswith(("published/", "staging/")) for n in names)
    assert "intermediate/int_account_churn_features" not in names
    node = defs.resolve_asset_graph().get(CHURN_MODEL_KEY)
    assert {k.to_user_string() for k in node.parent_keys} == {
        "intermediate/int_account_churn_features",
        "intermediate/int_account_churn_outcomes",
        "intermediate/int_account_health_scores",
    }
    assert list(node.owners) == ["team:customer-success-ops"]
    assert node.assets_def.node_def.pool == WAREHOUSE_WRITER_POOL


def _split(rows: int = 2000, churned: int = 100) -> Split:
    day = date(2025, 1, 6)
    return Split(
        kind="out_of_time",
        train_from=day - timedelta(days=300),
        train_to=day - timedelta(days=60),
        validation_from=day,
        validation_to=day + timedelta(days=60),
        train_rows=rows * 3,
        train_churned=churned * 3,
        calibration_folds=5,
        validation_rows=rows,
        validation_churned=churned,
    )


@pytest.mark.parametrize(
    ("baseline", "accepted"),
    [(0.80, False), (0.72, False), (0.60, True), (None, True)],
)
def test_a_model_that_does_not_beat_the_activity_baseline_is_not_used(
    baseline: float | None, accepted: bool
) -> None:
    """Beating the configured score is not enough when counting 30 days of activity ranks the
    churners at least as well: the verdict names the baseline."""
    metrics = {
        "auc_model": 0.72,
        "auc_health_score": 0.55,
        "auc_churn_risk": 0.60,
        "auc_baseline": baseline,
        "brier_score": 0.04,
    }
    used, verdict = _verdict(metrics, _split(), ChurnModelSettings())
    assert used is accepted
    if not accepted:
        assert "30-day activity baseline" in verdict
        assert verdict.startswith("not used: AUC 0.720 <= 30-day activity baseline")


def test_a_date_split_is_not_called_out_of_time() -> None:
    metrics = {
        "auc_model": 0.80,
        "auc_health_score": 0.55,
        "auc_churn_risk": 0.60,
        "auc_baseline": 0.60,
        "brier_score": 0.04,
    }
    plain = dataclasses.replace(_split(), kind="date_split")
    used, verdict = _verdict(metrics, plain, ChurnModelSettings())
    assert used, verdict
    assert "out of time" not in verdict
    assert "date split (training outcome windows overlap validation)" in verdict
    _, honest = _verdict(metrics, _split(), ChurnModelSettings())
    assert "out of time" in honest


# --- rows before the event log could show 30 days of activity -----------------------------------


def test_rows_before_30_days_of_event_history_are_neither_trained_nor_evaluated(
    signal: Fitted,
) -> None:
    with duckdb.connect(str(signal.warehouse)) as con:
        [(first_event,)] = query(
            con, "select min(activity_date) from intermediate.int_user_daily_events"
        )
        flagged = query(
            con,
            f"select count(*) filter (where activity_history_complete"
            f" <> (as_of_date >= date '{first_event}' + 6)), count(*) filter (where not"
            f" activity_history_complete), count(*) filter (where activity_history_complete"
            f" and outcome_complete) from {OUTCOMES}",
        )
        [(evaluated_from,)] = query(
            con, "select min(as_of_date) from intermediate.int_backtest_scores"
        )
    [(wrong, early, usable)] = flagged
    assert wrong == 0
    assert early > 0 and usable > 0, "the fixture has rows on both sides"
    limit = first_event + timedelta(days=6)
    assert evaluated_from >= limit
    split = signal.fit.split
    assert split is not None and split.train_from >= limit


# --- calibration: on cross-validated training predictions, never reversing the ranking -------------


def _noise_warehouse(path: Path, salt: str, accounts: int = 30, dates: int = 12) -> Path:
    """A warehouse of the three tables the fit reads, where nothing predicts churn (a hashed
    coin): out-of-fold predictions of such data tend to run against the labels, the case where
    Platt scaling finds a negative slope."""
    warehouse = path / "noise.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema intermediate")
        con.execute(
            f"""
            create table {OUTCOMES} as
            select 'a' || a as account_id, date '2024-01-01' + 7 * d::integer as as_of_date,
                {HORIZON} as horizon_days, null::date as churned_on,
                (hash('a' || a || '/' || d || '{salt}') % 100) < 25 as churned_within_horizon,
                true as outcome_complete, true as activity_history_complete
            from range({accounts}) t(a), range({dates}) u(d)
            """
        )
        con.execute(
            f"""
            create table {_FEATURES_TABLE} as
            select account_id, as_of_date, feature,
                ((hash(account_id || feature || as_of_date || '{salt}') % 1000) / 100.0)::double
                    as value,
                feature like 'event%' as is_count
            from {OUTCOMES}, (values ('health_score'), ('churn_risk'), ('activity_events_30d'),
                ('event_30d:play')) f(feature)
            """
        )
        con.execute(f"create table {_SCORES_TABLE} as select 'v1' as health_model_version")
    return warehouse


@pytest.mark.parametrize("salt", ["0", "2"])  # a positive, a negative cross-validated slope
def test_calibration_never_reverses_the_ranking(tmp_path: Path, salt: str) -> None:
    warehouse = _noise_warehouse(tmp_path, salt=salt)
    last = date(2024, 1, 1) + timedelta(days=7 * 11 + HORIZON)
    with duckdb.connect(str(warehouse)) as con:
        fit = fit_churn_model(
            con,
            as_of=last,
            horizon_days=HORIZON,
            write=False,
            settings=ChurnModelSettings(min_churned=1),
        )
        rows = con.sql(
            f"pivot (select * exclude (is_count) from {_FEATURES_TABLE}) on feature"
            " using first(value) group by account_id, as_of_date"
        ).pl()
    assert fit.split is not None and fit.estimator is not None, fit.verdict
    assert fit.calibration_slope is not None and fit.calibration_slope > 0
    matrix = rows.select(pl.col(f).cast(pl.Float64) for f in fit.features).to_numpy()
    linear = matrix_linear(fit, matrix)
    probability = fit.estimator.predict_proba(matrix)[:, 1]
    order = np.argsort(linear, kind="stable")
    assert np.all(np.diff(probability[order]) >= -1e-15), "calibration keeps the model's order"
    expected = 1 / (1 + np.exp(-(fit.calibration_slope * linear + fit.calibration_intercept)))
    assert np.max(np.abs(probability - expected)) < 1e-9, "what SQL applies is what sklearn does"


def test_a_non_positive_calibration_slope_is_not_applied(tmp_path: Path) -> None:
    warehouse = _noise_warehouse(tmp_path, salt="2")  # a negative one (-0.635)
    last = date(2024, 1, 1) + timedelta(days=7 * 11 + HORIZON)
    with duckdb.connect(str(warehouse)) as con:
        fit = fit_churn_model(
            con,
            as_of=last,
            horizon_days=HORIZON,
            write=False,
            settings=ChurnModelSettings(min_churned=1),
        )
    assert fit.split is not None
    notes = " ".join(fit.split.notes)
    assert "calibration slope" in notes, "this noise gives a non-positive cross-validated slope"
    assert (fit.calibration_slope, fit.calibration_intercept) == (1.0, 0.0)
    assert "no recalibration" in fit.verdict
    assert "no recalibration" in json.dumps(fit.artifact())


def matrix_linear(fit: ChurnModelFit, matrix: np.ndarray) -> np.ndarray:
    """The model's linear score as SQL computes it from the coefficients."""
    total = np.full(matrix.shape[0], fit.intercept or 0.0)
    for j, c in enumerate(fit.coefficients):
        x = np.where(np.isnan(matrix[:, j]), c.fill_value, matrix[:, j])
        t = np.log1p(x) if c.transform == "log1p" else x
        total += c.coefficient * (t - c.center) / c.scale
    return total


# --- event-name features: every name kept, absent usage is 0 ---------------------------------------


def test_an_absent_event_feature_scores_as_no_usage(
    signal: Fitted, base: Base, tmp_path: Path
) -> None:
    fit = signal.fit
    events = [c for c in fit.coefficients if c.feature.startswith("event_30d:")]
    assert events and all(c.fill_value == 0 for c in events), "absent usage is 0, not a median"
    medians = {c.feature: c.fill_value for c in fit.coefficients if c.fill_value != 0}
    assert medians, "other features keep their training median"
    # the fit's strongest event feature drops out of the features table (e.g. out of a cap)
    dropped = max(events, key=lambda c: abs(c.coefficient)).feature
    warehouse = _copy(Base(base.dbt, signal.warehouse), tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"delete from {FEATURES} where feature = ?", [dropped])
    result = base.dbt.invoke(
        warehouse, "run", "--select", "int_churn_predictions", vars_override=_vars()
    )
    assert result.success, failures(result)
    predicted = _rows(warehouse, "select * from intermediate.int_churn_predictions")
    wide = _rows(
        warehouse,
        f"pivot (select account_id, as_of_date, feature, value from {FEATURES}) on feature"
        " using first(value) group by account_id, as_of_date",
    ).with_columns(pl.lit(0.0).alias(dropped))
    joined = predicted.join(wide, on=["account_id", "as_of_date"], how="left")
    matrix = joined.select(pl.col(f).cast(pl.Float64) for f in fit.features).to_numpy()
    assert fit.estimator is not None
    expected = fit.estimator.predict_proba(matrix)[:, 1]
    assert np.max(np.abs(joined["churn_probability"].to_numpy() - expected)) < 1e-9
    nan = matrix.copy()
    nan[:, fit.features.index(dropped)] = np.nan
    assert np.max(np.abs(fit.estimator.predict_proba(nan)[:, 1] - expected)) < 1e-12


def test_the_fit_picks_its_event_features_by_training_frequency(signal: Fitted) -> None:
    with duckdb.connect(str(signal.warehouse)) as con:
        narrow = fit_churn_model(
            con,
            as_of=AS_OF,
            horizon_days=HORIZON,
            write=False,
            settings=ChurnModelSettings(max_event_features=2),
        )
        split = narrow.split
        assert split is not None
        top = [
            f
            for (f,) in query(
                con,
                f"select feature from {FEATURES} join {OUTCOMES} using (account_id, as_of_date)"
                f" where feature like 'event_30d:%' and as_of_date between date '{split.train_from}'"
                f" and date '{split.train_to}' and outcome_complete and activity_history_complete"
                " group by feature order by sum(value) desc, feature limit 2",
            )
        ]
    chosen = [f for f in narrow.features if f.startswith("event_30d:")]
    assert sorted(chosen) == sorted(top)
