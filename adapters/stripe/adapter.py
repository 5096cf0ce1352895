"""Stripe -> contract v1 billing tables (customers, plans, subscriptions, subscription_items,
invoices). ``docs/adapters.md`` says how each contract column is derived; this module is that
text as SQL, one step per contract table, each step recording what happened to every source row
(``adapters.core``).

Price history (subscription_items ``valid_from``/``valid_to``), by the first method the source
allows, named in the result (``details['history_method']``):

1. ``history_tables``: Fivetran history mode on ``subscription_item`` (``_fivetran_start`` /
   ``_fivetran_end`` / ``_fivetran_active``, or a ``subscription_item_history`` table): every
   version of an item is a state from its ``_fivetran_start``;
2. ``invoice_line_items``: each subscription line of an invoice states the item's price and
   quantity over its period; a positive proration line states the new state from the change;
   proration credits (negative lines, "unused time") describe the old state and are not used;
3. ``current_state``: one version per item from its creation, with a warning: past MRR cannot be
   reconstructed from a current-state export.

Discounts (percent-off coupons on subscription discounts) cut versions at their start and end.
Consecutive states that are equal (price, quantity, discount) merge into one version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from adapters import core
from adapters.core import AdaptResult, SourceTable, bad_number, bad_timestamp, quote
from adapters.stripe.mapping import (
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    StripeMapping,
)
from adapters.stripe.shapes import SYNC_COLUMNS, canonical_views, detect_shape
from ingestion.contract import table as contract_table

SYSTEM = "stripe"
CONTRACT_TABLES = ("customers", "plans", "subscriptions", "subscription_items", "invoices")
INTERVALS = ("month", "year")
SUB_STATUSES = ("trialing", "active", "past_due", "paused", "canceled")
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
#: ``updated_at`` of a customer / subscription / invoice row: when this version began (history
#: mode), else when the connector saw it, else the object's own latest timestamp.
_CUSTOMER_UPDATED = "coalesce(csw_ts(h_start), csw_ts(synced), csw_ts(created))"
_SUBSCRIPTION_UPDATED = (
    "coalesce(csw_ts(h_start), csw_ts(synced),"
    " greatest(csw_ts(created), csw_ts(canceled_at), csw_ts(ended_at)))"
)
_INVOICE_UPDATED = "coalesce(csw_ts(h_start), csw_ts(synced), csw_ts(paid_at), csw_ts(created))"


def _sql_list(values: object) -> str:
    return ", ".join(quote(str(v)) for v in values)


def _macros(con: duckdb.DuckDBPyConnection) -> None:
    zero, three = (
        _sql_list(sorted(ZERO_DECIMAL_CURRENCIES)),
        _sql_list(sorted(THREE_DECIMAL_CURRENCIES)),
    )
    con.execute(
        f"""
        CREATE OR REPLACE MACRO stripe_major_per_minor(cur) AS CASE
            WHEN upper(trim(cur)) IN ({zero}) THEN CAST(1 AS DECIMAL(4, 3))
            WHEN upper(trim(cur)) IN ({three}) THEN CAST(0.001 AS DECIMAL(4, 3))
            ELSE CAST(0.01 AS DECIMAL(4, 3)) END;
        CREATE OR REPLACE MACRO stripe_minor_per_major(cur) AS CASE
            WHEN upper(trim(cur)) IN ({zero}) THEN 1
            WHEN upper(trim(cur)) IN ({three}) THEN 1000 ELSE 100 END;
        CREATE OR REPLACE MACRO stripe_major(x, cur) AS
            CAST(csw_dec(x) * stripe_major_per_minor(cur) AS DECIMAL(18, 4));
        CREATE OR REPLACE MACRO stripe_meta(m, k) AS
            CASE WHEN json_valid(m) THEN nullif(trim(json_extract_string(m, '$."' || k || '"')), '') END;
        CREATE OR REPLACE MACRO stripe_bad_meta(m) AS
            NOT csw_blank(m) AND NOT coalesce(json_valid(m) AND starts_with(trim(m), '{{'), false);
        -- Fivetran marks an open history row with a far-future end
        CREATE OR REPLACE MACRO stripe_end(x) AS
            CASE WHEN csw_ts(x) >= TIMESTAMP '9000-01-01' THEN NULL ELSE csw_ts(x) END;
        """
    )


def _excluded_common(mapping: StripeMapping, what: str) -> str:
    test_mode = (
        ""
        if mapping.include_test_mode
        else f"WHEN csw_bool(livemode) = false THEN 'test-mode {what} (livemode false;"
        " set include_test_mode to keep it)'"
    )
    return f"WHEN coalesce(csw_bool(deleted), false) THEN 'deleted {what}' {test_mode}"


def _versions(view: str, updated: str) -> str:
    """``view`` with ``is_latest``: whether the row is the version of its id that is written.
    History-mode tables (``subscription_history``, ``customer`` with ``_fivetran_start``) hold
    one row per version; the contract keeps one row per id: the active one (``_fivetran_active``
    unknown counts as active), then the latest ``updated`` (the row's ``updated_at``)."""
    return f"""(SELECT *, NOT csw_blank(id) AND row_number() OVER (
                   PARTITION BY trim(id) ORDER BY coalesce(csw_bool(h_active), true) DESC,
                   {updated} DESC NULLS LAST, _source_file DESC, _source_row DESC) > 1
                   AS is_earlier
               FROM {view})"""


def _earlier(what: str, alias: str = "") -> str:
    """The first exclusion branch: an earlier version of an id (see :func:`_versions`)."""
    a = f"{alias}." if alias else ""
    return (
        f"WHEN {a}is_earlier THEN 'an earlier version of {what} ' || trim({a}id)"
        " || ' (history mode): the active, latest version is the one written'"
    )


def _decide(con: duckdb.DuckDBPyConnection, name: str, sources: dict[str, SourceTable]) -> None:
    """Record the rejected and excluded rows of checked table ``<name>_checked``."""
    table = sources.get(name)
    if table is None:
        return
    core.record(
        con,
        table.name,
        f"""SELECT _source_file, _source_row, id,
                   CASE WHEN excl IS NOT NULL THEN 'excluded' ELSE 'rejected' END,
                   coalesce(excl, rej)
            FROM {name}_checked WHERE _source_table = {quote(table.name)}
              AND (excl IS NOT NULL OR rej IS NOT NULL)""",
    )


def _lineage(
    con: duckdb.DuckDBPyConnection,
    contract: str,
    sources: dict[str, SourceTable],
    name: str,
    sql: str,
) -> None:
    table = sources.get(name)
    if table is not None:
        core.record_lineage(con, contract, table.name, sql)


# --- the source's sync time ----------------------------------------------------------------------

#: Canonical views with a ``synced`` column (the connector's sync or extraction time).
_SYNCED_OBJECTS = ("customer", "product", "price", "plan", "subscription", "subscription_item")


def _source_time(
    con: duckdb.DuckDBPyConnection, src: dict[str, SourceTable], source: Path
) -> tuple[datetime, str]:
    """When the source was taken, kept in table ``_run``: the latest ``_fivetran_synced`` /
    ``_airbyte_extracted_at`` of any row read, else (an export, no sync column) the latest
    modification time of its files. Returns the time and where it came from."""
    union = " UNION ALL ".join(
        f"SELECT max(csw_ts(synced)) AS t FROM stripe_{n}" for n in (*_SYNCED_OBJECTS, "invoice")
    )
    row = con.execute(f"SELECT max(t) FROM ({union})").fetchone()
    columns = {c for t in src.values() for c in t.columns}
    if row and row[0] is not None:
        found: datetime = row[0]
        what = next((c for c in SYNC_COLUMNS if c in columns), "sync time")
    else:
        mtime = max(
            ((source / f).stat().st_mtime for t in src.values() for f in t.files),
            default=datetime.now(UTC).timestamp(),
        )
        found = datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)
        what = "file modification time"
    con.execute(
        "CREATE OR REPLACE TABLE _run AS SELECT CAST(? AS TIMESTAMP) AS source_time", [found]
    )
    return found, what


# --- customers ---------------------------------------------------------------------------------


def _customers(
    con: duckdb.DuckDBPyConnection, m: StripeMapping, src: dict[str, SourceTable]
) -> None:
    key = quote(m.account_metadata_key)
    missing = (
        f"""WHEN stripe_meta(metadata, {key}) IS NULL THEN
            'metadata: no {m.account_metadata_key!s} key (the CRM account id); add it to the'
            || ' customer in Stripe, or set account_metadata_key (or missing_account: keep)'"""
        if m.missing_account == "reject"
        else ""
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE customer_checked AS
        SELECT *,
            CASE {_earlier("customer")} {_excluded_common(m, "customer")} END AS excl,
            CASE WHEN csw_blank(id) THEN 'id: missing'
                 {bad_timestamp("created")}
                 {bad_timestamp("synced")}
                 WHEN csw_blank(created) THEN 'created: missing'
                 WHEN csw_blank(currency) THEN
                    'currency: missing (Stripe sets it at the first charge); set the customer''s'
                    || ' currency in Stripe'
                 WHEN stripe_bad_meta(metadata) THEN 'metadata: not a JSON object: ' || metadata
                 {missing}
            END AS rej
        FROM {_versions("stripe_customer", _CUSTOMER_UPDATED)}
        """
    )
    _decide(con, "customer", src)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE out_customers AS
        SELECT trim(id) AS billing_customer_id, stripe_meta(metadata, {key}) AS account_id,
               upper(trim(currency)) AS currency, csw_ts(created) AS created_at,
               {_CUSTOMER_UPDATED} AS updated_at,
               _source_file, _source_row, id AS source_id
        FROM customer_checked WHERE excl IS NULL AND rej IS NULL
        """
    )
    _lineage(
        con,
        "customers",
        src,
        "customer",
        "SELECT billing_customer_id, _source_file, _source_row, source_id FROM out_customers",
    )


# --- plans (prices and legacy plans) -----------------------------------------------------------


def _prices(
    con: duckdb.DuckDBPyConnection, m: StripeMapping, src: dict[str, SourceTable], shape: str
) -> None:
    if shape == "stripe_export":
        # the subscriptions export carries each subscription's single price inline
        price_rows = """
            SELECT x_price_id AS id, NULL AS product_id, x_currency AS currency,
                   x_amount AS unit_amount, NULL AS unit_amount_decimal, x_interval AS interval,
                   coalesce(x_interval_count, '1') AS interval_count, x_product AS nickname,
                   NULL AS metadata, NULL AS created, 'recurring' AS type, NULL AS deleted,
                   livemode, _source_table, _source_file, _source_row, 0 AS pref
            FROM stripe_subscription WHERE NOT csw_blank(x_price_id)"""
    else:
        price_rows = """
            SELECT id, product_id, currency, unit_amount, unit_amount_decimal, interval,
                   interval_count, nickname, metadata, created, type, deleted, livemode,
                   _source_table, _source_file, _source_row, 0 AS pref FROM stripe_price
            UNION ALL BY NAME
            SELECT id, product_id, currency, unit_amount, unit_amount_decimal, interval,
                   interval_count, nickname, metadata, created, 'recurring' AS type, deleted,
                   livemode, _source_table, _source_file, _source_row, 1 AS pref FROM stripe_plan"""
    plan_key, tier_key, seat_key = (
        quote(m.plan_metadata_key),
        quote(m.tier_metadata_key),
        quote(m.seat_limit_metadata_key),
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE price_all AS
        WITH p AS ({price_rows}),
        prod AS (
            SELECT DISTINCT ON (trim(id)) trim(id) AS product_key, name AS product_name,
                   metadata AS product_metadata,
                   greatest(csw_ts(updated), csw_ts(created)) AS product_updated
            FROM stripe_product WHERE NOT coalesce(csw_bool(deleted), false)
            ORDER BY trim(id), csw_ts(synced) DESC NULLS LAST, _source_row DESC
        )
        SELECT p.*, prod.*,
            coalesce(stripe_meta(p.metadata, {plan_key}), trim(p.id)) AS plan_id,
            coalesce(nullif(trim(p.nickname), ''), prod.product_name) AS plan_name,
            coalesce(stripe_meta(prod.product_metadata, {tier_key}), lower(trim(prod.product_name)),
                     lower(trim(p.nickname))) AS tier,
            coalesce(stripe_meta(p.metadata, {seat_key}), stripe_meta(prod.product_metadata, {seat_key}))
                AS seat_limit_text,
            stripe_major(coalesce(p.unit_amount_decimal, p.unit_amount), p.currency) AS unit_major,
            count(*) OVER (PARTITION BY trim(p.id), p.pref) AS versions,
            min(p.pref) OVER (PARTITION BY trim(p.id)) AS best_pref
        FROM p LEFT JOIN prod ON prod.product_key = trim(p.product_id)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE price_checked AS
        SELECT *,
            CASE {_excluded_common(m, "price")}
                 WHEN lower(type) = 'one_time' THEN 'a one-time price: not recurring revenue'
                 WHEN pref > best_pref THEN 'the same price is in the price table, which wins'
            END AS excl,
            CASE WHEN csw_blank(id) THEN 'id: missing'
                 WHEN lower(trim(interval)) NOT IN ({_sql_list(INTERVALS)}) OR interval IS NULL THEN
                    'interval: ' || coalesce(interval, 'missing')
                    || ' is not a contract billing interval (month, year)'
                 {bad_number("interval_count")}
                 WHEN csw_blank(currency) THEN 'currency: missing'
                 WHEN csw_blank(coalesce(unit_amount_decimal, unit_amount)) THEN
                    'unit_amount: missing (tiered and metered prices are not supported)'
                 {bad_number("unit_amount", "coalesce(unit_amount_decimal, unit_amount)")}
                 {bad_timestamp("created")}
                 WHEN plan_name IS NULL THEN 'product_id: ' || coalesce(product_id, 'missing')
                    || ' is not in the product table and the price has no nickname (the plan name)'
                 WHEN tier IS NULL THEN 'product_id: no tier (product metadata '
                    || {tier_key} || ' or a product name)'
                 WHEN seat_limit_text IS NOT NULL AND csw_int(seat_limit_text) IS NULL THEN
                    'metadata: seat limit ' || seat_limit_text || ' is not a whole number'
                 WHEN stripe_bad_meta(metadata) THEN 'metadata: not a JSON object: ' || metadata
            END AS rej
        FROM price_all
        """
    )
    if shape != "stripe_export":
        for name in ("price", "plan"):
            _decide(con, name, src)
    con.execute(
        """
        CREATE OR REPLACE TABLE ok_price AS
        SELECT DISTINCT ON (trim(id)) trim(id) AS price_key, plan_id, plan_name, tier,
               lower(trim(interval)) AS billing_interval, csw_int(interval_count) AS interval_count,
               csw_int(seat_limit_text) AS seat_limit, upper(trim(currency)) AS currency,
               unit_major, greatest(csw_ts(created), product_updated) AS updated_at,
               csw_ts(created) AS created_at, _source_table, _source_file, _source_row, id
        FROM price_checked WHERE excl IS NULL AND rej IS NULL
        ORDER BY trim(id), _source_file DESC, _source_row DESC
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE out_plans AS
        SELECT plan_id, arg_max(plan_name, (created_at, price_key)) AS name,
               arg_max(tier, (created_at, price_key)) AS tier,
               arg_max(billing_interval, (created_at, price_key)) AS billing_interval,
               arg_max(seat_limit, (created_at, price_key)) AS seat_limit,
               max(updated_at) AS updated_at
        FROM ok_price GROUP BY plan_id
        """
    )
    if shape != "stripe_export":
        for name in ("price", "plan"):
            _lineage(
                con,
                "plans",
                src,
                name,
                f"SELECT plan_id, _source_file, _source_row, id FROM ok_price"
                f" WHERE _source_table = {quote(src[name].name) if name in src else 'NULL'}",
            )


# --- subscriptions -----------------------------------------------------------------------------


def _subscriptions(
    con: duckdb.DuckDBPyConnection, m: StripeMapping, src: dict[str, SourceTable]
) -> None:
    known = _sql_list(m.status_map)
    never = _sql_list([k for k, v in m.status_map.items() if v is None]) or "NULL"
    cases = " ".join(f"WHEN {quote(k)} THEN {quote(v)}" for k, v in m.status_map.items() if v)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE subscription_checked AS
        SELECT s.*, lower(trim(s.status)) AS stripe_status,
            CASE lower(trim(s.status)) {cases} END AS contract_status,
            CASE {_earlier("subscription", "s")} {_excluded_common(m, "subscription")}
                 WHEN lower(trim(s.status)) IN ({never}) THEN 'status ' || s.status
                    || ': the subscription never started (status_map maps it to nothing)'
                 WHEN c.disposition = 'excluded' THEN 'its customer ' || s.customer_id
                    || ' is excluded: ' || c.reason
            END AS excl,
            CASE WHEN csw_blank(s.id) THEN 'id: missing'
                 WHEN csw_blank(s.customer_id) THEN 'customer_id: missing'
                 WHEN c.disposition = 'rejected' THEN 'customer_id: customer ' || s.customer_id
                    || ' was rejected (' || c.reason || ')'
                 WHEN oc.billing_customer_id IS NULL THEN 'customer_id: ' || s.customer_id
                    || ' is not in the customer table'
                 WHEN lower(trim(s.status)) NOT IN ({known}) OR s.status IS NULL THEN
                    'status: ' || coalesce(s.status, 'missing')
                    || ' is not in the mapping''s status_map'
                 {bad_timestamp("start_date", "s.start_date")}
                 {bad_timestamp("created", "s.created")}
                 {bad_timestamp("trial_start", "s.trial_start")}
                 {bad_timestamp("trial_end", "s.trial_end")}
                 {bad_timestamp("canceled_at", "s.canceled_at")}
                 {bad_timestamp("ended_at", "s.ended_at")}
                 {bad_timestamp("current_period_end", "s.current_period_end")}
                 WHEN csw_blank(coalesce(s.start_date, s.created)) THEN 'start_date: missing'
            END AS rej
        FROM {_versions("stripe_subscription", _SUBSCRIPTION_UPDATED)} s
        LEFT JOIN (SELECT DISTINCT billing_customer_id FROM out_customers) oc
            ON oc.billing_customer_id = trim(s.customer_id)
        LEFT JOIN (
            -- the customer's written-or-not version decides (not its earlier versions)
            SELECT trim(id) AS customer_key, coalesce(excl, rej) AS reason,
                   CASE WHEN excl IS NOT NULL THEN 'excluded' ELSE 'rejected' END AS disposition
            FROM customer_checked WHERE NOT is_earlier AND (excl IS NOT NULL OR rej IS NOT NULL)
        ) c ON c.customer_key = trim(s.customer_id) AND oc.billing_customer_id IS NULL
        """
    )
    _decide(con, "subscription", src)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE out_subscriptions AS
        SELECT trim(id) AS subscription_id, trim(customer_id) AS billing_customer_id,
               contract_status AS status,
               coalesce(csw_ts(start_date), csw_ts(created)) AS started_at,
               csw_ts(trial_end) AS trial_end, csw_ts(canceled_at) AS canceled_at,
               csw_ts(ended_at) AS ended_at, csw_ts(current_period_end) AS current_period_end,
               {_SUBSCRIPTION_UPDATED} AS updated_at,
               _source_file, _source_row, id AS source_id
        FROM subscription_checked WHERE excl IS NULL AND rej IS NULL
        """
    )
    _lineage(
        con,
        "subscriptions",
        src,
        "subscription",
        "SELECT subscription_id, _source_file, _source_row, source_id FROM out_subscriptions",
    )
    # the latest version of each written subscription: its end bounds its items
    con.execute(
        """
        CREATE OR REPLACE TABLE sub_latest AS
        SELECT DISTINCT ON (subscription_id) subscription_id, ended_at, started_at, status
        FROM out_subscriptions ORDER BY subscription_id, updated_at DESC, _source_row DESC
        """
    )


# --- subscription items: base states by method ------------------------------------------------


def _history_method(con: duckdb.DuckDBPyConnection, src: dict[str, SourceTable], shape: str) -> str:
    has_history = con.execute(
        "SELECT count(*) FROM stripe_subscription_item WHERE NOT csw_blank(h_start)"
    ).fetchone()
    if has_history and has_history[0] > 0:
        return "history_tables"
    lines = con.execute(
        "SELECT count(*) FROM stripe_invoice_line_item"
        " WHERE NOT csw_blank(subscription_item_id) AND coalesce(lower(type), 'subscription')"
        " = 'subscription'"
    ).fetchone()
    if lines and lines[0] > 0:
        return "invoice_line_items"
    return "current_state"


def _base_states(
    con: duckdb.DuckDBPyConnection,
    method: str,
    shape: str,
    has_current_items: bool,
    current_from: str,
) -> None:
    """``item_base``: (item_id, subscription_id, price_key, quantity, vf, item_end, source ...):
    a state of an item in force from ``vf`` until the next state of the item."""
    if method == "history_tables":
        # a row ends 1 ms before the next begins (Fivetran): its end instant is the next whole
        # second; a later next row leaves a gap in which the item is not in force
        select = """
            SELECT trim(id) AS item_id, trim(subscription_id) AS subscription_id,
                   trim(price_id) AS price_key, quantity, csw_ts(h_start) AS vf,
                   CASE WHEN lead(csw_ts(h_start)) OVER w IS NULL AND csw_bool(h_active) = false
                        THEN date_trunc('second', stripe_end(h_end) + INTERVAL 1 MILLISECOND)
                   END AS item_end,
                   CASE WHEN lead(csw_ts(h_start)) OVER w
                             > date_trunc('second', stripe_end(h_end) + INTERVAL 1 MILLISECOND)
                        THEN date_trunc('second', stripe_end(h_end) + INTERVAL 1 MILLISECOND)
                   END AS gap_from,
                   csw_ts(created) AS created_at, h_start AS vf_text, 'h_start' AS vf_column,
                   NULL AS skip, _source_table, _source_file, _source_row, id AS source_id
            FROM stripe_subscription_item
            WINDOW w AS (PARTITION BY trim(id) ORDER BY csw_ts(h_start))"""
    elif method == "invoice_line_items":
        select = """
            SELECT trim(l.subscription_item_id) AS item_id,
                   trim(coalesce(l.subscription_id, i.subscription_id)) AS subscription_id,
                   trim(l.price_id) AS price_key, l.quantity, csw_ts(l.period_start) AS vf,
                   CAST(NULL AS TIMESTAMP) AS item_end, NULL AS gap_from, NULL AS created_at,
                   l.period_start AS vf_text,
                   'period_start' AS vf_column,
                   CASE WHEN csw_blank(l.subscription_item_id)
                             OR coalesce(lower(l.type), 'subscription') <> 'subscription'
                        THEN 'a one-off invoice item: not part of a subscription''s price'
                        WHEN csw_bool(l.proration) AND csw_dec(l.amount) < 0
                        THEN 'a proration credit (unused time): it describes the state before'
                             || ' a change, which earlier lines already state'
                   END AS skip,
                   stripe_end(l.period_end) AS ve, trim(l.invoice_id) AS invoice_key,
                   coalesce(csw_bool(l.proration), false) AS prorated,
                   coalesce(csw_bool(l.proration) AND csw_dec(l.amount) < 0, false) AS credit,
                   l._source_table, l._source_file, l._source_row, l.id AS source_id
            FROM stripe_invoice_line_item l
            LEFT JOIN (SELECT DISTINCT ON (trim(id)) trim(id) AS id, subscription_id
                       FROM stripe_invoice) i ON i.id = trim(l.invoice_id)"""
    elif shape == "stripe_export":
        # the current state: from when it was seen (the export), or assumed since the start
        vf, vf_text, vf_column = (
            (
                "coalesce(csw_ts(start_date), csw_ts(created))",
                "coalesce(start_date, created)",
                "'start_date'",
            )
            if current_from == "created"
            else (
                "coalesce(csw_ts(synced), (SELECT source_time FROM _run))",
                "coalesce(synced, CAST((SELECT source_time FROM _run) AS VARCHAR))",
                "'synced'",
            )
        )
        select = f"""
            SELECT trim(id) AS item_id, trim(id) AS subscription_id, trim(x_price_id) AS price_key,
                   x_quantity AS quantity, {vf} AS vf,
                   CAST(NULL AS TIMESTAMP) AS item_end, NULL AS gap_from, NULL AS created_at,
                   {vf_text} AS vf_text, {vf_column} AS vf_column, NULL AS skip,
                   _source_table, _source_file, _source_row, id AS source_id
            FROM stripe_subscription"""
    else:
        vf, vf_text, vf_column = (
            ("coalesce(csw_ts(i.created), s.started_at)", "i.created", "'created'")
            if current_from == "created"
            else (
                "coalesce(csw_ts(i.synced), (SELECT source_time FROM _run))",
                "coalesce(i.synced, CAST((SELECT source_time FROM _run) AS VARCHAR))",
                "'synced'",
            )
        )
        select = f"""
            SELECT trim(i.id) AS item_id, trim(i.subscription_id) AS subscription_id,
                   trim(i.price_id) AS price_key, i.quantity, {vf} AS vf,
                   CAST(NULL AS TIMESTAMP) AS item_end, NULL AS gap_from, NULL AS created_at,
                   {vf_text} AS vf_text, {vf_column} AS vf_column, NULL AS skip,
                   i._source_table, i._source_file, i._source_row, i.id AS source_id
            FROM stripe_subscription_item i
            LEFT JOIN sub_latest s ON s.subscription_id = trim(i.subscription_id)"""
    con.execute(f"CREATE OR REPLACE TABLE item_base_all AS {select}")
    con.execute(
        """
        CREATE OR REPLACE TABLE item_base_checked AS
        SELECT b.*, s.ended_at AS sub_ended_at,
            b.skip AS excl,
            CASE WHEN csw_blank(b.item_id) THEN 'subscription_item_id: missing'
                 WHEN b.vf IS NULL THEN b.vf_column || ': ' || coalesce(b.vf_text, 'missing')
                    || ' is not a timestamp'
                 WHEN s.subscription_id IS NULL THEN 'subscription_id: '
                    || coalesce(b.subscription_id, 'missing') || ' was not written'
                    || ' (not in the subscription table, or rejected/excluded: see its row)'
                 WHEN csw_blank(b.price_key) THEN 'price_id: missing'
                 WHEN p.price_key IS NULL THEN 'price_id: ' || b.price_key || ' was not written'
                    || ' as a plan (not in the price/plan table, or rejected/excluded: see its row)'
                 WHEN csw_int(b.quantity) IS NULL OR csw_int(b.quantity) < 0 THEN
                    'quantity: ' || coalesce(b.quantity, 'missing') || ' is not a whole number >= 0'
                 WHEN s.ended_at IS NOT NULL AND b.vf >= s.ended_at THEN NULL
            END AS rej,
            CASE WHEN s.ended_at IS NOT NULL AND b.vf >= s.ended_at AND b.vf_column = 'synced'
                 THEN 'current state seen at ' || CAST(b.vf AS VARCHAR) || ', after its'
                    || ' subscription ended (' || CAST(s.ended_at AS VARCHAR) || '): its price'
                    || ' before is unknown (current_state_from: synced; created assumes it)'
                 WHEN s.ended_at IS NOT NULL AND b.vf >= s.ended_at THEN
                'starts at or after the subscription ended (' || CAST(s.ended_at AS VARCHAR) || ')'
            END AS late
        FROM item_base_all b
        LEFT JOIN sub_latest s ON s.subscription_id = b.subscription_id
        LEFT JOIN ok_price p ON p.price_key = b.price_key
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE item_base AS
        SELECT DISTINCT ON (item_id, vf) item_id, subscription_id, price_key,
               csw_int(quantity) AS quantity, vf, item_end, created_at, sub_ended_at
        FROM item_base_checked WHERE excl IS NULL AND rej IS NULL AND late IS NULL
        ORDER BY item_id, vf, _source_file DESC, _source_row DESC
        """
    )
    if method == "invoice_line_items":
        _line_item_ends(con, has_current_items)
    # a gap in the history: from its start the item is in no state (no version is written)
    con.execute(
        """
        INSERT INTO item_base
        SELECT item_id, subscription_id, NULL, NULL, CAST(gap_from AS TIMESTAMP), NULL, NULL,
               sub_ended_at
        FROM item_base_checked
        WHERE gap_from IS NOT NULL AND excl IS NULL AND rej IS NULL AND late IS NULL
        """
    )


def _line_item_ends(con: duckdb.DuckDBPyConnection, has_current_items: bool) -> None:
    """Invoice lines state an item while it is billed; nothing states that it was removed.
    An item is gone when it is missing from the current subscription_item rows (when the
    source has them), or when a later cycle invoice of its subscription (one with
    non-proration subscription lines starting after the item's last line) has no line for it.
    A gone item ends where a proration credit for it with no new state at that instant says it
    was removed (the credit's period start), else where its last line's period ends. Such a
    credit followed by a later state leaves a gap: the item is in force in neither."""
    missing = (
        """NOT EXISTS (SELECT 1 FROM stripe_subscription_item i WHERE trim(i.id) = l.item_id
                          AND NOT coalesce(csw_bool(i.deleted), false))"""
        if has_current_items
        else "false"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE line_item_end AS
        WITH states AS (
            SELECT item_id, subscription_id, vf, ve FROM item_base_checked
            WHERE excl IS NULL AND rej IS NULL AND late IS NULL
        ),
        last AS (
            SELECT item_id, any_value(subscription_id) AS subscription_id, max(vf) AS last_vf,
                   max(ve) AS last_ve
            FROM states GROUP BY item_id
        ),
        removals AS (
            SELECT c.item_id, arg_max(c.vf, (c.vf, c._source_row)) AS removed_at,
                   arg_max(c._source_file, (c.vf, c._source_row)) AS _source_file,
                   arg_max(c._source_row, (c.vf, c._source_row)) AS _source_row,
                   arg_max(c.source_id, (c.vf, c._source_row)) AS source_id
            FROM item_base_checked c JOIN last l ON l.item_id = c.item_id
            WHERE c.credit AND c.rej IS NULL AND c.vf >= l.last_vf
              AND NOT EXISTS (SELECT 1 FROM states s WHERE s.item_id = c.item_id AND s.vf = c.vf)
            GROUP BY c.item_id
        ),
        cycles AS (
            SELECT subscription_id, invoice_key, min(vf) AS cycle_start
            FROM item_base_checked
            WHERE excl IS NULL AND rej IS NULL AND NOT prorated
            GROUP BY subscription_id, invoice_key
        )
        SELECT l.item_id, coalesce(r.removed_at, l.last_ve) AS item_end,
               r._source_file, r._source_row, r.source_id
        FROM last l LEFT JOIN removals r USING (item_id)
        WHERE {missing}
           OR EXISTS (SELECT 1 FROM cycles c
                      WHERE c.subscription_id = l.subscription_id AND c.cycle_start > l.last_vf
                        AND NOT EXISTS (SELECT 1 FROM item_base_all a
                                        WHERE a.item_id = l.item_id
                                          AND a.invoice_key = c.invoice_key))
        """
    )
    con.execute(
        """UPDATE item_base SET item_end = e.item_end FROM line_item_end e
           WHERE item_base.item_id = e.item_id AND e.item_end IS NOT NULL"""
    )
    # a credit with no new state at its instant, followed by a later state: the item was not
    # in force in between (a gap, as in history mode: no version is written for it)
    con.execute(
        """
        INSERT INTO item_base
        SELECT DISTINCT c.item_id, c.subscription_id, NULL, NULL, c.vf, NULL, NULL, c.sub_ended_at
        FROM item_base_checked c
        WHERE c.credit AND c.rej IS NULL AND c.late IS NULL
          AND NOT EXISTS (SELECT 1 FROM item_base s WHERE s.item_id = c.item_id AND s.vf = c.vf)
          AND EXISTS (SELECT 1 FROM item_base s WHERE s.item_id = c.item_id AND s.vf > c.vf)
        """
    )


# --- discounts -----------------------------------------------------------------------------------


def _discounts(con: duckdb.DuckDBPyConnection, src: dict[str, SourceTable]) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TABLE discount_all AS
        WITH d AS (
            SELECT id, coupon_id, trim(subscription_id) AS subscription_id, start, "end",
                   _source_table, _source_file, _source_row FROM stripe_discount
            WHERE NOT csw_blank(subscription_id)
        ),
        c AS (SELECT DISTINCT ON (trim(id)) trim(id) AS coupon_key, percent_off, amount_off,
                     lower(duration) AS duration FROM stripe_coupon ORDER BY trim(id), _source_row DESC)
        SELECT d.*, c.*, csw_ts(d.start) AS d_start, csw_ts(d."end") AS d_end,
            CASE WHEN c.duration = 'once' THEN 'coupon ' || d.coupon_id
                    || ' lasts one invoice (duration once): not a discount on the recurring price'
            END AS excl,
            CASE WHEN c.coupon_key IS NULL THEN 'coupon_id: ' || coalesce(d.coupon_id, 'missing')
                    || ' is not in the coupon table'
                 WHEN NOT csw_blank(c.amount_off) THEN 'coupon ' || d.coupon_id || ' is amount_off ('
                    || c.amount_off || '): the contract stores discounts as percentages; amount_off'
                    || ' coupons are not supported yet'
                 {bad_number("percent_off", "c.percent_off")}
                 WHEN csw_dec(c.percent_off) IS NULL OR csw_dec(c.percent_off) NOT BETWEEN 0 AND 100
                    THEN 'percent_off: ' || coalesce(c.percent_off, 'missing') || ' is not 0-100'
                 WHEN csw_ts(d.start) IS NULL THEN 'start: ' || coalesce(d.start, 'missing')
                    || ' is not a timestamp'
                 {bad_timestamp("end", 'd."end"')}
                 WHEN d.subscription_id NOT IN (SELECT subscription_id FROM sub_latest) THEN
                    'subscription_id: ' || d.subscription_id || ' was not written'
            END AS rej
        FROM d LEFT JOIN c ON c.coupon_key = trim(d.coupon_id)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE discount_checked AS
        SELECT *, CASE WHEN rej IS NULL AND excl IS NULL AND prev_end_max > d_start THEN
                    'overlaps another discount of subscription ' || subscription_id
                    || '; stacked discounts are not supported' END AS overlap
        FROM (SELECT *, max(coalesce(d_end, TIMESTAMP '9999-12-31')) OVER (
                    PARTITION BY subscription_id, (rej IS NULL AND excl IS NULL)
                    ORDER BY d_start, _source_row
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end_max
              FROM discount_all)
        """
    )
    con.execute("UPDATE discount_checked SET rej = overlap WHERE overlap IS NOT NULL")
    con.execute(
        """
        CREATE OR REPLACE TABLE ok_discount AS
        SELECT subscription_id, CAST(csw_dec(percent_off) AS DECIMAL(9, 4)) AS pct, d_start, d_end,
               _source_table, _source_file, _source_row, id
        FROM discount_checked WHERE rej IS NULL AND excl IS NULL
        """
    )
    _decide(con, "discount", src)


# --- subscription items: versions ----------------------------------------------------------------


def _items(
    con: duckdb.DuckDBPyConnection, src: dict[str, SourceTable], method: str, shape: str
) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE item_life AS
        SELECT item_id, any_value(subscription_id) AS subscription_id, min(vf) AS first_vf,
               CASE WHEN count(item_end) > 0 THEN least(max(item_end), any_value(sub_ended_at))
                    ELSE any_value(sub_ended_at) END AS life_end
        FROM item_base GROUP BY item_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE item_bounds AS
        WITH b AS (
            SELECT l.item_id, l.subscription_id, v.vf AS at_ts, l.first_vf, l.life_end
            FROM item_life l JOIN item_base v USING (item_id)
            UNION
            SELECT l.item_id, l.subscription_id, d.d_start, l.first_vf, l.life_end
            FROM item_life l JOIN ok_discount d USING (subscription_id)
            UNION
            SELECT l.item_id, l.subscription_id, d.d_end, l.first_vf, l.life_end
            FROM item_life l JOIN ok_discount d USING (subscription_id) WHERE d.d_end IS NOT NULL
        )
        SELECT DISTINCT item_id, subscription_id, at_ts, life_end FROM b
        WHERE at_ts >= first_vf AND (life_end IS NULL OR at_ts < life_end)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE item_states AS
        SELECT b.item_id, b.subscription_id, b.at_ts, b.life_end, v.price_key, v.quantity, d.pct,
               lag(v.price_key) OVER w IS DISTINCT FROM v.price_key
               OR lag(v.quantity) OVER w IS DISTINCT FROM v.quantity
               OR lag(d.pct) OVER w IS DISTINCT FROM d.pct
               OR lag(b.at_ts) OVER w IS NULL AS opens
        FROM item_bounds b
        ASOF JOIN item_base v ON v.item_id = b.item_id AND b.at_ts >= v.vf
        LEFT JOIN ok_discount d ON d.subscription_id = b.subscription_id AND d.d_start <= b.at_ts
             AND (d.d_end IS NULL OR d.d_end > b.at_ts)
        WINDOW w AS (PARTITION BY b.item_id ORDER BY b.at_ts)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE out_subscription_items AS
        WITH v AS (
            SELECT *, coalesce(lead(at_ts) OVER (PARTITION BY item_id ORDER BY at_ts), life_end) AS valid_to
            FROM item_states WHERE opens
        )
        SELECT v.item_id, v.subscription_id, p.plan_id, v.quantity, p.unit_major AS unit_amount,
               p.currency, p.billing_interval, p.interval_count, v.pct AS discount_percent,
               v.at_ts AS valid_from, v.valid_to,
               -- the run's source time: the latest run's copy of a version always wins
               (SELECT source_time FROM _run) AS updated_at, false AS closing,
               v.item_id || '@' || strftime(v.at_ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS contract_key
        FROM v JOIN ok_price p ON p.price_key = v.price_key
        """
    )
    base_source = (
        "invoice_line_item"
        if method == "invoice_line_items"
        else ("subscription" if shape == "stripe_export" else "subscription_item")
    )
    if base_source in src:
        table = src[base_source].name
        core.record(
            con,
            table,
            f"""SELECT _source_file, _source_row, source_id,
                       CASE WHEN excl IS NOT NULL OR late IS NOT NULL THEN 'excluded'
                            ELSE 'rejected' END,
                       coalesce(excl, rej, late)
                FROM item_base_checked
                WHERE _source_table = {quote(table)}
                  AND (excl IS NOT NULL OR rej IS NOT NULL OR late IS NOT NULL)""",
        )
        core.record_lineage(
            con,
            "subscription_items",
            table,
            f"""SELECT o.contract_key, b._source_file, b._source_row, b.source_id
                FROM item_base_checked b JOIN out_subscription_items o
                  ON o.item_id = b.item_id AND o.valid_from <= b.vf
                 AND (o.valid_to IS NULL OR b.vf < o.valid_to)
                WHERE b._source_table = {quote(table)} AND b.excl IS NULL AND b.rej IS NULL
                  AND b.late IS NULL""",
        )
    if method == "invoice_line_items" and "invoice_line_item" in src:
        # the credit line that says when a removed item went: lineage of its last version
        core.record_lineage(
            con,
            "subscription_items",
            src["invoice_line_item"].name,
            """SELECT o.contract_key, e._source_file, e._source_row, e.source_id
               FROM line_item_end e JOIN out_subscription_items o
                 ON o.item_id = e.item_id AND o.valid_to = e.item_end
               WHERE e.source_id IS NOT NULL""",
        )
    if method == "invoice_line_items" and "subscription_item" in src:
        # the current-state rows: each confirms its item's latest version
        table = src["subscription_item"].name
        core.record_lineage(
            con,
            "subscription_items",
            table,
            """SELECT arg_max(o.contract_key, o.valid_from), i._source_file, i._source_row, i.id
               FROM stripe_subscription_item i
               JOIN out_subscription_items o ON o.item_id = trim(i.id)
               GROUP BY ALL""",
        )
        core.record(
            con,
            table,
            """SELECT _source_file, _source_row, id, 'rejected',
                      'no invoice line states this item (the price history comes from invoice'
                      || ' lines), or its lines were rejected: it is not written'
               FROM stripe_subscription_item""",
        )
    if "discount" in src:
        table = src["discount"].name
        core.record_lineage(
            con,
            "subscription_items",
            table,
            """SELECT o.contract_key, d._source_file, d._source_row, d.id
               FROM ok_discount d JOIN out_subscription_items o
                 ON o.subscription_id = d.subscription_id AND o.discount_percent IS NOT NULL
                AND o.valid_from >= d.d_start AND (d.d_end IS NULL OR o.valid_from < d.d_end)""",
        )
        core.record(
            con,
            table,
            """SELECT _source_file, _source_row, id, 'excluded',
                      'applies to no time an item of its subscription was in force'
               FROM ok_discount""",
        )
    if "coupon" in src:
        table = src["coupon"].name
        core.record(
            con,
            table,
            f"""SELECT c._source_file, c._source_row, c.id,
                       CASE WHEN EXISTS (SELECT 1 FROM _lineage l
                                         WHERE l.contract_table = 'subscription_items'
                                           AND l.source_id = d.id) THEN 'written' ELSE 'excluded' END,
                       CASE WHEN d.id IS NULL THEN 'no subscription discount uses it'
                            WHEN NOT EXISTS (SELECT 1 FROM _lineage l
                                             WHERE l.contract_table = 'subscription_items'
                                               AND l.source_id = d.id)
                            THEN 'none of its discounts was written (see the discount rows)' END
                FROM stripe_coupon c LEFT JOIN discount_all d ON trim(d.coupon_id) = trim(c.id)
                WHERE c._source_table = {quote(table)}
                ORDER BY c._source_file, c._source_row, 4 DESC""",
        )


# --- re-runs: versions that vanished are closed ------------------------------------------------


def _state_file(landing: Path, stem: str) -> Path:
    """Every subscription_items version this adapter wrote into ``landing`` (``file_stem``)."""
    return landing / core.REPORT_DIR / SYSTEM / f"_item_versions_{stem}.parquet"


def _close_vanished(con: duckdb.DuckDBPyConnection, state: Path) -> int:
    """Ingestion only adds and replaces rows by key, so a version an earlier run wrote and
    this run does not (a discount removed, history mode turned on) would stay in raw. Each
    such key is written again, closed: ``valid_to`` = ``valid_from`` + 1 microsecond (in force
    on no day; the contract refuses ``valid_to = valid_from``), ``updated_at`` = this run's
    source time, so it replaces the earlier copy. Returns how many were closed."""
    if not state.exists():
        return 0
    con.execute(
        f"""
        INSERT INTO out_subscription_items BY NAME
        SELECT p.* EXCLUDE (valid_to, updated_at, closing),
               p.valid_from + INTERVAL 1 MICROSECOND AS valid_to,
               (SELECT source_time FROM _run) AS updated_at, true AS closing
        FROM read_parquet({quote(str(state))}) p
        WHERE NOT EXISTS (SELECT 1 FROM out_subscription_items o
                          WHERE o.item_id = p.item_id AND o.valid_from = p.valid_from)
        """
    )
    row = con.execute("SELECT count(*) FROM out_subscription_items WHERE closing").fetchone()
    return int(row[0]) if row else 0


def _save_state(con: duckdb.DuckDBPyConnection, state: Path) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"""COPY (SELECT item_id, subscription_id, plan_id, quantity, unit_amount, currency,
                         billing_interval, interval_count, discount_percent, valid_from,
                         valid_to, updated_at, contract_key, closing
                  FROM out_subscription_items ORDER BY item_id, valid_from)
            TO {quote(str(state))} (FORMAT parquet)"""
    )


# --- invoices ------------------------------------------------------------------------------------


def _invoices(
    con: duckdb.DuckDBPyConnection, m: StripeMapping, src: dict[str, SourceTable]
) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TABLE invoice_checked AS
        WITH lines AS (
            SELECT trim(invoice_id) AS invoice_key,
                   coalesce(min(csw_ts(period_start)) FILTER (lower(type) = 'subscription'),
                            min(csw_ts(period_start))) AS line_start,
                   coalesce(max(stripe_end(period_end)) FILTER (lower(type) = 'subscription'),
                            max(stripe_end(period_end))) AS line_end
            FROM stripe_invoice_line_item GROUP BY 1
        )
        SELECT i.*, l.line_start, l.line_end,
            CASE {_earlier("invoice", "i")} {_excluded_common(m, "invoice")}
                 WHEN NOT csw_blank(i.subscription_id) AND s.subscription_id IS NULL
                      AND EXISTS (SELECT 1 FROM subscription_checked x
                                  WHERE trim(x.id) = trim(i.subscription_id)
                                    AND NOT x.is_earlier AND x.excl IS NOT NULL)
                 THEN 'its subscription ' || i.subscription_id || ' is excluded'
            END AS excl,
            CASE WHEN csw_blank(i.id) THEN 'id: missing'
                 WHEN oc.billing_customer_id IS NULL THEN 'customer_id: '
                    || coalesce(i.customer_id, 'missing') || ' was not written'
                    || ' (not in the customer table, or rejected/excluded: see its row)'
                 WHEN NOT csw_blank(i.subscription_id) AND s.subscription_id IS NULL THEN
                    'subscription_id: ' || i.subscription_id || ' was not written'
                    || ' (not in the subscription table, or rejected: see its row)'
                 WHEN lower(trim(i.status)) NOT IN ({_sql_list(INVOICE_STATUSES)}) OR i.status IS NULL
                    THEN 'status: ' || coalesce(i.status, 'missing') || ' is not one of '
                    || {quote(", ".join(INVOICE_STATUSES))}
                 WHEN csw_blank(i.currency) THEN 'currency: missing'
                 WHEN csw_ts(i.created) IS NULL THEN 'created: ' || coalesce(i.created, 'missing')
                    || ' is not a timestamp'
                 {bad_timestamp("finalized_at", "i.finalized_at")}
                 {bad_timestamp("due_date", "i.due_date")}
                 {bad_timestamp("period_start", "i.period_start")}
                 {bad_timestamp("period_end", "i.period_end")}
                 {bad_timestamp("paid_at", "i.paid_at")}
                 WHEN csw_dec(i.amount_due) IS NULL THEN 'amount_due: '
                    || coalesce(i.amount_due, 'missing') || ' is not a number'
                 WHEN csw_dec(i.amount_paid) IS NULL THEN 'amount_paid: '
                    || coalesce(i.amount_paid, 'missing') || ' is not a number'
                 {bad_number("attempt_count", "i.attempt_count")}
            END AS rej
        FROM {_versions("stripe_invoice", _INVOICE_UPDATED)} i
        LEFT JOIN lines l ON l.invoice_key = trim(i.id)
        LEFT JOIN (SELECT DISTINCT billing_customer_id FROM out_customers) oc
            ON oc.billing_customer_id = trim(i.customer_id)
        LEFT JOIN sub_latest s ON s.subscription_id = trim(i.subscription_id)
        """
    )
    _decide(con, "invoice", src)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE out_invoices AS
        WITH o AS (
            SELECT trim(id) AS invoice_id, trim(customer_id) AS billing_customer_id,
                   nullif(trim(subscription_id), '') AS subscription_id,
                   coalesce(csw_ts(finalized_at), csw_ts(created)) AS issued_at,
                   csw_ts(due_date) AS due_at,
                   coalesce(line_start, csw_ts(period_start)) AS ps,
                   coalesce(line_end, stripe_end(period_end)) AS pe,
                   stripe_major(amount_due, currency) AS amount_due,
                   stripe_major(amount_paid, currency) AS amount_paid,
                   upper(trim(currency)) AS currency, lower(trim(status)) AS status,
                   csw_int(attempt_count) AS attempt_count, csw_ts(paid_at) AS paid_at,
                   {_INVOICE_UPDATED} AS updated_at,
                   _source_file, _source_row, id AS source_id
            FROM invoice_checked WHERE excl IS NULL AND rej IS NULL
        )
        SELECT * EXCLUDE (ps, pe), CAST(ps AS DATE) AS period_start,
               -- Stripe periods end at the instant the next begins: the last day is the day before
               greatest(CAST(pe AS DATE) - 1, CAST(ps AS DATE)) AS period_end
        FROM o
        """
    )
    _lineage(
        con,
        "invoices",
        src,
        "invoice",
        "SELECT invoice_id, _source_file, _source_row, source_id FROM out_invoices",
    )
    _lineage(
        con,
        "invoices",
        src,
        "invoice_line_item",
        """SELECT o.invoice_id, l._source_file, l._source_row, l.id
           FROM stripe_invoice_line_item l JOIN out_invoices o ON o.invoice_id = trim(l.invoice_id)""",
    )
    if "invoice_line_item" in src:
        core.record(
            con,
            src["invoice_line_item"].name,
            """SELECT _source_file, _source_row, id, 'rejected',
                      'invoice_id: invoice ' || coalesce(invoice_id, 'missing') || ' was not written'
               FROM stripe_invoice_line_item""",
        )


def _products(con: duckdb.DuckDBPyConnection, src: dict[str, SourceTable]) -> None:
    if "product" not in src:
        return
    core.record(
        con,
        src["product"].name,
        """SELECT pr._source_file, pr._source_row, pr.id,
                  CASE WHEN coalesce(csw_bool(pr.deleted), false) THEN 'excluded'
                       WHEN p.plan_id IS NOT NULL THEN 'written' ELSE 'excluded' END,
                  CASE WHEN coalesce(csw_bool(pr.deleted), false) THEN 'deleted product'
                       WHEN p.plan_id IS NULL THEN 'no written plan uses this product' END
           FROM stripe_product pr
           LEFT JOIN (SELECT DISTINCT trim(product_id) AS product_id, plan_id FROM price_checked
                      WHERE excl IS NULL AND rej IS NULL) p ON p.product_id = trim(pr.id)
           ORDER BY pr._source_file, pr._source_row, p.plan_id NULLS LAST""",
    )
    con.execute(
        f"""INSERT INTO _lineage
            SELECT DISTINCT 'plans', p.plan_id, {quote(src["product"].name)}, pr._source_file,
                   pr._source_row, pr.id
            FROM stripe_product pr JOIN price_checked p ON trim(p.product_id) = trim(pr.id)
            WHERE p.excl IS NULL AND p.rej IS NULL"""
    )


def _warnings(
    con: duckdb.DuckDBPyConnection, method: str, current_from: str, source_time_from: str
) -> list[str]:
    warnings = []
    if method == "current_state":
        row = con.execute("SELECT count(*), min(valid_from) FROM out_subscription_items").fetchone()
        count, earliest = (row[0], row[1]) if row else (0, None)
        found = (
            "price history: only the current state of subscription items was found (no"
            " history-mode subscription_item table, no invoice line items), so each item is"
        )
        advice = (
            " Turn on Fivetran history mode for subscription_item, or include the"
            " invoice_line_item table, and run again."
        )
        if current_from == "created":
            warnings.append(
                f"{found} written as ONE version from its start ({count} items, earliest"
                f" {earliest}): today's quantity and price are assumed since then"
                " (current_state_from: created). Past MRR cannot be reconstructed: MRR before"
                f" today shows today's quantities and prices.{advice}"
            )
        else:
            warnings.append(
                f"{found} written as ONE version from when the state was seen"
                f" ({source_time_from}; {count} items, earliest {earliest}). Past MRR cannot"
                " be reconstructed: nothing is written before then, so MRR before the sync is"
                " missing for these items (current_state_from: created assumes today's state"
                f" since each item's start instead).{advice}"
            )
    if method == "history_tables":
        row = con.execute(
            """SELECT count(*), min(first_vf) FROM (
                   SELECT item_id, min(vf) AS first_vf, min(created_at) AS created_at
                   FROM item_base GROUP BY item_id)
               WHERE created_at < first_vf - INTERVAL 1 DAY"""
        ).fetchone()
        if row and row[0]:
            warnings.append(
                f"price history: {row[0]} subscription items were created before their first"
                f" history row (history mode started {row[1]}); their state before it is unknown"
                " and not written, so MRR before then is missing for them."
            )
    return warnings


def adapt_stripe(source: Path, landing: Path, mapping: StripeMapping | None = None) -> AdaptResult:
    """Map the Stripe tables under ``source`` to contract billing files under ``landing``.

    Writes ``<landing>/billing/<table>/<file_stem>.<csv|parquet>`` for customers, plans,
    subscriptions, subscription_items and invoices, and ``<landing>/_adapters/stripe/``
    ``_rejects.csv``, ``_lineage.csv``, ``_result.json``. Raises
    :class:`adapters.core.AdapterInputError` when the source cannot be read at all (nothing is
    written then). ``result.ok`` is False when any source row was rejected.
    """
    m = mapping or StripeMapping()
    con = duckdb.connect()
    try:
        core.start_accounting(con)
        _macros(con)
        tables = core.read_source_dir(con, source)
        shape = detect_shape(tables)
        src = canonical_views(con, tables, shape)
        _customers(con, m, src)
        _prices(con, m, src, shape)
        _subscriptions(con, m, src)
        method = _history_method(con, src, shape)
        source_time, source_time_from = _source_time(con, src, source)
        _base_states(con, method, shape, "subscription_item" in src, m.current_state_from)
        _discounts(con, src)
        # invoices first: every line of a written invoice is written (it fed the invoice's
        # period); the item step then adds the lines' lineage to item versions
        _invoices(con, m, src)
        _items(con, src, method, shape)
        _products(con, src)
        state = _state_file(landing, m.file_stem)
        closed = _close_vanished(con, state)
        # tables this adapter does not read (charge, payout, ...) are named, not counted
        accounts = core.close_accounting(con, src.values())
        ignored = sorted(set(tables) - {t.name for t in src.values()})
        files, rows = [], {}
        for name in CONTRACT_TABLES:
            schema = contract_table(name)
            path, n = core.write_contract_table(
                con, schema, f"out_{name}", landing, m.file_stem, m.output_format
            )
            files.append(path)
            rows[schema.asset_path] = n
        rejects, lineage = core.write_reports(con, landing, SYSTEM)
        _save_state(con, state)
        warnings = _warnings(con, method, m.current_state_from, source_time_from)
    finally:
        con.close()
    details = {
        "history_method": method,
        "tables_not_read": ", ".join(ignored) or "none",
        "source_time": f"{source_time.isoformat()} ({source_time_from})",
        "versions_closed": str(closed),
    }
    if method == "current_state":
        details["current_state_from"] = (
            "created" if m.current_state_from == "created" else f"synced ({source_time_from})"
        )
    result = AdaptResult(
        system=SYSTEM,
        source=source,
        landing=landing,
        source_format=shape,
        accounts=accounts,
        contract_rows=rows,
        files_written=tuple(files),
        rejects_file=rejects,
        lineage_file=lineage,
        warnings=tuple(warnings),
        details=details,
    )
    core.write_result_json(result)
    return result
