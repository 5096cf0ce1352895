"""The latent customer lifecycle: the causal model every generated table is derived from.

Each account is simulated on its own random stream, one calendar month at a time. At the start of
a month the simulation reads the account's *observable signals* (usage level and trend, champion
departure, unresolved critical tickets, low NPS, payment trouble, onboarding stalled, seat use):
the same things the health score reads. They move the latent engagement ``e`` and decide churn
intent, expansion, contraction and pauses. Timed events (trial end, renewals with their invoices,
cancellations, item changes, meetings, onboarding milestones) run from a per-account agenda in
time order. ``docs/synthetic-data.md`` describes the model; this module is its implementation.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ingestion.synthetic.billing import (
    Customer,
    ItemRow,
    PaymentOdds,
    Subscription,
    issue_invoice,
    prorate,
    unit_price,
)
from ingestion.synthetic.config import (
    INDUSTRIES,
    PLAN_BY_TIER_INTERVAL,
    REGIONS,
    SEGMENTS,
    TIERS,
    EventVocabulary,
    GeneratorConfig,
    Segment,
)
from ingestion.synthetic.crm import (
    Activity,
    Contact,
    NpsResponse,
    Opportunity,
    Ticket,
    email_domain,
    new_contact,
    nps_comment,
)
from ingestion.synthetic.timeline import DAY, HOUR, MINUTE, Calendar

# --- model parameters (docs/synthetic-data.md explains each) -------------------------------------

TRIAL_DAYS = 14
#: Monthly pull of engagement towards its target, and its noise.
ENGAGEMENT_PULL = 0.35
ENGAGEMENT_NOISE = 0.2
#: Where engagement heads once an account has decided to leave, and how fast.
DISENGAGED_TARGET = -3.0
DISENGAGED_PULL = 0.6
#: Penalties on the engagement target from the observable stressors.
PENALTY_NO_FIRST_VALUE = 1.0
PENALTY_CHAMPION_LEFT = 0.9
PENALTY_CRITICAL_OPEN = 0.35
PENALTY_PAYMENT = 0.3
PENALTY_LOW_NPS = 0.2
#: Churn intent: logit = base + weights . signals (+ account frailty + noise), per month.
CHURN_BASE = -5.1
#: Annual plans decide only in the ~3 months before renewal, so their base is higher.
CHURN_BASE_ANNUAL_BONUS = 1.1
CHURN_W_USAGE = 3.0
CHURN_W_DECLINE = 1.6
CHURN_W_CHAMPION = 1.8
CHURN_W_CRITICAL = 0.7
CHURN_W_LOW_NPS = 0.9
CHURN_W_PAYMENT = 0.9
CHURN_W_NO_FIRST_VALUE = 0.9
CHURN_W_LOW_SEAT_USE = 0.5
CHURN_W_SPONSOR = -0.4
CHURN_W_REVIEW = -0.3
#: Months between the churn decision and the cancellation of a monthly plan.
CANCEL_DELAY_MONTHS = ((1, 0.45), (2, 0.4), (3, 0.15))
#: Monthly chance that the CSM saves a disengaging account.
SAVE_RATE = 0.12
REACTIVATION_RATE = 0.12
REACTIVATION_RATE_INVOLUNTARY = 0.3
#: Days from one onboarding stage to the next (exponential means), for stages 1..5.
STAGE_DELAY_DAYS = (0.2, 5.0, 8.0, 10.0, 28.0)
USER_TURNOVER = 0.012
CHAMPION_DEPARTURE = 0.010
CHAMPION_DEPARTURE_STRESSED = 0.015
SPONSOR_DEPARTURE = 0.006
CONTACT_DEPARTURE = 0.004
SEVERITIES = (("low", 0.30), ("normal", 0.50), ("high", 0.15), ("critical", 0.05))
#: Median resolution hours by severity.
RESOLUTION_HOURS = {"low": 40.0, "normal": 20.0, "high": 8.0, "critical": 6.0}
CRITICAL_STUCK = 0.22


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


T = TypeVar("T")


def weighted(rng: random.Random, pairs: Sequence[tuple[T, float]]) -> T:
    total = sum(w for _, w in pairs)
    r = rng.random() * total
    for value, w in pairs:
        r -= w
        if r < 0:
            return value
    return pairs[-1][0]


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True)
class World:
    """What every account's simulation shares."""

    config: GeneratorConfig
    cal: Calendar
    vocab: EventVocabulary
    names: tuple[str, ...]
    #: Relative chance of an account arriving in each month.
    arrival_weights: tuple[float, ...]


def arrival_weights(months: int) -> tuple[float, ...]:
    """A launch cohort in the first month, then steady growth."""
    return tuple((4.0 if m == 0 else 1.0) * (1.0 + 0.05 * m) for m in range(months))


@dataclass(eq=False)
class User:
    number: int
    role: str
    provisioned: int
    #: Personal activity offset on the engagement logit.
    z: float
    #: Personal multiplier of events per active day (mean 1).
    intensity: float
    never_active: bool
    deprovisioned: int | None = None
    id: str = ""


@dataclass(frozen=True)
class Milestone:
    at: int
    user: User
    event: int
    stage: int


@dataclass
class Signals:
    """What the account looks like from outside at the start of a month."""

    usage: float
    #: Change of engagement over the last two months (negative = declining usage).
    trend: float
    champion: float
    critical_open: int
    low_nps: bool
    payment_issue: bool
    no_first_value: bool
    low_seat_use: bool
    sponsor: bool
    recent_review: bool


@dataclass(eq=False)
class AccountSim:
    index: int
    world: World
    rng: random.Random = field(init=False)
    id: str = ""

    def __post_init__(self) -> None:
        cal, rng = (
            self.world.cal,
            random.Random(f"cs-warehouse:{self.world.config.seed}:account:{self.index}"),
        )
        self.rng = rng
        self.cal = cal
        self.segment: Segment = weighted(rng, [(s, s.share) for s in SEGMENTS])
        self.segment_name = self.segment.name
        region = weighted(rng, [(r, r[1]) for r in REGIONS])
        self.region, self.work_hour = region[0], region[2]
        self.currency: str = weighted(rng, region[3])
        self.industry = rng.choice(INDUSTRIES) if rng.random() > 0.03 else None
        self.owner = rng.choice(self.segment.csms)
        self.name = self.world.names[self.index]
        self.domain = email_domain(self.name)
        # Latent, static.
        self.q = rng.gauss(0.0, 1.0)
        self.frailty = rng.gauss(0.0, 0.4)
        self.tau = 0.3 + 0.55 * self.q + self.segment.engagement_offset
        seg = self.segment
        self.seats0 = max(
            seg.seats_min, round(seg.seats_median * math.exp(seg.seats_sigma * rng.gauss(0, 1)))
        )
        self.demand = self.seats0 * rng.uniform(0.65, 1.0)
        # Arrival.
        m = weighted(rng, list(enumerate(self.world.arrival_weights)))
        self.first_month = m
        day = cal.month_start_days[m] + rng.randrange(cal.month_len(m))
        self.created = day * DAY + self._work_second()
        self.updated = self.created
        lag = rng.randint(*seg.start_lag_days)
        self.planned_start = self.created + lag * DAY + rng.randrange(HOUR, 6 * HOUR)
        # Latent, dynamic.
        self.e = self.tau - 0.7
        self.e_hist: list[float] = [math.nan] * (cal.months + 1)
        self.disengaging = False
        self.intent_at = 0
        self.cancel_in = 0
        self.signals: Signals | None = None
        # Records.
        self.customer: Customer | None = None
        self.subs: list[Subscription] = []
        self.main: Subscription | None = None
        self.addon: Subscription | None = None
        self.access: list[list[int | None]] = []
        self.users: list[User] = []
        self.milestones: list[Milestone] = []
        self.adopt_at: dict[int, int | None] = {}
        self.contacts: list[Contact] = []
        self.opportunities: list[Opportunity] = []
        self.activities: list[Activity] = []
        self.tickets: list[Ticket] = []
        self.nps: list[NpsResponse] = []
        self.first_start: int | None = None
        self.t_fv: int | None = None
        self.user_stage: tuple[int, int] | None = None
        self.ramp_days = rng.uniform(30, 100)
        self.converts = True
        self.champion_left: int | None = None
        self.last_review: int | None = None
        self._taken_emails: set[str] = set()
        self._agenda: list[tuple[int, int, str, tuple]] = []
        self._seq = 0
        self._initial_contacts()
        if self.planned_start < cal.end:
            self._at(self.planned_start, "start")

    # --- driving ---------------------------------------------------------------------------------
    def run(self) -> AccountSim:
        cal = self.cal
        for m in range(self.first_month, cal.months):
            s0, s1 = cal.month_start(m), cal.month_start(m + 1)
            self.e_hist[m] = self.e
            e0 = self.e
            sub = self.main
            if sub is not None and s0 >= sub.started:
                self.signals = self._observe(m, s0)
                if self._decidable(sub, s0):
                    self._decide(s0, s1)
                self._evolve()
            self._drain(s1)
            self._month_records(m, s0, s1, (e0 + self.e) / 2)
        self.e_hist[cal.months] = self.e
        first = self.e_hist[self.first_month]
        self.e_hist = [first if math.isnan(x) else x for x in self.e_hist]
        self._finish()
        return self

    def _at(self, t: int, kind: str, *payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (t, self._seq, kind, payload))

    def _drain(self, until: int) -> None:
        until = min(until, self.cal.end)
        while self._agenda and self._agenda[0][0] < until:
            t, _, kind, payload = heapq.heappop(self._agenda)
            getattr(self, f"_on_{kind}")(t, *payload)

    def _work_second(self) -> int:
        hour = (self.work_hour + self.rng.uniform(-3.5, 3.5)) % 24
        return int(hour * HOUR) // (5 * MINUTE) * (5 * MINUTE)

    def _meeting_time(self, lo: int, hi: int) -> int | None:
        """A working-hours instant on a weekday in [lo, hi), or None."""
        if hi - lo < HOUR:
            return None
        for _ in range(4):
            day = self.rng.randrange(lo // DAY, (hi - 1) // DAY + 1)
            if (self.cal.start.weekday() + day) % 7 >= 5:
                continue
            hour = (self.work_hour + self.rng.uniform(-3, 3)) % 24
            t = day * DAY + int(hour * 2) * 1800
            if lo <= t < hi:
                return t
        return None

    def _moment(self, lo: int, hi: int) -> int:
        """A random instant in [lo, hi), in the account's working hours when the span allows."""
        day = self.rng.randrange(lo // DAY, (hi - 1) // DAY + 1)
        t = day * DAY + self._work_second() + self.rng.randrange(300)
        return t if lo <= t < hi else self.rng.randrange(lo, hi)

    def _instant(self, lo: int, hi: int) -> int | None:
        """A random instant in [lo, hi) after the last price change, or None."""
        sub = self.main
        if sub is not None and sub.current is not None:
            lo = max(lo, sub.current.valid_from + HOUR)
        hi = min(hi, self.cal.end)
        return self.rng.randrange(lo, hi) if lo < hi else None

    # --- what the account looks like ------------------------------------------------------------
    def alive_users(self) -> list[User]:
        return [u for u in self.users if u.deprovisioned is None]

    def _active_contact(self, role: str, t: int) -> bool:
        return any(
            c.role == role
            and (c.started is None or c.started <= t)
            and (c.ended is None or c.ended > t)
            for c in self.contacts
        )

    def _seats(self) -> int:
        return sum(s.seats() for s in (self.main, self.addon) if s is not None and s.running)

    def _observe(self, m: int, s0: int) -> Signals:
        prev = self.e_hist[m - 2] if m >= 2 and not math.isnan(self.e_hist[m - 2]) else self.e
        champion = 0.0
        if self.champion_left is not None and s0 - self.champion_left < 120 * DAY:
            champion = 0.4 if self._active_contact("champion", s0) else 1.0
        critical = sum(
            1
            for t in self.tickets
            if t.severity == "critical"
            and t.created <= s0 - 3 * DAY
            and (t.resolved is None or t.resolved > s0)
        )
        low_nps = False
        for r in reversed(self.nps):
            if r.at <= s0:
                low_nps = r.score <= 6 and s0 - r.at < 365 * DAY
                break
        payment = False
        if self.main is not None:
            for inv in reversed(self.main.invoices):
                if inv.issued < s0 - 150 * DAY:
                    break
                if inv.due is not None and s0 - 90 * DAY < inv.due <= s0 and inv.payment_problem:
                    payment = True
        seats = self._seats()
        no_fv = self.first_start is not None and s0 - self.first_start > 45 * DAY
        no_fv = no_fv and (self.t_fv is None or self.t_fv > s0)
        return Signals(
            usage=sigmoid(self.e),
            trend=self.e - prev,
            champion=champion,
            critical_open=critical,
            low_nps=low_nps,
            payment_issue=payment,
            no_first_value=no_fv,
            low_seat_use=seats > 0 and len(self.alive_users()) / seats < 0.3,
            sponsor=self._active_contact("executive_sponsor", s0),
            recent_review=self.last_review is not None and s0 - self.last_review < 90 * DAY,
        )

    def churn_logit(self, annual: bool) -> float:
        s = self.signals
        assert s is not None
        x = CHURN_BASE + (CHURN_BASE_ANNUAL_BONUS if annual else 0.0)
        x += CHURN_W_USAGE * (0.55 - s.usage)
        x += CHURN_W_DECLINE * min(max(0.0, -s.trend), 1.5)
        x += CHURN_W_CHAMPION * s.champion
        x += CHURN_W_CRITICAL * min(s.critical_open, 2)
        x += CHURN_W_LOW_NPS * s.low_nps
        x += CHURN_W_PAYMENT * s.payment_issue
        x += CHURN_W_NO_FIRST_VALUE * s.no_first_value
        x += CHURN_W_LOW_SEAT_USE * s.low_seat_use
        x += CHURN_W_SPONSOR * s.sponsor + CHURN_W_REVIEW * s.recent_review
        return x + self.frailty + self.rng.gauss(0.0, 0.3)

    # --- monthly dynamics -------------------------------------------------------------------------
    def _evolve(self) -> None:
        s, rng = self.signals, self.rng
        assert s is not None
        target = self.tau - (
            PENALTY_NO_FIRST_VALUE * s.no_first_value
            + PENALTY_CHAMPION_LEFT * s.champion
            + PENALTY_CRITICAL_OPEN * min(s.critical_open, 3)
            + PENALTY_PAYMENT * s.payment_issue
            + PENALTY_LOW_NPS * s.low_nps
        )
        pull = ENGAGEMENT_PULL
        if self.disengaging:
            target, pull = DISENGAGED_TARGET, DISENGAGED_PULL
        elif not self.converts:
            target, pull = -1.2, 0.5
        self.e += pull * (target - self.e) + rng.gauss(0.0, ENGAGEMENT_NOISE)
        growth = 0.012 + 0.035 * (self.e - 0.3) + rng.gauss(0.0, 0.03)
        if self.disengaging:
            growth -= 0.08
        elif rng.random() < 0.025:
            growth += rng.uniform(0.15, 0.4)  # a new team joins
        self.demand = max(1.0, self.demand * math.exp(growth))

    def _decidable(self, sub: Subscription, s0: int) -> bool:
        return (
            sub.running
            and sub.converted
            and sub.current is not None
            and (sub.trial_end is None or sub.trial_end <= s0)
            and not sub.cancel_at_period_end
        )

    def _decide(self, s0: int, s1: int) -> None:
        sub, rng, seg = self.main, self.rng, self.segment
        assert sub is not None and sub.current is not None
        if self.disengaging:
            if rng.random() < SAVE_RATE:
                self.disengaging = False
            elif not sub.annual:
                self.cancel_in -= 1
                t = self._instant(s0, s1)
                if self.cancel_in <= 0 and t is not None:
                    self._at(t, "cancel", sub)
            return
        if sub.annual:
            eligible = sub.next_renewal_after(self.cal, s0) - s0 <= 95 * DAY
        else:
            eligible = s0 - sub.anchor >= 28 * DAY
        if eligible and rng.random() < sigmoid(self.churn_logit(sub.annual)):
            self.disengaging = True
            self.intent_at = s0
            self.cancel_in = weighted(rng, CANCEL_DELAY_MONTHS)
            return
        t = self._instant(s0, s1)
        if t is None:
            return
        row = sub.current
        seats = row.quantity
        pressure = self.demand / max(1, self._seats())
        tier_i = TIERS.index(row.plan.tier)
        if seg.name == "smb" and not sub.annual and self.e > -0.5 and rng.random() < 0.004:
            self._at(t, "pause", sub)
        elif pressure > 0.9 and rng.random() < self._expansion_odds(pressure):
            new_seats = max(seats + 1, math.ceil(self.demand * rng.uniform(1.05, 1.3)))
            self._at(t, "change", sub, "expansion", self._repriced(row, new_seats, row.plan.tier))
        elif tier_i < 2 and self.e > 0.4 and rng.random() < (0.008 if tier_i == 0 else 0.004):
            self._at(t, "change", sub, "expansion", self._repriced(row, seats, TIERS[tier_i + 1]))
        elif not sub.annual and pressure < 0.6 and rng.random() < 0.3:
            new_seats = max(seg.seats_min, math.ceil(self.demand * 1.1))
            if new_seats < seats:
                self._at(
                    t, "change", sub, "contraction", self._repriced(row, new_seats, row.plan.tier)
                )
        elif (
            seg.name != "smb"
            and self.addon is None
            and self.e > 0.3
            and s0 - sub.started > 90 * DAY
            and rng.random() < 0.006
        ):
            self._at(t, "addon")

    def _expansion_odds(self, pressure: float) -> float:
        """Seats near the limit and growing, healthy usage make an expansion likely."""
        trend = self.signals.trend if self.signals else 0.0
        return sigmoid(-2.6 + 5.0 * (pressure - 1.0) + 1.2 * (self.e - 0.3) + 1.0 * trend)

    def _tier_for(self, tier: str, seats: int, interval: str) -> str:
        i = TIERS.index(tier)
        while i < len(TIERS) - 1:
            limit = PLAN_BY_TIER_INTERVAL[(TIERS[i], interval)].seat_limit
            if limit is None or seats <= limit:
                break
            i += 1
        return TIERS[i]

    def _repriced(self, row: ItemRow, seats: int, tier: str) -> dict[str, object]:
        interval = row.plan.billing_interval
        tier = self._tier_for(tier, seats, interval)
        updates: dict[str, object] = {"quantity": seats}
        if tier != row.plan.tier:
            updates["plan"] = PLAN_BY_TIER_INTERVAL[(tier, interval)]
            updates["unit"] = unit_price(self.currency, tier, interval, row.interval_count)
        return updates

    def _odds(self) -> PaymentOdds:
        stressed = self.e < -0.5
        return PaymentOdds(
            card_failure=0.01 + 0.025 * stressed + 0.006 * (self.segment.name == "smb"),
            card_recovery=0.8,
            late=0.06 + 0.12 * stressed,
            bad_debt=0.003 + 0.02 * (self.e < -1.0),
        )

    # --- agenda handlers --------------------------------------------------------------------------
    def _on_start(self, t: int) -> None:
        rng, seg = self.rng, self.segment
        first = self.first_start is None
        trial = first and rng.random() < seg.trial_share
        if first:
            tier = weighted(rng, seg.tier_weights)
            annual = rng.random() < seg.annual_share
            count = 2 if annual and rng.random() < seg.biennial_share else 1
            seats = self.seats0
        else:
            prev = self.subs[-1].last if self.subs else None
            tier = prev.plan.tier if prev else "starter"
            annual = prev is not None and prev.plan.billing_interval == "year"
            count = 1
            seats = max(seg.seats_min, math.ceil(self.demand * rng.uniform(0.6, 0.95)))
            self.demand = seats * rng.uniform(0.8, 1.0)
        interval = "year" if annual else "month"
        tier = self._tier_for(tier, seats, interval)
        unit = unit_price(self.currency, tier, interval, count)
        discount: int | None = rng.choice(seg.discounts) or None
        intro = None
        if annual and seg.name == "enterprise" and rng.random() < 0.3:
            # A negotiated total rounded to a thousand: the per-seat price gets four decimals.
            total = unit * seats * (100 - (discount or 0)) // 100
            total = max(10_000_000, round(total / 10_000_000) * 10_000_000)
            unit, discount = round(total / seats), None
        elif not annual and seg.name == "smb" and rng.random() < 0.25:
            discount, intro = 20, 3
        if self.customer is None:
            self.customer = Customer(self.index, self.currency, t - rng.randrange(2 * MINUTE, HOUR))
        plan = PLAN_BY_TIER_INTERVAL[(tier, interval)]
        sub = Subscription(
            self.customer,
            started=t,
            trial_end=t + TRIAL_DAYS * DAY if trial else None,
            net_terms=annual and seg.net_terms,
            items=[ItemRow(plan, seats, unit, count, discount, valid_from=t)],
            intro_until=intro,
        )
        self.customer.subs.append(sub)
        self.subs.append(sub)
        self.main = sub
        self.access.append([t, None])
        if first:
            self.first_start = t
            self._plan_onboarding(t, trial)
        else:
            self.disengaging = False
            self.e = self.tau - 0.4
            if not self._active_contact("champion", t):
                self.contacts.append(
                    new_contact(rng, "champion", self.domain, self._taken_emails, t)
                )
        if not self.alive_users():
            self._provision(min(self.cal.end - 1, t + rng.randrange(MINUTE, HOUR)))
        self._at(t + rng.randrange(1, 10) * DAY, "meeting", "kickoff")
        for _ in range({"smb": 1, "mid_market": 2, "enterprise": 3}[seg.name]):
            if rng.random() < 0.7:
                self._at(t + rng.randrange(7, 60) * DAY, "meeting", "training")
        if trial:
            self._at(sub.trial_end, "trial_end", sub)
        else:
            self._paid(sub, t)

    def _paid(self, sub: Subscription, t: int) -> None:
        sub.converted = True
        end = sub.period_start(self.cal, 1) - DAY if sub.annual else None
        self._opportunity("new_business", "closed_won", sub, t, t, end)
        self._at(t, "renewal", sub, 0, sub.cycle)

    def _opportunity(
        self,
        kind: str,
        stage: str,
        sub: Subscription,
        close: int,
        start: int | None,
        end: int | None,
        *,
        amount: int | None = None,
        updated: int | None = None,
    ) -> None:
        """Record a deal; amounts are the ARR in the subscription's currency."""
        amount = sub.arr_cents() if amount is None else amount
        updated = min(close, self.cal.end - 1) if updated is None else updated
        self.opportunities.append(
            Opportunity(kind, stage, amount, sub.customer.currency, close, start, end, updated)
        )

    def _on_trial_end(self, t: int, sub: Subscription) -> None:
        if not sub.running:
            return
        if self.converts:
            self._paid(sub, t)
            return
        canceled = max(sub.started + HOUR, t - self.rng.randrange(0, 5 * DAY))
        self._opportunity("new_business", "closed_lost", sub, t, None, None)
        self._end(sub, t, canceled, reactivate=False)

    def _on_renewal(self, t: int, sub: Subscription, k: int, cycle: int) -> None:
        if not sub.running or sub.cycle != cycle:
            return
        rng, cal = self.rng, self.cal
        if k > 0 and sub.cancel_at_period_end:
            self._end(sub, t, sub.canceled_at or t, reactivate=True)
            return
        nxt = sub.period_start(cal, k + 1)
        row = sub.current
        assert row is not None
        if k > 0 and sub is self.main and sub.annual:
            if self.disengaging:
                canceled = max(
                    self.intent_at, row.valid_from + HOUR, t - rng.randrange(7 * DAY, 60 * DAY)
                )
                self._opportunity("renewal", "closed_lost", sub, t, t, nxt - DAY)
                self._end(sub, t, min(canceled, t), reactivate=True)
                return
            updates: dict[str, object] = {}
            if rng.random() < 0.4:
                updates["unit"] = round(row.unit * rng.uniform(1.03, 1.07) / 100) * 100
            if row.discount and rng.random() < 0.5:
                updates["discount"] = None
            right_size = max(self.segment.seats_min, math.ceil(self.demand * 1.1))
            if right_size < 0.8 * row.quantity and rng.random() < 0.5:
                updates["quantity"] = right_size
            if updates:
                sub.change(t, **updates)
            signed = t - rng.randrange(0, 12) * DAY
            self._opportunity("renewal", "closed_won", sub, signed, t, nxt - DAY)
        if sub.intro_until == k and row.discount:
            sub.change(t, discount=None)
        sub.period = (t, nxt)
        give_up = issue_invoice(sub, t, t, nxt, sub.per_period_cents(), rng, self._odds())
        if give_up is not None:
            self._at(give_up, "dunning_end", sub)
        if sub is self.main and sub.annual:
            self._at(nxt - rng.randrange(60, 90) * DAY, "meeting", "value_review")
        self._at(nxt, "renewal", sub, k + 1, cycle)

    def _on_dunning_end(self, t: int, sub: Subscription) -> None:
        if sub.running:
            self._end(sub, t, t, reactivate=True, involuntary=True)

    def _on_cancel(self, t: int, sub: Subscription) -> None:
        if (
            not sub.running
            or sub is not self.main
            or not self.disengaging
            or sub.cancel_at_period_end
        ):
            return
        if self.rng.random() < 0.6:
            self._end(sub, t, t, reactivate=True)
        else:
            sub.cancel_at_period_end = True
            sub.canceled_at = t

    def _on_change(self, t: int, sub: Subscription, kind: str, updates: dict[str, object]) -> None:
        row = sub.current
        if not sub.running or row is None or t <= row.valid_from or sub.cancel_at_period_end:
            return
        before_arr, before = sub.arr_cents(), sub.per_period_cents()
        sub.change(t, **updates)
        prorate(sub, t, before, sub.per_period_cents(), self.rng, self._odds())
        if kind == "expansion" and sub.arr_cents() > before_arr:
            end = sub.period[1] - DAY if sub.annual and sub.period else None
            delta = sub.arr_cents() - before_arr
            self._opportunity("expansion", "closed_won", sub, t, t, end, amount=delta)

    def _on_pause(self, t: int, sub: Subscription) -> None:
        if not sub.running or sub.current is None or sub is not self.main:
            return
        sub.close(t)
        sub.paused_at, sub.resumed_at = t, None
        sub.cycle += 1
        self.access[-1][1] = t
        self._at(t + self.rng.randrange(30, 75) * DAY, "resume", sub)

    def _on_resume(self, t: int, sub: Subscription) -> None:
        if not sub.running:
            return
        sub.reopen(t)
        sub.resumed_at = t
        sub.anchor = t
        sub.cycle += 1
        self.access.append([t, None])
        self._at(t, "renewal", sub, 0, sub.cycle)

    def _on_addon(self, t: int) -> None:
        main = self.main
        if main is None or not main.running or self.customer is None or main.current is None:
            return
        seats = self.rng.randint(3, 12)
        plan = PLAN_BY_TIER_INTERVAL[("growth", "month")]
        unit = unit_price(self.currency, "growth", "month", 1)
        sub = Subscription(
            self.customer, t, None, False, [ItemRow(plan, seats, unit, 1, None, t)], addon=True
        )
        sub.converted = True
        self.customer.subs.append(sub)
        self.subs.append(sub)
        self.addon = sub
        self.demand += seats * self.rng.uniform(0.7, 1.0)
        self._opportunity("expansion", "closed_won", sub, t, t, None)
        self._at(t, "renewal", sub, 0, sub.cycle)

    def _on_meeting(self, t: int, kind: str) -> None:
        sub = self.main
        if sub is None or not sub.running or sub.current is None:
            return
        t -= t % 1800
        while (self.cal.start.weekday() + t // DAY) % 7 >= 5:
            t += DAY  # meetings move to the next working day
        if t < self.cal.end:
            self._log_meeting(t, kind, self.e)

    def _on_user_stage(self, t: int, n: int) -> None:
        sub = self.main
        if sub is None or not sub.running or sub.current is None:
            return
        while len(self.alive_users()) < n:
            self._provision(t)

    def _on_milestone(self, t: int, event: int, stage: int) -> None:
        sub, users = self.main, self.alive_users()
        if sub is None or not sub.running or sub.current is None or not users:
            return
        at = max(t, users[0].provisioned + MINUTE)
        if at >= self.cal.end:
            return
        if stage == self.world.vocab.first_value_stage:
            self.t_fv = max(at, self.t_fv or 0)
        self.milestones.append(Milestone(at, users[0], event, stage))

    def _end(
        self,
        sub: Subscription,
        t: int,
        canceled: int,
        *,
        reactivate: bool,
        involuntary: bool = False,
    ) -> None:
        if not sub.running:
            return
        row = sub.current
        if row is not None and t <= row.valid_from:
            t = row.valid_from + HOUR
        if t >= self.cal.end:
            return
        sub.ended_at = t
        sub.canceled_at = max(sub.started, min(canceled, t))
        sub.close(t)
        if sub is not self.main:
            return
        rng = self.rng
        if self.access and self.access[-1][1] is None:
            self.access[-1][1] = t
        if self.addon is not None and self.addon.running:
            self._end(self.addon, t, canceled, reactivate=False)
        self.addon = None
        self.main = None
        self.disengaging = False
        if rng.random() < 0.75:
            for u in self.alive_users():
                gone = t + rng.randrange(0, 10 * DAY)
                if gone < self.cal.end:
                    u.deprovisioned = gone
        rate = REACTIVATION_RATE_INVOLUNTARY if involuntary else REACTIVATION_RATE
        if reactivate and sub.converted and rng.random() < rate:
            back = t + rng.randrange(45, 270) * DAY
            if back < self.cal.end:
                self._at(back, "start")

    # --- onboarding -----------------------------------------------------------------------------
    def _plan_onboarding(self, t: int, trial: bool) -> None:
        """Schedule the onboarding milestones and the feature adoption of the account."""
        rng, vocab, seg = self.rng, self.world.vocab, self.segment
        speed = math.exp(0.35 * self.q) * (0.65 if seg.name == "enterprise" else 1.0)
        fv = vocab.first_value_stage
        if rng.random() < sigmoid(-2.0 - 1.1 * self.q):
            reach = rng.randrange(0, fv)  # never reaches first value
        else:
            reach = fv
            while reach < len(vocab.stages) and rng.random() < 0.8:
                reach += 1
        if trial:
            self.converts = rng.random() < sigmoid(1.4 + 0.9 * self.q - 1.8 * (reach < 2))
        slow = 1.0 if self.converts else 1.5
        now, emitted = t, dict.fromkeys(vocab.milestones, 0)
        for i, stage in enumerate(vocab.stages):
            mean = STAGE_DELAY_DAYS[i] if i < len(STAGE_DELAY_DAYS) else 8.0
            prev, now = (
                now,
                now + max(5 * MINUTE, int(rng.expovariate(1.0 / mean) * DAY * slow / speed)),
            )
            if stage.user_provisioned is not None:
                self.user_stage = (stage.user_provisioned, now)
                self._at(now, "user_stage", stage.user_provisioned)
            elif stage.number <= reach and stage.event is not None:
                missing = stage.occurrence - emitted[stage.event]
                for at in sorted(rng.randrange(prev, now) for _ in range(missing - 1)):
                    self._at(at, "milestone", stage.event, 0)
                self._at(now, "milestone", stage.event, stage.number)
                emitted[stage.event] = stage.occurrence
        # Feature adoption: the most popular feature from the start, the others spreading later.
        base = t + int(rng.uniform(5, 25) * DAY / speed)
        for rank, ev in enumerate(vocab.feature_events):
            if not vocab.tier_gated[ev]:
                self.adopt_at[ev] = t
                continue
            never = sigmoid(-1.6 - 0.7 * self.q + 1.5 * (reach < fv) + 0.25 * rank)
            if rank == 0:
                self.adopt_at[ev] = t
            elif rng.random() < never:
                self.adopt_at[ev] = None
            else:
                self.adopt_at[ev] = base + int(rng.expovariate(1.0 / (7 + 14 * rank)) * DAY / speed)

    # --- monthly records ------------------------------------------------------------------------
    def _span(self, s0: int, s1: int) -> tuple[int, int] | None:
        """The part of the month in which the account had access to the product."""
        lo = hi = None
        for start, end in self.access:
            a, b = max(s0, start), min(s1, end if end is not None else s1, self.cal.end)
            if a < b:
                lo = a if lo is None else lo
                hi = b
        return (lo, hi) if lo is not None and hi is not None else None

    def _month_records(self, m: int, s0: int, s1: int, e_mid: float) -> None:
        span = self._span(s0, s1)
        if span is None:
            return
        lo, hi = span
        rng, seg = self.rng, self.segment
        frac = (hi - lo) / (s1 - s0)
        stressed = e_mid < -0.5
        self._users_month(lo, hi)
        # Support tickets: more when stressed or leaving; critical ones sometimes get stuck.
        lam = seg.tickets_per_month * frac * (1.0 + 1.5 * self.disengaging + 0.5 * stressed)
        lam *= 0.6 + 0.4 * math.sqrt(max(1, len(self.alive_users())) / seg.seats_median)
        for _ in range(poisson(rng, lam)):
            self.tickets.append(self._ticket(self._moment(lo, hi)))
        # Contacts leave; a departed champion is replaced after a while, or not.
        for c in list(self.contacts):
            if c.ended is not None or (c.started is not None and c.started > lo):
                continue
            rate = {
                "champion": CHAMPION_DEPARTURE + CHAMPION_DEPARTURE_STRESSED * stressed,
                "executive_sponsor": SPONSOR_DEPARTURE,
            }.get(c.role, CONTACT_DEPARTURE)
            if rng.random() < rate * frac:
                c.ended = rng.randrange(lo, hi)
                if c.role in ("champion", "executive_sponsor"):
                    if c.role == "champion":
                        self.champion_left = c.ended
                    if rng.random() < (0.6 if c.role == "champion" else 0.5):
                        start = c.ended + rng.randrange(10, 75) * DAY
                        if start < self.cal.end:
                            self.contacts.append(
                                new_contact(rng, c.role, self.domain, self._taken_emails, start)
                            )
        # NPS survey every six months from the second month on.
        if self.first_start is not None and (m - self.cal.month_of(self.first_start)) % 6 == 2:
            self._nps_wave(lo, hi, e_mid)
        # Customer-success meetings.
        months_in = m - self.cal.month_of(self.first_start or lo)
        check_in = seg.check_in_rate + 0.35 * (self.disengaging or stressed)
        if rng.random() < check_in:
            self._meeting(lo, hi, "check_in", e_mid)
        if seg.qbr_every and months_in > 0 and months_in % seg.qbr_every == 0:
            kind = (
                "ebr"
                if seg.name == "enterprise" and months_in % (2 * seg.qbr_every) == 0
                else "qbr"
            )
            self._meeting(lo, hi, kind, e_mid)
        if months_in > 2 and rng.random() < (0.12 if seg.name == "enterprise" else 0.04):
            self._meeting(lo, hi, "training", e_mid)

    def _meeting(self, lo: int, hi: int, kind: str, e_mid: float) -> None:
        t = self._meeting_time(lo, hi)
        if t is not None:
            self._log_meeting(t, kind, e_mid)

    def _log_meeting(self, t: int, kind: str, e: float) -> None:
        """Record a meeting; disengaged customers skip them (kickoffs are nearly always held)."""
        if kind == "kickoff":
            attend = 0.95
        else:
            attend = sigmoid(1.6 + 1.3 * (e - 0.3) - 1.0 * self.disengaging)
        attended = self.rng.random() < attend
        self.activities.append(Activity(kind, t, attended))
        if attended and kind in ("qbr", "ebr"):
            self.last_review = t

    def _ticket(self, t: int) -> Ticket:
        rng = self.rng
        severities = [
            (s, w * (1.6 if s == "critical" and self.disengaging else 1.0)) for s, w in SEVERITIES
        ]
        severity = weighted(rng, severities)
        hours = RESOLUTION_HOURS[severity] * math.exp(rng.gauss(0.0, 1.0))
        resolved: int | None = t + int(hours * HOUR) + MINUTE
        stuck = CRITICAL_STUCK if severity == "critical" else 0.02
        if rng.random() < stuck:
            resolved = None if rng.random() < 0.5 else t + rng.randrange(20, 120) * DAY
        horizon = self.cal.end
        touched = t + min(int(rng.expovariate(1 / 2.0) * DAY), (horizon - 1 - t))
        return Ticket(t, severity, resolved, pending=rng.random() < 0.35, touched=max(t, touched))

    def _nps_wave(self, lo: int, hi: int, e_mid: float) -> None:
        rng, s = self.rng, self.signals
        critical = s.critical_open if s else 0
        champion = s.champion if s else 0.0
        for c in self.contacts:
            if c.ended is not None or (c.started is not None and c.started > lo):
                continue
            if c.role == "other" or rng.random() > 0.3:
                continue
            mean = 7.2 + 1.6 * (e_mid - 0.3) - 0.8 * min(critical, 2) - 1.0 * champion
            score = min(10, max(0, round(rng.gauss(mean, 1.5))))
            contact = c if rng.random() > 0.1 else None
            self.nps.append(
                NpsResponse(self._moment(lo, hi), score, contact, nps_comment(rng, score))
            )
        self.nps.sort(key=lambda r: r.at)

    def _users_month(self, lo: int, hi: int) -> None:
        sub, rng = self.main, self.rng
        if sub is None or not sub.running or sub.current is None:
            return
        alive = self.alive_users()
        target = max(1, min(int(self.demand), self._seats()))
        if self.user_stage is not None:
            n, at = self.user_stage
            if at >= hi:
                target = min(target, n - 1)
            else:
                ramp = min(1.0, (hi - at) / (self.ramp_days * DAY))
                target = min(target, max(n, n + math.ceil((target - n) * ramp)))
        for u in alive[1:]:
            if rng.random() < USER_TURNOVER:
                u.deprovisioned = max(u.provisioned + HOUR, rng.randrange(lo, hi))
        alive = self.alive_users()
        need = target - len(alive)
        if need > 0:
            first = lo if self.user_stage is None else max(lo, min(hi - 1, self.user_stage[1]))
            for t in sorted(rng.randrange(first, hi) for _ in range(need)):
                self._provision(t)
        elif need < -1:
            for u in rng.sample(alive[1:], min(len(alive) - 1, -need)):
                u.deprovisioned = max(u.provisioned + HOUR, rng.randrange(lo, hi))

    def _provision(self, t: int) -> None:
        rng = self.rng
        if not self.users:
            role = "admin"
        else:
            role = weighted(rng, (("admin", 0.08), ("member", 0.72), ("viewer", 0.2)))
        z = rng.gauss(0.0, 0.9) + (0.4 if role == "admin" else -0.5 if role == "viewer" else 0.0)
        never = bool(self.users) and rng.random() < 0.07 + 0.06 * (self.q < -0.8)
        self.users.append(
            User(len(self.users) + 1, role, t, z, rng.lognormvariate(-0.18, 0.6), never)
        )

    def _initial_contacts(self) -> None:
        rng, seg, t = self.rng, self.segment, self.created
        roles = ["champion", "admin"]
        if rng.random() < seg.sponsor_share:
            roles.append("executive_sponsor")
        extra_users = {"smb": (0, 1), "mid_market": (1, 3), "enterprise": (2, 5)}[seg.name]
        roles += ["user"] * rng.randint(*extra_users)
        if seg.name != "smb" and rng.random() < 0.6:
            roles.append("other")
        if seg.name == "enterprise":
            roles.append("admin")
        for role in roles:
            self.contacts.append(new_contact(rng, role, self.domain, self._taken_emails, t))

    # --- the state at the horizon -----------------------------------------------------------------
    def _finish(self) -> None:
        """Open pipeline as of the horizon, and the CRM owner history."""
        cal, rng, horizon = self.cal, self.rng, self.cal.end
        sub = self.main
        if self.first_start is None:
            expected = self.seats0 * unit_price(
                self.currency, weighted(rng, self.segment.tier_weights), "month", 1
            )
            amount = expected * 12 // 100
            touched = min(horizon - 1, self.created + rng.randrange(HOUR, 5 * DAY))
            self.opportunities.append(
                Opportunity(
                    "new_business",
                    "open",
                    amount,
                    self.currency,
                    self.planned_start,
                    None,
                    None,
                    touched,
                )
            )
        elif sub is not None and sub.running and not sub.converted:
            touched = min(horizon - 1, sub.started + HOUR)
            self._opportunity(
                "new_business", "open", sub, sub.trial_end or horizon, None, None, updated=touched
            )
        elif sub is not None and sub.running and sub.current is not None:
            renewal = sub.next_renewal_after(cal, horizon - 1)
            if sub.annual and renewal - horizon < 120 * DAY and not sub.cancel_at_period_end:
                end = cal.add_months(renewal, sub.period_months) - DAY
                touched = max(sub.started, horizon - rng.randrange(1, 30) * DAY)
                self._opportunity("renewal", "open", sub, renewal, renewal, end, updated=touched)
            if self.demand > 0.9 * self._seats() and self.e > 0.0 and not self.disengaging:
                per_seat = sub.arr_cents() // max(1, sub.seats())
                extra = max(1, math.ceil(self.demand * 1.15) - self._seats())
                close = horizon + rng.randrange(14, 60) * DAY
                touched = max(sub.started, horizon - rng.randrange(1, 20) * DAY)
                self._opportunity(
                    "expansion",
                    "open",
                    sub,
                    close,
                    None,
                    None,
                    amount=per_seat * extra,
                    updated=touched,
                )
        if rng.random() < 0.08 and len(self.segment.csms) > 1:
            at = rng.randrange(self.created, horizon)
            self.owner = rng.choice([c for c in self.segment.csms if c != self.owner])
            self.updated = at
        self.opportunities.sort(key=lambda o: (o.close, o.type))
        self.activities.sort(key=lambda a: a.at)
        self.tickets.sort(key=lambda t: t.created)


def simulate_orphan(k: int, world: World) -> Customer:
    """A self-serve billing customer that never made it into the CRM (account_id null)."""
    cal = world.cal
    rng = random.Random(f"cs-warehouse:{world.config.seed}:orphan:{k}")
    start = rng.randrange(0, max(1, cal.end * 2 // 3))
    customer = Customer(None, "USD", max(0, start - rng.randrange(MINUTE, HOUR)))
    plan = PLAN_BY_TIER_INTERVAL[("starter", "month")]
    row = ItemRow(plan, rng.randint(1, 3), unit_price("USD", "starter", "month", 1), 1, None, start)
    sub = Subscription(customer, start, None, False, [row], converted=True)
    customer.subs.append(sub)
    end = start + rng.randrange(40, 400) * DAY + rng.randrange(DAY) if rng.random() < 0.5 else None
    k = 0
    while (t := sub.period_start(cal, k)) < cal.end and (end is None or t < end):
        nxt = sub.period_start(cal, k + 1)
        sub.period = (t, nxt)
        issue_invoice(sub, t, t, nxt, sub.per_period_cents(), rng, PaymentOdds(card_failure=0.0))
        k += 1
    if end is not None and end < cal.end:
        sub.ended_at = sub.canceled_at = end
        sub.close(end)
    return customer
