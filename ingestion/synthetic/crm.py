"""CRM: accounts, contacts, opportunities, activities, support tickets and NPS responses.

The record types the lifecycle simulation fills, the text it draws from (company and person
names, titles, survey comments), and the builders of the contract's CRM rows. Statuses are
derived here from the records' own dates as of the generated horizon, so they always agree with
them (a ticket resolved before the horizon is ``solved`` or ``closed``, never ``open``).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ingestion.synthetic.billing import money
from ingestion.synthetic.timeline import DAY, Calendar

Row = dict[str, str | None]

#: A solved ticket is closed automatically this long after its resolution.
TICKET_AUTO_CLOSE_DAYS = 4

CONTACT_ROLES = ("champion", "executive_sponsor", "admin", "user", "other")

TITLES: dict[str, tuple[str, ...]] = {
    "champion": ("Head of Operations", "Director of Analytics", "RevOps Lead", "Data Team Lead"),
    "executive_sponsor": ("VP Operations", "COO", "CFO", "Chief Data Officer", "VP Customer"),
    "admin": ("IT Administrator", "Systems Manager", "Platform Engineer"),
    "user": ("Analyst", "Account Manager", "Operations Specialist", "Marketing Manager"),
    "other": ("Procurement Manager", "Finance Manager", "Legal Counsel"),
}

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Ben", "Chen", "Chloe", "Dara", "David", "Elena", "Emeka",
    "Fatima", "Felix", "Grace", "Hana", "Ines", "Ivan", "Jamal", "Jonas", "Kai", "Lars", "Lea",
    "Leila", "Lucas", "Maya", "Mei", "Nadia", "Noah", "Omar", "Priya", "Rafael", "Rosa", "Sam",
    "Sofia", "Tariq", "Tomás", "Uma", "Victor", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abe", "Adeyemi", "Becker", "Costa", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Martin", "Moreau", "Nakamura", "Novak", "O'Neil", "Okafor",
    "Patel", "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Tanaka", "Van Dijk",
    "Wang", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip

_NAME_PREFIXES = (
    "North", "Blue", "Silver", "Bright", "Iron", "Red", "Green", "Clear", "Swift", "Stone", "Oak",
    "Pine", "Summit", "Harbor", "River", "Lake", "Sun", "Star", "Cedar", "Maple", "Falcon",
    "Eagle", "Fox", "Wolf", "Atlas", "Nova", "Polar", "Coral", "Amber", "Crimson", "Golden",
    "Quartz", "Vector", "Delta", "Apex", "Zen", "Echo", "Orbit", "Pixel", "Lumen",
)  # fmt: skip
_NAME_ROOTS = (
    "wind", "peak", "field", "gate", "bridge", "stone", "water", "light", "works", "point", "line",
    "wave", "leaf", "path", "rock", "forge", "crest", "vale", "port", "brook",
)  # fmt: skip
_NAME_KINDS = (
    "Analytics", "Logistics", "Health", "Retail", "Systems", "Labs", "Foods", "Energy", "Capital",
    "Media", "Software", "Partners", "Robotics", "Learning", "Motors", "Studios",
)  # fmt: skip
_LEGAL_FORMS = ("Ltd", "Inc.", ", Inc.", "GmbH", "LLC", "S.A.", "B.V.", "plc", "", "AG", "Pty Ltd")
#: Names that exercise CSV quoting and UTF-8, mixed into the generated ones.
_AWKWARD_NAMES = (
    'Kettle & "Co" Ltd',
    "O'Brien Analytics, Inc.",
    "Müller Datentechnik GmbH",
    "Société Générale de Données",
    "Łódź Manufacturing Sp. z o.o.",
    "Smith, Jones & Partners",
)

NPS_COMMENTS: dict[str, tuple[str, ...]] = {
    "promoter": (
        "Great product, the dashboards save us hours every week",
        "Support is fast and friendly",
        'Love the "automation" feature, it replaced two spreadsheets',
        "Easy to roll out to the whole team",
    ),
    "passive": (
        "Good, but reporting could be faster",
        "Does the job; onboarding took a while",
        "Pricing is OK, integrations need work",
    ),
    "detractor": (
        "Too many bugs lately",
        "We are not getting the value we expected, pricing is too high",
        "Support is slow to respond; our critical issue is still open",
        "Our main contact left and nobody followed up",
        "Hard to get the team to use it",
    ),
}


def company_names(n: int, seed: int) -> list[str]:
    """``n`` distinct company names, a few of them with commas, quotes and non-ASCII letters."""
    rng = random.Random(f"cs-warehouse:{seed}:company-names")
    combos = len(_NAME_PREFIXES) * len(_NAME_ROOTS) * len(_NAME_KINDS)
    picks = rng.sample(range(combos), min(n, combos))
    names: list[str] = []
    for i in range(n):
        if i % 83 == 41:
            base = _AWKWARD_NAMES[(i // 83) % len(_AWKWARD_NAMES)]
            if i // 83 >= len(_AWKWARD_NAMES):
                base = f"{base} {i // 83 // len(_AWKWARD_NAMES) + 1}"
            names.append(base)
            continue
        c = picks[i % len(picks)]
        kind, rest = c % len(_NAME_KINDS), c // len(_NAME_KINDS)
        root, prefix = rest % len(_NAME_ROOTS), rest // len(_NAME_ROOTS)
        legal = _LEGAL_FORMS[rng.randrange(len(_LEGAL_FORMS))]
        name = f"{_NAME_PREFIXES[prefix]}{_NAME_ROOTS[root]} {_NAME_KINDS[kind]}"
        if i >= combos:
            name = f"{name} {i // combos + 1}"
        if legal:
            name = f"{name}{legal}" if legal.startswith(",") else f"{name} {legal}"
        names.append(name)
    return names


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def email_domain(company: str) -> str:
    words = [slug(w) for w in company.replace(",", " ").split()]
    return f"{''.join(w for w in words[:2] if w) or 'company'}.example"


# --- records -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class Contact:
    role: str
    email: str
    title: str | None
    #: When the contact was created in the CRM (its updated_at until it leaves).
    created: int
    started: int | None
    ended: int | None = None
    id: str = ""


@dataclass(eq=False)
class Opportunity:
    type: str
    stage: str
    amount: int
    currency: str
    close: int
    contract_start: int | None
    #: Instant whose UTC date is the contract's last day (the renewal date).
    contract_end: int | None
    updated: int
    id: str = ""


@dataclass(eq=False)
class Activity:
    type: str
    at: int
    attended: bool
    id: str = ""


@dataclass(eq=False)
class Ticket:
    created: int
    severity: str
    resolved: int | None
    #: Unresolved tickets waiting on the customer are ``pending``, others ``open``.
    pending: bool
    #: Last update of an unresolved ticket.
    touched: int
    id: str = ""


@dataclass(eq=False)
class NpsResponse:
    at: int
    score: int
    contact: Contact | None
    comment: str | None
    id: str = ""


class CrmAccount(Protocol):
    """What the row builders read from a simulated account."""

    id: str
    name: str
    segment_name: str
    industry: str | None
    region: str
    owner: str
    created: int
    updated: int
    contacts: list[Contact]
    opportunities: list[Opportunity]
    activities: list[Activity]
    tickets: list[Ticket]
    nps: list[NpsResponse]


def new_contact(rng: random.Random, role: str, domain: str, taken: set[str], t: int) -> Contact:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{slug(first)}.{slug(last)}"
    email, n = f"{local}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    title = rng.choice(TITLES[role]) if rng.random() > 0.05 else None
    started = t if rng.random() > 0.04 else None
    return Contact(role, email, title, created=t, started=started)


def nps_comment(rng: random.Random, score: int) -> str | None:
    if rng.random() < 0.55:
        return None
    bucket = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    return rng.choice(NPS_COMMENTS[bucket])


# --- rows --------------------------------------------------------------------------------------------


def _bool(value: bool) -> str:
    return "true" if value else "false"


def accounts_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        yield {
            "account_id": a.id,
            "name": a.name,
            "segment": a.segment_name,
            "industry": a.industry,
            "region": a.region,
            "owner": a.owner,
            "created_at": cal.ts(a.created),
            "updated_at": cal.ts(a.updated),
        }


def contacts_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for c in a.contacts:
            yield {
                "contact_id": c.id,
                "account_id": a.id,
                "email": c.email,
                "title": c.title,
                "role": c.role,
                "is_active": _bool(c.ended is None),
                "started_at": cal.ds(c.started),
                "ended_at": cal.ds(c.ended),
                "updated_at": cal.ts(c.ended if c.ended is not None else c.created),
            }


def opportunities_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for o in a.opportunities:
            yield {
                "opportunity_id": o.id,
                "account_id": a.id,
                "type": o.type,
                "stage": o.stage,
                "amount": money(o.amount),
                "currency": o.currency,
                "close_date": cal.ds(o.close),
                "contract_start_date": cal.ds(o.contract_start),
                "contract_end_date": cal.ds(o.contract_end),
                "updated_at": cal.ts(o.updated),
            }


def activities_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for act in a.activities:
            yield {
                "activity_id": act.id,
                "account_id": a.id,
                "type": act.type,
                "occurred_at": cal.ts(act.at),
                "attended": _bool(act.attended),
                "updated_at": cal.ts(act.at),
            }


def ticket_status(t: Ticket, horizon: int) -> tuple[str, int]:
    """Status and last update of a ticket as of the horizon."""
    if t.resolved is not None and t.resolved < horizon:
        closes = t.resolved + TICKET_AUTO_CLOSE_DAYS * DAY
        return ("closed", closes) if closes < horizon else ("solved", t.resolved)
    return ("pending" if t.pending else "open"), t.touched


def support_tickets_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for t in a.tickets:
            status, updated = ticket_status(t, cal.end)
            yield {
                "ticket_id": t.id,
                "account_id": a.id,
                "created_at": cal.ts(t.created),
                "resolved_at": cal.ts(
                    t.resolved if t.resolved is not None and t.resolved < cal.end else None
                ),
                "severity": t.severity,
                "status": status,
                "updated_at": cal.ts(updated),
            }


def nps_rows(accounts: Sequence[CrmAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for r in a.nps:
            yield {
                "response_id": r.id,
                "account_id": a.id,
                "contact_id": r.contact.id if r.contact is not None else None,
                "responded_at": cal.ts(r.at),
                "score": str(r.score),
                "comment": r.comment,
            }
