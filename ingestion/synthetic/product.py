"""Product analytics: the users table and the daily event files.

Events are sampled one day at a time, vectorised over every user of every account:

1. a user can act on day d when it was provisioned before d, is not deprovisioned by d, and its
   account has product access that whole day (a running, unpaused subscription or trial);
2. it is *active* with probability ``sigmoid(e_account(d) + z_user)``, damped on weekends, where
   ``e_account`` is the account's latent engagement interpolated between month boundaries;
3. an active user emits ``1 + Poisson(lambda_user - 1)`` events (mean ``events_per_user_day``);
4. the first event of a user's day is usually the session event (``login``); the others are drawn
   from the account's feature mix: features adopted by then and included in its tier that day;
5. onboarding milestones scheduled by the lifecycle are added at their exact instants.

Memory is bounded by one day of events; each day becomes one Parquet file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingestion.contract import table as contract_table
from ingestion.synthetic.config import TIERS, EventVocabulary
from ingestion.synthetic.lifecycle import AccountSim
from ingestion.synthetic.timeline import DAY, Calendar
from ingestion.synthetic.writers import id_array

Row = dict[str, str | None]

NEVER = np.iinfo(np.int32).max
#: Activity on Saturdays and Sundays relative to weekdays.
WEEKEND_FACTOR = 0.15
#: Probability that a user's first event of the day is the session event.
SESSION_FIRST = 0.85
#: Share of regular events without properties.
NULL_PROPERTIES = 0.35
#: Spread (hours) of activity around the account's working hour.
HOUR_SPREAD = 2.6


def users_rows(accounts: Sequence[AccountSim], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        for u in a.users:
            yield {
                "user_id": u.id,
                "account_id": a.id,
                "role": u.role,
                "provisioned_at": cal.ts(u.provisioned),
                "deprovisioned_at": cal.ts(u.deprovisioned),
                "updated_at": cal.ts(
                    u.deprovisioned if u.deprovisioned is not None else u.provisioned
                ),
            }


def events_schema() -> pa.Schema:
    """The events file schema: the contract's columns, occurred_at as a UTC timestamp."""
    spec = contract_table("product/events")
    types = {"occurred_at": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [
            pa.field(c.name, types.get(c.name, pa.string()), nullable=not c.required)
            for c in spec.columns
        ]
    )


def _properties(
    vocab: EventVocabulary,
) -> tuple[list[str | None], np.ndarray, np.ndarray, dict[int, int]]:
    """The JSON property strings: index 0 is null; per event a contiguous block of candidates."""
    values: list[str | None] = [None]
    starts, counts = [], []
    for i, feature in enumerate(vocab.features):
        if i == vocab.session:
            options = [{"method": m} for m in ("sso", "password", "google")]
        elif feature == "api":
            options = [{"client": "api", "version": v} for v in ("v1", "v2")]
        else:
            options = [{"client": c} for c in ("web", "desktop", "mobile")]
        starts.append(len(values))
        counts.append(len(options))
        values += [json.dumps(o, sort_keys=True) for o in options]
    stage_props = {}
    for stage in vocab.stages:
        stage_props[stage.number] = len(values)
        values.append(json.dumps({"onboarding_stage": stage.number}))
    return values, np.array(starts, np.int64), np.array(counts, np.int64), stage_props


@dataclass
class DailyEvents:
    """Everything the day sampler needs, as arrays over accounts and users."""

    cal: Calendar
    vocab: EventVocabulary
    seed: int
    events_per_user_day: float
    # accounts
    e_month: np.ndarray  # [accounts, months + 1] engagement at month boundaries
    access: np.ndarray  # [accounts, days] bool: product usable the whole day
    tier_day: np.ndarray  # [accounts, days] int8 tier index, -1 none
    avail_day: np.ndarray  # [accounts, events] first day an event may be drawn
    mult: np.ndarray  # [accounts, events] account's taste for each event
    hour: np.ndarray  # [accounts] working hour (UTC)
    account_ids: pa.Array
    # users
    user_acc: np.ndarray
    first_day: np.ndarray
    end_day: np.ndarray
    z: np.ndarray
    lam: np.ndarray
    never: np.ndarray
    user_ids: pa.Array
    # milestones, sorted by time
    ms_at: np.ndarray
    ms_user: np.ndarray
    ms_event: np.ndarray
    ms_stage: np.ndarray

    @classmethod
    def build(
        cls,
        accounts: Sequence[AccountSim],
        cal: Calendar,
        vocab: EventVocabulary,
        seed: int,
        events_per_user_day: float,
    ) -> DailyEvents:
        n_acc, n_days, k = len(accounts), cal.n_days, len(vocab.names)
        rng = np.random.default_rng([seed, 0xAC])
        e_month = np.array([a.e_hist for a in accounts], np.float64).reshape(n_acc, cal.months + 1)
        access = np.zeros((n_acc, n_days), bool)
        tier_day = np.full((n_acc, n_days), -1, np.int8)
        avail = np.full((n_acc, k), NEVER, np.int32)
        avail[:, vocab.session] = 0
        first_stage_event = vocab.stages[0].event if vocab.stages else None
        last_stage = {
            ev: max(s.number for s in vocab.stages if s.event == ev) for ev in vocab.milestones
        }
        user_acc, first_day, end_day, z, intensity, never = [], [], [], [], [], []
        milestones: list[tuple[int, int, int, int]] = []
        user_index: dict[int, int] = {}
        for i, a in enumerate(accounts):
            for start, end in a.access:
                assert start is not None
                last = n_days if end is None else end // DAY
                access[i, start // DAY + 1 : last] = True
            for sub in a.subs:
                for row in sub.items:
                    lo = row.valid_from // DAY
                    hi = n_days if row.valid_to is None else min(n_days, row.valid_to // DAY + 1)
                    tier = TIERS.index(row.plan.tier)
                    np.maximum(tier_day[i, lo:hi], tier, out=tier_day[i, lo:hi])
            for ev, at in a.adopt_at.items():
                avail[i, ev] = NEVER if at is None else at // DAY
            for u in a.users:
                user_index[id(u)] = len(user_acc)
                user_acc.append(i)
                first_day.append(u.provisioned // DAY + 1)
                end_day.append(NEVER if u.deprovisioned is None else u.deprovisioned // DAY)
                z.append(u.z)
                intensity.append(u.intensity)
                never.append(u.never_active)
            for ms in a.milestones:
                milestones.append((ms.at, user_index[id(ms.user)], ms.event, ms.stage))
                if ms.stage == last_stage.get(ms.event) and ms.event != first_stage_event:
                    avail[i, ms.event] = min(avail[i, ms.event], ms.at // DAY + 1)
        milestones.sort()
        ms = np.array(milestones, np.int64).reshape(len(milestones), 4)
        scale = max(events_per_user_day, 0.0)
        return cls(
            cal=cal,
            vocab=vocab,
            seed=seed,
            events_per_user_day=events_per_user_day,
            e_month=e_month,
            access=access,
            tier_day=tier_day,
            avail_day=avail,
            mult=rng.lognormal(0.0, 0.5, (n_acc, k)),
            hour=np.array([a.work_hour for a in accounts], np.float64),
            account_ids=pa.array([a.id for a in accounts], pa.string()),
            user_acc=np.array(user_acc, np.int64),
            first_day=np.array(first_day, np.int64),
            end_day=np.array(end_day, np.int64),
            z=np.array(z, np.float64),
            lam=np.array(intensity, np.float64) * scale,
            never=np.array(never, bool),
            user_ids=pa.array([u.id for a in accounts for u in a.users], pa.string()),
            ms_at=ms[:, 0],
            ms_user=ms[:, 1],
            ms_event=ms[:, 2],
            ms_stage=ms[:, 3],
        )

    def __post_init__(self) -> None:
        self.names = pa.array(self.vocab.names, pa.string())
        props, self.prop_start, self.prop_count, self.stage_prop = _properties(self.vocab)
        self.props = pa.array(props, pa.string())
        self.base = np.array(self.vocab.base_weights, np.float64)
        # One row per tier, and a last row (tier index -1: no plan that day) without gated events.
        rows = [self.vocab.tier_allows[t] for t in TIERS]
        rows.append(tuple(not gated for gated in self.vocab.tier_gated))
        self.tier_allows = np.array(rows, bool)
        self.weekday0 = self.cal.start.weekday()
        self.schema = events_schema()
        self.next_id = 1

    def day(self, d: int) -> pa.Table:
        """The events of day ``d`` (0-based), sorted by time, with fresh sequential ids."""
        rng = np.random.default_rng([self.seed, 0xE7, d])
        cal = self.cal
        m = cal.month_of(d * DAY)
        frac = (d - cal.month_start_days[m] + 0.5) / cal.month_len(m)
        eng = self.e_month[:, m] * (1 - frac) + self.e_month[:, m + 1] * frac
        weekend = (self.weekday0 + d) % 7 >= 5
        # 1. who can act today, 2. who does
        cand = np.flatnonzero((self.first_day <= d) & (d < self.end_day) & ~self.never)
        cand = cand[self.access[self.user_acc[cand], d]]
        logit = eng[self.user_acc[cand]] + self.z[cand]
        p = 1.0 / (1.0 + np.exp(-logit)) * (WEEKEND_FACTOR if weekend else 1.0)
        p *= min(1.0, self.events_per_user_day)
        active = cand[rng.random(cand.size) < p] if self.events_per_user_day > 0 else cand[:0]
        # 3. how many events each
        counts = 1 + rng.poisson(np.maximum(self.lam[active] - 1.0, 0.0))
        ev_user = np.repeat(active, counts)
        n = ev_user.size
        ev_acc = self.user_acc[ev_user]
        first = np.zeros(n, bool)
        first[np.cumsum(counts) - counts] = True
        # 4. which events: the account's mix of what it has adopted and its tier allows today
        accs, inv = np.unique(ev_acc, return_inverse=True)
        allowed = (self.avail_day[accs] <= d) & self.tier_allows[self.tier_day[accs, d]]
        weights = self.base * self.mult[accs] * allowed
        cum = np.cumsum(weights, axis=1)
        cum /= cum[:, -1:]
        names = (rng.random(n)[:, None] >= cum[inv]).sum(axis=1)
        names = np.minimum(names, len(self.vocab.names) - 1)
        names[first & (rng.random(n) < SESSION_FIRST)] = self.vocab.session
        props = self.prop_start[names] + rng.integers(0, 1 << 30, n) % self.prop_count[names]
        props[rng.random(n) < NULL_PROPERTIES] = 0
        hours = self.hour[ev_acc] + rng.normal(0.0, HOUR_SPREAD, n)
        secs = (np.floor(hours * 3600.0).astype(np.int64)) % DAY
        # 5. the day's onboarding milestones
        lo, hi = np.searchsorted(self.ms_at, [d * DAY, (d + 1) * DAY])
        if hi > lo:
            ms_user = self.ms_user[lo:hi]
            ev_user = np.concatenate([ev_user, ms_user])
            ev_acc = np.concatenate([ev_acc, self.user_acc[ms_user]])
            names = np.concatenate([names, self.ms_event[lo:hi]])
            secs = np.concatenate([secs, self.ms_at[lo:hi] - d * DAY])
            stage_props = np.array(
                [self.stage_prop.get(int(s), 0) for s in self.ms_stage[lo:hi]], np.int64
            )
            repeat = self.prop_start[self.ms_event[lo:hi]]
            props = np.concatenate([props, np.where(self.ms_stage[lo:hi] > 0, stage_props, repeat)])
        order = np.lexsort((names, ev_user, secs))
        ev_user, ev_acc, names, secs, props = (
            x[order] for x in (ev_user, ev_acc, names, secs, props)
        )
        ids = np.arange(self.next_id, self.next_id + order.size, dtype=np.int64)
        self.next_id += order.size
        micros = (secs + d * DAY) * 1_000_000 + int(cal.epoch.timestamp()) * 1_000_000
        return pa.Table.from_arrays(
            [
                id_array("evt_", ids, 11),
                self.account_ids.take(ev_acc),
                self.user_ids.take(ev_user),
                self.names.take(names),
                pa.array(micros, pa.timestamp("us", tz="UTC")),
                self.props.take(props),
            ],
            schema=self.schema,
        )
