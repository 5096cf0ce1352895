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
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        raise ReportError(
            f"The warehouse lacks a mart or a column this report reads ({exc}); it was built by"
            " an older version or not at all. Run `csw run` to build and publish it."
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


RETENTION_COLUMNS: tuple[str, ...] = (
    "period_grain", "period_start", "period_end", "cohort_accounts", "starting_mrr_usd",
    "expansion_mrr_usd", "contraction_mrr_usd", "churned_mrr_usd", "ending_mrr_usd", "nrr", "grr",
    "is_complete",
)  # fmt: skip
BRIDGE_COLUMNS: tuple[str, ...] = (
    "month", "starting_mrr_usd", "new_mrr_usd", "expansion_mrr_usd", "reactivation_mrr_usd",
    "contraction_mrr_usd", "churned_mrr_usd", "ending_mrr_usd", "ending_accounts",
)  # fmt: skip


def _totals_and_segments(mart: str, columns: tuple[str, ...]) -> str:
    """``columns`` of the company totals of ``mart`` labelled segment ``all``, then of its
    ``_by_segment`` rows: the reports show both in one table, the marts keep them apart
    (docs/marts.md). Named on both sides, so a column missing from either mart is an error, not
    a column of nulls."""
    names = ", ".join(columns)
    return (
        f"select 'all' as segment, {names} from marts.{mart}"
        f" union all select segment, {names} from marts.{mart}_by_segment"
    )


def retention(
    con: duckdb.DuckDBPyConnection, grain: str, months: MonthRange, by_segment: bool
) -> pl.DataFrame:
    """NRR, GRR and the cohort's MRR bridge per period starting within ``months``."""
    if grain not in GRAINS:
        raise ReportError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    first, rest = RETENTION_COLUMNS[:3], RETENTION_COLUMNS[3:]
    return _frame(
        con,
        f"""
        select {", ".join(first)}, segment, {", ".join(rest)}
        from ({_totals_and_segments("fct_revenue_retention", RETENTION_COLUMNS)})
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
        select month, segment, {", ".join(BRIDGE_COLUMNS[1:])}
        from ({_totals_and_segments("fct_mrr_bridge", BRIDGE_COLUMNS)})
        where month between ? and ? and (segment = 'all' or ?)
        order by month, segment = 'all' desc, segment
        """,
        [months.start, months.end, by_segment],
    )


def _list_rows(name: str, owner: str | None) -> tuple[str, list[object]]:
    """The SQL of list ``name``, only ``owner``'s accounts when given. The alerts carry no owner
    column: their accounts' owners come from ``marts.dim_accounts``."""
    mart = LISTS[name]
    if owner is None:
        return f"select * from {mart}", []
    if name == "alerts":
        return (
            f"select * from {mart} where account_id in"
            " (select account_id from marts.dim_accounts where owner = ?)",
            [owner],
        )
    return f"select * from {mart} where owner = ?", [owner]


def account_list(
    con: duckdb.DuckDBPyConnection, name: str, owner: str | None = None
) -> pl.DataFrame:
    """A published list (risk, expansion or alerts), optionally one CSM's accounts only."""
    if name not in LISTS:
        raise ReportError(f"unknown list {name!r}; use one of {', '.join(LISTS)}")
    sql, params = _list_rows(name, owner)
    frame = _frame(con, sql, params)
    order = [c for c in ("list_rank", "account_id") if c in frame.columns]
    return frame.sort(order) if order else frame


# --- why a selection is empty -------------------------------------------------------------------


def _has_mart(con: duckdb.DuckDBPyConnection, mart: str) -> bool:
    (found,) = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'marts' and table_name = ?",
        [mart],
    ).fetchall()[0]
    return bool(found)


def reporting_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The warehouse's reporting date (``marts.dim_accounts.as_of_date``), None without one."""
    if not _has_mart(con, "dim_accounts"):
        return None
    (value,) = con.execute("select max(as_of_date) from marts.dim_accounts").fetchall()[0]
    return value


def _reporting(con: duckdb.DuckDBPyConnection) -> str:
    as_of = reporting_date(con)
    return f" (reporting date {as_of.isoformat()})" if as_of else ""


def _ym(value: date) -> str:
    return value.strftime("%Y-%m")


def _span(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object]
) -> tuple[date, date] | None:
    first, last = con.execute(sql, params).fetchall()[0]
    return None if first is None else (first, last)


def retention_empty_reason(con: duckdb.DuckDBPyConnection, grain: str, months: MonthRange) -> str:
    """Why ``retention`` found no period: the periods of ``grain`` the warehouse has."""
    span = _span(
        con,
        "select min(period_start), max(period_start) from marts.fct_revenue_retention"
        " where period_grain = ?",
        [grain],
    )
    has = (
        f"the warehouse has {grain} periods starting {_ym(span[0])} to {_ym(span[1])}"
        if span
        else f"the warehouse has no {grain} periods"
    )
    return (
        f"No {grain} period starts between {_ym(months.start)} and {_ym(months.end)}; "
        f"{has}{_reporting(con)}."
    )


def mrr_empty_reason(con: duckdb.DuckDBPyConnection, months: MonthRange) -> str:
    """Why ``mrr_bridge`` found no month: the months the bridge covers."""
    span = _span(con, "select min(month), max(month) from marts.fct_mrr_bridge", [])
    has = (
        f"the warehouse has months {_ym(span[0])} to {_ym(span[1])}"
        if span
        else "the warehouse's MRR bridge has no months (run `csw run` with billing extracts)"
    )
    return (
        f"No month between {_ym(months.start)} and {_ym(months.end)} in the MRR bridge; "
        f"{has}{_reporting(con)}."
    )


def _owners_on(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    rows = (
        f"select d.owner from {LISTS[name]} l"
        " join (select distinct account_id, owner from marts.dim_accounts) d using (account_id)"
        if name == "alerts"
        else f"select owner from {LISTS[name]}"
    )
    return _frame(
        con, f"select owner, count(*) as accounts from ({rows}) group by owner order by owner", []
    )


def _known_owners(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not _has_mart(con, "dim_accounts"):
        return []
    sql = "select distinct owner from marts.dim_accounts where owner is not null order by owner"
    return [owner for (owner,) in con.sql(sql).fetchall()]


def list_empty_reason(con: duckdb.DuckDBPyConnection, name: str, owner: str | None) -> str:
    """Why ``account_list`` found no account: the list is empty, or the owner has none on it
    (with the owners it has and the CSMs the warehouse knows)."""
    (listed_on,) = con.execute(f"select max(as_of_date) from {LISTS[name]}").fetchall()[0]
    as_of = listed_on or reporting_date(con)
    when = f" as of {as_of.isoformat()}" if as_of else ""
    owners = _owners_on(con, name)
    if owners.is_empty():
        empty = f"The {name} list is empty{when}: no account met its rules"
        return empty + "." if owner is None else f"{empty}, so none of owner {owner!r} is on it."
    on_it = ", ".join(f"{o} ({n})" for o, n in owners.iter_rows())
    known = ", ".join(_known_owners(con)) or "none recorded"
    return (
        f"No account of owner {owner!r} on the {name} list{when}; owners on it: {on_it}; "
        f"CSMs of the warehouse's accounts: {known}."
    )


def latest_closed_quarter(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """NRR and GRR of the last complete quarter, overall and by segment."""
    return _frame(
        con,
        f"""
        select period_start, period_end, segment, cohort_accounts, starting_mrr_usd,
               ending_mrr_usd, nrr, grr
        from ({_totals_and_segments("fct_revenue_retention", RETENTION_COLUMNS)})
        where period_grain = 'quarter' and is_complete
          and period_start = (
              select max(period_start) from marts.fct_revenue_retention
              where period_grain = 'quarter' and is_complete
          )
        order by segment = 'all' desc, segment
        """,
        [],
    )
