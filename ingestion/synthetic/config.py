"""What the generator is asked for (``GeneratorConfig``) and the static world it draws from.

The static world is the segment profiles, the plan catalogue and its price book, the CSM team,
regions and industries. The event vocabulary is not defined here: it is read from the health-model
configuration (``metrics.health_config``), so the generator always emits exactly the names the
scoring reads. ``docs/synthetic-data.md`` explains how these numbers drive the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from metrics.health_config import HealthConfig, default_health_config


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes and seed of one generated landing directory. Same config -> byte-identical files."""

    accounts: int = 200
    months: int = 18
    seed: int = 42
    #: Mean events per active user per active day; total event volume scales with it.
    events_per_user_day: float = 4.0
    #: First generated month (a fixed date, so the default sample never drifts with the clock).
    start: date = date(2024, 1, 1)

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError(f"accounts must be at least 1, got {self.accounts}")
        if not 1 <= self.months <= 600:
            raise ValueError(f"months must be between 1 and 600, got {self.months}")
        if self.events_per_user_day < 0:
            raise ValueError(f"events_per_user_day must be >= 0, got {self.events_per_user_day}")
        if self.start.day != 1:
            raise ValueError(
                f"start must be the first day of a month, got {self.start.isoformat()}"
            )

    @property
    def last_day(self) -> date:
        """The data's as-of date: the last day of the last generated month."""
        years, month_index = divmod(self.start.month - 1 + self.months, 12)
        return date(self.start.year + years, month_index + 1, 1) - timedelta(days=1)


# --- Segments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    #: Purchased seats at the first start: lognormal around the median, at least ``seats_min``.
    seats_median: float
    seats_sigma: float
    seats_min: int
    #: Tier of the first subscription.
    tier_weights: tuple[tuple[str, float], ...]
    annual_share: float
    #: Share of annual deals signed for two years (interval_count = 2).
    biennial_share: float
    trial_share: float
    #: Annual invoices are sent with net-30 terms instead of charging a card.
    net_terms: bool
    #: Days from CRM account creation to the subscription start (the sales cycle).
    start_lag_days: tuple[int, int]
    #: Added to the latent engagement target.
    engagement_offset: float
    #: Mean support tickets per account-month (scaled by team size and stress).
    tickets_per_month: float
    #: Probability that the account has an executive sponsor contact.
    sponsor_share: float
    #: Negotiated discounts (percent) for new deals, drawn uniformly.
    discounts: tuple[int, ...]
    csms: tuple[str, ...]
    #: Monthly cadence of customer-success meetings: (check_in probability, qbr every n months or 0).
    check_in_rate: float
    qbr_every: int


SEGMENTS: tuple[Segment, ...] = (
    Segment(
        name="enterprise",
        share=0.12,
        seats_median=36,
        seats_sigma=0.55,
        seats_min=15,
        tier_weights=(("growth", 0.25), ("enterprise", 0.75)),
        annual_share=0.95,
        biennial_share=0.25,
        trial_share=0.0,
        net_terms=True,
        start_lag_days=(7, 45),
        engagement_offset=0.25,
        tickets_per_month=2.0,
        sponsor_share=0.95,
        discounts=(0, 5, 10, 10, 15, 20),
        csms=("csm_ada", "csm_grace"),
        check_in_rate=0.7,
        qbr_every=3,
    ),
    Segment(
        name="mid_market",
        share=0.33,
        seats_median=13,
        seats_sigma=0.5,
        seats_min=5,
        tier_weights=(("starter", 0.15), ("growth", 0.75), ("enterprise", 0.10)),
        annual_share=0.6,
        biennial_share=0.0,
        trial_share=0.35,
        net_terms=True,
        start_lag_days=(3, 21),
        engagement_offset=0.1,
        tickets_per_month=0.8,
        sponsor_share=0.75,
        discounts=(0, 0, 5, 10),
        csms=("csm_alan", "csm_barbara", "csm_edsger"),
        check_in_rate=0.45,
        qbr_every=3,
    ),
    Segment(
        name="smb",
        share=0.55,
        seats_median=4,
        seats_sigma=0.45,
        seats_min=2,
        tier_weights=(("starter", 0.7), ("growth", 0.3)),
        annual_share=0.25,
        biennial_share=0.0,
        trial_share=0.7,
        net_terms=False,
        start_lag_days=(0, 3),
        engagement_offset=-0.1,
        tickets_per_month=0.3,
        sponsor_share=0.35,
        discounts=(0,),
        csms=("csm_linus", "csm_margaret"),
        check_in_rate=0.08,
        qbr_every=0,
    ),
)

SEGMENT_BY_NAME = {s.name: s for s in SEGMENTS}

#: Region -> (share of accounts, UTC hour around which its people work, currency weights).
REGIONS: tuple[tuple[str, float, float, tuple[tuple[str, float], ...]], ...] = (
    ("na", 0.45, 17.0, (("USD", 1.0),)),
    ("emea", 0.33, 10.5, (("EUR", 0.6), ("GBP", 0.3), ("USD", 0.1))),
    ("apac", 0.14, 3.0, (("USD", 1.0),)),
    ("latam", 0.08, 15.0, (("USD", 1.0),)),
)

INDUSTRIES: tuple[str, ...] = (
    "software",
    "financial_services",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "media",
    "logistics",
    "professional_services",
    "public_sector",
)

# --- Plans and prices ------------------------------------------------------------------------------

TIERS: tuple[str, ...] = ("starter", "growth", "enterprise")


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    tier: str
    billing_interval: str  # "month" | "year"
    seat_limit: int | None


PLANS: tuple[Plan, ...] = (
    Plan("starter_monthly", "Starter (monthly)", "starter", "month", 10),
    Plan("starter_annual", "Starter (annual)", "starter", "year", 10),
    Plan("growth_monthly", "Growth (monthly)", "growth", "month", 100),
    Plan("growth_annual", "Growth (annual)", "growth", "year", 100),
    Plan("enterprise_monthly", "Enterprise (monthly)", "enterprise", "month", None),
    Plan("enterprise_annual", "Enterprise (annual)", "enterprise", "year", None),
)

PLAN_BY_TIER_INTERVAL = {(p.tier, p.billing_interval): p for p in PLANS}

CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP")

#: List price per seat per month, in cents, by currency and tier.
LIST_PRICE_CENTS: dict[str, dict[str, int]] = {
    "USD": {"starter": 2500, "growth": 4500, "enterprise": 8500},
    "EUR": {"starter": 2300, "growth": 4200, "enterprise": 7900},
    "GBP": {"starter": 2000, "growth": 3600, "enterprise": 6800},
}

#: Seat price of an annual term as months of the monthly list price (two months free).
ANNUAL_PRICE_MONTHS = 10
#: A two-year term costs 19 monthly list prices per seat.
BIENNIAL_PRICE_MONTHS = 19

#: FX random walk: (starting USD rate, monthly log-volatility). USD is written as 1.
FX_START: dict[str, tuple[float, float]] = {"EUR": (1.09, 0.015), "GBP": (1.27, 0.014)}

# --- Event vocabulary ---------------------------------------------------------------------------------

#: Relative popularity of a feature's events; features the table does not know get DEFAULT.
FEATURE_POPULARITY: dict[str, float] = {
    "dashboards": 30.0,
    "reports": 10.0,
    "collaboration": 9.0,
    "automation": 8.0,
    "integrations": 6.0,
    "exports": 4.0,
    "api": 14.0,
    "settings": 1.5,
}
DEFAULT_FEATURE_POPULARITY = 5.0
#: Extra weight of the session event (e.g. ``login``) after the first event of a user's day.
SESSION_EXTRA_WEIGHT = 4.0
#: Weight of a milestone event repeated after its onboarding stage (e.g. later data imports).
MILESTONE_REPEAT_WEIGHT = 1.0


@dataclass(frozen=True)
class Stage:
    number: int
    #: Index into ``EventVocabulary.names`` of the event marking the stage, or None.
    event: int | None
    occurrence: int
    #: Or: the stage is the provisioning of the account's Nth user.
    user_provisioned: int | None


@dataclass(frozen=True)
class EventVocabulary:
    """The health config's events, sorted into the roles the generator needs."""

    names: tuple[str, ...]
    features: tuple[str | None, ...]
    #: Events whose feature some tier includes: usable only while the account's tier includes it.
    tier_gated: tuple[bool, ...]
    #: The event that opens a user's day (the first feature-less, non-milestone event: ``login``).
    session: int
    milestones: frozenset[int]
    stages: tuple[Stage, ...]
    first_value_stage: int
    #: tier -> which events are allowed (True for every non-gated event).
    tier_allows: dict[str, tuple[bool, ...]]
    base_weights: tuple[float, ...]

    @classmethod
    def from_health_config(cls, hc: HealthConfig | None = None) -> EventVocabulary:
        hc = hc or default_health_config()
        names = tuple(hc.events)
        index = {n: i for i, n in enumerate(names)}
        features = tuple(hc.events[n].feature for n in names)
        stages = tuple(
            Stage(
                s.stage,
                index[s.event] if s.event is not None else None,
                s.occurrence,
                s.user_provisioned,
            )
            for s in hc.onboarding.stages
        )
        milestones = frozenset(s.event for s in stages if s.event is not None)
        plain = [i for i, f in enumerate(features) if f is None and i not in milestones]
        if not plain:
            raise ValueError("the health config needs one event without a feature (e.g. login)")
        gated_features = {f for included in hc.tier_features.values() for f in included}
        tier_gated = tuple(f is not None and f in gated_features for f in features)
        tier_allows = {
            tier: tuple(
                not tier_gated[i] or features[i] in hc.tier_features.get(tier, ())
                for i in range(len(names))
            )
            for tier in TIERS
        }
        weights = []
        for i, f in enumerate(features):
            if i in milestones:
                weights.append(MILESTONE_REPEAT_WEIGHT)
            elif f is None:
                weights.append(SESSION_EXTRA_WEIGHT if i == plain[0] else 2.0)
            else:
                weights.append(FEATURE_POPULARITY.get(f, DEFAULT_FEATURE_POPULARITY))
        return cls(
            names=names,
            features=features,
            tier_gated=tier_gated,
            session=plain[0],
            milestones=milestones,
            stages=stages,
            first_value_stage=hc.onboarding.first_value_stage,
            tier_allows=tier_allows,
            base_weights=tuple(weights),
        )

    @property
    def feature_events(self) -> tuple[int, ...]:
        """Events with a feature, most popular first (the order accounts adopt them in)."""
        with_feature = [i for i, f in enumerate(self.features) if f is not None]
        return tuple(sorted(with_feature, key=lambda i: (-self.base_weights[i], i)))
