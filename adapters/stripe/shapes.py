"""The shapes Stripe data arrives in, and one canonical view per Stripe object.

Each connector names tables and columns its own way:

- ``fivetran``: singular table names (``customer``, ``subscription_item``), foreign keys as
  ``<object>_id``, timestamps as SQL timestamps, metadata as JSON text, ``_fivetran_synced``;
  history mode adds ``_fivetran_start`` / ``_fivetran_end`` / ``_fivetran_active``, and older
  connectors deliver ``subscription_history``.
- ``airbyte`` (and plain Stripe API objects, ``api``): plural stream names (``customers``,
  ``subscription_items``), API field names (``customer``, ``price`` as an object or an id,
  ``recurring.interval``), epoch-second timestamps, ``_airbyte_extracted_at``.
- ``stripe_export``: the Dashboard's CSV exports (``customers.csv``/``unified_customers.csv``,
  ``subscriptions.csv``, ``invoices.csv``): title-case headers such as ``Created (UTC)``,
  amounts in MAJOR units, customer metadata as ``<key> (metadata)`` columns; a subscription row
  carries its single price and quantity.

:func:`canonical_views` turns whichever shape is present into views ``stripe_<object>`` with the
same text columns for every shape (Fivetran's names, amounts in minor units), so the mapping in
``adapter.py`` is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from adapters.core import SourceTable

#: A candidate for a canonical column: a source column name, or (kind, column[, path]):
#: ("id", col) = the id of an expanded object or the plain id; ("json", col, path) = a field of a
#: JSON object column (``path`` may be dotted); ("json_id", col, path) = the id at ``path``, a
#: plain id or an expanded object; ("parent_type", col) = a 2025 API line's ``parent.type`` as
#: the older ``type`` (``subscription`` / ``invoiceitem``); ("minor", col) = a major-unit
#: amount (exports) turned into minor units.
Candidate = str | tuple[str, ...]


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    #: Table names per shape family, in order of preference.
    tables: dict[str, tuple[str, ...]]
    columns: dict[str, tuple[Candidate, ...]]


#: The connectors' sync / extraction time columns, in order of preference.
SYNC_COLUMNS = ("_fivetran_synced", "_airbyte_extracted_at", "_airbyte_emitted_at")
_SYNC = SYNC_COLUMNS
_HISTORY = {
    "h_start": ("_fivetran_start",),
    "h_end": ("_fivetran_end",),
    "h_active": ("_fivetran_active",),
}
_COMMON = {"livemode": ("livemode",), "deleted": ("is_deleted", "deleted"), "synced": _SYNC}

OBJECTS: tuple[ObjectSpec, ...] = (
    ObjectSpec(
        "customer",
        {
            "fivetran": ("customer",),
            "api": ("customers",),
            "export": ("customers", "unified_customers"),
        },
        {
            "id": ("id",),
            "created": ("created", "created (utc)"),
            "currency": ("currency",),
            "metadata": ("metadata",),
            **_COMMON,
            **_HISTORY,
        },
    ),
    ObjectSpec(
        "product",
        {"fivetran": ("product",), "api": ("products",), "export": ("products",)},
        {
            "id": ("id",),
            "name": ("name",),
            "metadata": ("metadata",),
            "created": ("created", "created (utc)"),
            "updated": ("updated",),
            **_COMMON,
        },
    ),
    ObjectSpec(
        "price",
        {"fivetran": ("price",), "api": ("prices",), "export": ("prices",)},
        {
            "id": ("id", "price id"),
            "product_id": ("product_id", ("id", "product"), "product id"),
            "currency": ("currency",),
            "unit_amount": ("unit_amount",),
            "unit_amount_decimal": ("unit_amount_decimal",),
            "interval": ("recurring_interval", ("json", "recurring", "interval"), "interval"),
            "interval_count": (
                "recurring_interval_count",
                ("json", "recurring", "interval_count"),
                "interval count",
            ),
            "nickname": ("nickname",),
            "metadata": ("metadata",),
            "created": ("created", "created (utc)"),
            "type": ("type",),
            **_COMMON,
        },
    ),
    ObjectSpec(
        "plan",
        {"fivetran": ("plan",), "api": ("plans",), "export": ()},
        {
            "id": ("id",),
            "product_id": ("product_id", ("id", "product")),
            "currency": ("currency",),
            "unit_amount": ("amount",),
            "unit_amount_decimal": ("amount_decimal",),
            "interval": ("interval",),
            "interval_count": ("interval_count",),
            "nickname": ("nickname",),
            "metadata": ("metadata",),
            "created": ("created",),
            **_COMMON,
        },
    ),
    ObjectSpec(
        "subscription",
        {
            "fivetran": ("subscription_history", "subscription"),
            "api": ("subscriptions",),
            "export": ("subscriptions",),
        },
        {
            "id": ("id",),
            "customer_id": ("customer_id", ("id", "customer"), "customer id"),
            "status": ("status",),
            "start_date": ("start_date", "start", "start date (utc)", "start (utc)"),
            "created": ("created", "created (utc)"),
            "trial_start": ("trial_start", "trial start (utc)"),
            "trial_end": ("trial_end", "trial end (utc)"),
            "canceled_at": ("canceled_at", "canceled at (utc)"),
            "ended_at": ("ended_at", "ended at (utc)"),
            "current_period_end": ("current_period_end", "current period end (utc)"),
            "discount": ("discount",),
            # exports: the subscription's single price
            "x_price_id": ("plan", "price id"),
            "x_quantity": ("quantity",),
            "x_amount": (("minor", "amount"),),
            "x_currency": ("currency",),
            "x_interval": ("interval",),
            "x_interval_count": ("interval count",),
            "x_product": ("product",),
            **_COMMON,
            **_HISTORY,
        },
    ),
    ObjectSpec(
        "subscription_item",
        {
            "fivetran": ("subscription_item_history", "subscription_item"),
            "api": ("subscription_items",),
            "export": (),
        },
        {
            "id": ("id",),
            "subscription_id": ("subscription_id", ("id", "subscription")),
            "price_id": ("price_id", ("id", "price"), "plan_id", ("id", "plan")),
            "quantity": ("quantity",),
            "created": ("created",),
            **_COMMON,
            **_HISTORY,
        },
    ),
    ObjectSpec(
        "invoice",
        {"fivetran": ("invoice",), "api": ("invoices",), "export": ("invoices",)},
        {
            "id": ("id",),
            "customer_id": ("customer_id", ("id", "customer"), "customer"),
            "subscription_id": (
                "subscription_id",
                ("id", "subscription"),
                "subscription",
                ("json", "parent", "subscription_details.subscription"),
            ),
            "created": ("created", "date (utc)"),
            "finalized_at": (
                "status_transitions_finalized_at",
                ("json", "status_transitions", "finalized_at"),
                "finalized at (utc)",
            ),
            "due_date": ("due_date", "due date (utc)"),
            "period_start": ("period_start", "period start (utc)"),
            "period_end": ("period_end", "period end (utc)"),
            "amount_due": ("amount_due", ("minor", "amount due")),
            "amount_paid": ("amount_paid", ("minor", "amount paid")),
            "currency": ("currency",),
            "status": ("status",),
            "attempt_count": ("attempt_count", "attempt count"),
            "paid_at": (
                "status_transitions_paid_at",
                ("json", "status_transitions", "paid_at"),
                "paid at (utc)",
            ),
            **_COMMON,
            **_HISTORY,
        },
    ),
    ObjectSpec(
        "invoice_line_item",
        {
            "fivetran": ("invoice_line_item",),
            "api": ("invoice_line_items", "invoice_lines"),
            "export": ("invoice_line_items",),
        },
        {
            "id": ("id",),
            "invoice_id": ("invoice_id", ("id", "invoice")),
            # API 2025-03-31 (basil) moved these under parent.* and pricing.*: both are read
            "subscription_id": (
                "subscription_id",
                ("id", "subscription"),
                ("json", "parent", "subscription_item_details.subscription"),
                ("json", "parent", "invoice_item_details.subscription"),
            ),
            "subscription_item_id": (
                "subscription_item_id",
                ("id", "subscription_item"),
                ("json", "parent", "subscription_item_details.subscription_item"),
            ),
            "price_id": (
                "price_id",
                ("id", "price"),
                "plan_id",
                ("id", "plan"),
                ("json_id", "pricing", "price_details.price"),
            ),
            "quantity": ("quantity",),
            "period_start": ("period_start", ("json", "period", "start")),
            "period_end": ("period_end", ("json", "period", "end")),
            "proration": (
                "proration",
                ("json", "parent", "subscription_item_details.proration"),
                ("json", "parent", "invoice_item_details.proration"),
            ),
            "type": ("type", ("parent_type", "parent")),
            "amount": ("amount",),
            "livemode": ("livemode",),
        },
    ),
    ObjectSpec(
        "coupon",
        {"fivetran": ("coupon",), "api": ("coupons",), "export": ("coupons",)},
        {
            "id": ("id",),
            "percent_off": ("percent_off",),
            "amount_off": ("amount_off",),
            "currency": ("currency",),
            "duration": ("duration",),
        },
    ),
    ObjectSpec(
        "discount",
        {"fivetran": ("subscription_discount", "discount"), "api": ("discounts",), "export": ()},
        {
            "id": ("id",),
            "coupon_id": ("coupon_id", ("id", "coupon")),
            "subscription_id": ("subscription_id", ("id", "subscription")),
            "start": ("start",),
            "end": ("end",),
        },
    ),
)


def detect_shape(tables: dict[str, SourceTable]) -> str:
    """``fivetran``, ``airbyte``, ``stripe_export`` or ``api`` (Stripe API field names)."""
    columns = {c for t in tables.values() for c in t.columns}
    if "_fivetran_synced" in columns or "_fivetran_start" in columns:
        return "fivetran"
    if columns & {"_airbyte_extracted_at", "_airbyte_emitted_at", "_airbyte_raw_id"}:
        return "airbyte"
    if any(c.endswith(" (utc)") for c in columns):
        return "stripe_export"
    singular = {"customer", "subscription", "subscription_item", "invoice", "price", "plan"}
    return "fivetran" if singular & set(tables) else "api"


def _family(shape: str) -> str:
    return {"fivetran": "fivetran", "stripe_export": "export"}.get(shape, "api")


def _candidate_sql(candidate: Candidate, columns: set[str]) -> str | None:
    if isinstance(candidate, str):
        return f'"{candidate}"' if candidate in columns else None
    kind, col = candidate[0], candidate[1]
    if col not in columns:
        return None
    c = f'"{col}"'
    if kind == "id":
        return (
            f"CASE WHEN starts_with(trim({c}), '{{') THEN json_extract_string({c}, '$.id')"
            f" ELSE {c} END"
        )
    if kind == "json":
        return (
            f"CASE WHEN starts_with(trim({c}), '{{')"
            f" THEN json_extract_string({c}, '$.{candidate[2]}') END"
        )
    if kind == "json_id":
        path = f"'$.{candidate[2]}'"
        return (
            f"CASE WHEN starts_with(trim({c}), '{{') THEN CASE"
            f" WHEN json_type({c}, {path}) = 'OBJECT'"
            f" THEN json_extract_string({c}, '$.{candidate[2]}.id')"
            f" ELSE json_extract_string({c}, {path}) END END"
        )
    if kind == "parent_type":
        return (
            f"CASE WHEN starts_with(trim({c}), '{{') THEN"
            f" CASE json_extract_string({c}, '$.type')"
            " WHEN 'subscription_item_details' THEN 'subscription'"
            " WHEN 'invoice_item_details' THEN 'invoiceitem'"
            f" ELSE json_extract_string({c}, '$.type') END END"
        )
    if kind == "minor":
        # exports: major units -> minor units of the row's currency
        return f"CAST(csw_dec({c}) * stripe_minor_per_major(currency) AS VARCHAR)"
    raise ValueError(f"unknown candidate kind {kind!r}")


def _export_metadata(columns: set[str]) -> str | None:
    """Exports: ``<key> (metadata)`` columns as one JSON object (blank values left out)."""
    keys = sorted(c for c in columns if c.endswith(" (metadata)"))
    if not keys:
        return None
    pairs = ", ".join(f"'{k[: -len(' (metadata)')]}', nullif(trim(\"{k}\"), '')" for k in keys)
    return f"CAST(json_object({pairs}) AS VARCHAR)"


def canonical_views(
    con: duckdb.DuckDBPyConnection, tables: dict[str, SourceTable], shape: str
) -> dict[str, SourceTable]:
    """Create ``stripe_<object>`` views; returns object name -> the source table it reads."""
    family = _family(shape)
    used: dict[str, SourceTable] = {}
    for spec in OBJECTS:
        table = next((tables[n] for n in spec.tables.get(family, ()) if n in tables), None)
        columns = set(table.columns) if table else set()
        selects = []
        for name, candidates in spec.columns.items():
            exprs = [e for c in candidates if (e := _candidate_sql(c, columns)) is not None]
            if name == "metadata" and family == "export":
                exprs = [e for e in [_export_metadata(columns), *exprs] if e]
            value = f"coalesce({', '.join(exprs)})" if exprs else "NULL"
            selects.append(f'CAST({value} AS VARCHAR) AS "{name}"')
        select = ", ".join(selects)
        if table is None:
            sql = (
                f"SELECT {select}, CAST(NULL AS VARCHAR) AS _source_table,"
                " CAST(NULL AS VARCHAR) AS _source_file, CAST(NULL AS BIGINT) AS _source_row"
                " WHERE false"
            )
        else:
            used[spec.name] = table
            sql = (
                f"SELECT {select}, '{table.name}' AS _source_table, _source_file, _source_row"
                f' FROM "{table.sql_name}"'
            )
        con.execute(f"CREATE OR REPLACE VIEW stripe_{spec.name} AS {sql}")
    return used
