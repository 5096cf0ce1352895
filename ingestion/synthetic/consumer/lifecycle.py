"""The consumer scenario's latent model: each listener's frustration, and the lifecycle it drives.

Every listener has a latent **frustration** ``f`` that drifts day by day (an Ornstein-Uhlenbeck
path around the listener's own level, with occasional bad spells: a catalogue gap, a buggy app
release) plus the annoyance of ads while on the basic plan. The same ``f`` raises the daily hazard
of cancelling and shifts what the listener does (more skips, dislikes, errors, help and downgrade
pages; fewer plays and likes; ``events.py`` samples that), while how *much* a listener uses the
app is a separate, static taste. So the signals a B2B health score weighs (volume of use, breadth
of features, tickets, NPS, payments, seats, sponsor) carry little, and the mix of events carries
the churn. ``docs/synthetic-data.md`` ("The consumer scenario") describes the model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from ingestion.synthetic.billing import Customer, ItemRow, PaymentOdds, Subscription, issue_invoice
from ingestion.synthetic.config import REGIONS
from ingestion.synthetic.consumer.config import (
    BASIC,
    EVENT_INDEX,
    FIRST_PLAN,
    PLAN_BY_ID,
    SEGMENT,
    SIGNUP,
    TIERS,
    ConsumerConfig,
    unit_price,
)
from ingestion.synthetic.crm import (
    FIRST_NAMES,
    LAST_NAMES,
    Activity,
    Contact,
    NpsResponse,
    Opportunity,
    Ticket,
    slug,
)
from ingestion.synthetic.lifecycle import poisson, sigmoid, weighted
from ingestion.synthetic.timeline import DAY, HOUR, MINUTE, Calendar

# --- model parameters (docs/synthetic-data.md, "The consumer scenario", explains each) -------------

#: Frustration: each listener's own level ~ N(LEVEL_MEAN, LEVEL_SD); the daily path is pulled
#: towards it at rate PULL with noise NOISE, and a bad spell (probability SPELL_RATE a day) adds
#: an exponential jump of mean SPELL_SIZE that then fades at the same rate.
LEVEL_MEAN = -0.1
LEVEL_SD = 0.45
PULL = 1 / 40
NOISE = 0.13
SPELL_RATE = 1 / 120
SPELL_SIZE = 1.0
#: Ads on the basic plan add AD_BASE + AD_LOAD_WEIGHT * log(ad load) to frustration; the ad load
#: (ads per track) is lognormal(0, AD_LOAD_SD) per listener.
AD_BASE = 0.15
AD_LOAD_WEIGHT = 0.35
AD_LOAD_SD = 0.4
#: Daily hazard of cancelling: HAZARD_BASE * exp(HAZARD_F * f) * (1 + NEW_BOOST * exp(-tenure /
#: NEW_DECAY_DAYS)); the cancellation takes effect at the end of the paid period.
HAZARD_BASE = 0.00018
HAZARD_F = 2.2
NEW_BOOST = 0.8
NEW_DECAY_DAYS = 60.0
#: Free trial: share of new listeners, days, conversion odds sigmoid(TRIAL_CONVERT - f).
TRIAL_SHARE = 0.45
TRIAL_DAYS = 14
TRIAL_CONVERT = 1.2
#: At a monthly renewal: basic upgrades with probability UPGRADE * exp(-0.5 f), premium
#: downgrades with DOWNGRADE * exp(0.6 f).
UPGRADE = 0.03
DOWNGRADE = 0.02
#: Card payments: failure and recovery odds per invoice (dunning ends the subscription).
PAYMENT_ODDS = PaymentOdds(card_failure=0.012, card_recovery=0.7)
#: Share of listeners who come back 30-180 days after cancelling (after a failed card: more).
WINBACK = 0.12
WINBACK_INVOLUNTARY = 0.3
#: Support tickets per paid month; NPS: survey at tenure day NPS_FIRST_DAY, then every
#: NPS_EVERY_DAYS, answered with probability NPS_RESPONSE; score ~ N(NPS_MEAN - NPS_F * f, NPS_SD).
TICKETS_PER_MONTH = 0.025
NPS_FIRST_DAY = 45
NPS_EVERY_DAYS = 180
NPS_RESPONSE = 0.2
NPS_MEAN = 7.4
NPS_F = 0.3
NPS_SD = 2.0
#: Listening hours: the region's working hour plus this many hours, give or take.
EVENING_OFFSET = 4.0

NPS_COMMENTS: dict[str, tuple[str, ...]] = {
    "promoter": ("Best music app I have used", "Love the daily mixes", "Great for my commute"),
    "passive": ("Good, but the catalogue has gaps", "Fine, a bit pricey"),
    "detractor": (
        "Too many ads",
        "The recommendations keep getting worse",
        "Playback keeps failing on my phone",
        'Why does "offline" need a connection?',
    ),
}


@dataclass(frozen=True)
class Scheduled:
    """An event at an exact instant (sign-up), not sampled per day."""

    at: int
    event: int
    properties: str


@dataclass(frozen=True)
class Latent:
    """Per-listener latent state for every generated day, shared by the lifecycle and events."""

    #: [accounts, days] frustration before the basic plan's ad annoyance.
    frustration: np.ndarray
    #: [accounts] what the basic plan's ads add to frustration.
    ad_term: np.ndarray
    #: [accounts] ads per track played on the basic plan.
    ad_load: np.ndarray

    @classmethod
    def draw(cls, config: ConsumerConfig, cal: Calendar) -> Latent:
        rng = np.random.default_rng([config.seed, 0xC0])
        n, days = config.accounts, cal.n_days
        level = rng.normal(LEVEL_MEAN, LEVEL_SD, n)
        ad_load = rng.lognormal(0.0, AD_LOAD_SD, n)
        spread = NOISE / math.sqrt(2 * PULL - PULL**2)
        f = np.empty((n, days), np.float32)
        now = level + rng.normal(0.0, spread, n)
        for d in range(days):
            f[:, d] = now
            spell = (rng.random(n) < SPELL_RATE) * rng.exponential(SPELL_SIZE, n)
            now = now + PULL * (level - now) + rng.normal(0.0, NOISE, n) + spell
        return cls(f, AD_BASE + AD_LOAD_WEIGHT * np.log(ad_load), ad_load)


@dataclass(eq=False)
class User:
    provisioned: int
    deprovisioned: int | None = None
    id: str = ""


@dataclass(eq=False)
class ConsumerAccount:
    """One listener: the CRM account, its billing customer and user, and what happened."""

    index: int
    cal: Calendar
    latent: Latent
    seed: int
    id: str = ""
    segment_name: str = SEGMENT
    industry: str | None = None
    owner: str | None = None
    contacts: list[Contact] = field(default_factory=list)
    opportunities: list[Opportunity] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    nps: list[NpsResponse] = field(default_factory=list)
    subs: list[Subscription] = field(default_factory=list)
    #: Product access: (start, cancel requested or None, end or None), in time order.
    access: list[tuple[int, int | None, int | None]] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(f"cs-warehouse:consumer:{self.seed}:account:{self.index}")
        self.rng = rng
        region = weighted(rng, [(r, r[1]) for r in REGIONS])
        self.region = region[0]
        self.hour = (region[2] + EVENING_OFFSET + rng.gauss(0.0, 1.5)) % 24
        self.currency: str = weighted(rng, region[3])
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        self.name = f"{first} {last}"
        self.email = f"{slug(first)}.{slug(last)}.{self.index + 1}@listener.example"
        cal = self.cal
        weights = [(m, (3.0 if m == 0 else 1.0) * (1 + 0.03 * m)) for m in range(cal.months)]
        month = weighted(rng, weights)
        day = cal.month_start_days[month] + rng.randrange(cal.month_len(month))
        self.created = day * DAY + int(self.hour * HOUR) // MINUTE * MINUTE
        self.updated = self.created
        self.first_plan = weighted(rng, FIRST_PLAN)
        self.customer = Customer(self.index, self.currency, self.created + MINUTE)
        self.user = User(self.created)
        self.contacts.append(
            Contact("user", self.email, None, created=self.created, started=self.created)
        )
        self.first_paid: int | None = None
        self._f = self.latent.frustration[self.index].tolist()
        self._ad_term = float(self.latent.ad_term[self.index])

    # --- latent state -----------------------------------------------------------------------------
    def frustration(self, t: int, plan_id: str) -> float:
        """Frustration on the day of ``t`` on ``plan_id`` (ads add to it on the basic plan)."""
        f = self._f[min(t // DAY, self.cal.n_days - 1)]
        return f + self._ad_term if PLAN_BY_ID[plan_id].tier == BASIC else f

    def hazard(self, t: int, plan_id: str) -> float:
        tenure = (t - (self.first_paid or t)) / DAY
        boost = 1.0 + NEW_BOOST * math.exp(-tenure / NEW_DECAY_DAYS)
        return HAZARD_BASE * boost * math.exp(HAZARD_F * self.frustration(t, plan_id))

    # --- the lifecycle ----------------------------------------------------------------------------
    def run(self) -> ConsumerAccount:
        start: int | None = self.created + self.rng.randrange(MINUTE, 10 * MINUTE)
        self.scheduled.append(Scheduled(start, EVENT_INDEX[SIGNUP.name], SIGNUP.properties[0]))
        plan_id, first = self.first_plan, True
        while start is not None and start < self.cal.end:
            start, plan_id = self._subscription(start, plan_id, first)
            first = False
        self._nps_and_tickets()
        return self

    def _subscription(self, t: int, plan_id: str, first: bool) -> tuple[int | None, str]:
        """One subscription from ``t``; returns when the listener comes back (or None) and on
        which plan."""
        rng, cal = self.rng, self.cal
        trial = first and rng.random() < TRIAL_SHARE
        row = ItemRow(PLAN_BY_ID[plan_id], 1, unit_price(self.currency, plan_id), 1, None, t)
        sub = Subscription(self.customer, t, t + TRIAL_DAYS * DAY if trial else None, False, [row])
        self.customer.subs.append(sub)
        self.subs.append(sub)
        self.access.append((t, None, None))
        if sub.trial_end is not None:
            if sub.trial_end >= cal.end:
                return None, plan_id
            if rng.random() >= sigmoid(TRIAL_CONVERT - self.frustration(sub.trial_end, plan_id)):
                canceled = max(t + HOUR, sub.trial_end - rng.randrange(0, 3 * DAY))
                self._end(sub, sub.trial_end, canceled)
                return None, plan_id
        sub.converted = True
        self.first_paid = self.first_paid or sub.anchor
        k = 0
        while (p0 := sub.period_start(cal, k)) < cal.end:
            p1 = sub.period_start(cal, k + 1)
            if sub.cancel_at_period_end:
                self._end(sub, p0, sub.canceled_at or p0)
                return self._winback(p0, involuntary=False), sub.last.plan.plan_id
            if k > 0 and not sub.annual:
                self._plan_change(sub, p0)
            sub.period = (p0, p1)
            give_up = issue_invoice(sub, p0, p0, p1, sub.per_period_cents(), rng, PAYMENT_ODDS)
            stop = min(p1, cal.end, give_up if give_up is not None else p1)
            self._decide(sub, p0, stop)
            if give_up is not None and give_up < min(p1, cal.end):
                self._end(sub, give_up, give_up)
                return self._winback(give_up, involuntary=True), sub.last.plan.plan_id
            k += 1
        return None, plan_id

    def _decide(self, sub: Subscription, lo: int, hi: int) -> None:
        """Day by day over [lo, hi): does the listener cancel (at the end of the period)?"""
        if sub.cancel_at_period_end:
            return
        plan_id = sub.last.plan.plan_id
        for day in range(lo // DAY, (hi - 1) // DAY + 1):
            if self.rng.random() < self.hazard(day * DAY, plan_id):
                at = max(lo + HOUR, day * DAY + int(self.hour * HOUR) + self.rng.randrange(HOUR))
                if at >= min(hi, self.cal.end):
                    return
                sub.cancel_at_period_end = True
                sub.canceled_at = at
                start, _, end = self.access[-1]
                self.access[-1] = (start, at, end)
                return

    def _plan_change(self, sub: Subscription, t: int) -> None:
        """At a monthly renewal: basic listeners sometimes upgrade, premium ones downgrade."""
        row = sub.current
        assert row is not None
        f = self.frustration(t, row.plan.plan_id)
        if row.plan.tier == BASIC and self.rng.random() < UPGRADE * math.exp(-0.5 * f):
            target = "premium_monthly"
        elif row.plan.tier != BASIC and self.rng.random() < DOWNGRADE * math.exp(0.6 * f):
            target = "basic_monthly"
        else:
            return
        sub.change(t, plan=PLAN_BY_ID[target], unit=unit_price(self.currency, target))

    def _end(self, sub: Subscription, t: int, canceled: int) -> None:
        sub.ended_at = t
        sub.canceled_at = max(sub.started, min(canceled, t))
        sub.close(t)
        start, cancel, _ = self.access[-1]
        self.access[-1] = (start, cancel if cancel is not None else sub.canceled_at, t)

    def _winback(self, t: int, *, involuntary: bool) -> int | None:
        if self.rng.random() < (WINBACK_INVOLUNTARY if involuntary else WINBACK):
            back = t + self.rng.randrange(30, 180) * DAY + self.rng.randrange(DAY)
            return back if back < self.cal.end else None
        return None

    # --- NPS and support ----------------------------------------------------------------------------
    def _paid_spans(self) -> list[tuple[int, int, str]]:
        """(from, to, plan id) of every paid item row, clipped to the horizon."""
        spans = []
        for sub in self.subs:
            if not sub.converted:
                continue
            for row in sub.items:
                lo = max(row.valid_from, sub.anchor)
                hi = min(row.valid_to if row.valid_to is not None else self.cal.end, self.cal.end)
                if lo < hi:
                    spans.append((lo, hi, row.plan.plan_id))
        return spans

    def _nps_and_tickets(self) -> None:
        rng, contact = self.rng, self.contacts[0]
        for lo, hi, plan_id in self._paid_spans():
            for _ in range(poisson(rng, TICKETS_PER_MONTH * (hi - lo) / (30 * DAY))):
                self.tickets.append(self._ticket(rng.randrange(lo, hi)))
            assert self.first_paid is not None
            survey = self.first_paid + NPS_FIRST_DAY * DAY
            while survey < hi:
                if survey >= lo and rng.random() < NPS_RESPONSE:
                    mean = NPS_MEAN - NPS_F * self.frustration(survey, plan_id)
                    score = min(10, max(0, round(rng.gauss(mean, NPS_SD))))
                    self.nps.append(NpsResponse(survey, score, contact, self._comment(score)))
                survey += NPS_EVERY_DAYS * DAY
        self.tickets.sort(key=lambda t: t.created)
        self.nps.sort(key=lambda r: r.at)

    def _ticket(self, t: int) -> Ticket:
        rng = self.rng
        severity = weighted(rng, (("low", 0.5), ("normal", 0.45), ("high", 0.05)))
        resolved = t + int(rng.uniform(2, 72) * HOUR)
        touched = min(self.cal.end - 1, t + rng.randrange(HOUR, DAY))
        return Ticket(t, severity, resolved, pending=False, touched=touched)

    def _comment(self, score: int) -> str | None:
        if self.rng.random() < 0.6:
            return None
        bucket = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
        return self.rng.choice(NPS_COMMENTS[bucket])


def tier_index(plan_id: str) -> int:
    return TIERS.index(PLAN_BY_ID[plan_id].tier)
