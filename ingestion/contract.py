"""The extract contract v1 as code: one schema per table.

This module is the single source of truth for the shape of the extracts. Ingestion enforces it
(DuckDB SQL rules and great-expectations suites are generated from it), the synthetic generator
writes it, and ``docs/extract-contract.md`` documents it. Columns may be added to a table as
optional columns; contract columns are never renamed or dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

CONTRACT_VERSION = "1"

SYSTEMS: tuple[str, ...] = ("crm", "product", "billing")

#: File endings a landing directory may hold, in the order readers try them.
EXTRACT_SUFFIXES: tuple[str, ...] = (
    ".csv",
    ".csv.gz",
    ".parquet",
    ".jsonl",
    ".jsonl.gz",
    ".json.gz",
)

#: Currencies the warehouse accepts (ISO 4217 codes in active use).
ISO_4217_CURRENCIES: frozenset[str] = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWL",
    ]
)


class ColumnType(StrEnum):
    """Logical column types and the DuckDB type each is stored as."""

    STRING = "VARCHAR"
    INTEGER = "BIGINT"
    #: Money in major units. Never a float: DECIMAL(18, 4) keeps sub-cent unit prices exact.
    MONEY = "DECIMAL(18,4)"
    #: Percentages such as discount_percent.
    PERCENT = "DECIMAL(9,4)"
    #: FX rates to USD.
    RATE = "DECIMAL(18,8)"
    #: ISO 8601 date; a timestamp or an epoch number gives its UTC date (``ingestion.rules``).
    DATE = "DATE"
    #: ISO 8601; an offset is converted to UTC, none means UTC; a date is midnight UTC; epoch
    #: seconds/ms/us/ns told apart by magnitude. Stored as naive UTC (``ingestion.rules``).
    TIMESTAMP = "TIMESTAMP"
    BOOLEAN = "BOOLEAN"
    #: A JSON object (or null), stored as DuckDB JSON.
    JSON = "JSON"

    @property
    def duckdb_type(self) -> str:
        return self.value


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    #: False when the value may be null (an empty CSV field).
    required: bool = False
    #: Allowed values for categorical columns, compared after lower-casing.
    accepted_values: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    #: Values must be ISO 4217 currency codes.
    is_currency: bool = False
    description: str = ""
    #: An example value used by the contract documentation.
    example: str = ""


@dataclass(frozen=True)
class RowRule:
    """A rule across columns of one row, as a DuckDB SQL predicate that must be true.

    Predicates see typed columns and must treat nulls as passing where the columns are optional.
    """

    name: str
    predicate_sql: str
    description: str


@dataclass(frozen=True)
class TableSchema:
    system: Literal["crm", "product", "billing"]
    name: str
    key: tuple[str, ...]
    kind: Literal["entity", "event"]
    columns: tuple[Column, ...]
    row_rules: tuple[RowRule, ...] = field(default=())
    description: str = ""
    #: A high-volume table (millions of rows a day). Its files are validated by the contract's
    #: DuckDB SQL rules on every row only: a great-expectations run needs a pandas frame of the
    #: file, which at this volume costs more than the load itself.
    large: bool = False
    #: Kept in the events lake (:mod:`ingestion.lake`), append-only Parquet by event date, with
    #: ``raw.<table>`` a view over it instead of a DuckDB table.
    lake: bool = False

    @property
    def asset_path(self) -> str:
        """``<system>/<table>``, the table's folder in a landing directory."""
        return f"{self.system}/{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.asset_path} has no column {name!r}")

    @property
    def version_column(self) -> str | None:
        """The column whose latest value wins for a key, or None for append-only tables."""
        return "updated_at" if "updated_at" in self.column_names else None


def _id(name: str, description: str, example: str, required: bool = True) -> Column:
    return Column(
        name, ColumnType.STRING, required=required, description=description, example=example
    )


def _ts(name: str, description: str, example: str, required: bool = False) -> Column:
    return Column(
        name, ColumnType.TIMESTAMP, required=required, description=description, example=example
    )


def _date(name: str, description: str, example: str, required: bool = False) -> Column:
    return Column(
        name, ColumnType.DATE, required=required, description=description, example=example
    )


def _enum(name: str, values: tuple[str, ...], description: str, required: bool = True) -> Column:
    return Column(
        name,
        ColumnType.STRING,
        required=required,
        accepted_values=values,
        description=description,
        example=values[0],
    )


def _currency(description: str = "ISO 4217 currency code", example: str = "USD") -> Column:
    return Column(
        "currency",
        ColumnType.STRING,
        required=True,
        is_currency=True,
        description=description,
        example=example,
    )


def _money(name: str, description: str, example: str, required: bool = True) -> Column:
    return Column(
        name,
        ColumnType.MONEY,
        required=required,
        min_value=0,
        description=description,
        example=example,
    )


UPDATED_AT = _ts(
    "updated_at",
    "When the source system last changed the row; the latest wins",
    "2025-03-01T09:30:00Z",
    True,
)

BILLING_INTERVALS = ("month", "year")

TABLES: tuple[TableSchema, ...] = (
    # --- CRM -------------------------------------------------------------------------------
    TableSchema(
        "crm",
        "accounts",
        key=("account_id",),
        kind="entity",
        description="Customer accounts (companies) as the CRM knows them.",
        columns=(
            _id("account_id", "CRM account id", "acc_00042"),
            Column(
                "name",
                ColumnType.STRING,
                required=True,
                description="Company name",
                example="Northwind Ltd",
            ),
            _enum("segment", ("enterprise", "mid_market", "smb"), "Sales segment"),
            Column("industry", ColumnType.STRING, description="Industry", example="software"),
            Column("region", ColumnType.STRING, description="Sales region", example="emea"),
            Column("owner", ColumnType.STRING, description="The account's CSM", example="csm_ada"),
            _ts(
                "created_at",
                "When the account was created in the CRM",
                "2024-01-15T10:00:00Z",
                True,
            ),
            UPDATED_AT,
        ),
    ),
    TableSchema(
        "crm",
        "contacts",
        key=("contact_id",),
        kind="entity",
        description="People at customer accounts and their roles.",
        columns=(
            _id("contact_id", "CRM contact id", "con_000101"),
            _id("account_id", "Account the contact works at", "acc_00042"),
            Column(
                "email",
                ColumnType.STRING,
                description="E-mail (never published in lists)",
                example="jo@northwind.example",
            ),
            Column("title", ColumnType.STRING, description="Job title", example="VP Operations"),
            _enum(
                "role",
                ("champion", "executive_sponsor", "admin", "user", "other"),
                "Role in the relationship",
            ),
            Column(
                "is_active",
                ColumnType.BOOLEAN,
                description="Still at the account (as last exported)",
                example="true",
            ),
            _date("started_at", "First day in the role", "2024-01-20"),
            _date("ended_at", "Day the contact left the role (null = still there)", ""),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "ended_not_before_started",
                "ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at",
                "ended_at is on or after started_at",
            ),
        ),
    ),
    TableSchema(
        "crm",
        "opportunities",
        key=("opportunity_id",),
        kind="entity",
        description="Deals: new business, expansions and renewals.",
        columns=(
            _id("opportunity_id", "CRM opportunity id", "opp_000007"),
            _id("account_id", "Account of the deal", "acc_00042"),
            _enum("type", ("new_business", "expansion", "renewal"), "Deal type"),
            _enum("stage", ("open", "closed_won", "closed_lost"), "Pipeline stage"),
            _money("amount", "Annual recurring revenue of the deal, major units", "24000.00"),
            _currency(),
            _date("close_date", "Expected or actual close date", "2024-02-01"),
            _date("contract_start_date", "Contract start", "2024-02-01"),
            _date("contract_end_date", "Contract end (the renewal date)", "2025-01-31"),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "contract_end_after_start",
                "contract_end_date IS NULL OR contract_start_date IS NULL"
                " OR contract_end_date >= contract_start_date",
                "contract_end_date is on or after contract_start_date",
            ),
        ),
    ),
    TableSchema(
        "crm",
        "activities",
        key=("activity_id",),
        kind="entity",
        description="Customer-success meetings: kickoffs, business reviews, trainings.",
        columns=(
            _id("activity_id", "CRM activity id", "act_000311"),
            _id("account_id", "Account met", "acc_00042"),
            _enum(
                "type",
                ("kickoff", "qbr", "ebr", "check_in", "training", "value_review"),
                "Meeting type",
            ),
            _ts("occurred_at", "When the meeting took place", "2024-04-10T15:00:00Z", True),
            Column(
                "attended",
                ColumnType.BOOLEAN,
                description="Whether the customer attended",
                example="true",
            ),
            UPDATED_AT,
        ),
    ),
    TableSchema(
        "crm",
        "support_tickets",
        key=("ticket_id",),
        kind="entity",
        description="Support tickets with severity and resolution.",
        columns=(
            _id("ticket_id", "Ticket id", "tkt_001234"),
            _id("account_id", "Account that raised it", "acc_00042"),
            _ts("created_at", "When the ticket was opened", "2024-05-02T08:12:00Z", True),
            _ts("resolved_at", "When it was resolved (null = unresolved)", "2024-05-03T11:00:00Z"),
            _enum("severity", ("low", "normal", "high", "critical"), "Severity"),
            _enum("status", ("open", "pending", "solved", "closed"), "Status as last exported"),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "resolved_not_before_created",
                "resolved_at IS NULL OR resolved_at >= created_at",
                "resolved_at is on or after created_at",
            ),
        ),
    ),
    TableSchema(
        "crm",
        "nps_responses",
        key=("response_id",),
        kind="event",
        description="Net Promoter Score survey responses.",
        columns=(
            _id("response_id", "Survey response id", "nps_000088"),
            _id("account_id", "Account of the respondent", "acc_00042"),
            _id("contact_id", "Respondent", "con_000101", required=False),
            _ts("responded_at", "When the response was given", "2024-06-30T12:00:00Z", True),
            Column(
                "score",
                ColumnType.INTEGER,
                required=True,
                min_value=0,
                max_value=10,
                description="0-10",
                example="9",
            ),
            Column("comment", ColumnType.STRING, description="Free text", example="Great support"),
        ),
    ),
    # --- Product analytics -------------------------------------------------------------------
    TableSchema(
        "product",
        "users",
        key=("user_id",),
        kind="entity",
        description="Product users (seats) and when they were provisioned.",
        columns=(
            _id("user_id", "Product user id", "usr_0000555"),
            _id("account_id", "Account the user belongs to", "acc_00042"),
            _enum("role", ("admin", "member", "viewer"), "Product role"),
            _ts("provisioned_at", "When the user was created", "2024-02-03T09:00:00Z", True),
            _ts("deprovisioned_at", "When the user was removed (null = active)", ""),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "deprovisioned_not_before_provisioned",
                "deprovisioned_at IS NULL OR deprovisioned_at >= provisioned_at",
                "deprovisioned_at is on or after provisioned_at",
            ),
        ),
    ),
    TableSchema(
        "product",
        "events",
        key=("event_id",),
        kind="event",
        description="Product usage events; the large, append-only table.",
        large=True,
        lake=True,
        columns=(
            _id("event_id", "Event id (deduplication key)", "evt_00000000001"),
            _id("account_id", "Account of the user", "acc_00042"),
            _id("user_id", "User who acted", "usr_0000555"),
            Column(
                "event_name",
                ColumnType.STRING,
                required=True,
                description="Event name (see the feature map)",
                example="dashboard_viewed",
            ),
            _ts("occurred_at", "When it happened", "2024-06-01T14:03:22Z", True),
            Column(
                "properties",
                ColumnType.JSON,
                description="JSON object or null",
                example='{"source": "web"}',
            ),
        ),
    ),
    # --- Billing -------------------------------------------------------------------------------
    TableSchema(
        "billing",
        "customers",
        key=("billing_customer_id",),
        kind="entity",
        description="Billing customers and the CRM account each belongs to.",
        columns=(
            _id("billing_customer_id", "Billing system customer id", "cus_00042"),
            _id("account_id", "The CRM account", "acc_00042", required=False),
            _currency("Billing currency"),
            _ts("created_at", "When the customer was created", "2024-01-15T10:05:00Z", True),
            UPDATED_AT,
        ),
    ),
    TableSchema(
        "billing",
        "plans",
        key=("plan_id",),
        kind="entity",
        description="The plan catalogue.",
        columns=(
            _id("plan_id", "Plan id", "growth_annual"),
            Column(
                "name",
                ColumnType.STRING,
                required=True,
                description="Plan name",
                example="Growth (annual)",
            ),
            Column(
                "tier",
                ColumnType.STRING,
                required=True,
                description="Tier (starter, growth, enterprise, ...)",
                example="growth",
            ),
            _enum("billing_interval", BILLING_INTERVALS, "Billing interval"),
            Column(
                "seat_limit",
                ColumnType.INTEGER,
                min_value=0,
                description="Seats included (null = unlimited)",
                example="50",
            ),
            UPDATED_AT,
        ),
    ),
    TableSchema(
        "billing",
        "subscriptions",
        key=("subscription_id",),
        kind="entity",
        description="Subscriptions and their lifecycle dates.",
        columns=(
            _id("subscription_id", "Subscription id", "sub_000042"),
            _id("billing_customer_id", "Customer", "cus_00042"),
            _enum(
                "status",
                ("trialing", "active", "past_due", "paused", "canceled"),
                "Status as last exported",
            ),
            _ts(
                "started_at",
                "Start (trial start when there is a trial)",
                "2024-01-15T10:05:00Z",
                True,
            ),
            _ts("trial_end", "End of the trial (null = no trial)", "2024-01-29T10:05:00Z"),
            _ts("canceled_at", "When cancellation was requested", ""),
            _ts("ended_at", "When the subscription stopped (null = running)", ""),
            _ts("current_period_end", "The next renewal", "2025-01-29T10:05:00Z"),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "ended_not_before_started",
                "ended_at IS NULL OR ended_at >= started_at",
                "ended_at is on or after started_at",
            ),
            RowRule(
                "trial_end_not_before_started",
                "trial_end IS NULL OR trial_end >= started_at",
                "trial_end is on or after started_at",
            ),
        ),
    ),
    TableSchema(
        "billing",
        "subscription_items",
        key=("item_id", "valid_from"),
        kind="entity",
        description="Price history: every change closes one row and opens the next.",
        columns=(
            _id("item_id", "Subscription item id", "si_000042_1"),
            _id("subscription_id", "Subscription", "sub_000042"),
            _id("plan_id", "Plan", "growth_annual"),
            Column(
                "quantity",
                ColumnType.INTEGER,
                required=True,
                min_value=0,
                description="Seats or units",
                example="25",
            ),
            _money("unit_amount", "Price per unit per billing interval, major units", "480.00"),
            _currency(),
            _enum("billing_interval", BILLING_INTERVALS, "Billing interval"),
            Column(
                "interval_count",
                ColumnType.INTEGER,
                required=True,
                min_value=1,
                description="Intervals per billing period (2 + year = biennial)",
                example="1",
            ),
            Column(
                "discount_percent",
                ColumnType.PERCENT,
                min_value=0,
                max_value=100,
                description="Discount in percent (null = none)",
                example="10",
            ),
            _ts("valid_from", "First instant the row is in force", "2024-01-29T10:05:00Z", True),
            _ts("valid_to", "Instant the row stops being in force (null = still in force)", ""),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "valid_from_before_valid_to",
                "valid_to IS NULL OR valid_from < valid_to",
                "valid_from is before valid_to",
            ),
        ),
    ),
    TableSchema(
        "billing",
        "invoices",
        key=("invoice_id",),
        kind="entity",
        description="Invoices and their payment state.",
        columns=(
            _id("invoice_id", "Invoice id", "in_0000421"),
            _id("billing_customer_id", "Customer", "cus_00042"),
            _id("subscription_id", "Subscription invoiced", "sub_000042", required=False),
            _ts("issued_at", "When the invoice was issued", "2024-02-29T10:05:00Z", True),
            _ts("due_at", "When payment is due", "2024-03-14T10:05:00Z"),
            _date("period_start", "First day invoiced", "2024-02-29"),
            _date("period_end", "Last day invoiced", "2024-03-28"),
            _money("amount_due", "Amount due, major units", "12000.00"),
            _money("amount_paid", "Amount paid, major units", "12000.00"),
            _currency(),
            _enum("status", ("draft", "open", "paid", "void", "uncollectible"), "Invoice status"),
            Column(
                "attempt_count",
                ColumnType.INTEGER,
                min_value=0,
                description="Payment attempts",
                example="1",
            ),
            _ts("paid_at", "When it was paid (null = unpaid)", "2024-03-02T08:00:00Z"),
            UPDATED_AT,
        ),
        row_rules=(
            RowRule(
                "period_end_not_before_start",
                "period_end IS NULL OR period_start IS NULL OR period_end >= period_start",
                "period_end is on or after period_start",
            ),
        ),
    ),
    TableSchema(
        "billing",
        "fx_rates",
        key=("currency", "month"),
        kind="event",
        description="Monthly FX rates to USD.",
        columns=(
            _currency(example="EUR"),
            _date("month", "First day of the month (YYYY-MM-01)", "2024-02-01", True),
            Column(
                "rate_to_usd",
                ColumnType.RATE,
                required=True,
                min_value=0,
                description="USD per one unit of the currency",
                example="1.08250000",
            ),
        ),
        row_rules=(
            RowRule("month_is_first_day", "day(month) = 1", "month is the first day of a month"),
            RowRule("rate_positive", "rate_to_usd > 0", "rate_to_usd is greater than 0"),
        ),
    ),
)

_BY_PATH: dict[str, TableSchema] = {t.asset_path: t for t in TABLES}
_BY_NAME: dict[str, TableSchema] = {t.name: t for t in TABLES}


def table(name: str) -> TableSchema:
    """Look a table up by ``<system>/<table>`` or by its bare name (names are unique)."""
    try:
        return _BY_PATH[name] if "/" in name else _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_PATH))
        raise KeyError(f"unknown extract table {name!r}; the contract has: {known}") from None


def tables_of(system: str) -> Iterator[TableSchema]:
    return (t for t in TABLES if t.system == system)


def all_tables() -> tuple[TableSchema, ...]:
    return TABLES
