"""Billing: customers, subscriptions with their price history, invoices and payments, FX rates.

The lifecycle simulation (``lifecycle.py``) decides *when* things happen; this module holds the
billing mechanics it calls (price book, item-row changes, period invoices, proration, card dunning
and net-terms payment) and turns the records into the contract's billing rows. Money is integer
cents; unit prices are integer 1/10,000ths of the major unit so negotiated per-seat prices stay
exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from ingestion.synthetic.config import (
    ANNUAL_PRICE_MONTHS,
    BIENNIAL_PRICE_MONTHS,
    CURRENCIES,
    FX_START,
    LIST_PRICE_CENTS,
    PLANS,
    Plan,
)
from ingestion.synthetic.timeline import DAY, HOUR, MINUTE, Calendar

Row = dict[str, str | None]

#: Card retries after a failed charge, in days after the invoice (Stripe-like smart retries).
CARD_RETRY_DAYS = (0, 3, 5, 8)
#: Days after a failed invoice when dunning gives up: the invoice turns uncollectible and the
#: subscription is canceled (involuntary churn).
CARD_DUNNING_DAYS = 21
NET_TERMS_DAYS = 30
#: Net-terms invoices wait about a day in draft (finance review) before they are finalized.
DRAFT_REVIEW_SECONDS = 22 * HOUR


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def unit_money(units: int) -> str:
    """A unit price in 1/10,000ths: two decimals when whole cents, else four."""
    if units % 100 == 0:
        return money(units // 100)
    return f"{units // 10_000}.{units % 10_000:04d}"


def round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def unit_price(currency: str, tier: str, interval: str, interval_count: int) -> int:
    """List price per seat per billing period, in 1/10,000ths."""
    monthly = LIST_PRICE_CENTS[currency][tier] * 100
    if interval == "month":
        return monthly * interval_count
    months = ANNUAL_PRICE_MONTHS if interval_count == 1 else BIENNIAL_PRICE_MONTHS
    return monthly * months


@dataclass
class ItemRow:
    plan: Plan
    quantity: int
    #: Price per unit per billing period, in 1/10,000ths of the major unit.
    unit: int
    interval_count: int
    discount: int | None
    valid_from: int
    valid_to: int | None = None

    @property
    def months(self) -> int:
        return self.interval_count * (12 if self.plan.billing_interval == "year" else 1)

    def period_cents(self) -> int:
        """What one billing period of this row costs, in cents (half-up rounding)."""
        net = self.quantity * self.unit * (100 - (self.discount or 0))
        return round_half_up(net, 100 * 100)


@dataclass(eq=False)
class Customer:
    account_index: int | None
    currency: str
    created: int
    subs: list[Subscription] = field(default_factory=list)
    id: str = ""


@dataclass(eq=False)
class Invoice:
    sub: Subscription
    issued: int
    period_start: int
    #: Exclusive end instant of the invoiced period.
    period_end: int
    amount: int
    finalized: int = 0
    due: int | None = None
    attempts: list[int] = field(default_factory=list)
    paid_at: int | None = None
    uncollectible_at: int | None = None
    voided_at: int | None = None
    id: str = ""

    def status(self, horizon: int) -> str:
        if self.voided_at is not None and self.voided_at < horizon:
            return "void"
        if self.finalized >= horizon:
            return "draft"
        if self.paid_at is not None and self.paid_at < horizon:
            return "paid"
        if self.uncollectible_at is not None and self.uncollectible_at < horizon:
            return "uncollectible"
        return "open"

    @property
    def payment_problem(self) -> bool:
        """Paid after the due date (by date) or never: what the health model counts."""
        if self.due is None or self.voided_at is not None:
            return False
        return self.paid_at is None or self.paid_at // DAY > self.due // DAY


@dataclass(eq=False)
class Subscription:
    customer: Customer
    started: int
    trial_end: int | None
    net_terms: bool
    items: list[ItemRow]
    addon: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    cancel_at_period_end: bool = False
    paused_at: int | None = None
    resumed_at: int | None = None
    #: Start of the billing cycle: renewals fall on its day of month, ``period_months`` apart.
    anchor: int = 0
    #: Bumped when the cycle restarts (resume after a pause), to drop stale renewals.
    cycle: int = 0
    period: tuple[int, int] | None = None
    #: Renewal number at which an introductory discount ends.
    intro_until: int | None = None
    converted: bool = False
    invoices: list[Invoice] = field(default_factory=list)
    id: str = ""

    def __post_init__(self) -> None:
        self.anchor = self.trial_end if self.trial_end is not None else self.started

    # --- state ----------------------------------------------------------------------------------
    @property
    def last(self) -> ItemRow:
        return self.items[-1]

    @property
    def current(self) -> ItemRow | None:
        return self.items[-1] if self.items[-1].valid_to is None else None

    @property
    def running(self) -> bool:
        return self.ended_at is None

    @property
    def period_months(self) -> int:
        return self.last.months

    @property
    def annual(self) -> bool:
        return self.last.plan.billing_interval == "year"

    def period_start(self, cal: Calendar, k: int) -> int:
        return cal.add_months(self.anchor, k * self.period_months)

    def next_renewal_after(self, cal: Calendar, t: int) -> int:
        """The first period start strictly after ``t``."""
        k = max(0, (cal.month_of(t) - cal.month_of(self.anchor)) // self.period_months - 1)
        while self.period_start(cal, k) <= t:
            k += 1
        return self.period_start(cal, k)

    def per_period_cents(self) -> int:
        row = self.current
        return row.period_cents() if row is not None else 0

    def arr_cents(self) -> int:
        row = self.current or self.last
        return row.period_cents() * 12 // row.months

    def seats(self) -> int:
        row = self.current
        return row.quantity if row is not None else 0

    # --- price history --------------------------------------------------------------------------
    def change(self, t: int, **updates: object) -> tuple[ItemRow, ItemRow]:
        """Close the row in force and open the next at the same instant (the contract's rule)."""
        old = self.current
        assert old is not None and t >= old.valid_from, "change needs a row in force"
        if t == old.valid_from:  # a second change at the same instant amends the new row
            before = replace(old)
            for key, value in updates.items():
                setattr(old, key, value)
            return before, old
        old.valid_to = t
        new = replace(old, valid_from=t, valid_to=None, **updates)
        self.items.append(new)
        return old, new

    def close(self, t: int) -> None:
        """End the row in force at ``t`` (the subscription ends or pauses)."""
        row = self.current
        if row is not None:
            assert t > row.valid_from, "a row must be in force for a while before it closes"
            row.valid_to = t

    def reopen(self, t: int) -> None:
        self.items.append(replace(self.last, valid_from=t, valid_to=None))


# --- invoices and payments ----------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentOdds:
    """Probabilities of payment trouble for one invoice (the lifecycle raises them under stress)."""

    card_failure: float = 0.03
    card_recovery: float = 0.7
    late: float = 0.08
    bad_debt: float = 0.005
    void: float = 0.015


def issue_invoice(
    sub: Subscription,
    t: int,
    period_start: int,
    period_end: int,
    amount: int,
    rng: random.Random,
    odds: PaymentOdds,
) -> int | None:
    """Issue an invoice at ``t`` and settle it; returns when dunning gives up, if it does.

    Card customers are charged at once; a failed charge is retried on ``CARD_RETRY_DAYS`` and the
    invoice turns uncollectible after ``CARD_DUNNING_DAYS``. Net-terms customers get the invoice
    after a day in draft and pay within ``NET_TERMS_DAYS``, some late, rarely never. A few net-terms
    invoices are voided for a billing error and reissued.
    """
    inv = Invoice(sub, t, period_start, period_end, amount)
    sub.invoices.append(inv)
    if amount == 0:
        inv.finalized = inv.due = t
        inv.attempts = [t]
        inv.paid_at = t
        return None
    if not sub.net_terms:
        inv.finalized = inv.due = t
        if rng.random() >= odds.card_failure:
            inv.attempts = [t + rng.randrange(MINUTE, 30 * MINUTE)]
            inv.paid_at = inv.attempts[0] + rng.randrange(1, 90)
            return None
        times = [t + d * DAY + rng.randrange(MINUTE, 2 * HOUR) for d in CARD_RETRY_DAYS]
        if rng.random() < odds.card_recovery:
            k = rng.randint(1, len(times) - 1)
            inv.attempts = times[: k + 1]
            inv.paid_at = times[k] + rng.randrange(1, 90)
            return None
        inv.attempts = times
        inv.uncollectible_at = t + CARD_DUNNING_DAYS * DAY
        return inv.uncollectible_at
    inv.finalized = t + DRAFT_REVIEW_SECONDS + rng.randrange(0, 4 * HOUR)
    inv.due = inv.finalized + NET_TERMS_DAYS * DAY
    if rng.random() < odds.void:
        inv.voided_at = inv.finalized + rng.randrange(DAY, 3 * DAY)
        return issue_invoice(
            sub, inv.voided_at, period_start, period_end, amount, rng, replace(odds, void=0.0)
        )
    r = rng.random()
    if r < odds.bad_debt:
        inv.uncollectible_at = inv.due + 60 * DAY
        return inv.uncollectible_at
    if r < odds.bad_debt + odds.late:
        inv.paid_at = inv.due + rng.randrange(2 * DAY, 45 * DAY)
    else:
        inv.paid_at = inv.finalized + rng.randrange(2 * DAY, (NET_TERMS_DAYS - 1) * DAY)
    inv.attempts = [inv.paid_at]
    return None


def prorate(
    sub: Subscription, t: int, old_cents: int, new_cents: int, rng: random.Random, odds: PaymentOdds
) -> None:
    """Invoice the rest of the current period at the new price when a mid-period change raises it."""
    if sub.period is None or new_cents <= old_cents:
        return
    start, end = sub.period
    if not start < t < end:
        return
    amount = round_half_up((new_cents - old_cents) * (end - t), end - start)
    if amount > 0:
        safe = replace(odds, card_failure=0.0, bad_debt=0.0, void=0.0)
        issue_invoice(sub, t, t, end, amount, rng, safe)


# --- rows -------------------------------------------------------------------------------------------


def plans_rows(cal: Calendar) -> Iterator[Row]:
    catalogue_published = cal.ts(0)
    for p in sorted(PLANS, key=lambda p: p.plan_id):
        yield {
            "plan_id": p.plan_id,
            "name": p.name,
            "tier": p.tier,
            "billing_interval": p.billing_interval,
            "seat_limit": None if p.seat_limit is None else str(p.seat_limit),
            "updated_at": catalogue_published,
        }


def customers_rows(
    customers: list[Customer], account_ids: list[str], cal: Calendar
) -> Iterator[Row]:
    for c in customers:
        yield {
            "billing_customer_id": c.id,
            "account_id": None if c.account_index is None else account_ids[c.account_index],
            "currency": c.currency,
            "created_at": cal.ts(c.created),
            "updated_at": cal.ts(c.created),
        }


def subscription_status(sub: Subscription, horizon: int) -> str:
    if sub.ended_at is not None:
        return "canceled"
    if sub.paused_at is not None and (sub.resumed_at is None or sub.resumed_at >= horizon):
        return "paused"
    if sub.trial_end is not None and sub.trial_end >= horizon:
        return "trialing"
    for inv in sub.invoices:
        if inv.status(horizon) == "open" and inv.due is not None and inv.due < horizon:
            return "past_due"
    return "active"


def subscriptions_rows(subs: list[Subscription], cal: Calendar) -> Iterator[Row]:
    horizon = cal.end
    for s in subs:
        status = subscription_status(s, horizon)
        if status == "trialing":
            period_end = s.trial_end
        elif status in ("active", "past_due"):
            period_end = s.next_renewal_after(cal, horizon - 1)
        else:
            period_end = None
        changes = [s.started, s.trial_end, s.canceled_at, s.ended_at, s.paused_at, s.resumed_at]
        changes += [r.valid_from for r in s.items] + [r.valid_to for r in s.items]
        if s.period is not None:
            changes.append(s.period[0])
        updated = max(t for t in changes if t is not None and t < horizon)
        yield {
            "subscription_id": s.id,
            "billing_customer_id": s.customer.id,
            "status": status,
            "started_at": cal.ts(s.started),
            "trial_end": cal.ts(s.trial_end),
            "canceled_at": cal.ts(s.canceled_at),
            "ended_at": cal.ts(s.ended_at),
            "current_period_end": cal.ts(period_end),
            "updated_at": cal.ts(updated),
        }


def subscription_items_rows(subs: list[Subscription], cal: Calendar) -> Iterator[Row]:
    for s in subs:
        item_id = f"si_{s.id.removeprefix('sub_')}_1"
        for r in s.items:
            yield {
                "item_id": item_id,
                "subscription_id": s.id,
                "plan_id": r.plan.plan_id,
                "quantity": str(r.quantity),
                "unit_amount": unit_money(r.unit),
                "currency": s.customer.currency,
                "billing_interval": r.plan.billing_interval,
                "interval_count": str(r.interval_count),
                "discount_percent": None if r.discount is None else str(r.discount),
                "valid_from": cal.ts(r.valid_from),
                "valid_to": cal.ts(r.valid_to),
                "updated_at": cal.ts(r.valid_from if r.valid_to is None else r.valid_to),
            }


def invoices_rows(invoices: list[Invoice], cal: Calendar) -> Iterator[Row]:
    horizon = cal.end
    for inv in invoices:
        status = inv.status(horizon)
        paid = status == "paid"
        attempts = [a for a in inv.attempts if a < horizon] if status != "draft" else []
        touched = [inv.issued, inv.finalized if status != "draft" else None, *attempts]
        touched += [inv.paid_at, inv.uncollectible_at, inv.voided_at]
        updated = max(t for t in touched if t is not None and t < horizon)
        yield {
            "invoice_id": inv.id,
            "billing_customer_id": inv.sub.customer.id,
            "subscription_id": inv.sub.id,
            "issued_at": cal.ts(inv.issued),
            "due_at": cal.ts(inv.due),
            "period_start": cal.ds(inv.period_start),
            "period_end": cal.ds(max(inv.period_start, inv.period_end - DAY)),
            "amount_due": money(inv.amount),
            "amount_paid": money(inv.amount if paid else 0),
            "currency": inv.sub.customer.currency,
            "status": status,
            "attempt_count": str(len(attempts)),
            "paid_at": cal.ts(inv.paid_at) if paid else None,
            "updated_at": cal.ts(updated),
        }


def fx_rows(cal: Calendar, seed: int) -> Iterator[Row]:
    """Monthly rates to USD: a log random walk per currency, USD fixed at 1."""
    rng = np.random.default_rng([seed, 0xF0])
    shocks = {c: rng.normal(0.0, FX_START[c][1], cal.months) for c in sorted(FX_START)}
    for currency in CURRENCIES:
        if currency == "USD":
            rates = [1.0] * cal.months
        else:
            start, _ = FX_START[currency]
            rates = [start * math.exp(x) for x in np.cumsum(shocks[currency])]
        for m, rate in enumerate(rates):
            yield {
                "currency": currency,
                "month": cal.month_first(m).isoformat(),
                "rate_to_usd": f"{rate:.8f}",
            }
