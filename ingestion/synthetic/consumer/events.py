"""The consumer scenario's daily event files, sampled one day at a time over every listener.

1. A listener can use the app on day d when a subscription (or trial) gives access the whole day;
2. it is active with probability ``sigmoid(taste + weekend bonus - ACTIVE_F * f)``: how often a
   listener opens the app is its own static taste, hardly its frustration ``f``;
3. an active listener emits ``1 + Poisson(lambda - 1)`` activity events, ``lambda`` =
   ``events_per_active_day`` x its intensity x ``exp(-VOLUME_F * f)``, halved
   (``CANCELLED_VOLUME``) once it has cancelled and waits for the period to end: a frustrated
   listener still opens the app but listens less. The first event of its day is
   ``session_started``, the others are drawn from the catalogue with weights
   ``weight x taste_k x exp(frustration_k x f)`` (``config.ACTIVITY_EVENTS``), offline
   downloads on premium only;
4. on top come what the app shows: ``ad_shown`` on the basic plan (Poisson, the listener's ad
   load per track) and ``error_shown`` (Poisson, ``ERROR_RATE x exp(ERROR_F x f)``);
5. the lifecycle's scheduled event (sign-up) at its exact instant.

Memory is bounded by one day of events; each day becomes one Parquet file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingestion.synthetic.consumer.config import (
    ACTIVITY_EVENTS,
    AD_SHOWN,
    ERROR_SHOWN,
    EVENT_INDEX,
    EVENT_NAMES,
    EVENTS,
    TIERS,
)
from ingestion.synthetic.consumer.lifecycle import ConsumerAccount, Latent, tier_index
from ingestion.synthetic.product import events_schema
from ingestion.synthetic.timeline import DAY, Calendar
from ingestion.synthetic.writers import id_array

#: Activity: taste ~ N(TASTE_MEAN, TASTE_SD) on the logit of an active day.
TASTE_MEAN = 0.2
TASTE_SD = 1.1
WEEKEND_BONUS = 0.4
ACTIVE_F = 0.05
#: Events per active day: down by exp(-VOLUME_F * f), and by CANCELLED_VOLUME once cancelled.
VOLUME_F = 0.25
CANCELLED_VOLUME = 0.35
#: Intensity (events per active day, relative) ~ lognormal(-0.1, INTENSITY_SD); a listener's taste
#: for each event kind ~ lognormal(0, EVENT_TASTE_SD).
INTENSITY_SD = 0.5
EVENT_TASTE_SD = 0.25
#: Ads per track played on the basic plan, times the listener's ad load.
AD_RATE = 0.3
ERROR_RATE = 0.08
ERROR_F = 1.5
#: Spread (hours) of listening around the listener's evening hour.
HOUR_SPREAD = 2.5
#: Share of activity events without properties.
NULL_PROPERTIES = 0.3


def _properties() -> tuple[pa.Array, np.ndarray, np.ndarray, dict[str, int]]:
    """Property strings (index 0 null), each event's block of options, and each JSON's index."""
    values: list[str | None] = [None]
    starts, counts = [], []
    for kind in EVENTS:
        starts.append(len(values))
        counts.append(len(kind.properties))
        values += kind.properties
    index = {v: i for i, v in enumerate(values) if v is not None}
    return pa.array(values, pa.string()), np.array(starts), np.array(counts), index


@dataclass
class ConsumerEvents:
    """What the day sampler needs, as arrays over listeners (one user per account)."""

    cal: Calendar
    seed: int
    events_per_active_day: float
    access: np.ndarray  # [accounts, days] bool: the app usable the whole day
    cancelled: np.ndarray  # [accounts, days] bool: cancelled, waiting for the period's end
    tier_day: np.ndarray  # [accounts, days] int8 tier index, -1 none
    f_eff: np.ndarray  # [accounts, days] frustration incl. the basic plan's ads
    ad_load: np.ndarray
    taste: np.ndarray
    lam: np.ndarray
    mix: np.ndarray  # [accounts, activity kinds] taste per event kind
    hour: np.ndarray
    account_ids: pa.Array
    user_ids: pa.Array
    # scheduled events, sorted by time
    sc_at: np.ndarray
    sc_acc: np.ndarray
    sc_event: np.ndarray
    sc_prop: np.ndarray

    @classmethod
    def build(
        cls,
        accounts: Sequence[ConsumerAccount],
        latent: Latent,
        cal: Calendar,
        seed: int,
        events_per_active_day: float,
    ) -> ConsumerEvents:
        n, days = len(accounts), cal.n_days
        rng = np.random.default_rng([seed, 0xC1])
        access = np.zeros((n, days), bool)
        cancelled = np.zeros((n, days), bool)
        tier_day = np.full((n, days), -1, np.int8)
        _, _, _, prop_index = _properties()
        scheduled: list[tuple[int, int, int, int]] = []
        for i, a in enumerate(accounts):
            for start, cancel, end in a.access:
                last = days if end is None else end // DAY
                access[i, start // DAY + 1 : last] = True
                if cancel is not None:
                    cancelled[i, cancel // DAY + 1 : last] = True
            for sub in a.subs:
                for row in sub.items:
                    hi = days if row.valid_to is None else min(days, row.valid_to // DAY + 1)
                    tier_day[i, row.valid_from // DAY : hi] = tier_index(row.plan.plan_id)
            scheduled += [(s.at, i, s.event, prop_index[s.properties]) for s in a.scheduled]
        scheduled.sort()
        sc = np.array(scheduled, np.int64).reshape(len(scheduled), 4)
        basic = tier_day == TIERS.index("basic")
        f_eff = latent.frustration + basic * latent.ad_term[:, None].astype(np.float32)
        return cls(
            cal=cal,
            seed=seed,
            events_per_active_day=events_per_active_day,
            access=access,
            cancelled=cancelled,
            tier_day=tier_day,
            f_eff=f_eff,
            ad_load=latent.ad_load,
            taste=rng.normal(TASTE_MEAN, TASTE_SD, n),
            lam=rng.lognormal(-0.1, INTENSITY_SD, n) * events_per_active_day,
            mix=rng.lognormal(0.0, EVENT_TASTE_SD, (n, len(ACTIVITY_EVENTS))),
            hour=np.array([a.hour for a in accounts], np.float64),
            account_ids=pa.array([a.id for a in accounts], pa.string()),
            user_ids=pa.array([a.user.id for a in accounts], pa.string()),
            sc_at=sc[:, 0],
            sc_acc=sc[:, 1],
            sc_event=sc[:, 2],
            sc_prop=sc[:, 3],
        )

    def __post_init__(self) -> None:
        self.names = pa.array(EVENT_NAMES, pa.string())
        self.props, self.prop_start, self.prop_count, _ = _properties()
        self.weight = np.array([k.weight for k in ACTIVITY_EVENTS])
        self.sensitivity = np.array([k.frustration for k in ACTIVITY_EVENTS])
        # Which activity kinds each tier allows (rows: tiers, then -1 = no plan: ungated only).
        rows = [[k.tier is None or k.tier == t for k in ACTIVITY_EVENTS] for t in TIERS]
        rows.append([k.tier is None for k in ACTIVITY_EVENTS])
        self.tier_allows = np.array(rows, bool)
        self.weekday0 = self.cal.start.weekday()
        self.schema = events_schema()
        self.next_id = 1

    def day(self, d: int) -> pa.Table:
        """The events of day ``d`` (0-based), sorted by time, with fresh sequential ids."""
        rng = np.random.default_rng([self.seed, 0xE7C, d])
        weekend = (self.weekday0 + d) % 7 >= 5
        # 1. who can listen today, 2. who does
        cand = np.flatnonzero(self.access[:, d])
        f = self.f_eff[cand, d].astype(np.float64)
        logit = self.taste[cand] + WEEKEND_BONUS * weekend - ACTIVE_F * f
        keep = rng.random(cand.size) < 1.0 / (1.0 + np.exp(-logit))
        active, f = cand[keep], f[keep]
        # 3. how many activity events, and which (the day's first is the session)
        lam = self.lam[active] * np.exp(-VOLUME_F * f)
        lam *= np.where(self.cancelled[active, d], CANCELLED_VOLUME, 1.0)
        counts = 1 + rng.poisson(np.maximum(lam - 1.0, 0.0))
        tiers = self.tier_day[active, d]
        weights = self.weight * self.mix[active] * np.exp(np.outer(f, self.sensitivity))
        weights *= self.tier_allows[tiers]
        cum = np.cumsum(weights, axis=1)
        cum /= cum[:, -1:]
        row = np.repeat(np.arange(active.size), counts)
        names = (rng.random(row.size)[:, None] >= cum[row]).sum(axis=1)
        names = np.minimum(names, len(ACTIVITY_EVENTS) - 1)
        hours = self.hour[active][row] + rng.normal(0.0, HOUR_SPREAD, row.size)
        secs = np.floor(hours * 3600.0).astype(np.int64) % DAY
        order = np.lexsort((secs, row))
        row, names, secs = row[order], names[order], secs[order]
        first = np.zeros(row.size, bool)
        first[np.cumsum(counts) - counts] = True
        names[first] = EVENT_INDEX["session_started"]
        props = self.prop_start[names] + rng.integers(0, 1 << 30, row.size) % self.prop_count[names]
        props[rng.random(row.size) < NULL_PROPERTIES] = 0
        # 4. what the app shows: ads on the basic plan, errors
        plays = np.bincount(row[names == EVENT_INDEX["track_played"]], minlength=active.size)
        basic = tiers == TIERS.index("basic")
        n_ads = rng.poisson(AD_RATE * self.ad_load[active] * plays * basic)
        n_err = rng.poisson(ERROR_RATE * np.exp(ERROR_F * f))
        session_secs = secs[first]
        shown_rows, shown_names = [row], [names]
        shown_secs, shown_props = [secs], [props]
        for kind, n_kind in ((AD_SHOWN, n_ads), (ERROR_SHOWN, n_err)):
            who = np.repeat(np.arange(active.size), n_kind)
            start = session_secs[who]
            event = EVENT_INDEX[kind.name]
            shown_rows.append(who)
            shown_names.append(np.full(who.size, event))
            shown_secs.append(start + (rng.random(who.size) * (DAY - start)).astype(np.int64))
            options = rng.integers(0, 1 << 30, who.size) % self.prop_count[event]
            shown_props.append(self.prop_start[event] + options)
        ev_acc = active[np.concatenate(shown_rows)]
        names = np.concatenate(shown_names)
        secs = np.concatenate(shown_secs)
        props = np.concatenate(shown_props)
        # 5. the day's scheduled events
        lo, hi = np.searchsorted(self.sc_at, [d * DAY, (d + 1) * DAY])
        ev_acc = np.concatenate([ev_acc, self.sc_acc[lo:hi]])
        names = np.concatenate([names, self.sc_event[lo:hi]])
        secs = np.concatenate([secs, self.sc_at[lo:hi] - d * DAY])
        props = np.concatenate([props, self.sc_prop[lo:hi]])
        order = np.lexsort((names, ev_acc, secs))
        ev_acc, names, secs, props = (x[order] for x in (ev_acc, names, secs, props))
        ids = np.arange(self.next_id, self.next_id + order.size, dtype=np.int64)
        self.next_id += order.size
        micros = (secs + d * DAY + int(self.cal.epoch.timestamp())) * 1_000_000
        return pa.Table.from_arrays(
            [
                id_array("evt_", ids, 11),
                self.account_ids.take(ev_acc),
                self.user_ids.take(ev_acc),
                self.names.take(names),
                pa.array(micros, pa.timestamp("us", tz="UTC")),
                self.props.take(props),
            ],
            schema=self.schema,
        )
