"""The consumer scenario (ingestion/synthetic/consumer, issue 13 point 6): a product whose churn
the default health model does not see, and the backtest and the learned churn model that do.

One small consumer dataset is generated, ingested and built once for the module with the
scenario's own health model (the default rules, the product's vocabulary) and a 30-day churn
horizon. The contract tests read what was generated and ingested; the end-to-end tests read the
backtest mart and fit the churn model on the warehouse, as a deployment would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from dbt_harness import Dbt, failures, query
from ingestion_fixtures import open_warehouse
from pinned_model import pinned_health_config
from sklearn.metrics import roc_auc_score

from ingestion.contract import TABLES
from ingestion.loader import TableOutcome
from ingestion.synthetic import GenerationResult
from ingestion.synthetic.consumer import (
    CONSUMER_HEALTH_MODEL,
    ConsumerConfig,
    generate_consumer_extracts,
)
from ingestion.synthetic.consumer.config import EVENT_NAMES, PLANS
from metrics.churn_model import ChurnModelFit, fit_churn_model
from metrics.dbt_vars import dbt_vars
from metrics.health_config import load_health_config

#: End to end (generate, ingest, dbt, backtest, fit): the e2e tier, `make test-e2e`.
pytestmark = pytest.mark.e2e

#: A few hundred listeners over a year: enough churn for a 30-day backtest, cheap to build.
SAMPLE = ConsumerConfig(accounts=400, months=12, seed=7)
HORIZON = 30
#: The models that apply a fit, rebuilt after it (the backtest evaluates the fit too).
APPLY = (
    "int_churn_predictions",
    "fct_account_health",
    "int_backtest_scores",
    "fct_health_backtest",
    "fct_health_backtest_calibration",
)


@dataclass(frozen=True)
class Built:
    generated: GenerationResult
    ingested: dict[str, TableOutcome]
    warehouse: Path
    fit: ChurnModelFit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("consumer")
    generated = generate_consumer_extracts(root / "landing", SAMPLE)
    loaded = open_warehouse(root)
    try:
        ingested = {schema.asset_path: loaded.ingest(schema.name) for schema in TABLES}
    finally:
        loaded.conn.close()
    as_of = generated.as_of
    dbt = Dbt(root / "dbt", as_of.isoformat())
    config = load_health_config(CONSUMER_HEALTH_MODEL)
    result = dbt.build(
        root / "warehouse.duckdb",
        "--exclude-resource-type",
        "unit_test",  # the unit tests pin the tests' own (B2B) model, not this one
        vars_override=dbt_vars(as_of, config, churn_horizon_days=HORIZON),
    )
    assert result.success, failures(result)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        fit = fit_churn_model(
            con, as_of=as_of, horizon_days=HORIZON, publish_dir=root / "published"
        )
    applied = dbt.invoke(
        root / "warehouse.duckdb",
        "run",
        "--select",
        *APPLY,
        vars_override=dbt_vars(as_of, config, churn_horizon_days=HORIZON),
    )
    assert applied.success, failures(applied)
    return Built(generated, ingested, root / "warehouse.duckdb", fit)


def _rows(built: Built, sql: str) -> list[tuple]:
    with duckdb.connect(str(built.warehouse)) as con:
        return query(con, sql)


# --- the generator --------------------------------------------------------------------------------


def test_the_scenarios_health_model_is_the_default_rules_with_the_products_vocabulary() -> None:
    config = load_health_config(CONSUMER_HEALTH_MODEL)
    default = pinned_health_config()
    for rules in ("health_score", "churn_risk", "lists", "lifecycle"):
        assert getattr(config, rules) == getattr(default, rules), rules
    assert set(config.events) == set(EVENT_NAMES)
    assert not set(config.events) & set(default.events)
    assert set(config.tier_features) == {p.tier for p in PLANS}
    assert config.name == "consumer-default"


def test_every_table_is_written_and_every_row_is_valid_under_the_contract(built: Built) -> None:
    assert set(built.ingested) == {t.asset_path for t in TABLES}
    for name, outcome in built.ingested.items():
        assert outcome.files_refused == 0, name
        assert outcome.rows_quarantined == 0, (name, [f.quarantine_by_rule for f in outcome.files])
        assert outcome.rows_loaded == built.generated.rows[name], name
    assert len(built.ingested["product/events"].files) == 366  # one file per day of 2024
    assert built.generated.as_of == SAMPLE.last_day == date(2024, 12, 31)


def test_the_same_config_gives_byte_identical_files(built: Built, tmp_path: Path) -> None:
    again = generate_consumer_extracts(tmp_path, SAMPLE)
    first = built.generated
    assert [p.relative_to(first.out_dir) for p in first.files] == [
        p.relative_to(tmp_path) for p in again.files
    ]
    for a, b in zip(first.files, again.files, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.relative_to(first.out_dir)


def test_a_self_serve_consumer_product_with_one_listener_per_account(built: Built) -> None:
    [(accounts, users, listeners)] = _rows(
        built,
        "select count(distinct account_id), count(*), count(distinct account_id)"
        " filter (where n = 1) from (select account_id, count(*) n from raw.users group by all)",
    )
    assert accounts == users == listeners == SAMPLE.accounts
    # no sales, no customer-success meetings, no executive sponsor
    assert _rows(built, "select count(*) from raw.opportunities") == [(0,)]
    assert _rows(built, "select count(*) from raw.activities") == [(0,)]
    assert _rows(built, "select distinct role from raw.contacts") == [("user",)]
    [(paid_months, tickets, responses)] = _rows(
        built,
        "select (select count(*) from raw.invoices), (select count(*) from raw.support_tickets),"
        " (select count(*) from raw.nps_responses)",
    )
    assert tickets < 0.05 * paid_months and responses < 0.1 * paid_months


def test_no_event_marks_the_moment_a_listener_cancels(built: Built) -> None:
    """A cancellation is a decision the product does not see: no event is written at the instant
    a subscription is cancelled (before, the cancel page was, and the model learnt the decision
    itself rather than the frustration that led to it)."""
    [(cancelled, marked)] = _rows(
        built,
        """
        select
            count(distinct subscription_id),
            count(events.event_id)
        from raw.subscriptions
        join raw.customers using (billing_customer_id)
        left join raw.events
            on  events.account_id = customers.account_id
            and events.occurred_at = subscriptions.canceled_at
        where subscriptions.canceled_at is not null
        """,
    )
    assert cancelled > 50
    assert marked == 0


def test_every_event_name_is_in_the_scenarios_feature_map(built: Built) -> None:
    seen = _rows(
        built, "select event_name, is_known from intermediate.int_event_vocabulary order by 1"
    )
    assert {name for name, _ in seen} == set(EVENT_NAMES)
    assert all(known for _, known in seen)


def test_listeners_skip_and_dislike_more_before_they_churn_but_use_the_app_as_often(
    built: Built,
) -> None:
    """The 30 days before each scored date: rows that churn within the horizon against the rest.
    Frustration drives both the churn and the mix of events, not how often the app is opened."""
    by_group = {
        churns: rest
        for churns, *rest in _rows(
            built,
            """
            with scored as (
                select account_id, as_of_date, churned_within_horizon as churns
                from intermediate.int_account_churn_outcomes
                where outcome_complete
            ),
            windows as (
                select
                    scored.churns,
                    count(*) filter (where event_name = 'track_skipped') as skips,
                    count(*) filter (where event_name in ('track_played', 'track_skipped')) as tracks,
                    count(*) filter (where event_name = 'thumbs_down') as downs,
                    count(*) filter (where event_name in ('thumbs_up', 'thumbs_down')) as ratings,
                    count(distinct cast(occurred_at as date))
                        filter (where event_name = 'session_started') as active_days
                from scored
                join raw.events
                    on  events.account_id = scored.account_id
                    and cast(events.occurred_at as date) between scored.as_of_date - 29 and scored.as_of_date
                group by scored.account_id, scored.as_of_date, scored.churns
            )
            select churns, count(*), sum(skips) / sum(tracks), sum(downs) / sum(ratings), avg(active_days)
            from windows
            group by churns
            order by churns
            """,
        )
    }
    (rows_before, skips_before, downs_before, days_before) = by_group[True]
    (rows, skips, downs, days) = by_group[False]
    assert rows_before > 100 and rows > 10 * rows_before
    assert skips_before > 1.3 * skips
    assert downs_before > 1.3 * downs
    assert 0.85 * days < days_before < 1.15 * days


def test_churn_is_between_three_and_six_percent_a_month(built: Built) -> None:
    [(rows, churned)] = _rows(
        built,
        "select count(*), count(*) filter (where churned_within_horizon)"
        " from intermediate.int_account_churn_outcomes where outcome_complete",
    )
    assert rows > 5000
    assert 0.03 <= churned / rows <= 0.06


# --- what the backtest and the learned model make of it --------------------------------------------


def test_the_backtest_reports_the_default_health_score_worse_than_the_baseline(
    built: Built,
) -> None:
    [(auc, baseline_auc, worse)] = _rows(
        built,
        f"select auc, baseline_auc, is_worse_than_baseline from marts.fct_health_backtest"
        f" where scorer = 'health_score' and horizon_days = {HORIZON}",
    )
    assert worse is True
    assert auc < baseline_auc


def test_the_fitted_churn_model_beats_the_health_score_and_the_baseline_out_of_time(
    built: Built,
) -> None:
    fit = built.fit
    assert fit.split is not None and fit.split.kind == "out_of_time"
    assert fit.accepted, fit.verdict
    metrics = fit.metrics
    assert metrics["auc_model"] > metrics["auc_health_score"] + 0.05
    assert metrics["auc_model"] > metrics["auc_baseline"] + 0.05
    assert metrics["auc_model"] > metrics["auc_churn_risk"] + 0.05


def test_the_backtest_mart_ranks_the_fitted_model_above_the_baseline_and_the_health_score(
    built: Built,
) -> None:
    """The learned model's rows of the backtest mart (its out-of-sample dates), against the
    baseline on the same rows and the health score of the same health-model version."""
    by_scorer = {
        scorer: (version, auc, baseline_auc)
        for scorer, version, auc, baseline_auc in _rows(
            built,
            f"select scorer, health_model_version, auc, baseline_auc"
            f" from marts.fct_health_backtest"
            f" where horizon_days = {HORIZON}",
        )
    }
    version, auc, baseline_auc = by_scorer["churn_probability"]
    health_version, health_auc, _ = by_scorer["health_score"]
    assert version == health_version
    # the fit's AUC, from the probabilities as SQL applies them (ties may differ in the last digits)
    assert auc == pytest.approx(built.fit.metrics["auc_model"], abs=1e-4)
    assert auc > baseline_auc + 0.05
    assert auc > health_auc + 0.05


def _auc(churned: np.ndarray, risk: np.ndarray) -> float:
    return float(roc_auc_score(churned, risk))


def test_the_fitted_model_wins_on_listeners_who_never_opened_the_cancel_page(
    built: Built,
) -> None:
    """The win comes from the mix of behaviour (skips, dislikes, errors, ads, help), not from a
    visit to the cancel page: on the learned model's backtest rows without any
    `downgrade_viewed` in the 30 days to the date, it still leads the baseline and the health
    score on the same rows."""
    rows = _rows(
        built,
        f"""
        with scored as (
            select account_id, as_of_date, scorer, risk_score, churned
            from intermediate.int_backtest_scores
            where horizon_days = {HORIZON}
        ),
        visited as (
            select account_id, as_of_date
            from intermediate.int_account_churn_features
            where feature = 'event_30d:downgrade_viewed' and value > 0
        )
        select model.churned, model.risk_score, baseline.risk_score, health.risk_score
        from scored as model
        join scored as baseline using (account_id, as_of_date)
        join scored as health using (account_id, as_of_date)
        anti join visited using (account_id, as_of_date)
        where model.scorer = 'churn_probability'
          and baseline.scorer = 'baseline_activity_30d'
          and health.scorer = 'health_score'
        """,
    )
    churned, model, baseline, health = (
        np.array(column, float) for column in zip(*rows, strict=True)
    )
    assert churned.sum() > 30
    assert _auc(churned, model) > _auc(churned, baseline) + 0.05
    assert _auc(churned, model) > _auc(churned, health) + 0.05
