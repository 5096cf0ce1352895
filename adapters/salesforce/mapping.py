"""The Salesforce mapping: which of the company's own Salesforce fields carry what the contract
needs, and how their values translate. Field names are Salesforce API names (``Segment__c``,
``OwnerId``); they match Fivetran's snake_case columns (``segment_c``, ``owner_id``) and a Data
Loader export's headers alike. Every field has a default (standard fields where Salesforce has
one); a deployment overrides fields in YAML (``SalesforceMapping.from_yaml(path)``)::

    segment_field: Customer_Tier__c
    segment_map: {Strategic: enterprise, Growth: mid_market, Starter: smb}
    owner_field: CSM__c
    contact_role_field: Role__c
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.crm import MissingAmount, mapping_from_dict, mapping_from_yaml

SEGMENTS = ("enterprise", "mid_market", "smb")
ROLES = ("champion", "executive_sponsor", "admin", "user", "other")
OPPORTUNITY_TYPES = ("new_business", "expansion", "renewal")
STAGES = ("open", "closed_won", "closed_lost")
ACTIVITY_TYPES = ("kickoff", "qbr", "ebr", "check_in", "training", "value_review")
SEVERITIES = ("low", "normal", "high", "critical")
TICKET_STATUSES = ("open", "pending", "solved", "closed")

DEFAULT_SEGMENT_MAP: dict[str, str | None] = {
    "enterprise": "enterprise",
    "mid_market": "mid_market",
    "mid-market": "mid_market",
    "mid market": "mid_market",
    "midmarket": "mid_market",
    "smb": "smb",
    "small business": "smb",
}
#: OpportunityContactRole.Role's standard picklist, plus the contract's own values.
DEFAULT_ROLE_MAP: dict[str, str | None] = {
    "executive sponsor": "executive_sponsor",
    "economic buyer": "executive_sponsor",
    "economic decision maker": "executive_sponsor",
    "decision maker": "executive_sponsor",
    "champion": "champion",
    "technical buyer": "admin",
    "admin": "admin",
    "administrator": "admin",
    "business user": "user",
    "evaluator": "user",
    "user": "user",
    "influencer": "other",
    "other": "other",
    "executive_sponsor": "executive_sponsor",
}
#: Opportunity.Type's standard picklist, plus common custom values.
DEFAULT_TYPE_MAP: dict[str, str | None] = {
    "new customer": "new_business",
    "new business": "new_business",
    "new_business": "new_business",
    "existing customer - upgrade": "expansion",
    "existing customer - expansion": "expansion",
    "upsell": "expansion",
    "expansion": "expansion",
    "existing customer - replacement": "renewal",
    "existing customer - renewal": "renewal",
    "renewal": "renewal",
}
DEFAULT_ACTIVITY_TYPE_MAP: dict[str, str | None] = {
    **{t: t for t in ACTIVITY_TYPES},
    "check-in": "check_in",
    "check in": "check_in",
    "value review": "value_review",
    "onboarding kickoff": "kickoff",
    "business review": "qbr",
    "email": None,
    "call": None,
    "other": None,
}
#: Case.Priority's standard picklist (High, Medium, Low) plus common additions.
DEFAULT_PRIORITY_MAP: dict[str, str | None] = {
    "low": "low",
    "medium": "normal",
    "normal": "normal",
    "high": "high",
    "critical": "critical",
    "urgent": "critical",
}
#: Case.Status's standard picklist (New, Working, Escalated, Closed) plus common additions.
DEFAULT_CASE_STATUS_MAP: dict[str, str | None] = {
    "new": "open",
    "open": "open",
    "working": "open",
    "escalated": "open",
    "on hold": "pending",
    "pending": "pending",
    "waiting on customer": "pending",
    "solved": "solved",
    "resolved": "solved",
    "closed": "closed",
}

CHECKS = {
    "segment_map": SEGMENTS,
    "role_map": ROLES,
    "type_map": OPPORTUNITY_TYPES,
    "stage_map": STAGES,
    "activity_type_map": ACTIVITY_TYPES,
    "priority_map": SEVERITIES,
    "case_status_map": TICKET_STATUSES,
}


@dataclass(frozen=True)
class SalesforceMapping:
    # --- accounts
    #: Account field with the sales segment. Salesforce has no standard one; this names the
    #: usual custom field. Values go through ``segment_map``; one not in it rejects the account.
    segment_field: str = "Segment__c"
    segment_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SEGMENT_MAP))
    industry_field: str = "Industry"
    #: Account field with the sales region (written lower-cased); None = left empty.
    region_field: str | None = None
    #: Account field naming the CSM: a User id (``OwnerId``, a lookup like ``CSM__c``) resolved
    #: through the User table to ``owner_user_field`` when ``owner_lookup`` is true.
    owner_field: str = "OwnerId"
    owner_lookup: bool = True
    owner_user_field: str = "Email"
    # --- contacts
    #: Contact field with the role (e.g. ``Role__c``); None = the contact's
    #: OpportunityContactRole (primary first, then the latest).
    contact_role_field: str | None = None
    role_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))
    #: Role of a contact with no role at all (no field value, no OpportunityContactRole);
    #: None = rejected.
    missing_role: str | None = "other"
    #: Contact date fields; None = started on CreatedDate's UTC date, never ended.
    contact_started_field: str | None = None
    contact_ended_field: str | None = None
    #: Contact boolean field; None = active while not ended.
    contact_active_field: str | None = None
    # --- opportunities
    type_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_TYPE_MAP))
    #: StageName -> contract stage; a stage not in it is read from IsClosed/IsWon.
    stage_map: dict[str, str | None] = field(default_factory=dict)
    amount_field: str = "Amount"
    #: An opportunity whose amount is blank (common: most rows of many orgs): ``exclude`` it
    #: (the contract requires an amount; the run warns with the count), ``zero`` (write it
    #: with amount 0, keeping its stage and contract dates) or ``reject`` it.
    missing_amount: MissingAmount = "exclude"
    #: Currency of an opportunity without CurrencyIsoCode (single-currency orgs); None = rejected.
    default_currency: str | None = None
    contract_start_field: str | None = None
    contract_end_field: str | None = None
    # --- activities (Task and Event)
    activity_type_field: str = "Type"
    #: Type value -> contract meeting type; null = not a customer-success meeting (excluded).
    activity_type_map: dict[str, str | None] = field(
        default_factory=lambda: dict(DEFAULT_ACTIVITY_TYPE_MAP)
    )
    #: A type value not in the map at all: ``exclude`` (CRMs log many other activities) or
    #: ``reject``.
    unmapped_activity: Literal["exclude", "reject"] = "exclude"
    #: Task/Event boolean field saying the customer attended; None = left empty.
    attended_field: str | None = None
    # --- support tickets (Case)
    priority_map: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    case_status_map: dict[str, str | None] = field(
        default_factory=lambda: dict(DEFAULT_CASE_STATUS_MAP)
    )
    # --- NPS responses: a custom object, if the company has one (None = not provided)
    nps_object: str | None = None
    nps_account_field: str = "Account__c"
    nps_contact_field: str = "Contact__c"
    nps_score_field: str = "Score__c"
    nps_responded_field: str = "CreatedDate"
    nps_comment_field: str = "Comment__c"
    output_format: Literal["csv", "parquet"] = "csv"
    file_stem: str = "salesforce"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SalesforceMapping:
        return mapping_from_dict(cls, data, "Salesforce", CHECKS)

    @classmethod
    def from_yaml(cls, path: Path) -> SalesforceMapping:
        return mapping_from_yaml(cls, path, "Salesforce", CHECKS)
