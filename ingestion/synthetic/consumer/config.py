"""The consumer scenario's request (``ConsumerConfig``) and its static world.

A music-streaming subscription: one listener per account, an ad-supported basic plan and an
ad-free premium plan (monthly, or yearly for a few), self-serve (no sales, no customer-success
meetings, no executive sponsor; a rare support ticket and in-app NPS survey). The event catalogue
below is the product's vocabulary; ``health_model.yaml`` beside this module maps the same names
to features, and a test keeps the two equal. ``docs/synthetic-data.md`` ("The consumer scenario")
explains how the numbers drive the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ingestion.synthetic.config import Plan


@dataclass(frozen=True)
class ConsumerConfig:
    """Sizes and seed of one consumer landing directory. Same config -> byte-identical files."""

    accounts: int = 1500
    months: int = 12
    seed: int = 7
    #: Mean events per listener per active day (the activity events; ads and errors come on top).
    events_per_active_day: float = 8.0
    #: First generated month (a fixed date, so a sample never drifts with the clock).
    start: date = date(2024, 1, 1)

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError(f"accounts must be at least 1, got {self.accounts}")
        if not 1 <= self.months <= 600:
            raise ValueError(f"months must be between 1 and 600, got {self.months}")
        if self.events_per_active_day < 1:
            raise ValueError(
                f"events_per_active_day must be >= 1 (an active day has at least its session "
                f"event), got {self.events_per_active_day}"
            )
        if self.start.day != 1:
            raise ValueError(
                f"start must be the first day of a month, got {self.start.isoformat()}"
            )

    @property
    def last_day(self) -> date:
        """The data's as-of date: the last day of the last generated month."""
        years, month_index = divmod(self.start.month - 1 + self.months, 12)
        return date(self.start.year + years, month_index + 1, 1) - timedelta(days=1)


# --- Plans and prices ------------------------------------------------------------------------------

#: The CRM segment of every consumer account (the contract knows only B2B segments; a listener
#: is the smallest of them).
SEGMENT = "smb"
BASIC, PREMIUM = "basic", "premium"
TIERS: tuple[str, ...] = (BASIC, PREMIUM)

PLANS: tuple[Plan, ...] = (
    Plan("basic_monthly", "Basic with ads (monthly)", BASIC, "month", 1),
    Plan("premium_monthly", "Premium (monthly)", PREMIUM, "month", 1),
    Plan("premium_annual", "Premium (annual)", PREMIUM, "year", 1),
)
PLAN_BY_ID = {p.plan_id: p for p in PLANS}
#: The first plan of a new listener: (plan id, share).
FIRST_PLAN: tuple[tuple[str, float], ...] = (
    ("basic_monthly", 0.4),
    ("premium_monthly", 0.5),
    ("premium_annual", 0.1),
)
#: Price per billing period in cents, by currency and plan.
PRICE_CENTS: dict[str, dict[str, int]] = {
    "USD": {"basic_monthly": 599, "premium_monthly": 1199, "premium_annual": 11990},
    "EUR": {"basic_monthly": 599, "premium_monthly": 1099, "premium_annual": 10990},
    "GBP": {"basic_monthly": 499, "premium_monthly": 999, "premium_annual": 9990},
}


def unit_price(currency: str, plan_id: str) -> int:
    """Price per billing period in 1/10,000ths of the major unit (what ``ItemRow.unit`` holds)."""
    return PRICE_CENTS[currency][plan_id] * 100


# --- Event catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventKind:
    """One event name and how the sampler draws it.

    ``weight`` is its share of a listener's activity events at frustration 0; ``frustration``
    multiplies that weight by ``exp(frustration * f)``, so a frustrated listener skips and
    dislikes more and plays and likes less, at the same number of events.
    """

    name: str
    weight: float
    frustration: float = 0.0
    #: Only on this tier's plan (e.g. offline downloads on premium), or on every plan when None.
    tier: str | None = None
    #: JSON property options, one drawn per event (or null, for a share of them).
    properties: tuple[str, ...] = ()


CLIENTS = tuple(f'{{"client": "{c}"}}' for c in ("android", "desktop", "ios", "web"))

#: What a listener does (these count as activity). The first is the session event.
ACTIVITY_EVENTS: tuple[EventKind, ...] = (
    EventKind("session_started", 0.6, properties=CLIENTS),
    EventKind("track_played", 10.0, -0.35, properties=CLIENTS),
    EventKind("track_skipped", 2.5, 1.3, properties=CLIENTS),
    EventKind("thumbs_up", 0.5, -0.9, properties=CLIENTS),
    EventKind("thumbs_down", 0.12, 1.6, properties=CLIENTS),
    EventKind("search_performed", 1.2, 0.1, properties=CLIENTS),
    EventKind("track_saved", 0.6, -0.3, properties=CLIENTS),
    EventKind("playlist_created", 0.2, -0.2, properties=CLIENTS),
    EventKind("friend_added", 0.025, -0.2, properties=CLIENTS),
    EventKind("track_shared", 0.3, -0.3, properties=CLIENTS),
    EventKind("download_started", 0.5, 0.0, tier=PREMIUM, properties=CLIENTS),
    EventKind("settings_changed", 0.05, 0.2, properties=CLIENTS),
    EventKind("help_viewed", 0.02, 1.2, properties=CLIENTS),
    #: Browsing the plans and cancel pages: frustration draws the listener there before it
    #: decides (and after, alike). The decision itself writes no event.
    EventKind(
        "downgrade_viewed", 0.004, 1.5, properties=('{"page": "plans"}', '{"page": "cancel"}')
    ),
)
#: What the app shows the listener (known events that do not count as activity).
AD_SHOWN = EventKind(
    "ad_shown", 0.0, properties=tuple(f'{{"format": "{f}"}}' for f in ("audio", "banner", "video"))
)
ERROR_SHOWN = EventKind(
    "error_shown",
    0.0,
    properties=tuple(f'{{"code": "{c}"}}' for c in ("network", "playback_failed", "sign_in")),
)
#: Emitted once, when the listener signs up (onboarding stage 1).
SIGNUP = EventKind("signup_completed", 0.0, properties=('{"onboarding_stage": 1}',))

EVENTS: tuple[EventKind, ...] = (*ACTIVITY_EVENTS, AD_SHOWN, ERROR_SHOWN, SIGNUP)
EVENT_NAMES: tuple[str, ...] = tuple(e.name for e in EVENTS)
EVENT_INDEX: dict[str, int] = {n: i for i, n in enumerate(EVENT_NAMES)}
