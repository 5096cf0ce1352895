"""The revenue models end to end: a tiny raw warehouse built by hand, `dbt build`, hand-computed marts.

The project is parsed once per module and built three times: on the fixture below, on empty raw
tables, and on the fixture without one FX rate (which must fail, naming the currency and month).
Every expected number is computed by hand in the comments (docs/metrics.md walks through them).
dbt writes its target/ and logs/ under pytest's tmp directory, never into dbt_project/.
Every warehouse file is named warehouse.duckdb (in its own directory): dbt-duckdb names the database
after the file's stem, and the manifest parsed once bakes that name into every relation.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, d, failures, query, ts

AS_OF = "2024-06-15"

D = Decimal


# --- the fixture extracts ---------------------------------------------------------------------
# acc_a (enterprise): sub_a1 monthly USD 10 x 100.00 -10% = 900.00; upgraded to 20 seats on
#   2024-03-05 (1800.00) and downgraded to 15 seats on 2024-03-20 (1350.00): March counts 1350.00.
#   sub_a2 yearly USD 5 x 1200.00 / 12 = 500.00 from 2024-02-01.
#   -> Jan 900, Feb 1400, Mar..Jun 1850. Closed-won deal ending 2024-09-01: renewal in 78 days.
# acc_b (mid_market, EUR): sub_b1 biennial 3 x 2400.00 EUR / 24 = 300.00 EUR a month, trial until
#   2024-02-14 10:00, ended 2024-05-20; sub_b2 monthly 2 x 100.00 EUR from 2024-06-03.
#   -> Feb 300 x 1.08 = 324.00, Mar x 1.09 = 327.00, Apr x 1.07 = 321.00, May 0 (churn),
#      Jun 200 x 1.0725 = 214.50 (reactivation).
# acc_c (smb): 50 x 20.00 = 1000.00 from 2023-11-01, 40 seats from 2024-04-10 (800.00), ended
#   2024-06-01 -> Nov..Mar 1000, Apr..May 800, Jun 0 (churn).
# cus_x (no CRM account): yearly 1 x 1000.00 / 12 = 83.3333 from 2024-03-01, as `unmapped:cus_x`.
# cus_y: account_id acc_zzz, unknown to the CRM, no subscription (reported, no revenue).
# acc_d: no subscription (prospect). acc_e: in trial on as_of (trial).


def account(account_id: str, name: str, segment: str, owner: str, updated: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "name": name,
        "segment": segment,
        "industry": "software",
        "region": "emea",
        "owner": owner,
        "created_at": ts("2023-10-01 00:00:00"),
        "updated_at": ts(updated),
    }


def subscription(
    subscription_id: str,
    customer: str,
    status: str,
    started: str,
    trial_end: str | None = None,
    ended: str | None = None,
    updated: str = "2024-01-01 00:00:00",
) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "billing_customer_id": customer,
        "status": status,
        "started_at": ts(started),
        "trial_end": ts(trial_end) if trial_end else None,
        "ended_at": ts(ended) if ended else None,
        "updated_at": ts(updated),
    }


def item(
    item_id: str,
    subscription_id: str,
    price: str,
    valid: tuple[str, str | None],
    discount: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``price`` reads "<quantity> x <unit_amount> <currency> / <interval_count> <interval>"."""
    quantity, _, unit_amount, currency, _, interval_count, interval = price.split()
    return {
        "item_id": item_id,
        "subscription_id": subscription_id,
        "plan_id": f"growth_{interval}ly",
        "quantity": int(quantity),
        "unit_amount": D(unit_amount),
        "currency": currency,
        "billing_interval": interval,
        "interval_count": int(interval_count),
        "discount_percent": D(discount) if discount else None,
        "valid_from": ts(valid[0]),
        "valid_to": ts(valid[1]) if valid[1] else None,
        **extra,
    }


RAW: dict[str, list[dict[str, Any]]] = {
    "accounts": [
        # an older version of acc_a (segment smb) that the later one replaces
        account("acc_a", "Alpha Old", "smb", "csm_old", "2024-01-01 00:00:00"),
        account("acc_a", "Alpha", "enterprise", "csm_ada", "2024-02-01 00:00:00"),
        account("acc_b", "Beta", "mid_market", "csm_bob", "2024-01-01 00:00:00"),
        account("acc_c", "Gamma", "smb", "csm_cy", "2024-01-01 00:00:00"),
        account("acc_d", "Delta", "smb", "csm_cy", "2024-01-01 00:00:00"),
        account("acc_e", "Epsilon", "mid_market", "csm_bob", "2024-01-01 00:00:00"),
    ],
    "opportunities": [
        {
            "opportunity_id": "opp_a1",
            "account_id": "acc_a",
            "type": "new_business",
            "stage": "closed_won",
            "amount": D("22200.0000"),
            "currency": "USD",
            "close_date": d("2024-01-05"),
            "contract_start_date": d("2023-09-02"),
            "contract_end_date": d("2024-09-01"),
            "updated_at": ts("2024-01-05 00:00:00"),
        },
    ],
    "customers": [
        {"billing_customer_id": "cus_a", "account_id": "acc_a", "currency": "USD"},
        {"billing_customer_id": "cus_b", "account_id": "acc_b", "currency": "EUR"},
        {"billing_customer_id": "cus_c", "account_id": "acc_c", "currency": "USD"},
        {"billing_customer_id": "cus_e", "account_id": "acc_e", "currency": "USD"},
        {"billing_customer_id": "cus_x", "account_id": None, "currency": "USD"},
        {"billing_customer_id": "cus_y", "account_id": "acc_zzz", "currency": "USD"},
    ],
    "subscriptions": [
        subscription("sub_a1", "cus_a", "active", "2024-01-10 09:00:00"),
        subscription("sub_a2", "cus_a", "active", "2024-02-01 00:00:00"),
        subscription(
            "sub_b1",
            "cus_b",
            "canceled",
            "2024-01-15 10:00:00",
            trial_end="2024-02-14 10:00:00",
            ended="2024-05-20 13:00:00",
        ),
        subscription("sub_b2", "cus_b", "active", "2024-06-03 08:00:00"),
        # acc_c: an older version still running, replaced by the canceled one
        subscription(
            "sub_c1", "cus_c", "active", "2023-11-01 00:00:00", updated="2024-05-01 00:00:00"
        ),
        subscription(
            "sub_c1",
            "cus_c",
            "canceled",
            "2023-11-01 00:00:00",
            ended="2024-06-01 00:00:00",
            updated="2024-06-01 00:00:00",
        ),
        subscription(
            "sub_e1", "cus_e", "trialing", "2024-06-01 00:00:00", trial_end="2024-06-30 00:00:00"
        ),
        subscription("sub_x1", "cus_x", "active", "2024-03-01 00:00:00"),
    ],
    "subscription_items": [
        item(
            "si_a1",
            "sub_a1",
            "10 x 100.0000 USD / 1 month",
            ("2024-01-10 09:00:00", "2024-03-05 12:00:00"),
            discount="10",
        ),
        item(
            "si_a1",
            "sub_a1",
            "20 x 100.0000 USD / 1 month",
            ("2024-03-05 12:00:00", "2024-03-20 08:00:00"),
            discount="10",
        ),
        # the current version arrives twice (a re-sent file): staging keeps one
        *[
            item(
                "si_a1",
                "sub_a1",
                "15 x 100.0000 USD / 1 month",
                ("2024-03-20 08:00:00", None),
                discount="10",
                _source_file=f"items_{n}.csv",
            )
            for n in (1, 2)
        ],
        item("si_a2", "sub_a2", "5 x 1200.0000 USD / 1 year", ("2024-02-01 00:00:00", None)),
        item("si_b1", "sub_b1", "3 x 2400.0000 EUR / 2 year", ("2024-01-15 10:00:00", None)),
        item("si_b2", "sub_b2", "2 x 100.0000 EUR / 1 month", ("2024-06-03 08:00:00", None), "0"),
        item(
            "si_c1",
            "sub_c1",
            "50 x 20.0000 USD / 1 month",
            ("2023-11-01 00:00:00", "2024-04-10 15:30:00"),
        ),
        item("si_c1", "sub_c1", "40 x 20.0000 USD / 1 month", ("2024-04-10 15:30:00", None)),
        item("si_e1", "sub_e1", "5 x 30.0000 USD / 1 month", ("2024-06-01 00:00:00", None)),
        item("si_x1", "sub_x1", "1 x 1000.0000 USD / 1 year", ("2024-03-01 00:00:00", None)),
    ],
    # the plans the items are on (no revenue model reads them; the referential check does)
    "plans": [
        {
            "plan_id": f"growth_{interval}ly",
            "name": "Growth",
            "tier": "growth",
            "billing_interval": interval,
        }
        for interval in ("month", "year")
    ],
    "fx_rates": [
        {"currency": currency, "month": d(month), "rate_to_usd": D(rate)}
        for currency, month, rate in (
            ("EUR", "2024-01-01", "1.10000000"),
            ("EUR", "2024-02-01", "1.08000000"),
            ("EUR", "2024-03-01", "1.09000000"),
            ("EUR", "2024-04-01", "1.07000000"),
            ("EUR", "2024-05-01", "1.08500000"),
            ("EUR", "2024-06-01", "1.07250000"),
            ("GBP", "2024-06-01", "1.27000000"),
        )
    ],
}


# --- running dbt ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)


@pytest.fixture(scope="module")
def built(
    dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    warehouse = tmp_path_factory.mktemp("fixture") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, RAW)
    result = dbt.build(warehouse)
    assert result.success, failures(result)
    warnings = [r for r in result.result.results if str(r.status) == "warn"]
    assert [r.node.name for r in warnings] == ["assert_billing_customers_mapped_to_crm"]
    assert warnings[0].failures == 2  # cus_x and cus_y are reported, not dropped
    con = duckdb.connect(str(warehouse))
    yield con
    con.close()


# --- the marts on the fixture -----------------------------------------------------------------


def test_schemas_are_exactly_staging_intermediate_marts(built) -> None:
    schemas = {
        r[0] for r in query(built, "select distinct table_schema from information_schema.tables")
    }
    assert {"raw", "staging", "intermediate", "marts"} <= schemas
    assert not any(s.startswith("main_") for s in schemas)


def test_staging_keeps_the_latest_version_per_key(built) -> None:
    assert query(
        built,
        "select account_name, segment from staging.stg_crm__accounts where account_id = 'acc_a'",
    ) == [("Alpha", "enterprise")]
    assert query(
        built,
        "select count(*) from staging.stg_billing__subscription_items where item_id = 'si_a1'",
    ) == [(3,)]
    assert query(
        built,
        "select status from staging.stg_billing__subscriptions where subscription_id = 'sub_c1'",
    ) == [("canceled",)]


def test_fct_mrr_monthly_matches_hand_computed_mrr_and_movements(built) -> None:
    rows = query(
        built,
        "select account_id, month, mrr_usd, previous_mrr_usd, mrr_change_usd, movement"
        " from marts.fct_mrr_monthly order by account_id, month",
    )
    m = d
    assert rows == [
        ("acc_a", m("2024-01-01"), D("900.0000"), D("0.0000"), D("900.0000"), "new"),
        ("acc_a", m("2024-02-01"), D("1400.0000"), D("900.0000"), D("500.0000"), "expansion"),
        ("acc_a", m("2024-03-01"), D("1850.0000"), D("1400.0000"), D("450.0000"), "expansion"),
        ("acc_a", m("2024-04-01"), D("1850.0000"), D("1850.0000"), D("0.0000"), "flat"),
        ("acc_a", m("2024-05-01"), D("1850.0000"), D("1850.0000"), D("0.0000"), "flat"),
        ("acc_a", m("2024-06-01"), D("1850.0000"), D("1850.0000"), D("0.0000"), "flat"),
        ("acc_b", m("2024-02-01"), D("324.0000"), D("0.0000"), D("324.0000"), "new"),
        ("acc_b", m("2024-03-01"), D("327.0000"), D("324.0000"), D("3.0000"), "expansion"),
        ("acc_b", m("2024-04-01"), D("321.0000"), D("327.0000"), D("-6.0000"), "contraction"),
        ("acc_b", m("2024-05-01"), D("0.0000"), D("321.0000"), D("-321.0000"), "churn"),
        ("acc_b", m("2024-06-01"), D("214.5000"), D("0.0000"), D("214.5000"), "reactivation"),
        ("acc_c", m("2023-11-01"), D("1000.0000"), D("0.0000"), D("1000.0000"), "new"),
        ("acc_c", m("2023-12-01"), D("1000.0000"), D("1000.0000"), D("0.0000"), "flat"),
        ("acc_c", m("2024-01-01"), D("1000.0000"), D("1000.0000"), D("0.0000"), "flat"),
        ("acc_c", m("2024-02-01"), D("1000.0000"), D("1000.0000"), D("0.0000"), "flat"),
        ("acc_c", m("2024-03-01"), D("1000.0000"), D("1000.0000"), D("0.0000"), "flat"),
        ("acc_c", m("2024-04-01"), D("800.0000"), D("1000.0000"), D("-200.0000"), "contraction"),
        ("acc_c", m("2024-05-01"), D("800.0000"), D("800.0000"), D("0.0000"), "flat"),
        ("acc_c", m("2024-06-01"), D("0.0000"), D("800.0000"), D("-800.0000"), "churn"),
        ("unmapped:cus_x", m("2024-03-01"), D("83.3333"), D("0.0000"), D("83.3333"), "new"),
        ("unmapped:cus_x", m("2024-04-01"), D("83.3333"), D("83.3333"), D("0.0000"), "flat"),
        ("unmapped:cus_x", m("2024-05-01"), D("83.3333"), D("83.3333"), D("0.0000"), "flat"),
        ("unmapped:cus_x", m("2024-06-01"), D("83.3333"), D("83.3333"), D("0.0000"), "flat"),
    ]
    # the reporting month is measured on as_of, earlier months on their last day
    assert query(
        built, "select distinct measured_date from marts.fct_mrr_monthly where month = '2024-06-01'"
    ) == [(d(AS_OF),)]
    assert query(
        built,
        "select segment from marts.fct_mrr_monthly where account_id = 'unmapped:cus_x' limit 1",
    ) == [("unmapped",)]


def test_the_bridge_reconciles_to_the_cent(built) -> None:
    bridge = query(
        built,
        "select month, starting_mrr_usd, new_mrr_usd, expansion_mrr_usd, reactivation_mrr_usd,"
        " contraction_mrr_usd, churned_mrr_usd, ending_mrr_usd from marts.fct_mrr_bridge"
        " order by month",
    )
    expected = [
        # month, starting, new, expansion, reactivation, contraction, churned, ending
        ("2023-11-01", "0", "1000", "0", "0", "0", "0", "1000"),
        ("2023-12-01", "1000", "0", "0", "0", "0", "0", "1000"),
        ("2024-01-01", "1000", "900", "0", "0", "0", "0", "1900"),
        ("2024-02-01", "1900", "324", "500", "0", "0", "0", "2724"),
        ("2024-03-01", "2724", "83.3333", "453", "0", "0", "0", "3260.3333"),
        ("2024-04-01", "3260.3333", "0", "0", "0", "206", "0", "3054.3333"),
        ("2024-05-01", "3054.3333", "0", "0", "0", "0", "321", "2733.3333"),
        ("2024-06-01", "2733.3333", "0", "0", "214.5", "0", "800", "2147.8333"),
    ]
    assert bridge == [(d(month), *(D(x) for x in amounts)) for month, *amounts in expected]
    for _, start, new, expansion, reactivation, contraction, churn, end in bridge:
        assert start + new + expansion + reactivation - contraction - churn == end
    # the long form: signed amounts, all six movements, adding up to the change in total MRR
    june = dict(
        query(
            built,
            "select movement, mrr_usd from marts.fct_mrr_movements where month = '2024-06-01'",
        )
    )
    assert june == {
        "new": D("0"),
        "expansion": D("0"),
        "reactivation": D("214.5"),
        "contraction": D("0"),
        "churn": D("-800"),
        "flat": D("0"),
    }
    assert sum(june.values()) == D("2147.8333") - D("2733.3333")
    counts = dict(
        query(
            built,
            "select movement, accounts from marts.fct_mrr_movements where month = '2024-06-01'",
        )
    )
    assert counts == {
        "new": 0,
        "expansion": 0,
        "reactivation": 1,
        "contraction": 0,
        "churn": 1,
        "flat": 2,
    }
    segments = {
        r[0]
        for r in query(built, "select distinct segment from marts.fct_mrr_movements_by_segment")
    }
    assert segments == {"enterprise", "mid_market", "smb", "unmapped"}


def test_retention_point_to_point(built) -> None:
    rows = {
        (grain, start): rest
        for grain, start, *rest in query(
            built,
            "select period_grain, period_start, period_end, cohort_accounts, starting_mrr_usd,"
            " ending_mrr_usd, expansion_mrr_usd, contraction_mrr_usd, churned_mrr_usd, nrr, grr,"
            " is_complete from marts.fct_revenue_retention",
        )
    }
    # months Dec..Jun, Q1 and Q2 2024, year 2024; no trailing-12m window starts after Nov 2023 yet
    assert sorted(rows) == sorted(
        [
            ("month", d(f"{m}-01"))
            for m in ("2023-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06")
        ]
        + [("quarter", d("2024-01-01")), ("quarter", d("2024-04-01")), ("year", d("2024-01-01"))]
    )
    # Q2 2024: cohort = March (c 1000, a 1850, b 327, x 83.3333 = 3260.3333); end = June (as_of):
    # c churned (1000), b churned in May and came back at 214.50 (contraction 112.50), a, x flat.
    assert rows[("quarter", d("2024-04-01"))] == [
        d("2024-06-30"),
        4,
        D("3260.3333"),
        D("2147.8333"),
        D("0"),
        D("112.5"),
        D("1000"),
        D("0.658777"),
        D("0.658777"),
        False,
    ]
    # March: cohort = February (c 1000, a 1400, b 324 = 2724); x is new in March, not in the cohort.
    # end = 1000 + 1850 + 327 = 3177 -> NRR 3177 / 2724 = 1.166300 (1.16629955...), GRR 1.
    assert rows[("month", d("2024-03-01"))] == [
        d("2024-03-31"),
        3,
        D("2724"),
        D("3177"),
        D("453"),
        D("0"),
        D("0"),
        D("1.166300"),
        D("1.000000"),
        True,
    ]
    # Year 2024: cohort = December 2023 (c alone), churned by June.
    assert rows[("year", d("2024-01-01"))][1:] == [
        1,
        D("1000"),
        D("0"),
        D("0"),
        D("0"),
        D("1000"),
        D("0.000000"),
        D("0.000000"),
        False,
    ]
    # A segment with an empty cohort has null ratios.
    assert query(
        built,
        "select cohort_accounts, nrr, grr from marts.fct_revenue_retention_by_segment"
        " where segment = 'unmapped' and period_grain = 'month' and period_start = '2024-03-01'",
    ) == [(0, None, None)]


def test_dim_accounts(built) -> None:
    rows = {
        r[0]: r[1:]
        for r in query(
            built,
            "select account_id, segment, owner, billing_customer_ids, currency,"
            " first_subscription_start_date, latest_subscription_start_date, current_mrr_usd,"
            " current_arr_usd, next_renewal_date, lifecycle_stage, engagement_model"
            " from marts.dim_accounts",
        )
    }
    assert rows == {
        "acc_a": (
            "enterprise",
            "csm_ada",
            "cus_a",
            "USD",
            d("2024-01-10"),
            d("2024-02-01"),
            D("1850"),
            D("22200"),
            d("2024-09-01"),
            "renewal",
            "scaled",
        ),
        "acc_b": (
            "mid_market",
            "csm_bob",
            "cus_b",
            "EUR",
            d("2024-01-15"),
            d("2024-06-03"),
            D("214.5"),
            D("2574"),
            None,
            "value_realisation",
            "tech_touch",
        ),
        "acc_c": (
            "smb",
            "csm_cy",
            "cus_c",
            "USD",
            d("2023-11-01"),
            d("2023-11-01"),
            D("0"),
            D("0"),
            None,
            "churned",
            "tech_touch",
        ),
        "acc_d": (
            "smb",
            "csm_cy",
            None,
            None,
            None,
            None,
            D("0"),
            D("0"),
            None,
            "prospect",
            "tech_touch",
        ),
        "acc_e": (
            "mid_market",
            "csm_bob",
            "cus_e",
            "USD",
            d("2024-06-01"),
            d("2024-06-01"),
            D("0"),
            D("0"),
            None,
            "trial",
            "tech_touch",
        ),
    }


def test_unmapped_billing_customers_are_reported(built) -> None:
    assert query(
        built,
        "select billing_customer_id, account_id, unmapped_reason, subscription_count"
        " from intermediate.int_unmapped_billing_customers order by 1",
    ) == [
        ("cus_x", "unmapped:cus_x", "no_crm_account_id", 1),
        ("cus_y", "unmapped:cus_y", "crm_account_not_found", 0),
    ]


def test_money_columns_are_decimal(built) -> None:
    types = query(
        built,
        "select distinct data_type from information_schema.columns where table_schema = 'marts'"
        " and (column_name like '%usd' or column_name in ('nrr', 'grr'))",
    )
    assert {t for (t,) in types} == {"DECIMAL(18,4)", "DECIMAL(18,6)"}


# --- empty inputs and a missing FX rate ---------------------------------------------------------


def test_empty_raw_tables_build(dbt: Dbt, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {})
    result = dbt.build(warehouse)
    assert result.success, failures(result)
    con = duckdb.connect(str(warehouse))
    try:
        for mart in (
            "fct_mrr_monthly",
            "fct_mrr_movements",
            "fct_mrr_movements_by_segment",
            "fct_mrr_bridge",
            "fct_mrr_bridge_by_segment",
            "fct_revenue_retention",
            "fct_revenue_retention_by_segment",
            "dim_accounts",
        ):
            assert query(con, f"select count(*) from marts.{mart}") == [(0,)]
    finally:
        con.close()


def test_a_missing_fx_rate_fails_the_build_naming_currency_and_month(
    dbt: Dbt, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    missing = {("EUR", d("2024-04-01")), ("EUR", d("2024-06-01"))}
    rows = dict(RAW)
    rows["fx_rates"] = [r for r in RAW["fx_rates"] if (r["currency"], r["month"]) not in missing]
    create_raw_warehouse(warehouse, rows)
    result = dbt.build(warehouse)
    assert not result.success
    errors = failures(result)
    assert len(errors) == 1, errors
    assert "int_subscription_item_mrr_monthly" in errors[0]
    assert "Missing FX rate" in errors[0]
    assert "currency EUR in month 2024-04; currency EUR in month 2024-06" in errors[0]
    # nothing downstream was built from a wrong number
    skipped = {r.node.name for r in result.result.results if str(r.status) == "skipped"}
    assert {
        "int_account_mrr_monthly",
        "fct_mrr_monthly",
        "fct_revenue_retention",
        "dim_accounts",
    } <= skipped
