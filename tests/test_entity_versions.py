"""The newer version of an entity row wins, checked by value through the dbt models themselves.

For every entity table of the contract (derived from ``ingestion.contract``, so a new one is
covered without editing this file), two versions of one key (``old`` and ``new``: a later
``updated_at`` and a different value in every other column) are written as CSV extracts, loaded by
ingestion and built by dbt. Then the table's staging model and the first intermediate or mart model
that exposes its values must show the new version and only it:

- ``old_then_new``: two files, the old version loaded first;
- ``new_then_old``: two files, the new version loaded first: a late re-send of an old extract must
  not overwrite newer data (the contract: "the row with the latest updated_at for a key wins,
  whichever file it came from");
- ``one_file_old_first`` / ``one_file_new_first``: both versions in one file, in either row order;
- ``same_updated_at``: two files whose versions carry the same ``updated_at``: the later load wins
  (docs/ingestion.md, staging's ``_loaded_at`` tie-break).

Rows come from a small builder over the contract's columns (a valid value for each column by its
type, accepted values and bounds, different in the two versions); a few columns are pinned per
table so the downstream model has something to show (a closed-won deal for the renewal date, an
attended business review, ...). A handful of single-version support rows (a CRM account with a paying
subscription) complete the chains the marts need. One ingestion and one ``dbt run`` per scenario
build every table at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, failures
from ingestion_fixtures import open_warehouse, write_csv
from pinned_model import pinned_dbt_vars

from ingestion.contract import TABLES, Column, ColumnType, TableSchema, table
from ingestion.loader import ensure_warehouse

AS_OF = "2024-06-15"
OLD, NEW = 1, 2

ENTITY_TABLES: tuple[TableSchema, ...] = tuple(t for t in TABLES if t.kind == "entity")
HEALTH_MODEL: dict[str, Any] = pinned_dbt_vars(date.fromisoformat(AS_OF))["health_model"]

Row = dict[str, Any]


# --- the row builder ----------------------------------------------------------------------------

#: Every non-key date and timestamp of a version is this day plus 10 days per version plus the
#: column's position, so later columns of a row are never earlier than former ones (started_at <
#: ended_at, valid_from < valid_to, ...) and the new version's updated_at is 10 days later.
BASE_DAY = datetime(2024, 2, 1)
#: The value of a date or timestamp key column (subscription_items.valid_from).
KEY_TIME = datetime(2024, 1, 1)


def staging_model(schema: TableSchema) -> str:
    return f"stg_{schema.system}__{schema.name}"


def key_values(schema: TableSchema) -> Row:
    """The one key both versions of ``schema`` share."""
    return {k: _key_value(schema, schema.column(k)) for k in schema.key}


def _key_value(schema: TableSchema, column: Column) -> Any:
    if column.type is ColumnType.TIMESTAMP:
        return KEY_TIME
    if column.type is ColumnType.DATE:
        return KEY_TIME.date()
    if column.type is ColumnType.INTEGER:
        return 1
    return f"{schema.name}-key"


def column_value(column: Column, position: int, version: int) -> Any:
    """A valid value of ``column`` for ``version``, different for each version."""
    if column.accepted_values:
        return column.accepted_values[(version - 1) % len(column.accepted_values)]
    if column.is_currency:
        return ("USD", "EUR")[(version - 1) % 2]
    low = Decimal(str(column.min_value or 0))
    high = Decimal(str(column.max_value)) if column.max_value is not None else None
    match column.type:
        case ColumnType.INTEGER:
            return int(low) + version if high is None else min(int(low) + version, int(high))
        case ColumnType.MONEY | ColumnType.PERCENT | ColumnType.RATE:
            value = low + 10 * version + Decimal("0.25")
            return value if high is None else min(value, high)
        case ColumnType.DATE:
            return (BASE_DAY + timedelta(days=10 * version + position)).date()
        case ColumnType.TIMESTAMP:
            return BASE_DAY + timedelta(days=10 * version + position, hours=version)
        case ColumnType.BOOLEAN:
            return version % 2 == 0
        case ColumnType.JSON:
            return f'{{"version": {version}}}'
        case _:
            return f"{column.name}-v{version}"


def version_row(schema: TableSchema, version: int, **pinned: Any) -> Row:
    """A row of ``schema``: the shared key, every other column built for ``version``, then
    ``pinned`` values."""
    keys = key_values(schema)
    row = {
        c.name: keys[c.name] if c.name in keys else column_value(c, position, version)
        for position, c in enumerate(schema.columns)
    }
    return {**row, **pinned}


def csv_value(value: Any) -> Any:
    """How an extract writes ``value``: ISO 8601, ``true``/``false``, decimals as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- what each table's first downstream model shows ---------------------------------------------

PROBE_ACCOUNT = "probe-account"
PROBE_CUSTOMER = "probe-customer"
PROBE_SUBSCRIPTION = "probe-subscription"
SUPPORT_START = datetime(2023, 12, 1)

CHAMPION_ROLE = HEALTH_MODEL["churn_risk"]["champion_left"]["role"]
BUSINESS_REVIEW = HEALTH_MODEL["health_score"]["engagement"]["business_review"]["activity_types"][0]
TIER_FEATURES: dict[str, list[str]] = HEALTH_MODEL["tier_features"]
#: Two tiers with different features: which one the alerts name tells the versions apart.
OLD_TIER, NEW_TIER = next(
    (a, b)
    for a in TIER_FEATURES
    for b in TIER_FEATURES
    if set(TIER_FEATURES[a]) != set(TIER_FEATURES[b])
)
SIGNALS = "intermediate.int_account_signal_history"
USD = {"currency": "USD"}


@dataclass(frozen=True)
class Probe:
    """A query of the first model exposing a table's values and what it shows for a version.

    ``sql`` may use ``$old_<column>`` / ``$new_<column>`` (the versions' values) and ``$probe_*``
    (the support rows' ids); ``expected`` gives its rows for the version that must win.
    ``pin`` / ``pin_old`` / ``pin_new`` fix columns of both / one version.
    """

    sql: str
    expected: Callable[[Row], list[tuple[Any, ...]]]
    pin: Mapping[str, Any] = field(default_factory=dict)
    pin_old: Mapping[str, Any] = field(default_factory=dict)
    pin_new: Mapping[str, Any] = field(default_factory=dict)


PROBES: dict[str, Probe] = {
    "accounts": Probe(
        "select account_name, segment, industry, region, owner from marts.dim_accounts"
        " where account_id = $new_account_id",
        lambda v: [(v["name"], v["segment"], v["industry"], v["region"], v["owner"])],
    ),
    "contacts": Probe(
        f"select account_id, max(last_champion_left_on) from {SIGNALS}"
        " where account_id in ($old_account_id, $new_account_id) group by account_id",
        lambda v: [(v["account_id"], v["ended_at"])],
        pin={"role": CHAMPION_ROLE},
    ),
    "opportunities": Probe(
        "select next_renewal_date from marts.dim_accounts where account_id = $probe_account",
        lambda v: [(v["contract_end_date"],)],
        # closed won before as_of, ending after it: the contract end is the next renewal
        pin={"account_id": PROBE_ACCOUNT, "stage": "closed_won", "close_date": date(2024, 1, 10)},
        pin_old={"contract_end_date": date(2024, 12, 31)},
        pin_new={"contract_end_date": date(2025, 3, 31)},
    ),
    "activities": Probe(
        f"select account_id, max(last_business_review_on) from {SIGNALS}"
        " where account_id in ($old_account_id, $new_account_id) group by account_id",
        lambda v: [(v["account_id"], v["occurred_at"].date())],
        pin={"type": BUSINESS_REVIEW, "attended": True},
    ),
    "support_tickets": Probe(
        f"select account_id, min(changed_on) from {SIGNALS}"
        " where account_id in ($old_account_id, $new_account_id) and cumulative_tickets > 0"
        " group by account_id",
        lambda v: [(v["account_id"], v["created_at"].date())],
    ),
    "users": Probe(
        f"select account_id, min(changed_on) from {SIGNALS}"
        " where account_id in ($old_account_id, $new_account_id) and provisioned_users > 0"
        " group by account_id",
        lambda v: [(v["account_id"], v["provisioned_at"].date())],
    ),
    "customers": Probe(
        "select billing_customer_id, crm_account_id, currency"
        " from intermediate.int_billing_customer_accounts"
        " where billing_customer_id = $new_billing_customer_id",
        lambda v: [(v["billing_customer_id"], v["account_id"], v["currency"])],
    ),
    "plans": Probe(
        # the probe account's paying item is on this plan; no feature is used: every feature of
        # the plan's tier is unused, and the alert names the tier
        "select subject, regexp_extract(detail, 'included in the (.*) plan', 1)"
        " from marts.adoption_alerts"
        " where account_id = $probe_account and alert_type = 'feature_unused' order by subject",
        lambda v: [(f, v["tier"]) for f in sorted(TIER_FEATURES[v["tier"]])],
        pin_old={"tier": OLD_TIER},
        pin_new={"tier": NEW_TIER},
    ),
    "subscriptions": Probe(
        # a support item on this subscription is in force between its trial end and its end
        "select billing_customer_id, subscription_started_on"
        " from intermediate.int_subscription_items_in_force"
        " where subscription_id = $new_subscription_id",
        lambda v: [(v["billing_customer_id"], v["started_at"].date())],
    ),
    "subscription_items": Probe(
        "select plan_id, quantity, unit_amount, billing_interval, interval_count,"
        " discount_percent, valid_to from intermediate.int_subscription_items_in_force"
        " where item_id = $new_item_id and valid_from = $new_valid_from",
        lambda v: [
            (
                v["plan_id"],
                v["quantity"],
                v["unit_amount"],
                v["billing_interval"],
                v["interval_count"],
                v["discount_percent"],
                v["valid_to"],
            )
        ],
        pin={"subscription_id": PROBE_SUBSCRIPTION, **USD},
    ),
    "invoices": Probe(
        # an open, unpaid invoice of the probe account's customer: a failed payment on its due day
        f"select min(changed_on) from {SIGNALS}"
        " where account_id = $probe_account and cumulative_failed_payments > 0",
        lambda v: [(v["due_at"].date(),)],
        pin={"billing_customer_id": PROBE_CUSTOMER, "status": "open", "paid_at": None},
    ),
}


def support_rows() -> dict[str, list[Row]]:
    """One version each: a CRM account paying monthly (USD) on the probed plan, and an item on
    the probed subscription; loaded with the first file of every scenario."""
    start = {"started_at": SUPPORT_START, "trial_end": None, "canceled_at": None, "ended_at": None}
    item = {"valid_from": SUPPORT_START, "valid_to": None, "billing_interval": "month", **USD}
    return {
        "accounts": [version_row(table("accounts"), OLD, account_id=PROBE_ACCOUNT)],
        "customers": [
            version_row(
                table("customers"),
                OLD,
                billing_customer_id=PROBE_CUSTOMER,
                account_id=PROBE_ACCOUNT,
                **USD,
            )
        ],
        "subscriptions": [
            version_row(
                table("subscriptions"),
                OLD,
                subscription_id=PROBE_SUBSCRIPTION,
                billing_customer_id=PROBE_CUSTOMER,
                status="active",
                **start,
            )
        ],
        "subscription_items": [
            version_row(
                table("subscription_items"),
                OLD,
                item_id="probe-item-plan",
                subscription_id=PROBE_SUBSCRIPTION,
                plan_id=key_values(table("plans"))["plan_id"],
                **item,
            ),
            version_row(
                table("subscription_items"),
                OLD,
                item_id="probe-item-subscription",
                subscription_id=key_values(table("subscriptions"))["subscription_id"],
                **item,
            ),
        ],
    }


def versions(schema: TableSchema) -> tuple[Row, Row]:
    """The old and the new version of the table's key."""
    probe = PROBES.get(schema.name, Probe("", lambda v: []))
    old = version_row(schema, OLD, **{**probe.pin, **probe.pin_old})
    new = version_row(schema, NEW, **{**probe.pin, **probe.pin_new})
    return old, new


# --- scenarios: ingestion, then one dbt run ------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    #: Files in load order (each load is one ingestion of every table); a file holds versions.
    loads: tuple[tuple[tuple[str, ...], ...], ...]
    #: Both versions carry the old version's updated_at: the later load must win.
    same_updated_at: bool = False


SCENARIOS = (
    Scenario("old_then_new", ((("old",),), (("new",),))),
    Scenario("new_then_old", ((("new",),), (("old",),))),
    Scenario("one_file_old_first", ((("old", "new"),),)),
    Scenario("one_file_new_first", ((("new", "old"),),)),
    Scenario("same_updated_at", ((("old",),), (("new",),)), same_updated_at=True),
)


@dataclass(frozen=True)
class Built:
    scenario: Scenario
    con: duckdb.DuckDBPyConnection
    rows: dict[str, tuple[Row, Row]]

    def winner(self, schema: TableSchema) -> Row:
        return self.rows[schema.name][1]

    def loser(self, schema: TableSchema) -> Row:
        return self.rows[schema.name][0]


def scenario_versions(scenario: Scenario) -> dict[str, tuple[Row, Row]]:
    result = {}
    for schema in ENTITY_TABLES:
        old, new = versions(schema)
        version = schema.version_column
        assert version is not None, f"{schema.asset_path} is an entity table without a version"
        if scenario.same_updated_at:
            new = {**new, version: old[version]}
        else:
            assert new[version] > old[version], schema.asset_path
        result[schema.name] = (old, new)
    return result


def load(root: Path, scenario: Scenario, rows: dict[str, tuple[Row, Row]]) -> None:
    """Write and ingest the scenario's files, one ingestion of every entity table per load."""
    wh = open_warehouse(root)
    try:
        ensure_warehouse(wh.conn)
        support = support_rows()
        for number, files in enumerate(scenario.loads, start=1):
            for schema in ENTITY_TABLES:
                old, new = rows[schema.name]
                by_name = {"old": old, "new": new}
                for index, names in enumerate(files, start=1):
                    write_csv(
                        wh.landing,
                        schema.name,
                        f"{number}-{index}.csv",
                        [{c: csv_value(by_name[n][c]) for c in schema.column_names} for n in names],
                    )
                if number == 1 and schema.name in support:
                    write_csv(
                        wh.landing,
                        schema.name,
                        "0-support.csv",
                        [
                            {c: csv_value(r[c]) for c in schema.column_names}
                            for r in support[schema.name]
                        ],
                    )
                outcome = wh.ingest(schema.name)
                assert outcome.files_refused == 0, [f.message for f in outcome.refused]
                if len(files[0]) == 1:  # one version per file: nothing to quarantine
                    assert outcome.rows_quarantined == 0, [f.message for f in outcome.files]
    finally:
        wh.conn.close()


def dbt_selection() -> list[str]:
    """The entity tables' staging models and every model the probes read, with their parents."""
    probed = {
        m for p in PROBES.values() for m in re.findall(r"\b(?:intermediate|marts)\.(\w+)", p.sql)
    }
    return sorted({staging_model(t) for t in ENTITY_TABLES} | {f"+{m}" for m in probed})


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)


@pytest.fixture(scope="module", params=SCENARIOS, ids=lambda s: s.name)
def built(
    request: pytest.FixtureRequest, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    scenario: Scenario = request.param
    root = tmp_path_factory.mktemp(scenario.name)
    rows = scenario_versions(scenario)
    load(root, scenario, rows)
    result = dbt.invoke(root / "warehouse.duckdb", "run", "--select", *dbt_selection())
    assert result.success, failures(result)
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    yield Built(scenario, con, rows)
    con.close()


# --- the checks ---------------------------------------------------------------------------------


def by_entity(test: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.parametrize("schema", ENTITY_TABLES, ids=lambda t: t.asset_path)(test)


def shared_columns(con: duckdb.DuckDBPyConnection, schema: TableSchema) -> list[str]:
    """The staging model's columns named as in the contract (renamed ones are left out)."""
    names = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'staging' and table_name = ?",
            [staging_model(schema)],
        ).fetchall()
    }
    assert names, f"no staging model staging.{staging_model(schema)} for {schema.asset_path}"
    return [c for c in schema.column_names if c in names]


@by_entity
def test_staging_keeps_only_the_newer_version(built: Built, schema: TableSchema) -> None:
    columns = shared_columns(built.con, schema)
    new, old = built.winner(schema), built.loser(schema)
    differing = [c for c in columns if c not in schema.key and old[c] != new[c]]
    assert differing, f"the versions of {schema.asset_path} differ in no staging column"
    where = " and ".join(f'"{k}" = ?' for k in schema.key)
    rows = built.con.execute(
        f"select {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}"
        f" from staging.{staging_model(schema)} where {where}",
        [new[k] for k in schema.key],
    ).fetchall()
    assert rows == [tuple(new[c] for c in columns)], (
        f"{built.scenario.name}: staging.{staging_model(schema)} shows"
        f" {[dict(zip(columns, r, strict=True)) for r in rows]}; the newer version is"
        f" {dict((c, new[c]) for c in columns)}"
    )


def probe_params(sql: str, old: Row, new: Row) -> dict[str, Any]:
    values = {
        **{f"old_{c}": v for c, v in old.items()},
        **{f"new_{c}": v for c, v in new.items()},
        "probe_account": PROBE_ACCOUNT,
    }
    return {name: values[name] for name in set(re.findall(r"\$(\w+)", sql))}


@by_entity
def test_first_downstream_model_shows_the_newer_version(built: Built, schema: TableSchema) -> None:
    probe = PROBES.get(schema.name)
    assert probe is not None, (
        f"{schema.asset_path} is an entity table without a probe: add to PROBES the first"
        " intermediate or mart model that exposes its values"
    )
    old, new = built.loser(schema), built.winner(schema)
    assert probe.expected(new) != probe.expected(old), f"{schema.name}: the probe cannot tell"
    rows = built.con.execute(probe.sql, probe_params(probe.sql, old, new)).fetchall()
    assert rows == probe.expected(new), f"{built.scenario.name}: {probe.sql}"
