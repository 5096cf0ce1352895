"""Referential checks (issue 12 point 4): rows whose account, plan, subscription or billing customer
is missing from its extract are counted and named by warn-level dbt tests that store their
failures, without failing the build; clean data passes them.

The project is parsed once per module and each warehouse is built only up to the referential
checks (``+tag:referential``: the staging models, the daily event facts and the unmapped billing
customers), not the whole project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbt_harness import Dbt, create_raw_warehouse, failures, ts

from orchestration.defs.dbt.test_failures import AUDIT_SCHEMA, stored_failures

AS_OF = "2024-06-15"
SELECT = ("--select", "+tag:referential", "--exclude-resource-type", "unit_test")


def _rows(
    table: str, key: str, *rows: tuple[str, str | None], **common: Any
) -> list[dict[str, Any]]:
    """Rows of ``table`` from (id, parent id, ...) tuples; ``key`` names the parent column."""
    id_column = {
        "contacts": "contact_id",
        "opportunities": "opportunity_id",
        "activities": "activity_id",
        "support_tickets": "ticket_id",
        "nps_responses": "response_id",
        "users": "user_id",
        "invoices": "invoice_id",
    }[table]
    return [{id_column: row_id, key: parent, **common} for row_id, parent in rows]


def _event(event_id: str, account: str, user: str, day: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": account,
        "user_id": user,
        "event_name": "login",
        "occurred_at": ts(f"{day} 10:00:00"),
    }


def _item(item_id: str, subscription: str, plan: str) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "subscription_id": subscription,
        "plan_id": plan,
        "quantity": 1,
        "billing_interval": "month",
        "interval_count": 1,
        "valid_from": ts("2024-01-01 00:00:00"),
    }


def _clean() -> dict[str, list[dict[str, Any]]]:
    """Every child row's parent exists."""
    return {
        "accounts": [{"account_id": "acc_a"}, {"account_id": "acc_b"}],
        "contacts": _rows("contacts", "account_id", ("con_1", "acc_a")),
        "opportunities": _rows("opportunities", "account_id", ("opp_1", "acc_b")),
        "activities": _rows("activities", "account_id", ("act_1", "acc_a")),
        "support_tickets": _rows("support_tickets", "account_id", ("tkt_1", "acc_a")),
        "nps_responses": _rows("nps_responses", "account_id", ("nps_1", "acc_b")),
        "users": _rows("users", "account_id", ("usr_1", "acc_a")),
        "events": [_event("evt_1", "acc_a", "usr_1", "2024-06-01")],
        "plans": [{"plan_id": "growth_monthly", "billing_interval": "month"}],
        "customers": [{"billing_customer_id": "cus_a", "account_id": "acc_a"}],
        "subscriptions": [{"subscription_id": "sub_a", "billing_customer_id": "cus_a"}],
        "subscription_items": [_item("si_1", "sub_a", "growth_monthly")],
        # a null key is not an orphan (required keys are null-checked at ingestion)
        "invoices": _rows("invoices", "billing_customer_id", ("inv_1", "cus_a"), ("inv_0", None)),
    }


def _with_orphans() -> dict[str, list[dict[str, Any]]]:
    """The clean rows plus children of parents that are not in their extract."""
    raw = _clean()
    raw["contacts"] += _rows("contacts", "account_id", ("con_2", "acc_zz"), ("con_3", "acc_zz"))
    raw["opportunities"] += _rows("opportunities", "account_id", ("opp_2", "acc_yy"))
    raw["activities"] += _rows("activities", "account_id", ("act_2", "acc_zz"), ("act_3", "acc_xx"))
    raw["support_tickets"] += _rows(
        "support_tickets",
        "account_id",
        ("tkt_2", "acc_zz"),
        ("tkt_3", "acc_zz"),
        ("tkt_4", "acc_zz"),
    )
    raw["nps_responses"] += _rows("nps_responses", "account_id", ("nps_2", "acc_ww"))
    raw["users"] += _rows("users", "account_id", ("usr_2", "acc_zz"))
    raw["events"] += [
        _event("evt_2", "acc_zz", "usr_2", "2024-06-01"),
        _event("evt_3", "acc_zz", "usr_2", "2024-06-02"),
        _event("evt_4", "acc_zz", "usr_2", "2024-06-02"),
        _event("evt_5", "acc_vv", "usr_9", "2024-06-02"),
    ]
    raw["subscription_items"] += [
        _item("si_2", "sub_a", "legacy_plan"),
        _item("si_3", "sub_gone", "growth_monthly"),
        _item("si_4", "sub_gone", "growth_monthly"),
    ]
    raw["invoices"] += _rows("invoices", "billing_customer_id", ("inv_2", "cus_ghost"))
    raw["customers"] += [{"billing_customer_id": "cus_b", "account_id": "acc_zz"}]
    return raw


#: What each referential check must name in the orphan fixture: missing key -> child rows.
EXPECTED: dict[str, dict[str, int]] = {
    "contacts_without_crm_account": {"acc_zz": 2},
    "opportunities_without_crm_account": {"acc_yy": 1},
    "activities_without_crm_account": {"acc_zz": 1, "acc_xx": 1},
    "support_tickets_without_crm_account": {"acc_zz": 3},
    "nps_responses_without_crm_account": {"acc_ww": 1},
    "users_without_crm_account": {"acc_zz": 1},
    # events are counted, not account-days: acc_zz has 3 events on 2 days
    "events_without_crm_account": {"acc_zz": 3, "acc_vv": 1},
    "subscription_items_on_unknown_plans": {"legacy_plan": 1},
    "subscription_items_on_unknown_subscriptions": {"sub_gone": 2},
    "invoices_on_unknown_billing_customers": {"cus_ghost": 1},
}
#: The older warn-level check of billing customers without a CRM account stores its rows too.
BILLING_MAPPING = "assert_billing_customers_mapped_to_crm"


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), AS_OF)


def _built(dbt: Dbt, directory: Path, raw: dict[str, list[dict[str, Any]]]) -> tuple[Path, Any]:
    warehouse = directory / "warehouse.duckdb"
    create_raw_warehouse(warehouse, raw)
    return warehouse, dbt.build(warehouse, *SELECT)


@pytest.fixture(scope="module")
def orphans(dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    yield _built(dbt, tmp_path_factory.mktemp("orphans"), _with_orphans())


@pytest.fixture(scope="module")
def clean(dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    yield _built(dbt, tmp_path_factory.mktemp("clean"), _clean())


def _referential_results(result: Any) -> dict[str, Any]:
    return {
        r.node.name: r
        for r in result.result.results
        if r.node.resource_type == "test" and "referential" in r.node.tags
    }


def test_orphans_warn_with_one_failure_per_missing_key_and_the_build_succeeds(
    orphans: tuple[Path, Any],
) -> None:
    _, result = orphans
    assert result.success, failures(result)
    results = _referential_results(result)
    assert set(results) == {*EXPECTED, BILLING_MAPPING}
    for name, keys in EXPECTED.items():
        assert (str(results[name].status), results[name].failures) == ("warn", len(keys)), name
    assert (str(results[BILLING_MAPPING].status), results[BILLING_MAPPING].failures) == ("warn", 1)


def test_stored_failures_name_each_missing_key_with_its_child_rows(
    orphans: tuple[Path, Any],
) -> None:
    warehouse, _ = orphans
    stored = stored_failures(warehouse, [*EXPECTED, BILLING_MAPPING, "no_such_check"], limit=10)
    assert set(stored) == {*EXPECTED, BILLING_MAPPING}, "only checks with a stored table"
    for name, keys in EXPECTED.items():
        failure = stored[name]
        assert failure.count == len(keys), name
        assert failure.columns[-1] == "child_rows", name
        assert {row[0]: int(row[-1]) for row in failure.sample} == keys, name
        assert failure.relation == f"{AUDIT_SCHEMA}.{name}"
    unmapped = stored[BILLING_MAPPING]
    assert unmapped.count == 1
    assert "crm_account_id=acc_zz" in unmapped.sample_lines()[0]
    assert "unmapped_reason=crm_account_not_found" in unmapped.sample_lines()[0]


def test_the_sample_is_limited_and_largest_first(orphans: tuple[Path, Any]) -> None:
    warehouse, _ = orphans
    events = stored_failures(warehouse, ["events_without_crm_account"], limit=1)
    [line] = events["events_without_crm_account"].sample_lines()
    assert line == "account_id=acc_zz, child_rows=3"
    assert events["events_without_crm_account"].count == 2, "the count is not limited"


def test_clean_data_passes_every_referential_check(clean: tuple[Path, Any]) -> None:
    warehouse, result = clean
    assert result.success, failures(result)
    results = _referential_results(result)
    assert set(results) == {*EXPECTED, BILLING_MAPPING}
    assert {name: str(r.status) for name, r in results.items()} == dict.fromkeys(results, "pass")
    stored = stored_failures(warehouse, results)
    assert {name: s.count for name, s in stored.items()} == dict.fromkeys(results, 0)


def test_no_warehouse_means_no_stored_failures(tmp_path: Path) -> None:
    assert stored_failures(tmp_path / "warehouse.duckdb", list(EXPECTED)) == {}


def test_every_referential_check_warns_and_stores_its_failures(dbt: Dbt) -> None:
    tests = [
        node
        for node in dbt.manifest.nodes.values()
        if node.resource_type == "test" and "referential" in node.tags
    ]
    assert {t.name for t in tests} == {*EXPECTED, BILLING_MAPPING}
    for test in tests:
        config = test.config
        assert (config.severity.lower(), config.store_failures, config.schema) == (
            "warn",
            True,
            AUDIT_SCHEMA,
        ), test.name


def test_dagster_shows_each_referential_check_on_the_child_asset() -> None:
    from orchestration.defs.dbt.assets import build_dbt_assets

    checks = {
        spec.name: spec.asset_key.to_user_string()
        for assets in build_dbt_assets()
        for spec in assets.check_specs
        if spec.name in {*EXPECTED, BILLING_MAPPING}
    }
    assert checks == {
        "contacts_without_crm_account": "staging/stg_crm__contacts",
        "opportunities_without_crm_account": "staging/stg_crm__opportunities",
        "activities_without_crm_account": "staging/stg_crm__activities",
        "support_tickets_without_crm_account": "staging/stg_crm__support_tickets",
        "nps_responses_without_crm_account": "staging/stg_crm__nps_responses",
        "users_without_crm_account": "staging/stg_product__users",
        "events_without_crm_account": "intermediate/int_account_daily_activity",
        "subscription_items_on_unknown_plans": "staging/stg_billing__subscription_items",
        "subscription_items_on_unknown_subscriptions": "staging/stg_billing__subscription_items",
        "invoices_on_unknown_billing_customers": "staging/stg_billing__invoices",
        BILLING_MAPPING: "intermediate/int_unmapped_billing_customers",
    }
