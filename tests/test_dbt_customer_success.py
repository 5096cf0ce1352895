"""The customer-success models end to end: a tiny raw warehouse built by hand, `dbt build`,
hand-computed health scores, lists, time to value and Kaplan-Meier medians; the weekly history is
point-in-time; and on generated data red accounts churn more than green ones.

The project is parsed once per module and built four times: on the fixture below, on the fixture
plus rows dated after an early Monday (that Monday's scores must not move), on empty raw tables,
and on a small generated landing directory (generated and ingested once). Every expected number is
computed by hand in the comments; docs/health-model.md explains the rules and their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import count, pairwise
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, d, failures, query, ts
from pinned_model import pinned_health_config

from ingestion.contract import TABLES
from ingestion.loader import ingest_table
from ingestion.synthetic import GeneratorConfig, generate_extracts
from metrics.dbt_vars import model_version

AS_OF = "2024-06-30"  # a Sunday: the last Mondays are 10, 17 and 24 June
EARLY = "2024-06-10"  # the Monday of the point-in-time test
D = Decimal

_ids = count(1)


def days(first: str, last: str) -> list[date]:
    start, end = d(first), d(last)
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def event(account: str, user: str, name: str, on: date | str, hour: int = 10) -> dict[str, Any]:
    day = on if isinstance(on, date) else d(on)
    return {
        "event_id": f"evt_{next(_ids):07d}",
        "account_id": account,
        "user_id": user,
        "event_name": name,
        "occurred_at": ts(f"{day.isoformat()} {hour:02d}:00:00"),
    }


def user(user_id: str, account: str, provisioned: str, deprovisioned: str | None = None):
    return {
        "user_id": user_id,
        "account_id": account,
        "role": "member",
        "provisioned_at": ts(provisioned),
        "deprovisioned_at": ts(deprovisioned) if deprovisioned else None,
    }


def ticket(ticket_id: str, account: str, created: str, severity: str = "normal", **extra: Any):
    return {
        "ticket_id": ticket_id,
        "account_id": account,
        "created_at": ts(created),
        "resolved_at": None,
        "severity": severity,
        "status": "open",
        **extra,
    }


def contact(contact_id: str, account: str, role: str, started: str, ended: str | None = None):
    return {
        "contact_id": contact_id,
        "account_id": account,
        "email": f"{contact_id}@{account}.example",
        "title": "VP Operations",
        "role": role,
        "is_active": ended is None,
        "started_at": d(started),
        "ended_at": d(ended) if ended else None,
    }


def activity(activity_id: str, account: str, kind: str, occurred: str) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "account_id": account,
        "type": kind,
        "occurred_at": ts(occurred),
        "attended": True,
    }


def subscription(sub_id: str, customer: str, started: str, ended: str | None = None):
    return {
        "subscription_id": sub_id,
        "billing_customer_id": customer,
        "status": "active",
        "started_at": ts(started),
        "ended_at": ts(ended) if ended else None,
    }


def item(item_id: str, sub_id: str, plan: str, seats: int, price: str, interval: str, start: str):
    return {
        "item_id": item_id,
        "subscription_id": sub_id,
        "plan_id": plan,
        "quantity": seats,
        "unit_amount": D(price),
        "currency": "USD",
        "billing_interval": interval,
        "interval_count": 1,
        "discount_percent": None,
        "valid_from": ts(start),
        "valid_to": None,
    }


# --- the fixture: three paying accounts and a TTV cohort, as of 2024-06-30 --------------------
#
# acc_a "Alpha" (enterprise): 10 seats x 50.00 a month from 1 April (MRR 500, ARR 6000), plan
#   tier growth. Users a1..a5 provisioned 1 April, a6 on 10 June (never active). Events: a1 logs
#   in every day 2 .. 31 May (30 events); a1, a2 create reports every day 17 .. 23 June and view
#   dashboards 24 .. 30 June; a3, a4 view dashboards 24 .. 30 June; a5 runs an automation on
#   5 June. Onboarding: workspace 2 April, data 3 April, 2nd user 1 April, project 10 April.
#   A critical ticket opened 20 June; an invoice due 1 June paid 5 June (late); an executive
#   sponsor since 1 April; a QBR on 15 May; NPS 8 on 20 May.
#   As of 30 June:
#     active ratio: 4 users x 7 days = 28 / 7 / 6 provisioned = 0.667 -> 15
#     trend: a = 4 (24..30 June), b = 2 (17..23) -> t = 1.0 -> 10
#     breadth: reports, dashboards, automation = 3 -> 7                       usage 32
#     support: 1 ticket in 30 days, 1 critical open -> 20 - 5                   support 15
#     payments: 1 late -> 5; seats: 5 active in 30 days / 10 = 0.5 -> 5         financial 10
#     sponsor 7, QBR 5, NPS 8 -> 3, no training                                 engagement 15
#     score 72 yellow; lost: usage 8, support 5, financial 10, engagement 5 -> "financial, usage"
#     churn: events 43 vs 30 (up), payment failure 15 -> 15 low.
#   As of 31 May (30 days earlier): ratio 7 / 7 / 5 = 0.2 -> 5; trend 1 vs 1 -> 4; no core
#     feature -> 3; support 20; no invoice due yet -> 10, seats 1 / 10 -> 2; engagement 15:
#     59, so health_change = 13.
#   As of 23 June: ratio 14 / 7 / 6 -> 10, trend 2 vs 0 -> 10, breadth 2 -> 3; support 15;
#     payments 5, seats 3 / 10 = 0.3 -> 5; engagement 15: 63 (no health drop).
#   Expansion: 5 users active in the 30 days to 30 June vs 1 in the 30 before: team_growth
#     (+400%), opportunity ceil(0.2 x 10) = 2 seats x 600 = 1200.
#   Alerts: a6 not activated (provisioned 20 days ago); collaboration, integrations and exports
#     unused (growth tier). TTV: 9 days (10 April), current stage 4 since 10 April (81 days).
#
# acc_r "Riskco" (mid_market): 20 seats x 600.00 a year from 15 August 2023 (MRR 1000, ARR
#   12000; renews 15 August 2024), plan tier starter. Users r1..r8 provisioned 15 August 2023.
#   Events: r1..r4 view dashboards every day 2 .. 26 May (100 events); r1 logs in every day
#   1 .. 20 June (20 events). Tickets: one a day 25 .. 30 June, the last three critical and open.
#   The champion left on 10 June; NPS 4 on 15 June.
#   As of 30 June: ratio 0 -> 5, trend 0 vs 1 -> 0, breadth 0 -> 3 (usage 8); 6 tickets -> -5,
#     3 critical -> -15 (support 0); no invoices 10, seats 1 / 20 -> 2 (financial 12); no
#     engagement (0): score 20 red; lost usage 32, support 20, engagement 20 -> "usage, support".
#     Churn: events 20 vs 100 (-80%) 30; 6 tickets vs none before 20; NPS 4 25; champion 30;
#     renewal in 46 days with health 20 20: 125 -> 100 high. Risk list: save plan + executive
#     escalation. As of 23 June: 5 + 4 + 3, support 20, 10 + 2, 0 = 44: a health drop.
#   Alerts: activity declining (0 active users vs 1.0 on average in the 4 weeks before); health
#     drop; dashboards, reports, collaboration unused. TTV: no milestones, censored, stage 0.
#
# acc_g "Greenco" (smb): 4 seats x 25.00 a month from 1 January (MRR 100, ARR 1200), tier
#   growth. Users g1..g4 provisioned 1 January, each using dashboards, reports, automation,
#   integrations and exports every day 1 May .. 30 June. Sponsor since 1 January, QBR 1 June,
#   NPS 10 on 2 June, training 3 June. Onboarding 2, 3 and 5 January.
#   As of 30 June and each Monday of June: 20 + 4 + 10, 20, 10 + 10, 20 = 94 green.
#   Expansion: seats 4 / 4 (seat_limit, high) and green for 4 weeks with first value
#   (sustained_health): opportunity ceil(0.8) = 1 seat x 300. Alerts: collaboration unused.
#
# k1..k6 (smb, subscriptions started in May 2024 without items: never scored): the TTV cohort.
#   k1 start 1 May, first value 4 May (3 days); k2 start 2 May, nothing (censored at 59 days);
#   k3 start 3 May, first value 13 May (10); k4 start 10 May, nothing (censored at 51); k5 start
#   20 May, first value 29 June (40); k6 start 25 May, nothing (censored at 36).
#   Kaplan-Meier: t = 3: 6 at risk, S = 5/6; t = 10: 5 at risk, S = 5/6 x 4/5 = 2/3; t = 40:
#   3 at risk (40, 51, 59), S = 2/3 x 2/3 = 4/9 <= 0.5: median 40. (The median of the reached
#   accounts alone would be 10.)


def build_fixture() -> dict[str, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    # acc_a
    events += [event("acc_a", "a1", "login", day) for day in days("2024-05-02", "2024-05-31")]
    for u in ("a1", "a2"):
        events += [
            event("acc_a", u, "report_created", day) for day in days("2024-06-17", "2024-06-23")
        ]
    for u in ("a1", "a2", "a3", "a4"):
        events += [
            event("acc_a", u, "dashboard_viewed", day) for day in days("2024-06-24", "2024-06-30")
        ]
    events += [
        event("acc_a", "a5", "automation_run", "2024-06-05"),
        event("acc_a", "a1", "workspace_created", "2024-04-02"),
        event("acc_a", "a2", "data_imported", "2024-04-03"),
        event("acc_a", "a1", "project_created", "2024-04-10"),
    ]
    # acc_r
    for u in ("r1", "r2", "r3", "r4"):
        events += [
            event("acc_r", u, "dashboard_viewed", day) for day in days("2024-05-02", "2024-05-26")
        ]
    events += [event("acc_r", "r1", "login", day) for day in days("2024-06-01", "2024-06-20")]
    # acc_g
    for u in ("g1", "g2", "g3", "g4"):
        for day in days("2024-05-01", "2024-06-30"):
            for name in (
                "dashboard_viewed",
                "report_created",
                "automation_run",
                "integration_synced",
                "data_exported",
            ):
                events.append(event("acc_g", u, name, day))
    events += [
        event("acc_g", "g1", "workspace_created", "2024-01-02"),
        event("acc_g", "g1", "data_imported", "2024-01-03"),
        event("acc_g", "g2", "project_created", "2024-01-05"),
    ]
    # the TTV cohort: workspace, data and two users on the start day, first project on the day
    users = [
        *[user(f"a{n}", "acc_a", "2024-04-01 10:00:00") for n in range(1, 6)],
        user("a6", "acc_a", "2024-06-10 09:00:00"),
        *[user(f"r{n}", "acc_r", "2023-08-15 10:00:00") for n in range(1, 9)],
        *[user(f"g{n}", "acc_g", "2024-01-01 10:00:00") for n in range(1, 5)],
    ]
    accounts = [
        {"account_id": "acc_a", "name": "Alpha", "segment": "enterprise", "owner": "csm_ada"},
        {"account_id": "acc_r", "name": "Riskco", "segment": "mid_market", "owner": "csm_bob"},
        {"account_id": "acc_g", "name": "Greenco", "segment": "smb", "owner": "csm_cy"},
    ]
    customers = [
        {"billing_customer_id": "cus_a", "account_id": "acc_a", "currency": "USD"},
        {"billing_customer_id": "cus_r", "account_id": "acc_r", "currency": "USD"},
        {"billing_customer_id": "cus_g", "account_id": "acc_g", "currency": "USD"},
    ]
    subscriptions = [
        subscription("sub_a", "cus_a", "2024-04-01 00:00:00"),
        subscription("sub_r", "cus_r", "2023-08-15 00:00:00"),
        subscription("sub_g", "cus_g", "2024-01-01 00:00:00"),
    ]
    cohort = {  # account: (start, first value or None)
        "k1": ("2024-05-01", "2024-05-04"),
        "k2": ("2024-05-02", None),
        "k3": ("2024-05-03", "2024-05-13"),
        "k4": ("2024-05-10", None),
        "k5": ("2024-05-20", "2024-06-29"),
        "k6": ("2024-05-25", None),
    }
    for k, (start, first_value) in cohort.items():
        accounts.append({"account_id": k, "name": k.upper(), "segment": "smb", "owner": "csm_cy"})
        customers.append({"billing_customer_id": f"cus_{k}", "account_id": k, "currency": "USD"})
        subscriptions.append(subscription(f"sub_{k}", f"cus_{k}", f"{start} 08:00:00"))
        if first_value:
            users += [
                user(f"{k}_u1", k, f"{start} 09:00:00"),
                user(f"{k}_u2", k, f"{start} 09:30:00"),
            ]
            events += [
                event(k, f"{k}_u1", "workspace_created", start),
                event(k, f"{k}_u1", "data_imported", start),
                event(k, f"{k}_u2", "project_created", first_value),
            ]
    return {
        "accounts": [
            {**a, "industry": "software", "region": "emea", "created_at": ts("2023-01-01 00:00:00")}
            for a in accounts
        ],
        "customers": customers,
        "subscriptions": subscriptions,
        "plans": [
            {
                "plan_id": "p_growth",
                "name": "Growth",
                "tier": "growth",
                "billing_interval": "month",
            },
            {
                "plan_id": "p_starter_y",
                "name": "Starter",
                "tier": "starter",
                "billing_interval": "year",
            },
        ],
        "subscription_items": [
            item("si_a", "sub_a", "p_growth", 10, "50.0000", "month", "2024-04-01 00:00:00"),
            item("si_r", "sub_r", "p_starter_y", 20, "600.0000", "year", "2023-08-15 00:00:00"),
            item("si_g", "sub_g", "p_growth", 4, "25.0000", "month", "2024-01-01 00:00:00"),
        ],
        "invoices": [
            {
                "invoice_id": "in_a1",
                "billing_customer_id": "cus_a",
                "subscription_id": "sub_a",
                "issued_at": ts("2024-05-25 00:00:00"),
                "due_at": ts("2024-06-01 00:00:00"),
                "amount_due": D("500"),
                "amount_paid": D("500"),
                "currency": "USD",
                "status": "paid",
                "attempt_count": 2,
                "paid_at": ts("2024-06-05 12:00:00"),
            }
        ],
        "users": users,
        "events": events,
        "support_tickets": [
            ticket("t_a1", "acc_a", "2024-06-20 09:00:00", "critical"),
            *[
                ticket(
                    f"t_r{n}",
                    "acc_r",
                    f"2024-06-{24 + n} 09:00:00",
                    "critical" if n > 3 else "normal",
                )
                for n in range(1, 7)
            ],
        ],
        "contacts": [
            contact("c_a1", "acc_a", "executive_sponsor", "2024-04-01"),
            contact("c_r1", "acc_r", "champion", "2023-08-15", ended="2024-06-10"),
            contact("c_g1", "acc_g", "executive_sponsor", "2024-01-01"),
        ],
        "activities": [
            activity("act_a1", "acc_a", "qbr", "2024-05-15 14:00:00"),
            activity("act_g1", "acc_g", "qbr", "2024-06-01 14:00:00"),
            activity("act_g2", "acc_g", "training", "2024-06-03 14:00:00"),
        ],
        "nps_responses": [
            {
                "response_id": "n_a1",
                "account_id": "acc_a",
                "responded_at": ts("2024-05-20 10:00:00"),
                "score": 8,
            },
            {
                "response_id": "n_r1",
                "account_id": "acc_r",
                "responded_at": ts("2024-06-15 10:00:00"),
                "score": 4,
            },
            {
                "response_id": "n_g1",
                "account_id": "acc_g",
                "responded_at": ts("2024-06-02 10:00:00"),
                "score": 10,
            },
        ],
    }


RAW = build_fixture()


def after_early(raw: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The fixture plus rows dated after EARLY, including new versions of entity rows."""
    later = "2024-06-12 10:00:00"
    rows = {table: list(table_rows) for table, table_rows in raw.items()}
    rows["events"] += [
        event("acc_r", "r5", "api_request", day) for day in days("2024-06-11", "2024-06-30")
    ] + [event("acc_a", "a6", "comment_added", "2024-06-11")]
    rows["support_tickets"] += [
        ticket("t_new", "acc_g", "2024-06-11 09:00:00", "critical"),
        # acc_a's critical ticket (opened 20 June) is resolved: a new version of the row
        {
            **rows["support_tickets"][0],
            "resolved_at": ts("2024-06-25 10:00:00"),
            "status": "solved",
            "updated_at": ts("2024-06-25 10:00:00"),
        },
    ]
    rows["nps_responses"] += [
        {"response_id": "n_new", "account_id": "acc_g", "responded_at": ts(later), "score": 0}
    ]
    rows["contacts"] += [
        # acc_g's sponsor leaves after EARLY; a champion of acc_a left after EARLY
        {
            **contact("c_g1", "acc_g", "executive_sponsor", "2024-01-01", ended="2024-06-11"),
            "updated_at": ts(later),
        },
        contact("c_a2", "acc_a", "champion", "2024-04-01", ended="2024-06-11"),
    ]
    rows["users"] += [
        {
            **user("g1", "acc_g", "2024-01-01 10:00:00", deprovisioned=later),
            "updated_at": ts(later),
        },
        user("g5", "acc_g", later),
    ]
    rows["activities"] += [activity("act_new", "acc_r", "ebr", later)]
    rows["invoices"] += [
        {
            **rows["invoices"][0],
            "invoice_id": "in_late",
            "issued_at": ts("2024-06-11 00:00:00"),
            "due_at": ts(later),
            "paid_at": None,
            "status": "open",
        }
    ]
    rows["opportunities"] = [
        {
            "opportunity_id": "o_new",
            "account_id": "acc_a",
            "type": "renewal",
            "stage": "closed_won",
            "amount": D("6000"),
            "currency": "USD",
            "close_date": d("2024-06-11"),
            "contract_start_date": d("2024-06-11"),
            "contract_end_date": d("2024-07-01"),
        }
    ]
    rows["subscription_items"] += [  # acc_a goes to 12 seats after EARLY (a new price version)
        {**rows["subscription_items"][0], "valid_to": ts(later), "updated_at": ts(later)},
        {
            **rows["subscription_items"][0],
            "quantity": 12,
            "valid_from": ts(later),
            "updated_at": ts(later),
        },
    ]
    return rows


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)


def connect_after_build(
    dbt: Dbt, warehouse: Path, *args: str, **kw: Any
) -> duckdb.DuckDBPyConnection:
    result = dbt.build(warehouse, *args, **kw)
    assert result.success, failures(result)
    return duckdb.connect(str(warehouse))


@pytest.fixture(scope="module")
def built(
    dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    warehouse = tmp_path_factory.mktemp("fixture") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, RAW)
    con = connect_after_build(dbt, warehouse)
    yield con
    con.close()


def rows_by(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def health(con: duckdb.DuckDBPyConnection, account: str, on: str) -> dict[str, Any]:
    found = rows_by(
        con,
        f"select * from marts.fct_account_health where account_id = '{account}'"
        f" and as_of_date = '{on}'",
    )
    assert len(found) == 1, found
    return found[0]


# --- the health score on the fixture -----------------------------------------------------------


def test_health_score_of_a_yellow_account_with_every_component(built) -> None:
    row = health(built, "acc_a", AS_OF)
    assert {
        k: row[k]
        for k in (
            "is_reporting_date",
            "mrr_usd",
            "arr_usd",
            "health_score",
            "health_band",
            "health_change",
            "drivers",
            "usage_points",
            "support_points",
            "financial_points",
            "engagement_points",
            "active_ratio_points",
            "weekly_trend_points",
            "breadth_points",
            "ticket_points",
            "critical_ticket_points",
            "payment_points",
            "seat_points",
            "sponsor_points",
            "qbr_points",
            "nps_points",
            "training_points",
        )
    } == {
        "is_reporting_date": True,
        "mrr_usd": D("500"),
        "arr_usd": D("6000"),
        "health_score": 72,
        "health_band": "yellow",
        "health_change": 13,
        "drivers": "financial, usage",
        "usage_points": 32,
        "support_points": 15,
        "financial_points": 10,
        "engagement_points": 15,
        "active_ratio_points": 15,
        "weekly_trend_points": 10,
        "breadth_points": 7,
        "ticket_points": 0,
        "critical_ticket_points": -5,
        "payment_points": 5,
        "seat_points": 5,
        "sponsor_points": 7,
        "qbr_points": 5,
        "nps_points": 3,
        "training_points": 0,
    }
    assert {
        k: row[k]
        for k in (
            "provisioned_users",
            "active_user_days_in_window",
            "active_ratio",
            "active_users_in_trend_window",
            "active_users_in_previous_trend_window",
            "weekly_trend",
            "core_features_in_window",
            "tickets_in_window",
            "open_critical_tickets",
            "failed_payments_in_window",
            "purchased_seats",
            "active_users_in_seat_window",
            "seat_utilisation",
            "has_executive_sponsor",
            "last_business_review_date",
            "latest_nps",
            "events_in_window",
            "events_in_previous_window",
            "churn_risk",
            "churn_risk_band",
            "payment_failure_points",
            "renewal_date",
        )
    } == {
        "provisioned_users": 6,
        "active_user_days_in_window": 28,
        "active_ratio": D("0.666667"),
        "active_users_in_trend_window": 4,
        "active_users_in_previous_trend_window": 2,
        "weekly_trend": D("1"),
        "core_features_in_window": 3,
        "tickets_in_window": 1,
        "open_critical_tickets": 1,
        "failed_payments_in_window": 1,
        "purchased_seats": 10,
        "active_users_in_seat_window": 5,
        "seat_utilisation": D("0.5"),
        "has_executive_sponsor": True,
        "last_business_review_date": d("2024-05-15"),
        "latest_nps": 8,
        "events_in_window": 43,
        "events_in_previous_window": 30,
        "churn_risk": 15,
        "churn_risk_band": "low",
        "payment_failure_points": 15,
        "renewal_date": None,
    }
    # 23 June is not a Monday: only helper dates are computed there, never published
    assert (
        rows_by(built, "select * from marts.fct_account_health where as_of_date = '2024-06-23'")
        == []
    )


def test_health_score_and_churn_risk_of_a_red_account(built) -> None:
    row = health(built, "acc_r", AS_OF)
    assert {
        k: row[k]
        for k in (
            "health_score",
            "health_band",
            "drivers",
            "usage_points",
            "support_points",
            "financial_points",
            "engagement_points",
            "ticket_points",
            "critical_ticket_points",
            "churn_risk",
            "churn_risk_band",
            "usage_decline_points",
            "ticket_spike_points",
            "low_nps_points",
            "champion_left_points",
            "payment_failure_points",
            "renewal_risk_points",
            "renewal_date",
            "champion_left_date",
            "usage_change",
            "arr_usd",
        )
    } == {
        "health_score": 20,
        "health_band": "red",
        "drivers": "usage, support",
        "usage_points": 8,
        "support_points": 0,
        "financial_points": 12,
        "engagement_points": 0,
        "ticket_points": -5,
        "critical_ticket_points": -15,
        "churn_risk": 100,
        "churn_risk_band": "high",
        "usage_decline_points": 30,
        "ticket_spike_points": 20,
        "low_nps_points": 25,
        "champion_left_points": 30,
        "payment_failure_points": 0,
        "renewal_risk_points": 20,
        "renewal_date": d("2024-08-15"),
        "champion_left_date": d("2024-06-10"),
        "usage_change": D("-0.8"),
        "arr_usd": D("12000"),
    }


def test_health_history_is_weekly_from_the_first_monday_with_mrr(built) -> None:
    dates = [
        r[0]
        for r in query(
            built,
            "select distinct as_of_date from marts.fct_account_health where account_id = 'acc_r'"
            " order by 1",
        )
    ]
    # acc_r's yearly item starts on Tuesday 15 August 2023: the first Monday with MRR is 21 August
    assert dates[0] == d("2023-08-21")
    assert dates[-2:] == [d("2024-06-24"), d(AS_OF)]
    assert all((b - a).days == 7 for a, b in pairwise(dates[:-1]))
    assert all(x.isoweekday() == 1 for x in dates[:-1])
    # acc_g is green on each of June's Mondays (94: see the fixture) and on as_of
    assert query(
        built,
        "select as_of_date, health_score, health_band from marts.fct_account_health"
        " where account_id = 'acc_g' and as_of_date >= '2024-06-10' order by 1",
    ) == [(d(x), 94, "green") for x in ("2024-06-10", "2024-06-17", "2024-06-24", AS_OF)]
    # accounts without MRR (the TTV cohort) are never scored
    assert query(
        built, "select count(*) from marts.fct_account_health where account_id like 'k%'"
    ) == [(0,)]


# --- the lists ----------------------------------------------------------------------------------


def test_risk_list(built) -> None:
    assert rows_by(built, "select * from marts.risk_list order by list_rank") == [
        {
            "list_rank": 1,
            "account_id": "acc_r",
            "account_name": "Riskco",
            "owner": "csm_bob",
            "segment": "mid_market",
            "arr_at_risk_usd": D("12000"),
            "renewal_date": d("2024-08-15"),
            "health_score": 20,
            "health_band": "red",
            "churn_risk": 100,
            "churn_risk_band": "high",
            "reasons": "health 20 (red), most points lost in usage, support;"
            " renewal on 2024-08-15, health 20; 3 critical tickets open;"
            " champion left on 2024-06-10; usage down 80% vs previous 30 days;"
            " 6 tickets in 30 days vs 0.0 per 30 days before; NPS 4",
            "play": "save plan + executive escalation",
            # no churn model fitted: no probability, ARR order (tests/test_churn_model.py)
            "churn_probability": None,
            "churn_model_version": None,
            "expected_arr_lost_usd": None,
            "ranked_by": "arr_at_risk_usd",
            # the pinned model scored it (tests/test_model_versions.py)
            "health_model_version": model_version(pinned_health_config()).version,
            "health_model_name": None,
            "as_of_date": d(AS_OF),
        }
    ]


def test_expansion_list(built) -> None:
    assert query(
        built,
        "select list_rank, account_id, owner, current_arr_usd, purchased_seats, signal_types,"
        " signals, urgency, estimated_opportunity_usd from marts.expansion_list order by list_rank",
    ) == [
        (
            1,
            "acc_g",
            "csm_cy",
            D("1200"),
            4,
            "seat_limit, sustained_health",
            "seats 100% used (4 users active in 30 days, 4 seats);"
            " green now and on the previous 3 Mondays, first value reached",
            "high",
            D("300"),
        ),
        (
            2,
            "acc_a",
            "csm_ada",
            D("6000"),
            10,
            "team_growth",
            "active users up 400% on the previous 30 days (5 vs 1)",
            "medium",
            D("1200"),
        ),
    ]


def test_adoption_alerts(built) -> None:
    assert query(
        built,
        "select account_id, alert_type, subject, detail from marts.adoption_alerts"
        " order by account_id, alert_type, subject",
    ) == [
        (
            "acc_a",
            "feature_unused",
            "collaboration",
            "collaboration is included in the growth plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_a",
            "feature_unused",
            "exports",
            "exports is included in the growth plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_a",
            "feature_unused",
            "integrations",
            "integrations is included in the growth plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_a",
            "user_not_activated",
            "a6",
            "provisioned on 2024-06-10 (20 days ago), no activity since",
        ),
        (
            "acc_g",
            "feature_unused",
            "collaboration",
            "collaboration is included in the growth plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_r",
            "activity_declining",
            None,
            "0 active users in the 7 days to 2024-06-30 vs 1.0 on average in the 4 7-day windows before",
        ),
        (
            "acc_r",
            "feature_unused",
            "collaboration",
            "collaboration is included in the starter plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_r",
            "feature_unused",
            "dashboards",
            "dashboards is included in the starter plan and was not used in the 30 days to 2024-06-30",
        ),
        (
            "acc_r",
            "feature_unused",
            "reports",
            "reports is included in the starter plan and was not used in the 30 days to 2024-06-30",
        ),
        ("acc_r", "health_drop", None, "health 20, was 44 on 2024-06-23"),
    ]


def test_no_contact_email_or_title_in_published_lists(built) -> None:
    contacts = {v for r in RAW["contacts"] for v in (r["email"], r["title"])}
    for mart in ("risk_list", "expansion_list", "adoption_alerts"):
        for row in query(built, f"select * from marts.{mart}"):
            text = " ".join(str(v) for v in row)
            assert "@" not in text
            assert not any(c in text for c in contacts), (mart, row)


def test_list_reasons_and_signals_are_the_long_rows_joined(
    built: duckdb.DuckDBPyConnection,
) -> None:
    """risk_list.reasons is its risk_list_reasons rows joined with '; ' in reason_order;
    expansion_list.signals and signal_types are its expansion_list_signals rows joined; every
    long row's account is on its list, at its rank."""
    risk = query(
        built,
        """
        select count(*), count(*) filter (where l.reasons is distinct from
            coalesce(r.joined, ''))
        from marts.risk_list as l
        left join (
            select account_id, string_agg(reason, '; ' order by reason_order) as joined
            from marts.risk_list_reasons group by account_id
        ) as r using (account_id)
        """,
    )
    expansion = query(
        built,
        """
        with joined as (
            select account_id,
                   string_agg(signal, '; ' order by case signal_type
                       when 'seat_limit' then 1 when 'team_growth' then 2 else 3 end)
                       as signals,
                   string_agg(signal_type, ', ' order by case signal_type
                       when 'seat_limit' then 1 when 'team_growth' then 2 else 3 end)
                       as signal_types
            from marts.expansion_list_signals group by account_id
        )
        select count(*), count(*) filter (where l.signals is distinct from j.signals
            or l.signal_types is distinct from j.signal_types)
        from marts.expansion_list as l
        left join joined as j using (account_id)
        """,
    )
    orphans = query(
        built,
        """
        select 'risk', count(*) from marts.risk_list_reasons as r
        where not exists (select 1 from marts.risk_list as l
                          where l.account_id = r.account_id and l.list_rank = r.list_rank)
        union all
        select 'expansion', count(*) from marts.expansion_list_signals as s
        where not exists (select 1 from marts.expansion_list as l
                          where l.account_id = s.account_id and l.list_rank = s.list_rank)
        """,
    )
    several = query(
        built,
        """
        select
            (select max(n) from (select count(*) as n from marts.risk_list_reasons
                                 group by account_id)),
            (select max(n) from (select count(*) as n from marts.expansion_list_signals
                                 group by account_id))
        """,
    )
    # rows with several reasons and signals, so their order is checked too
    assert several[0][0] >= 2 and several[0][1] >= 2, several
    assert risk[0][0] > 0 and expansion[0][0] > 0, "no list rows: the comparison proves nothing"
    assert risk[0][1] == 0
    assert expansion[0][1] == 0
    assert sorted(orphans) == [("expansion", 0), ("risk", 0)]


# --- time to value and Kaplan-Meier ---------------------------------------------------------------


def test_time_to_value(built) -> None:
    rows = {
        r[0]: r[1:]
        for r in query(
            built,
            "select account_id, subscription_start_date, first_value_date, has_reached_first_value,"
            " ttv_days,"
            " observed_days, current_stage, current_stage_name, days_in_current_stage"
            " from marts.fct_time_to_value",
        )
    }
    assert rows["acc_a"] == (d("2024-04-01"), d("2024-04-10"), True, 9, 9, 4, "first_project", 81)
    assert rows["acc_g"] == (d("2024-01-01"), d("2024-01-05"), True, 4, 4, 4, "first_project", 177)
    assert rows["acc_r"] == (d("2023-08-15"), None, False, None, 320, 0, "not_started", 320)
    assert rows["k5"] == (d("2024-05-20"), d("2024-06-29"), True, 40, 40, 4, "first_project", 1)
    assert rows["k6"] == (d("2024-05-25"), None, False, None, 36, 0, "not_started", 36)


def test_kaplan_meier_median_treats_accounts_not_there_yet_as_censored(built) -> None:
    cohort = (
        "select 'all' as segment, * exclude (start_month, as_of_date) from marts.fct_ttv_cohorts"
        " where start_month = '2024-05-01'"
        " union all by name"
        " select * exclude (start_month, as_of_date) from marts.fct_ttv_cohorts_by_segment"
        " where start_month = '2024-05-01'"
    )
    cohort = (
        "select segment, accounts, reached_accounts, censored_accounts,"
        " accounts_reached_within_7d, accounts_reached_within_14d, accounts_reached_within_30d,"
        " accounts_reached_within_60d, accounts_reached_within_90d, median_ttv_days"
        f" from ({cohort}) order by segment"
    )
    # k1..k6: 3 (reached), 10 (reached), 36, 40 (reached), 51, 59: S(40) = 4/9 -> median 40
    assert query(built, cohort) == [
        ("all", 6, 3, 3, 1, 2, 2, 3, 3, 40),
        ("smb", 6, 3, 3, 1, 2, 2, 3, 3, 40),
    ]
    # the same cohort with the censored accounts dropped would claim a median of 10
    reached = sorted(
        r[0]
        for r in query(
            built,
            "select ttv_days from marts.fct_time_to_value"
            " where start_month = '2024-05-01' and has_reached_first_value",
        )
    )
    assert reached[len(reached) // 2] == 10


TTV_DAYS = (7, 14, 30, 60, 90)


def _ttv_shares_sql(n: int) -> str:
    """Per cohort row of both TTV marts: the mart's n-day counts and share, and the observed
    accounts counted again from fct_time_to_value by an equivalent rule (every account at first
    value is observed: if after day n, it started more than n days ago; one not there yet is
    observed once its observed_days reach n)."""
    recount = (
        f"select start_month, {{segment}} as segment, count(*) filter"
        f" (where has_reached_first_value or observed_days >= {n}) as observed"
        " from marts.fct_time_to_value group by all"
    )
    cohorts = (
        "select 'all' as segment, * from marts.fct_ttv_cohorts"
        " union all by name select * from marts.fct_ttv_cohorts_by_segment"
    )
    recounts = (
        f"{recount.format(segment=repr('all'))} union all {recount.format(segment='segment')}"
    )
    return (
        f"select c.start_month, c.segment, c.accounts_reached_within_{n}d,"
        f" c.observed_{n}d_accounts, c.reached_within_{n}d_share, r.observed"
        f" from ({cohorts}) as c left join ({recounts}) as r using (start_month, segment)"
        " order by all"
    )


def test_ttv_shares_are_reached_within_n_days_over_accounts_observed_n_days(built) -> None:
    for n in TTV_DAYS:
        rows = query(built, _ttv_shares_sql(n))
        assert rows, "no TTV cohorts: the comparison proves nothing"
        for month, segment, reached, observed, share, recounted in rows:
            where = (n, month, segment)
            assert observed == recounted, where
            assert reached <= observed, where
            expected = (
                None
                if observed == 0
                else (D(reached) / D(observed)).quantize(D("0.000001"), rounding=ROUND_HALF_UP)
            )
            assert share == expected, where


def test_ttv_shares_leave_out_accounts_not_observed_n_days(built) -> None:
    """The May cohort (k1..k6, 30 June): reached on days 3, 10 and 40; k6, and the two others
    not there yet, started 36, 51 and 59 days before: observed for 30 days, not for 60. At 30
    days 2 of 6; at 60 days 3 of the 3 observed, where dividing by all 6 would say half."""
    rows = query(
        built,
        "select observed_30d_accounts, reached_within_30d_share, accounts_reached_within_60d,"
        " observed_60d_accounts, reached_within_60d_share, observed_90d_accounts,"
        " reached_within_90d_share"
        " from marts.fct_ttv_cohorts where start_month = '2024-05-01'",
    )
    assert rows == [(6, D("0.333333"), 3, 3, D("1.000000"), 3, D("1.000000"))]


# --- point in time -----------------------------------------------------------------------------


def test_weekly_history_is_point_in_time(built, dbt: Dbt, tmp_path: Path) -> None:
    """Rows dated after EARLY (new events, tickets, NPS, a contact leaving, a user deprovisioned,
    a ticket resolved, a late invoice, a new price version, a renewal deal) change nothing on or
    before EARLY, although they change the reporting date's scores."""
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, after_early(RAW))
    result = dbt.invoke(warehouse, "run", "--select", "+fct_account_health")
    assert result.success, failures(result)
    later = duckdb.connect(str(warehouse))
    try:
        history = (
            f"select * from marts.fct_account_health where as_of_date <= '{EARLY}' order by all"
        )
        before, after = query(built, history), query(later, history)
        assert len(before) == 78  # acc_r 43 Mondays, acc_g 24, acc_a 11
        assert before == after
        # the reporting date does see the new rows (acc_g: NPS 0, sponsor gone, critical ticket)
        assert (
            health(later, "acc_g", AS_OF)["health_score"]
            < health(built, "acc_g", AS_OF)["health_score"]
        )
    finally:
        later.close()


# --- empty inputs -------------------------------------------------------------------------------


def test_empty_raw_tables_build(dbt: Dbt, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    create_raw_warehouse(warehouse, {})
    con = connect_after_build(dbt, warehouse)
    try:
        for mart in (
            "fct_time_to_value",
            "fct_ttv_cohorts",
            "fct_ttv_cohorts_by_segment",
            "fct_cohort_adoption",
            "fct_account_health",
            "risk_list",
            "expansion_list",
            "adoption_alerts",
        ):
            assert query(con, f"select count(*) from marts.{mart}") == [(0,)]
    finally:
        con.close()


# --- generated data: the score predicts churn -------------------------------------------------


@pytest.fixture(scope="module")
def generated(
    dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("generated")
    result = generate_extracts(root / "landing", GeneratorConfig(accounts=300, months=18, seed=42))
    warehouse = root / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        for schema in TABLES:
            outcome = ingest_table(
                con, schema, root / "landing", validation_dir=root / "validation"
            )
            assert outcome.files_refused == 0, schema.name
    finally:
        con.close()
    con = connect_after_build(dbt, warehouse, as_of=result.as_of.isoformat())
    yield con
    con.close()


def test_red_accounts_churn_more_than_green_ones_in_the_next_90_days(generated) -> None:
    """Churn: the account's MRR is 0 in a month measured within the 90 days after the score
    (fct_mrr_monthly). Only scores with 90 days of future in the data count."""
    rates = dict(
        (band, (n, rate))
        for band, n, rate in query(
            generated,
            """
            with horizon as (select max(measured_date) as last_day from marts.fct_mrr_monthly),
            scored as (
                select h.account_id, h.as_of_date, h.health_band
                from marts.fct_account_health as h, horizon
                where h.as_of_date + 90 <= horizon.last_day
            ),
            outcomes as (
                select
                    scored.health_band,
                    exists (
                        select 1 from marts.fct_mrr_monthly as m
                        where m.account_id = scored.account_id
                          and m.measured_date > scored.as_of_date
                          and m.measured_date <= scored.as_of_date + 90
                          and m.mrr_usd = 0
                    ) as churned
                from scored
            )
            select health_band, count(*), avg(case when churned then 1.0 else 0.0 end)
            from outcomes group by health_band
            """,
        )
    )
    assert {"red", "green"} <= set(rates)
    assert rates["red"][0] >= 50 and rates["green"][0] >= 50, rates
    assert rates["red"][1] > 2 * rates["green"][1], rates


def test_generated_marts_are_consistent(generated) -> None:
    # every reporting-date score is in range and the lists only hold scored accounts
    assert query(
        generated,
        "select count(*) from marts.fct_account_health where health_score not between 0 and 100"
        " or churn_risk not between 0 and 100",
    ) == [(0,)]
    for mart in ("risk_list", "expansion_list"):
        assert query(
            generated,
            f"select count(*) from marts.{mart} l left join marts.fct_account_health h"
            " on h.account_id = l.account_id and h.as_of_date = l.as_of_date"
            " where h.account_id is null",
        ) == [(0,)]
    assert (
        query(
            generated,
            "select count(*) from marts.fct_ttv_cohorts where median_ttv_days is not null",
        )[0][0]
        > 0
    )
