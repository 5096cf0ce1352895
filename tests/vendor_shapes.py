"""Contract data rendered in each vendor's shape, for the adapters' round trips.

Each renderer reads the contract files of a landing directory (as ``ingestion.synthetic``
writes them) and writes the same facts the way the vendor's connector or destination delivers
them: :func:`render_fivetran` (Stripe through Fivetran, history mode on subscription_item),
:func:`render_salesforce` and :func:`render_hubspot` (Fivetran's CRM tables, custom fields or
properties for what has no standard field), :func:`render_segment` (the S3 destination's
gzipped calls). The ``*_MAPPING`` constants are the mappings that read each rendering back.

Shared by the per-adapter round trips (``tests/test_adapter_<system>.py``, raw tables identical)
and the mart-level round trip (``tests/test_adapters_round_trip.py``, marts identical).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import duckdb

from adapters.hubspot import HubSpotMapping
from adapters.salesforce import SalesforceMapping
from adapters.segment import SegmentMapping
from adapters.stripe import StripeMapping
from ingestion.contract import table
from ingestion.loader import ingest_table

BILLING = ("customers", "plans", "subscriptions", "subscription_items", "invoices")
SALESFORCE_CRM = (
    "accounts",
    "contacts",
    "opportunities",
    "activities",
    "support_tickets",
    "nps_responses",
)
#: HubSpot's NPS (feedback surveys) is not read, so it is not rendered.
HUBSPOT_CRM = ("accounts", "contacts", "opportunities", "activities", "support_tickets")

#: Reads render_fivetran's output back (generated customers may have no CRM account).
STRIPE_MAPPING = StripeMapping(missing_account="keep")
#: Reads render_segment's output back (its deprovisioning identify carries this trait).
SEGMENT_MAPPING = SegmentMapping(deprovisioned_at_trait="deprovisionedAt")


# --- Fivetran's timestamp shape ------------------------------------------------------------------

#: How Fivetran lands a datetime or date in these connectors' tables (the seeds of its dbt
#: packages: ``2019-11-11 17:23:34``, ``2018-12-18 18:20:30.829``, dates as ``... 00:00:00``).
FIVETRAN_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?"
)
#: Columns holding a datetime or a date (Salesforce's and HubSpot's names, as Fivetran writes
#: them).
_TEMPORAL_COLUMN = re.compile(r"(date|time|_at$|synced|modstamp|_start$|_end$)")


def not_fivetran_timestamps(folder: Path) -> list[str]:
    """``file:row:column=value`` of every date or datetime value under ``folder`` that is not
    in Fivetran's shape (API text with ``T`` and an offset, epoch milliseconds, ...)."""
    found = []
    for path in sorted(folder.rglob("*.csv")):
        with path.open(newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=1):
                found += [
                    f"{path.name}:{n}:{column}={value}"
                    for column, value in row.items()
                    if value
                    and _TEMPORAL_COLUMN.search(column.lower())
                    and not FIVETRAN_TIMESTAMP.fullmatch(value)
                ]
    return found


# --- the renderer: contract billing rows -> Fivetran's Stripe tables ------------------------------

_FT = "'%Y-%m-%d %H:%M:%S'"


def _ft(expr: str) -> str:
    """A Fivetran timestamp text (UTC, no offset) of an ISO text column."""
    return f"strftime(CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC', {_FT})"


def _minor(amount: str, currency: str) -> str:
    return (
        f"CAST({amount} * CASE WHEN {currency} IN ('JPY', 'KRW') THEN 1"
        f" WHEN {currency} IN ('KWD', 'BHD') THEN 1000 ELSE 100 END AS DECIMAL(38, 6))"
    )


def render_fivetran(
    contract_landing: Path,
    out: Path,
    price_history: Literal["history_mode", "invoice_lines"] = "history_mode",
) -> None:
    """Render the billing tables of a contract landing directory as Fivetran lands Stripe in
    history mode for subscription_item (one price per distinct plan/currency/amount/interval,
    plans named by price metadata ``plan_id``, tiers on products, discounts as percent-off
    coupons on subscription discounts).

    ``price_history="invoice_lines"``: no history tables; ``subscription_item`` holds the
    current items only and the price history is in ``invoice_line_item``
    (:func:`_render_invoice_lines`)."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in BILLING:
        con.execute(
            f"CREATE VIEW c_{name} AS SELECT * FROM read_csv("
            f"'{contract_landing}/billing/{name}/*.csv', all_varchar = true, header = true)"
        )

    def copy(name: str, sql: str) -> None:
        con.execute(f"COPY ({sql}) TO '{out / name}.csv' (FORMAT csv, HEADER true)")

    copy(
        "customer",
        f"""SELECT billing_customer_id AS id, {_ft("updated_at")} AS _fivetran_synced,
                   0 AS account_balance, NULL AS address_city, NULL AS address_country,
                   0 AS balance, {_ft("created_at")} AS created, lower(currency) AS currency,
                   false AS delinquent, NULL AS description,
                   lower(billing_customer_id) || '@example.com' AS email, false AS is_deleted,
                   true AS livemode, 'Customer ' || billing_customer_id AS name,
                   CASE WHEN account_id IS NULL THEN '{{}}'
                        ELSE '{{"crm_account_id":"' || account_id || '"}}' END AS metadata
            FROM c_customers""",
    )
    con.execute(
        """CREATE TABLE prices AS
           WITH keys AS (
               SELECT DISTINCT plan_id, currency, unit_amount, billing_interval, interval_count
               FROM c_subscription_items
               UNION ALL
               SELECT plan_id, 'USD', '0', billing_interval, '1' FROM c_plans
               WHERE plan_id NOT IN (SELECT plan_id FROM c_subscription_items))
           SELECT 'price_' || row_number() OVER (ORDER BY plan_id, currency, unit_amount,
                                                         billing_interval, interval_count) AS id,
                  keys.*
           FROM keys"""
    )
    copy(
        "product",
        f"""SELECT 'prod_' || tier AS id, {_ft("min(updated_at)")} AS _fivetran_synced,
                   true AS active, {_ft("min(updated_at)")} AS created, NULL AS description,
                   false AS is_deleted, true AS livemode,
                   '{{"tier":"' || tier || '"}}' AS metadata, upper(tier[1]) || tier[2:] AS name,
                   'service' AS type, {_ft("min(updated_at)")} AS updated
            FROM c_plans GROUP BY tier""",
    )
    copy(
        "price",
        f"""SELECT p.id, {_ft("pl.updated_at")} AS _fivetran_synced, true AS active,
                   'per_unit' AS billing_scheme, {_ft("pl.updated_at")} AS created,
                   lower(p.currency) AS currency, false AS is_deleted, true AS livemode,
                   NULL AS lookup_key,
                   '{{"plan_id":"' || p.plan_id || '"'
                   || CASE WHEN pl.seat_limit IS NULL THEN ''
                           ELSE ',"seat_limit":"' || pl.seat_limit || '"' END || '}}' AS metadata,
                   pl.name AS nickname, 'prod_' || pl.tier AS product_id,
                   p.billing_interval AS recurring_interval,
                   p.interval_count AS recurring_interval_count,
                   'licensed' AS recurring_usage_type, 'recurring' AS type,
                   CASE WHEN {_minor("CAST(p.unit_amount AS DECIMAL(18, 4))", "p.currency")}
                             = round({_minor("CAST(p.unit_amount AS DECIMAL(18, 4))", "p.currency")})
                        THEN CAST({_minor("CAST(p.unit_amount AS DECIMAL(18, 4))", "p.currency")}
                                  AS BIGINT) END AS unit_amount,
                   CAST(CAST({_minor("CAST(p.unit_amount AS DECIMAL(18, 4))", "p.currency")}
                        AS DECIMAL(38, 2)) AS VARCHAR) AS unit_amount_decimal
            FROM prices p JOIN c_plans pl USING (plan_id)""",
    )
    copy(
        "subscription",
        f"""SELECT subscription_id AS id, {_ft("updated_at")} AS _fivetran_synced,
                   {_ft("started_at")} AS billing_cycle_anchor, NULL AS cancel_at,
                   false AS cancel_at_period_end, {_ft("canceled_at")} AS canceled_at,
                   {_ft("started_at")} AS created, {_ft("current_period_end")} AS current_period_end,
                   NULL AS current_period_start, billing_customer_id AS customer_id,
                   NULL AS days_until_due, {_ft("ended_at")} AS ended_at, true AS livemode,
                   '{{}}' AS metadata, {_ft("started_at")} AS start_date, status,
                   CASE WHEN trial_end IS NOT NULL THEN {_ft("started_at")} END AS trial_start,
                   {_ft("trial_end")} AS trial_end
            FROM c_subscriptions""",
    )
    # history mode: a new row when the price or the quantity changes (a discount changes the
    # subscription's discount, not the item) or after a gap (the item was not in force); a row
    # ends 1 ms before the next begins, the current row ends 9999-12-31
    copy(
        "subscription_item",
        f"""WITH v AS (
                SELECT i.*, p.id AS price_id, CAST(i.valid_from AS TIMESTAMPTZ) AS vf,
                       CAST(i.valid_to AS TIMESTAMPTZ) AS vt,
                       lag(p.id) OVER w IS DISTINCT FROM p.id
                       OR lag(i.quantity) OVER w IS DISTINCT FROM i.quantity
                       OR lag(CAST(i.valid_to AS TIMESTAMPTZ)) OVER w
                          IS DISTINCT FROM CAST(i.valid_from AS TIMESTAMPTZ) AS opens
                FROM c_subscription_items i
                JOIN prices p ON p.plan_id = i.plan_id AND p.currency = i.currency
                 AND p.unit_amount = i.unit_amount AND p.billing_interval = i.billing_interval
                 AND p.interval_count = i.interval_count
                WINDOW w AS (PARTITION BY i.item_id ORDER BY CAST(i.valid_from AS TIMESTAMPTZ))),
            runs AS (
                SELECT *, sum(CASE WHEN opens THEN 1 ELSE 0 END)
                          OVER (PARTITION BY item_id ORDER BY vf) AS run FROM v),
            h AS (
                SELECT item_id, subscription_id, price_id, quantity, min(vf) AS start,
                       CASE WHEN count(vt) = count(*) THEN max(vt) END AS stop
                FROM runs GROUP BY item_id, subscription_id, price_id, quantity, run)
            SELECT item_id AS id, strftime(start AT TIME ZONE 'UTC', {_FT}) AS _fivetran_start,
                   coalesce(strftime((stop AT TIME ZONE 'UTC') - INTERVAL 1 MILLISECOND,
                                     '%Y-%m-%d %H:%M:%S.%g'),
                            '9999-12-31 23:59:59.999') AS _fivetran_end,
                   stop IS NULL AS _fivetran_active,
                   strftime(start AT TIME ZONE 'UTC', {_FT}) AS _fivetran_synced,
                   strftime(min(start) OVER (PARTITION BY item_id) AT TIME ZONE 'UTC', {_FT})
                       AS created,
                   '{{}}' AS metadata, price_id AS plan_id, quantity, subscription_id
            FROM h""",
    )
    con.execute(
        """CREATE TABLE discounts AS
           WITH v AS (
               SELECT *, lag(discount_percent) OVER w IS DISTINCT FROM discount_percent AS opens
               FROM c_subscription_items
               WINDOW w AS (PARTITION BY item_id ORDER BY CAST(valid_from AS TIMESTAMPTZ))),
           runs AS (
               SELECT *, sum(CASE WHEN opens THEN 1 ELSE 0 END) OVER (PARTITION BY item_id
                   ORDER BY CAST(valid_from AS TIMESTAMPTZ)) AS run FROM v)
           SELECT 'di_' || row_number() OVER (ORDER BY item_id, run) AS id, subscription_id,
                  discount_percent, min(CAST(valid_from AS TIMESTAMPTZ)) AS start,
                  CASE WHEN count(valid_to) = count(*) THEN max(CAST(valid_to AS TIMESTAMPTZ))
                  END AS "end"
           FROM runs WHERE discount_percent IS NOT NULL
           GROUP BY subscription_id, item_id, run, discount_percent"""
    )
    copy(
        "coupon",
        """SELECT DISTINCT 'pct_' || discount_percent AS id, NULL AS amount_off,
                  '2023-01-01 00:00:00' AS created, NULL AS currency, 'forever' AS duration,
                  NULL AS duration_in_months, true AS livemode, NULL AS max_redemptions,
                  '{}' AS metadata, discount_percent || '% off' AS name,
                  discount_percent AS percent_off, NULL AS redeem_by, 1 AS times_redeemed,
                  true AS valid, '2023-01-01 00:00:00' AS _fivetran_synced
           FROM discounts""",
    )
    copy(
        "subscription_discount",
        f"""SELECT d.id, strftime(d.start AT TIME ZONE 'UTC', {_FT}) AS _fivetran_synced,
                   NULL AS checkout_session, 'pct_' || d.discount_percent AS coupon_id,
                   s.billing_customer_id AS customer_id,
                   strftime(d."end" AT TIME ZONE 'UTC', {_FT}) AS "end", NULL AS invoice_id,
                   NULL AS invoice_item_id, strftime(d.start AT TIME ZONE 'UTC', {_FT}) AS start,
                   d.subscription_id
            FROM discounts d JOIN c_subscriptions s USING (subscription_id)""",
    )
    time_of_day = "strftime(CAST(issued_at AS TIMESTAMPTZ) AT TIME ZONE 'UTC', ' %H:%M:%S')"
    copy(
        "invoice",
        f"""SELECT invoice_id AS id, {_ft("updated_at")} AS _fivetran_synced,
                   CAST({_minor("CAST(amount_due AS DECIMAL(18, 4))", "currency")} AS BIGINT)
                       AS amount_due,
                   CAST({_minor("CAST(amount_paid AS DECIMAL(18, 4))", "currency")} AS BIGINT)
                       AS amount_paid,
                   attempt_count, 'subscription_cycle' AS billing_reason,
                   {_ft("issued_at")} AS created, lower(currency) AS currency,
                   billing_customer_id AS customer_id, {_ft("due_at")} AS due_date,
                   false AS is_deleted, true AS livemode, '{{}}' AS metadata,
                   status = 'paid' AS paid,
                   period_start || {time_of_day} AS period_start,
                   CAST(CAST(period_end AS DATE) + 1 AS VARCHAR) || {time_of_day} AS period_end,
                   status, {_ft("paid_at")} AS status_transitions_paid_at, subscription_id
            FROM c_invoices""",
    )
    if price_history == "invoice_lines":
        _render_invoice_lines(con, out)
    con.close()


def _render_invoice_lines(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """Replace the history-mode ``subscription_item`` with the current items (the last version
    of each item still in force, or of an ended subscription) and write the invoices' lines as
    Stripe bills them: on each subscription invoice a cycle line per item version in force at
    the invoice's period start (period = the invoice's); a change inside an invoice's period
    as a proration pair on that invoice (the credit for the old state's unused time, the debit
    for the new state's remaining time, both from the change to the period end); an item
    added mid-period as a debit, an item removed mid-period as a credit. Discounts stay on
    ``subscription_discount``. What has no invoice period around it (a change before the
    first invoice, in a trial, or after the last) gets no line: Stripe bills nothing then."""
    (out / "subscription_item.csv").unlink()
    ts = "CAST(CAST({} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    time_of_day = "strftime(CAST(issued_at AS TIMESTAMPTZ) AT TIME ZONE 'UTC', ' %H:%M:%S')"
    con.execute(
        f"""CREATE TABLE inv AS
            SELECT invoice_id, subscription_id, updated_at,
                   CAST(period_start || {time_of_day} AS TIMESTAMP) AS ps,
                   CAST(CAST(CAST(period_end AS DATE) + 1 AS VARCHAR) || {time_of_day}
                        AS TIMESTAMP) AS pe
            FROM c_invoices WHERE subscription_id IS NOT NULL"""
    )
    con.execute(
        f"""CREATE TABLE ver AS
            SELECT i.item_id, i.subscription_id, p.id AS price_id,
                   CAST(i.quantity AS BIGINT) AS qty, i.currency,
                   CAST(i.unit_amount AS DECIMAL(18, 4)) AS unit_amount,
                   {ts.format("i.valid_from")} AS vf, {ts.format("i.valid_to")} AS vt,
                   lag(p.id) OVER w AS prev_price, lag(CAST(i.quantity AS BIGINT)) OVER w AS prev_qty,
                   lag(CAST(i.unit_amount AS DECIMAL(18, 4))) OVER w AS prev_amount,
                   lag({ts.format("i.valid_to")}) OVER w AS prev_vt,
                   lead({ts.format("i.valid_from")}) OVER w AS next_vf,
                   {ts.format("s.ended_at")} AS sub_ended
            FROM c_subscription_items i
            JOIN prices p ON p.plan_id = i.plan_id AND p.currency = i.currency
             AND p.unit_amount = i.unit_amount AND p.billing_interval = i.billing_interval
             AND p.interval_count = i.interval_count
            JOIN c_subscriptions s USING (subscription_id)
            WINDOW w AS (PARTITION BY i.item_id ORDER BY {ts.format("i.valid_from")})"""
    )
    minor = _minor("{q} * {a}", "v.currency")
    line = """SELECT v.item_id, v.subscription_id, v.currency, n.invoice_id, n.updated_at,
                     {start} AS ps, n.pe, {price} AS price_id, {qty} AS qty,
                     {sign} * CAST({amount} AS BIGINT) AS amount, {proration} AS proration"""

    def lines(start: str, old: bool, sign: int, proration: str, where: str) -> str:
        q, a, pr = (
            ("v.prev_qty", "v.prev_amount", "v.prev_price")
            if old
            else ("v.qty", "v.unit_amount", "v.price_id")
        )
        return (
            line.format(
                start=start,
                price=pr,
                qty=q,
                sign=sign,
                proration=proration,
                amount=minor.format(q=q, a=a),
            )
            + f" FROM ver v JOIN inv n ON n.subscription_id = v.subscription_id WHERE {where}"
        )

    change = """v.prev_vt = v.vf AND (v.prev_price <> v.price_id OR v.prev_qty <> v.qty)"""
    starts = f"""(v.prev_vt IS NULL OR v.prev_vt <> v.vf OR {change.replace("v.prev_vt = v.vf AND ", "")})"""
    inside = "n.ps < {t} AND {t} < n.pe"
    con.execute(
        f"""CREATE TABLE lines AS
            {lines("n.ps", False, 1, "false", "v.vf <= n.ps AND (v.vt IS NULL OR n.ps < v.vt)")}
            UNION ALL
            {lines("v.vf", False, 1, "true", starts + " AND " + inside.format(t="v.vf"))}
            UNION ALL
            {lines("v.vf", True, -1, "true", change + " AND " + inside.format(t="v.vf"))}
            UNION ALL
            {
            lines(
                "v.vt",
                False,
                -1,
                "true",
                "(v.next_vf IS NULL OR v.next_vf <> v.vt)"
                " AND (v.sub_ended IS NULL OR v.vt < v.sub_ended) AND " + inside.format(t="v.vt"),
            )
        }"""
    )
    copy_sql = f"""
        SELECT 'il_' || row_number() OVER (ORDER BY invoice_id, ps, item_id, amount) AS id,
               invoice_id, strftime(updated_at::TIMESTAMPTZ AT TIME ZONE 'UTC', {_FT})
                   AS _fivetran_synced,
               amount, lower(currency) AS currency,
               CASE WHEN amount < 0 THEN 'Unused time on ' WHEN proration
                    THEN 'Remaining time on ' ELSE '' END || qty || ' x ' || price_id
                   AS description,
               NOT proration AS discountable, true AS livemode,
               strftime(pe, {_FT}) AS period_end, strftime(ps, {_FT}) AS period_start,
               price_id AS plan_id, price_id, proration, qty AS quantity, subscription_id,
               item_id AS subscription_item_id, 'subscription' AS type, '{{}}' AS metadata
        FROM lines"""
    con.execute(f"COPY ({copy_sql}) TO '{out}/invoice_line_item.csv' (FORMAT csv, HEADER true)")
    current = f"""
        SELECT strftime(vf, {_FT}) AS _fivetran_synced,
               strftime(min(vf) OVER (PARTITION BY item_id), {_FT}) AS created,
               item_id AS id, '{{}}' AS metadata, price_id AS plan_id, qty AS quantity,
               subscription_id
        FROM ver
        QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY vf DESC) = 1
            AND (vt IS NULL OR sub_ended IS NOT NULL AND vt >= sub_ended)"""
    con.execute(f"COPY ({current}) TO '{out}/subscription_item.csv' (FORMAT csv, HEADER true)")


# --- the renderer: contract CRM rows -> Fivetran's Salesforce tables ----------------------------


def _sf_ts(expr: str) -> str:
    """A Salesforce datetime as Fivetran lands it (``2019-11-11 17:23:34``: UTC, no offset; see
    the seeds of Fivetran's dbt_salesforce_source) of an ISO text column."""
    return _ft(expr)


def _ft_date(expr: str) -> str:
    """A date field as Fivetran's seeds hold it (``2018-12-19 00:00:00``) of an ISO date text
    column; NULL stays NULL."""
    return f"strftime(CAST({expr} AS DATE), '%Y-%m-%d 00:00:00')"


SALESFORCE_MAPPING = SalesforceMapping(
    region_field="Region__c",
    owner_user_field="Name",
    contact_role_field="Role__c",
    contact_started_field="Role_Start_Date__c",
    contact_ended_field="Role_End_Date__c",
    contact_active_field="Active__c",
    contract_start_field="Contract_Start_Date__c",
    contract_end_field="Contract_End_Date__c",
    attended_field="Attended__c",
    nps_object="NPS_Response__c",
)


def render_salesforce(contract_landing: Path, out: Path) -> None:
    """Render the CRM tables of a contract landing directory as Fivetran lands Salesforce:
    the company keeps segment, region, contact role and dates, contract dates, attendance and
    NPS in custom fields (the ones :data:`SALESFORCE_MAPPING` names), uses the standard
    picklists' labels (``Existing Customer - Upgrade``, ``Medium``, ``On Hold``), its own
    activity type labels (``Check-in``, ``QBR``), and owners are Users (events and tasks
    split the activities)."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in SALESFORCE_CRM:
        con.execute(
            f"CREATE VIEW c_{name} AS SELECT * FROM read_csv("
            f"'{contract_landing}/crm/{name}/*.csv', all_varchar = true, header = true)"
        )

    def copy(name: str, sql: str) -> None:
        con.execute(f"COPY ({sql}) TO '{out / name}.csv' (FORMAT csv, HEADER true)")

    con.execute(
        """CREATE TABLE users AS SELECT '0055g00000' || lpad(CAST(row_number() OVER (ORDER BY
           owner) AS VARCHAR), 5, '0') AS id, owner FROM (SELECT DISTINCT owner FROM c_accounts
           WHERE owner IS NOT NULL)"""
    )
    synced = "'2025-01-01 00:00:00.000'"
    copy(
        "user",
        f"""SELECT id, {synced} AS _fivetran_synced, owner AS name, owner || '@example.com'
                   AS email, true AS is_active, 'Standard' AS user_type, false AS is_deleted
            FROM users""",
    )
    copy(
        "account",
        f"""SELECT a.account_id AS id, {synced} AS _fivetran_synced, a.name,
                   CASE a.segment WHEN 'enterprise' THEN 'Enterprise'
                        WHEN 'mid_market' THEN 'Mid-Market' ELSE 'SMB' END AS segment_c,
                   a.industry, upper(a.region) AS region_c, u.id AS owner_id,
                   'Customer' AS type, NULL AS billing_country, NULL AS number_of_employees,
                   {_sf_ts("a.created_at")} AS created_date,
                   {_sf_ts("a.updated_at")} AS last_modified_date,
                   {_sf_ts("a.updated_at")} AS system_modstamp, false AS is_deleted
            FROM c_accounts a LEFT JOIN users u ON u.owner = a.owner""",
    )
    copy(
        "contact",
        f"""SELECT contact_id AS id, {synced} AS _fivetran_synced, account_id, email, title,
                   'Contact ' || contact_id AS last_name,
                   CASE role WHEN 'executive_sponsor' THEN 'Executive Sponsor'
                        ELSE upper(role[1]) || role[2:] END AS role_c,
                   {_ft_date("started_at")} AS role_start_date_c,
                   {_ft_date("ended_at")} AS role_end_date_c,
                   is_active AS active_c, {_sf_ts("updated_at")} AS created_date,
                   {_sf_ts("updated_at")} AS system_modstamp, false AS is_deleted
            FROM c_contacts""",
    )
    copy(
        "opportunity",
        f"""SELECT opportunity_id AS id, {synced} AS _fivetran_synced, account_id,
                   'Deal ' || opportunity_id AS name,
                   CASE type WHEN 'new_business' THEN 'New Customer'
                        WHEN 'expansion' THEN 'Existing Customer - Upgrade'
                        ELSE 'Renewal' END AS type,
                   CASE stage WHEN 'closed_won' THEN 'Closed Won'
                        WHEN 'closed_lost' THEN 'Closed Lost' ELSE 'Negotiation' END
                       AS stage_name,
                   stage <> 'open' AS is_closed, stage = 'closed_won' AS is_won, amount,
                   currency AS currency_iso_code, {_ft_date("close_date")} AS close_date,
                   {_ft_date("contract_start_date")} AS contract_start_date_c,
                   {_ft_date("contract_end_date")} AS contract_end_date_c,
                   {_sf_ts("updated_at")} AS system_modstamp, false AS is_deleted
            FROM c_opportunities""",
    )
    activity = f"""SELECT activity_id AS id, {synced} AS _fivetran_synced, account_id,
                   CASE type WHEN 'check_in' THEN 'Check-in' WHEN 'qbr' THEN 'QBR'
                        WHEN 'ebr' THEN 'EBR' WHEN 'value_review' THEN 'Value Review'
                        ELSE upper(type[1]) || type[2:] END AS type,
                   'Meeting' AS subject, attended AS attended_c,
                   {_sf_ts("updated_at")} AS system_modstamp, false AS is_deleted, {{when}}
            FROM (SELECT *, row_number() OVER (ORDER BY activity_id) AS n FROM c_activities)
            WHERE n % 2 = {{parity}}"""
    copy(
        "event",
        activity.format(
            when=f"{_sf_ts('occurred_at')} AS activity_date_time, 30 AS duration_in_minutes",
            parity=0,
        ),
    )
    copy(
        "task",
        activity.format(
            when=f"{_sf_ts('occurred_at')} AS completed_date_time, 'Completed' AS status,"
            f" {_ft_date('CAST(occurred_at AS TIMESTAMPTZ)')} AS activity_date",
            parity=1,
        ),
    )
    copy(
        "case",
        f"""SELECT ticket_id AS id, {synced} AS _fivetran_synced, account_id,
                   {_sf_ts("created_at")} AS created_date, {_sf_ts("resolved_at")} AS closed_date,
                   CASE severity WHEN 'normal' THEN 'Medium'
                        ELSE upper(severity[1]) || severity[2:] END AS priority,
                   CASE status WHEN 'open' THEN 'New' WHEN 'pending' THEN 'On Hold'
                        ELSE upper(status[1]) || status[2:] END AS status,
                   'Email' AS origin, {_sf_ts("updated_at")} AS system_modstamp,
                   false AS is_deleted
            FROM c_support_tickets""",
    )
    copy(
        "nps_response_c",
        f"""SELECT response_id AS id, {synced} AS _fivetran_synced, account_id AS account_c,
                   contact_id AS contact_c, score AS score_c, comment AS comment_c,
                   {_sf_ts("responded_at")} AS created_date, false AS is_deleted
            FROM c_nps_responses""",
    )
    con.close()


# --- the renderer: contract CRM rows -> Fivetran's HubSpot tables -------------------------------


def _hs_ts(expr: str) -> str:
    """A HubSpot datetime property as Fivetran lands it (``2019-12-04 12:48:22``; see the
    seeds of Fivetran's dbt_hubspot) of an ISO text column."""
    return _ft(expr)


HUBSPOT_MAPPING = HubSpotMapping.from_dict(
    {
        "region_property": "region",
        "role_map": {"technical_admin": "admin"},
        "contact_started_property": "cs_role_start_date",
        "contact_ended_property": "cs_role_end_date",
        "contact_active_property": "cs_is_active",
        "contract_start_property": "contract_start_date",
        "contract_end_property": "contract_end_date",
        "ticket_status_map": {"waiting on customer": "pending"},
    }
)


def render_hubspot(contract_landing: Path, out: Path) -> None:
    """Render the CRM tables of a contract landing directory as Fivetran lands HubSpot: the
    company keeps segment, region and contact role dates in custom properties, buying roles in
    hs_buying_role (its own TECHNICAL_ADMIN value for admins), deal stages in a pipeline,
    company links in association tables, meetings as engagements."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in HUBSPOT_CRM:
        con.execute(
            f"CREATE VIEW c_{name} AS SELECT * FROM read_csv("
            f"'{contract_landing}/crm/{name}/*.csv', all_varchar = true, header = true)"
        )

    def copy(name: str, sql: str) -> None:
        con.execute(f"COPY ({sql}) TO '{out / name}.csv' (FORMAT csv, HEADER true)")

    synced = "'2025-01-01 00:00:00.000'"
    con.execute(
        """CREATE TABLE owners AS SELECT CAST(40000000 + row_number() OVER (ORDER BY owner)
           AS VARCHAR) AS owner_id, owner FROM (SELECT DISTINCT owner FROM c_accounts
           WHERE owner IS NOT NULL)"""
    )
    copy(
        "owner",
        f"""SELECT owner_id, {synced} AS _fivetran_synced, '2023-01-01 00:00:00' AS created_at,
                   '123' AS portal_id, 'PERSON' AS type, owner AS email, owner AS first_name,
                   'CSM' AS last_name FROM owners""",
    )
    copy(
        "company",
        f"""SELECT a.account_id AS id, false AS is_deleted, {synced} AS _fivetran_synced,
                   a.name AS property_name, upper(a.segment) AS property_segment,
                   a.industry AS property_industry, upper(a.region) AS property_region,
                   o.owner_id AS property_hubspot_owner_id,
                   {_hs_ts("a.created_at")} AS property_createdate,
                   {_hs_ts("a.updated_at")} AS property_hs_lastmodifieddate,
                   'United States' AS property_country
            FROM c_accounts a LEFT JOIN owners o ON o.owner = a.owner""",
    )
    copy(
        "contact",
        f"""SELECT contact_id AS id, false AS _fivetran_deleted, {synced} AS _fivetran_synced,
                   email AS property_email, title AS property_jobtitle,
                   CASE role WHEN 'user' THEN 'END_USER' WHEN 'admin' THEN 'TECHNICAL_ADMIN'
                        ELSE upper(role) END AS property_hs_buying_role,
                   {_ft_date("started_at")} AS property_cs_role_start_date,
                   {_ft_date("ended_at")} AS property_cs_role_end_date,
                   is_active AS property_cs_is_active,
                   {_hs_ts("updated_at")} AS property_createdate,
                   {_hs_ts("updated_at")} AS property_lastmodifieddate
            FROM c_contacts""",
    )
    copy(
        "contact_company",
        "SELECT account_id AS company_id, contact_id, 1 AS type_id FROM c_contacts",
    )
    copy(
        "deal_pipeline_stage",
        f"""SELECT * FROM (VALUES
                (false, {synced}, true, false, false, 0, 0.2, 'st_open', 'Negotiation', 'default'),
                (false, {synced}, true, true, true, 1, 1.0, 'st_won', 'Closed won', 'default'),
                (false, {synced}, true, false, true, 2, 0.0, 'st_lost', 'Closed lost', 'default'))
              AS v(_fivetran_deleted, _fivetran_synced, active, closed_won, is_closed,
                   display_order, probability, stage_id, label, pipeline_id)""",
    )
    copy(
        "deal",
        f"""SELECT opportunity_id AS deal_id, false AS is_deleted, {synced} AS _fivetran_synced,
                   'default' AS deal_pipeline_id,
                   CASE stage WHEN 'closed_won' THEN 'st_won' WHEN 'closed_lost' THEN 'st_lost'
                        ELSE 'st_open' END AS deal_pipeline_stage_id,
                   'Deal ' || opportunity_id AS property_dealname,
                   CASE type WHEN 'new_business' THEN 'newbusiness'
                        WHEN 'expansion' THEN 'existingbusiness' ELSE 'renewal' END
                       AS property_dealtype,
                   amount AS property_amount, currency AS property_deal_currency_code,
                   {_ft_date("close_date")} AS property_closedate,
                   {_ft_date("contract_start_date")} AS property_contract_start_date,
                   {_ft_date("contract_end_date")} AS property_contract_end_date,
                   {_hs_ts("updated_at")} AS property_hs_lastmodifieddate
            FROM c_opportunities""",
    )
    copy(
        "deal_company",
        "SELECT account_id AS company_id, opportunity_id AS deal_id, 5 AS type_id,"
        " 'HUBSPOT_DEFINED' AS category FROM c_opportunities",
    )
    copy(
        "ticket_pipeline_stage",
        f"""SELECT * FROM (VALUES
                ('tst_1', 'New', false), ('tst_2', 'Waiting on customer', false),
                ('tst_3', 'Solved', true), ('tst_4', 'Closed', true))
              AS v(stage_id, label, is_closed), (SELECT {synced} AS _fivetran_synced)""",
    )
    copy(
        "ticket",
        f"""SELECT ticket_id AS id, false AS is_deleted, {synced} AS _fivetran_synced,
                   {_hs_ts("created_at")} AS property_createdate,
                   {_hs_ts("resolved_at")} AS property_closed_date,
                   CASE severity WHEN 'normal' THEN 'MEDIUM' WHEN 'critical' THEN 'URGENT'
                        ELSE upper(severity) END AS property_hs_ticket_priority,
                   CASE status WHEN 'open' THEN 'tst_1' WHEN 'pending' THEN 'tst_2'
                        WHEN 'solved' THEN 'tst_3' ELSE 'tst_4' END
                       AS property_hs_pipeline_stage,
                   {_hs_ts("updated_at")} AS property_hs_lastmodifieddate
            FROM c_support_tickets""",
    )
    copy(
        "ticket_company",
        "SELECT account_id AS company_id, ticket_id, 26 AS type_id FROM c_support_tickets",
    )
    copy(
        "engagement",
        f"""SELECT activity_id AS id, 'MEETING' AS type, {synced} AS _fivetran_synced,
                   '123' AS portal_id FROM c_activities""",
    )
    copy(
        "engagement_meeting",
        f"""SELECT activity_id AS engagement_id, {synced} AS _fivetran_synced,
                   {_hs_ts("occurred_at")} AS property_hs_timestamp,
                   {_hs_ts("occurred_at")} AS property_hs_meeting_start_time,
                   CASE WHEN attended = 'true' THEN 'COMPLETED' ELSE 'NO_SHOW' END
                       AS property_hs_meeting_outcome,
                   CASE type WHEN 'check_in' THEN 'Check-in' WHEN 'qbr' THEN 'QBR'
                        ELSE type END AS property_hs_activity_type,
                   {_hs_ts("updated_at")} AS property_hs_lastmodifieddate
            FROM c_activities""",
    )
    copy(
        "engagement_company",
        "SELECT activity_id AS engagement_id, account_id AS company_id FROM c_activities",
    )
    con.close()


# --- the renderer: contract product rows -> Segment's S3 destination -----------------------------

_ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def render_segment(contract_landing: Path, out: Path, duplicate_every: int = 37) -> None:
    """Render product users and events as the S3 destination lands Segment calls: one identify
    per user at provisioning (traits company.id, role, createdAt) and one more at
    deprovisioning (traits.deprovisionedAt); one track per event, its name title-cased as
    sent ('Dashboard Viewed'), ``timestamp`` exact while originalTimestamp/sentAt carry a
    one-hour device skew; every ``duplicate_every``-th event again (a retry, received later);
    one anonymous page-view track per user, never identified. Files per received day:
    ``segment-logs/src1/<day epoch ms>/<n>.gz``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE TABLE u AS SELECT * FROM read_csv('{contract_landing}/product/users/*.csv',
            all_varchar = true, header = true)"""
    )
    con.execute(
        f"""CREATE TABLE e AS SELECT * FROM read_parquet(
            '{contract_landing}/product/events/*.parquet')"""
    )
    common = """'anonymousId', 'anon-' || user_id, 'channel', 'server', 'version', 2,
                'integrations', json_object(),
                'context', json_object('library', json_object('name', 'analytics-python',
                                                              'version', '2.3.2'))"""
    calls = f"""
        SELECT CAST(provisioned_at AS TIMESTAMPTZ) AS received, json_object(
            'type', 'identify', 'messageId', 'idf-1-' || user_id, 'userId', user_id, {common},
            'timestamp', strftime(CAST(provisioned_at AS TIMESTAMPTZ), {_ISO}),
            'traits', json_object('company', json_object('id', account_id), 'role', role,
                                  'createdAt', provisioned_at, 'email', user_id || '@x.example'))
            AS line FROM u
        UNION ALL
        SELECT CAST(deprovisioned_at AS TIMESTAMPTZ), json_object(
            'type', 'identify', 'messageId', 'idf-2-' || user_id, 'userId', user_id, {common},
            'timestamp', strftime(CAST(deprovisioned_at AS TIMESTAMPTZ), {_ISO}),
            'traits', json_object('company', json_object('id', account_id), 'role', role,
                                  'createdAt', provisioned_at, 'deprovisionedAt', deprovisioned_at))
        FROM u WHERE deprovisioned_at IS NOT NULL
        UNION ALL
        SELECT occurred_at + INTERVAL 2 SECOND * copy, json_object(
            'type', 'track', 'messageId', event_id, 'userId', user_id, {common},
            'event', array_to_string(list_transform(string_split(event_name, '_'),
                                                    lambda w: upper(w[1]) || w[2:]), ' '),
            'properties', coalesce(CAST(properties AS JSON), json_object()),
            'timestamp', strftime(occurred_at, {_ISO}),
            'originalTimestamp', strftime(occurred_at + INTERVAL 1 HOUR, {_ISO}),
            'sentAt', strftime(occurred_at + INTERVAL 1 HOUR + INTERVAL 1 SECOND, {_ISO}),
            'receivedAt', strftime(occurred_at + INTERVAL 2 SECOND * copy, {_ISO}))
        FROM (SELECT *, unnest(CASE WHEN row_number() OVER (ORDER BY event_id)
                                         % {duplicate_every} = 0 THEN [1, 2] ELSE [1] END) AS copy
              FROM e)
        UNION ALL
        SELECT CAST(provisioned_at AS TIMESTAMPTZ) - INTERVAL 1 DAY, json_object(
            'type', 'track', 'messageId', 'anon-page-' || user_id, 'anonymousId',
            'visitor-' || user_id, 'event', 'Pricing Viewed', 'properties', json_object(),
            'timestamp', strftime(CAST(provisioned_at AS TIMESTAMPTZ) - INTERVAL 1 DAY, {_ISO}))
        FROM u
    """
    con.execute(f"CREATE TABLE calls AS {calls}")
    days = con.execute(
        "SELECT DISTINCT CAST(epoch(date_trunc('day', received)) * 1000 AS BIGINT) FROM calls"
        " ORDER BY 1"
    ).fetchall()
    for (day_ms,) in days:  # one folder per received day, as Segment writes them
        folder = out / "segment-logs" / "src1" / str(day_ms)
        folder.mkdir(parents=True)
        con.execute(
            f"""COPY (SELECT line FROM calls
                      WHERE CAST(epoch(date_trunc('day', received)) * 1000 AS BIGINT) = {day_ms}
                      ORDER BY received, line)
                TO '{folder}/{day_ms + 3_600_000}.gz' (FORMAT csv, HEADER false, QUOTE '',
                ESCAPE '', DELIMITER E'\\x01', COMPRESSION gzip)"""
        )
    con.close()


def ingest_tables(landing: Path, root: Path, names: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """A warehouse at ``root`` with the contract tables ``names`` ingested from ``landing``
    (every file loaded: none refused); the connection stays open for the caller."""
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    for name in names:
        outcome = ingest_table(con, table(name), landing, validation_dir=root / "validation")
        assert outcome.files_refused == 0, name
    return con


def raw_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[Any, ...]]:
    """The contract columns of ``raw.<name>``, sorted: what two landings are compared on."""
    columns = ", ".join(f'"{c}"' for c in table(name).column_names)
    return con.execute(f"SELECT {columns} FROM raw.{name} ORDER BY ALL").fetchall()
