"""Reports for finance, RevOps and CSMs, read from the marts.

Every figure here is a column of a mart: these functions select and filter, they compute no
metric (the formulas live in dbt). They read the published serving copy of the warehouse, so they
work while a run is writing the working file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

GRAINS: tuple[str, ...] = ("month", "quarter", "year", "trailing_12m")
LISTS: dict[str, str] = {
    "risk": "marts.risk_list",
    "expansion": "marts.expansion_list",
    "alerts": "marts.adoption_alerts",
}


class ReportError(RuntimeError):
    """A report cannot be produced; the message says what to do."""


def open_serving_copy(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse."""
    if not path.exists():
        raise ReportError(
            f"No published warehouse at {path}. Run `csw run` (or `csw demo`) first; "
            "reports read the serving copy it publishes."
        )
    return duckdb.connect(str(path), read_only=True)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> pl.DataFrame:
    try:
        return con.sql(sql, params=params).pl()
    except duckdb.CatalogException as exc:
        raise ReportError(
            f"The warehouse lacks a mart this report reads ({exc}). Run `csw run` to build it."
        ) from None


@dataclass(frozen=True)
class MonthRange:
    start: date
    end: date

    @classmethod
    def parse(cls, start: str, end: str) -> MonthRange:
        first, last = (_month(start, "--from"), _month(end, "--to"))
        if first > last:
            raise ReportError(f"--from {start} is after --to {end}")
        return cls(first, last)


def _month(text: str, flag: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not a month; write it as YYYY-MM") from None


def _totals_and_segments(mart: str) -> str:
    """The company totals of ``mart`` labelled segment ``all``, then its ``_by_segment`` rows: the
    reports show both in one table, the marts keep them apart (docs/marts.md)."""
    return (
        f"select 'all' as segment, * from marts.{mart}"
        f" union all by name select * from marts.{mart}_by_segment"
    )


def retention(
    con: duckdb.DuckDBPyConnection, grain: str, months: MonthRange, by_segment: bool
) -> pl.DataFrame:
    """NRR, GRR and the cohort's MRR bridge per period starting within ``months``."""
    if grain not in GRAINS:
        raise ReportError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    return _frame(
        con,
        f"""
        select period_grain, period_start, period_end, segment, cohort_accounts,
               starting_mrr_usd, expansion_mrr_usd, contraction_mrr_usd, churned_mrr_usd,
               ending_mrr_usd, nrr, grr, is_complete
        from ({_totals_and_segments("fct_revenue_retention")})
        where period_grain = ? and period_start between ? and ?
          and (segment = 'all' or ?)
        order by period_start, segment = 'all' desc, segment
        """,
        [grain, months.start, months.end, by_segment],
    )


def mrr_bridge(
    con: duckdb.DuckDBPyConnection, months: MonthRange, by_segment: bool
) -> pl.DataFrame:
    """The monthly MRR bridge: start + new + expansion + reactivation - contraction - churn = end."""
    return _frame(
        con,
        f"""
        select month, segment, starting_mrr_usd, new_mrr_usd, expansion_mrr_usd,
               reactivation_mrr_usd, contraction_mrr_usd, churned_mrr_usd, ending_mrr_usd,
               ending_accounts
        from ({_totals_and_segments("fct_mrr_bridge")})
        where month between ? and ? and (segment = 'all' or ?)
        order by month, segment = 'all' desc, segment
        """,
        [months.start, months.end, by_segment],
    )


def account_list(
    con: duckdb.DuckDBPyConnection, name: str, owner: str | None = None
) -> pl.DataFrame:
    """A published list (risk, expansion or alerts), optionally one CSM's accounts only."""
    if name not in LISTS:
        raise ReportError(f"unknown list {name!r}; use one of {', '.join(LISTS)}")
    frame = _frame(con, f"select * from {LISTS[name]}", [])
    if owner is not None and "owner" in frame.columns:
        frame = frame.filter(pl.col("owner") == owner)
    order = [c for c in ("list_rank", "account_id") if c in frame.columns]
    return frame.sort(order) if order else frame


def latest_closed_quarter(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """NRR and GRR of the last complete quarter, overall and by segment."""
    return _frame(
        con,
        f"""
        select period_start, period_end, segment, cohort_accounts, starting_mrr_usd,
               ending_mrr_usd, nrr, grr
        from ({_totals_and_segments("fct_revenue_retention")})
        where period_grain = 'quarter' and is_complete
          and period_start = (
              select max(period_start) from marts.fct_revenue_retention
              where period_grain = 'quarter' and is_complete
          )
        order by segment = 'all' desc, segment
        """,
        [],
    )
