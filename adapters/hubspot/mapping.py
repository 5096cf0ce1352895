"""The HubSpot mapping: which of the company's HubSpot properties carry what the contract needs,
and how their values translate. Property names are HubSpot's internal names (``segment``,
``hs_buying_role``); they match Fivetran's ``property_<name>`` columns, Airbyte's
``properties_<name>`` and a plain export's ``<name>``. Every field has a default (standard
properties where HubSpot has one); YAML overrides them (``HubSpotMapping.from_yaml(path)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.crm import MissingAmount, mapping_from_dict, mapping_from_yaml
from adapters.salesforce.mapping import (
    ACTIVITY_TYPES,
    DEFAULT_ACTIVITY_TYPE_MAP,
    DEFAULT_SEGMENT_MAP,
    OPPORTUNITY_TYPES,
    ROLES,
    SEGMENTS,
    SEVERITIES,
    STAGES,
    TICKET_STATUSES,
)

#: The standard contact property "Buying Role" (hs_buying_role, multi-select).
DEFAULT_ROLE_MAP: dict[str, str | None] = {
    "executive_sponsor": "executive_sponsor",
    "decision_maker": "executive_sponsor",
    "budget_holder": "executive_sponsor",
    "champion": "champion",
    "end_user": "user",
    "influencer": "other",
    "blocker": "other",
    "legal_and_compliance": "other",
    "other": "other",
    "admin": "admin",
    "user": "user",
}
#: The standard deal property "Deal type" (dealtype).
DEFAULT_TYPE_MAP: dict[str, str | None] = {
    "newbusiness": "new_business",
    "new_business": "new_business",
    "existingbusiness": "expansion",
    "expansion": "expansion",
    "renewal": "renewal",
}
#: The standard ticket property "Priority" (hs_ticket_priority).
DEFAULT_PRIORITY_MAP: dict[str, str | None] = {
    "low": "low",
    "medium": "normal",
    "high": "high",
    "urgent": "critical",
}
#: Labels of the default support pipeline's stages.
DEFAULT_TICKET_STATUS_MAP: dict[str, str | None] = {
    "new": "open",
    "waiting on us": "open",
    "waiting on contact": "pending",
    "solved": "solved",
    "closed": "closed",
}
#: hs_meeting_outcome -> attended; CANCELED meetings are excluded.
DEFAULT_ATTENDED_MAP: dict[str, str | None] = {
    "completed": "true",
    "no_show": "false",
    "scheduled": None,
    "rescheduled": None,
}

CHECKS = {
    "segment_map": SEGMENTS,
    "role_map": ROLES,
    "type_map": OPPORTUNITY_TYPES,
    "stage_map": STAGES,
    "activity_type_map": ACTIVITY_TYPES,
    "priority_map": SEVERITIES,
    "ticket_status_map": TICKET_STATUSES,
    "attended_map": ("true", "false"),
}


@dataclass(frozen=True)
class HubSpotMapping:
    # --- companies
    #: Company property with the segment (HubSpot has no standard one).
    segment_property: str = "segment"
    segment_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SEGMENT_MAP))
    industry_property: str = "industry"
    region_property: str | None = None
    #: Company property with the CSM's owner id, resolved through the owner table to
    #: ``owner_field`` (email, first_name, last_name) when ``owner_lookup`` is true.
    owner_property: str = "hubspot_owner_id"
    owner_lookup: bool = True
    owner_field: str = "email"
    # --- which company a contact, deal, ticket or meeting belongs to: ``table`` (the
    # <object>_company association tables), ``property`` (contacts only:
    # associatedcompanyid), or ``auto`` (the table when present, else the property)
    company_association: Literal["auto", "table", "property"] = "auto"
    # --- contacts
    contact_role_property: str = "hs_buying_role"
    role_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))
    missing_role: str | None = "other"
    contact_started_property: str | None = None
    contact_ended_property: str | None = None
    contact_active_property: str | None = None
    # --- deals
    type_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_TYPE_MAP))
    #: Stage label -> contract stage; a label not in it is read from the stage's
    #: is_closed / closed_won flags (deal_pipeline_stage).
    stage_map: dict[str, str | None] = field(default_factory=dict)
    amount_property: str = "amount"
    #: A deal whose amount is blank: ``exclude`` it (the contract requires an amount; the run
    #: warns with the count), ``zero`` (write it with amount 0, keeping its stage and contract
    #: dates) or ``reject`` it.
    missing_amount: MissingAmount = "exclude"
    default_currency: str | None = None
    contract_start_property: str | None = None
    contract_end_property: str | None = None
    # --- meetings (engagements of type MEETING)
    activity_type_property: str = "hs_activity_type"
    activity_type_map: dict[str, str | None] = field(
        default_factory=lambda: dict(DEFAULT_ACTIVITY_TYPE_MAP)
    )
    unmapped_activity: Literal["exclude", "reject"] = "exclude"
    attended_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ATTENDED_MAP))
    # --- tickets
    priority_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    ticket_status_map: dict[str, str | None] = field(
        default_factory=lambda: dict(DEFAULT_TICKET_STATUS_MAP)
    )
    output_format: Literal["csv", "parquet"] = "csv"
    file_stem: str = "hubspot"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HubSpotMapping:
        return mapping_from_dict(cls, data, "HubSpot", CHECKS)

    @classmethod
    def from_yaml(cls, path: Path) -> HubSpotMapping:
        return mapping_from_yaml(cls, path, "HubSpot", CHECKS)
