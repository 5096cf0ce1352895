"""Generator time: integer seconds since the first generated month's first instant (UTC).

Every simulated instant is an ``int`` of seconds from ``Calendar.start`` 00:00:00 UTC; days are
``seconds // DAY``. Working in integers keeps the simulation exact and fast, and the formatting
helpers here turn them into the contract's ISO 8601 strings only when rows are written.
"""

from __future__ import annotations

import calendar as _calendar
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

MINUTE = 60
HOUR = 3_600
DAY = 86_400


@dataclass(frozen=True)
class Calendar:
    start: date
    months: int
    #: Day offset of the first day of month m, for m in 0..months (the last is the end, exclusive).
    month_start_days: tuple[int, ...] = field(init=False)
    epoch: datetime = field(init=False)

    def __post_init__(self) -> None:
        days = []
        for m in range(self.months + 1):
            y, mo = divmod(self.start.month - 1 + m, 12)
            days.append((date(self.start.year + y, mo + 1, 1) - self.start).days)
        object.__setattr__(self, "month_start_days", tuple(days))
        epoch = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        object.__setattr__(self, "epoch", epoch)

    # --- sizes --------------------------------------------------------------------------------
    @property
    def n_days(self) -> int:
        return self.month_start_days[-1]

    @property
    def end(self) -> int:
        """The first instant after the generated period (exclusive horizon) in seconds."""
        return self.n_days * DAY

    @property
    def as_of(self) -> date:
        """The last generated day."""
        return self.start + timedelta(days=self.n_days - 1)

    def month_start(self, m: int) -> int:
        return self.month_start_days[m] * DAY

    def month_len(self, m: int) -> int:
        return self.month_start_days[m + 1] - self.month_start_days[m]

    def month_of(self, t: int) -> int:
        return bisect_right(self.month_start_days, t // DAY) - 1

    def month_first(self, m: int) -> date:
        return self.start + timedelta(days=self.month_start_days[m])

    # --- arithmetic -----------------------------------------------------------------------------
    def add_months(self, t: int, n: int) -> int:
        """The same day-of-month and time ``n`` months after ``t`` (clamped to the month's end)."""
        dt = self.datetime(t)
        y, mo = divmod(dt.month - 1 + n, 12)
        year, month = dt.year + y, mo + 1
        day = min(dt.day, _calendar.monthrange(year, month)[1])
        moved = dt.replace(year=year, month=month, day=day)
        return int((moved - self.epoch).total_seconds())

    # --- formatting -----------------------------------------------------------------------------
    def datetime(self, t: int) -> datetime:
        return self.epoch + timedelta(seconds=t)

    def date(self, t: int) -> date:
        return self.start + timedelta(days=t // DAY)

    def ts(self, t: int | None) -> str | None:
        """ISO 8601 UTC timestamp with ``Z``, or None."""
        if t is None:
            return None
        return self.datetime(t).strftime("%Y-%m-%dT%H:%M:%SZ")

    def ds(self, t: int | None) -> str | None:
        """``YYYY-MM-DD`` of the instant's UTC date, or None."""
        if t is None:
            return None
        return self.date(t).isoformat()
