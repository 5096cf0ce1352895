"""The Stripe mapping: which of the company's own Stripe fields carry what the contract needs.

Every field has a default, so ``StripeMapping()`` works for an account set up the documented way;
a deployment overrides fields in YAML (``StripeMapping.from_yaml(path)``), for example::

    account_metadata_key: salesforce_account_id
    plan_metadata_key: plan
    status_map: {unpaid: past_due, incomplete: null}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

#: Stripe subscription status -> contract status; None = excluded with the reason given in
#: ``docs/adapters.md`` (a subscription that never started).
DEFAULT_STATUS_MAP: dict[str, str | None] = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "paused": "paused",
    "canceled": "canceled",
    "incomplete": None,
    "incomplete_expired": None,
}

#: Stripe's zero-decimal currencies: an amount of 500 JPY is sent as 500 (docs.stripe.com/currencies).
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
#: Stripe's three-decimal currencies: 5.124 KWD is sent as 5124.
THREE_DECIMAL_CURRENCIES: frozenset[str] = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


@dataclass(frozen=True)
class StripeMapping:
    #: Customer metadata key holding the CRM account id (contract customers.account_id).
    account_metadata_key: str = "crm_account_id"
    #: A customer without that key: ``reject`` (default: every billing customer must map to a
    #: CRM account) or ``keep`` (written with an empty account_id, as the contract allows for
    #: customers the CRM does not know).
    missing_account: Literal["reject", "keep"] = "reject"
    #: Price (or legacy plan) metadata key naming the contract plan_id; a price without it is
    #: its own plan (plan_id = the price id). Several prices (currencies, custom amounts) may
    #: name one plan.
    plan_metadata_key: str = "plan_id"
    #: Product metadata key holding the plan tier; without it the tier is the product name,
    #: lower-cased.
    tier_metadata_key: str = "tier"
    #: Price metadata key, then product metadata key, holding the seats a plan includes.
    seat_limit_metadata_key: str = "seat_limit"
    status_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    #: Rows with livemode = false (test-mode data) are excluded unless this is true.
    include_test_mode: bool = False
    #: Current-state sources only (no history tables, no invoice lines): each item's one
    #: version starts ``synced`` (default: when the connector saw the state,
    #: ``_fivetran_synced`` / ``_airbyte_extracted_at``, or the export files' modification
    #: time) or ``created`` (an assumption: today's quantity and price since the item began).
    current_state_from: Literal["synced", "created"] = "synced"
    output_format: Literal["csv", "parquet"] = "csv"
    #: File name (without ending) of the contract files written in each table folder.
    file_stem: str = "stripe"

    def __post_init__(self) -> None:
        if self.current_state_from not in ("synced", "created"):
            raise ValueError(
                f"current_state_from: {self.current_state_from!r} is not one of synced, created"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StripeMapping:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown Stripe mapping field(s) {', '.join(unknown)}; the fields are:"
                f" {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "status_map" in values:
            values["status_map"] = {**DEFAULT_STATUS_MAP, **(values["status_map"] or {})}
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path) -> StripeMapping:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a Stripe mapping must be a YAML mapping of fields")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
