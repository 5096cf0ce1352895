"""The HTML report: one self-contained, offline page of charts and lists read from the marts.

``render_report(con)`` reads schema ``marts`` of a warehouse (the working file or the serving
copy) and returns one HTML page: plotly.js inlined once in the head, one Plotly chart per figure
(metrics/charts.py), the risk and expansion lists as HTML tables with their reasons. It reads
only marts and computes no metric: every number shown is a mart's value, formatted by the rules
of metrics/formatting.py (docs/report.md lists where each figure comes from). A section whose mart
has no rows says why instead of drawing an empty chart; every section states its data range and
the reporting date. ``render_report(con, month=...)`` is a finance close's page: its MRR bridge
shows the closed month. ``write_report(con, path)`` writes the page atomically.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from metrics import charts
from metrics.charts import TTV_DAYS
from metrics.formatting import iso, percent, usd


class ReportError(ValueError):
    """The warehouse cannot give a report (no marts, no reporting date)."""


#: The id of every chart div on the page, by section (tests and docs/report.md use them).
CHART_IDS: dict[str, tuple[str, ...]] = {
    "retention": ("chart-retention-total", "chart-retention-by-segment"),
    "mrr-bridge": ("chart-mrr-bridge",),
    "mrr-movements": ("chart-mrr-movements",),
    "cohort-retention": ("chart-cohort-retention",),
    "time-to-value": ("chart-ttv-cohorts", "chart-ttv-by-segment"),
    "health": ("chart-health-by-segment", "chart-health-over-time"),
    "backtest": ("chart-backtest-lift", "chart-backtest-calibration"),
}
TABLE_IDS = ("table-risk-list", "table-expansion-list")


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    #: the data range and the reporting date, one sentence or two
    scope: str
    #: charts, tables or explanations (HTML)
    body: str


# --- reading the marts --------------------------------------------------------------------------


def _read(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
    return con.sql(sql, params=list(params)).pl()


def _row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row of an aggregate query (fetchall: no result left open on the connection)."""
    (row,) = con.execute(sql).fetchall()
    return row


def _missing(con: duckdb.DuckDBPyConnection, marts: Sequence[str]) -> list[str]:
    present = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }
    return [f"marts.{m}" for m in marts if m not in present]


def reporting_date(con: duckdb.DuckDBPyConnection) -> date:
    """The warehouse's reporting date (``marts.dim_accounts.as_of_date``)."""
    if _missing(con, ["dim_accounts"]):
        raise ReportError(
            "this database has no marts.dim_accounts: point the report at a warehouse built by "
            "`csw run` (or its published copy)"
        )
    (value,) = _row(con, "select max(as_of_date) from marts.dim_accounts")
    if value is None:
        raise ReportError(
            "marts.dim_accounts is empty, so the warehouse has no reporting date: run `csw run` "
            "with extracts in the landing directory first"
        )
    return value


# --- HTML pieces --------------------------------------------------------------------------------


def _text(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _note(text: str) -> str:
    return f'<p class="empty">{_text(text)}</p>'


def _chart(fig: go.Figure, chart_id: str) -> str:
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=chart_id,
        config=charts.PLOTLY_CONFIG,
    )


def _chart_or_note(
    frame: pl.DataFrame, figure: Callable[[pl.DataFrame], go.Figure], chart_id: str, why: str
) -> str:
    """The chart of ``frame``, or the sentence ``why`` there is none when it has no rows."""
    return _note(why) if frame.is_empty() else _chart(figure(frame), chart_id)


def _missing_section(anchor: str, title: str, missing: list[str], as_of: date) -> Section:
    return Section(
        anchor,
        title,
        f"Reporting date {iso(as_of)}.",
        _note(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in this "
            "warehouse, so this section is empty: rebuild it with `csw run` (and publish again "
            "for the serving copy)."
        ),
    )


def _table(table_id: str, headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    """``rows``: (account_id, cells already escaped or formatted HTML)."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join(
        f'<tr data-account-id="{_text(account)}">'
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr>"
        for account, cells in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _nowrap(text: str) -> str:
    """A figure or date kept on one line in a table cell."""
    return f'<span class="nowrap">{_text(text)}</span>'


def _items(values: Sequence[str] | None) -> str:
    return "<ol>" + "".join(f"<li>{_text(v)}</li>" for v in values or []) + "</ol>"


# --- sections -----------------------------------------------------------------------------------


def _mrr_range(con: duckdb.DuckDBPyConnection) -> str:
    first, last = _row(con, "select min(month), max(month) from marts.fct_mrr_bridge")
    if first is None:
        return "the warehouse has no MRR yet"
    return f"MRR runs from {iso(first)} to {iso(last)}"


def retention_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Net and gross revenue retention (quarterly)"
    marts = ["fct_revenue_retention", "fct_revenue_retention_by_segment", "fct_mrr_bridge"]
    if missing := _missing(con, marts):
        return _missing_section("retention", title, missing, as_of)
    columns = "period_start, period_end, cast(nrr as double) as nrr, cast(grr as double) as grr"
    where = "where period_grain = 'quarter' and is_complete"
    total = _read(
        con, f"select {columns} from marts.fct_revenue_retention {where} order by period_start"
    )
    by_segment = _read(
        con,
        f"select segment, {columns} from marts.fct_revenue_retention_by_segment {where} "
        "order by segment, period_start",
    )
    if total.is_empty():
        return Section(
            "retention",
            title,
            f"Reporting date {iso(as_of)}; {_mrr_range(con)}.",
            _note(
                "No complete quarter yet: a quarter's NRR and GRR need the month before it (the "
                "cohort's starting MRR) and the quarter to be over by the reporting date."
            ),
        )
    scope = (
        f"Complete quarters starting {iso(total['period_start'].min())} to "  # type: ignore[arg-type]
        f"{iso(total['period_start'].max())}, ending by the reporting date {iso(as_of)}; "  # type: ignore[arg-type]
        "the quarter still running is left out. Solid: NRR, dotted: GRR."
    )
    body = _chart(
        charts.retention_trend(total, "All accounts"), "chart-retention-total"
    ) + _chart_or_note(
        by_segment,
        lambda frame: charts.retention_trend(frame, "By segment", by="segment"),
        "chart-retention-by-segment",
        "marts.fct_revenue_retention_by_segment has no complete quarter.",
    )
    return Section("retention", title, scope, body)


def _bridge_row(con: duckdb.DuckDBPyConnection, month: date | None) -> pl.DataFrame:
    """fct_mrr_bridge's row of ``month``, or (None) of the latest complete month."""
    which = (
        "?"
        if month is not None
        else """(
            select max(period_start) from marts.fct_revenue_retention
            where period_grain = 'month' and is_complete
        )"""
    )
    return _read(
        con,
        f"""
        select month, starting_mrr_usd, new_mrr_usd, expansion_mrr_usd, reactivation_mrr_usd,
               contraction_mrr_usd, churned_mrr_usd, ending_mrr_usd
        from marts.fct_mrr_bridge
        where month = {which}
        """,
        [month] if month is not None else [],
    )


def bridge_section(
    con: duckdb.DuckDBPyConnection, as_of: date, month: date | None = None
) -> Section:
    """The MRR bridge of ``month`` (a finance close's month), by default of the latest month
    over by the reporting date."""
    title = "MRR bridge, latest complete month" if month is None else f"MRR bridge, {iso(month)}"
    if missing := _missing(con, ["fct_mrr_bridge", "fct_revenue_retention"]):
        return _missing_section("mrr-bridge", title, missing, as_of)
    frame = _bridge_row(con, month)
    if frame.is_empty():
        why = (
            "No complete month after the first month with MRR yet (a month is complete when "
            "the reporting date is its last day or later), so there is no bridge to draw."
            if month is None
            else f"marts.fct_mrr_bridge has no row for the month {iso(month)} (the month of "
            "this close): the warehouse has no MRR then, so there is no bridge to draw."
        )
        return Section(
            "mrr-bridge", title, f"Reporting date {iso(as_of)}; {_mrr_range(con)}.", _note(why)
        )
    row = frame.row(0, named=True)
    shown = iso(row["month"])
    scope = (
        f"The month starting {shown}, the latest one over by the reporting date {iso(as_of)}: "
        if month is None
        else f"The month starting {shown}, the month this finance close reports (reporting date "
        f"{iso(as_of)}): "
    ) + "starting MRR, each movement (contraction and churn below zero) and ending MRR."
    figure = charts.mrr_waterfall(row, f"MRR bridge, {shown}")
    return Section("mrr-bridge", title, scope, _chart(figure, "chart-mrr-bridge"))


def movements_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "MRR movements by month"
    if missing := _missing(con, ["fct_mrr_movements"]):
        return _missing_section("mrr-movements", title, missing, as_of)
    frame = _read(
        con,
        """
        select month, movement, movement_order, cast(mrr_usd as double) as mrr_usd, accounts
        from marts.fct_mrr_movements
        where movement <> 'flat'
        order by movement_order, month
        """,
    )
    if frame.is_empty():
        return Section(
            "mrr-movements",
            title,
            f"Reporting date {iso(as_of)}.",
            _note("marts.fct_mrr_movements has no rows: the warehouse has no MRR yet."),
        )
    scope = (
        f"Months starting {iso(frame['month'].min())} to {iso(frame['month'].max())}; the last "  # type: ignore[arg-type]
        f"one is measured on the reporting date {iso(as_of)} (a month not over yet is partial). "
        "Contraction and churn are below zero; accounts without a change are not drawn."
    )
    figure = charts.movements_bars(frame, "MRR change by movement")
    return Section("mrr-movements", title, scope, _chart(figure, "chart-mrr-movements"))


def cohort_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Cohort revenue retention"
    if missing := _missing(con, ["fct_cohort_adoption"]):
        return _missing_section("cohort-retention", title, missing, as_of)
    frame = _read(
        con,
        """
        select cohort_month, months_since_start,
               cast(revenue_retention as double) as revenue_retention
        from marts.fct_cohort_adoption
        order by cohort_month, months_since_start
        """,
    )
    if frame.is_empty():
        return Section(
            "cohort-retention",
            title,
            f"Reporting date {iso(as_of)}.",
            _note("marts.fct_cohort_adoption has no rows: no account has started a subscription."),
        )
    scope = (
        f"Cohorts of the months {iso(frame['cohort_month'].min())} to "  # type: ignore[arg-type]
        f"{iso(frame['cohort_month'].max())}, each followed to the reporting date {iso(as_of)}: "  # type: ignore[arg-type]
        "MRR in a month after the start as a share of the cohort's starting MRR."
    )
    figure = charts.cohort_heatmap(frame, "Revenue retention by start cohort")
    return Section("cohort-retention", title, scope, _chart(figure, "chart-cohort-retention"))


def _ttv_query(mart: str, keys: str) -> str:
    # the mart's own shares and the counts behind them: the report divides nothing
    shares = ", ".join(
        f"cast(reached_within_{n}d_share as double) as reached_within_{n}d_share" for n in TTV_DAYS
    )
    observed = ", ".join(f"observed_{n}d_accounts" for n in TTV_DAYS)
    return f"select {keys}, {shares}, {observed} from marts.{mart} order by {keys}"


def ttv_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Time to value"
    if missing := _missing(con, ["fct_ttv_cohorts", "fct_ttv_cohorts_by_segment"]):
        return _missing_section("time-to-value", title, missing, as_of)
    total = _read(con, _ttv_query("fct_ttv_cohorts", "start_month"))
    by_segment = _read(con, _ttv_query("fct_ttv_cohorts_by_segment", "segment, start_month"))
    if total.is_empty():
        return Section(
            "time-to-value",
            title,
            f"Reporting date {iso(as_of)}.",
            _note("marts.fct_ttv_cohorts has no rows: no subscription has started yet."),
        )
    scope = (
        f"Accounts by the month their subscription started, {iso(total['start_month'].min())} to "  # type: ignore[arg-type]
        f"{iso(total['start_month'].max())}, as of the reporting date {iso(as_of)}: the share "  # type: ignore[arg-type]
        "of each start cohort at first value within 7, 14, 30, 60 and 90 days. A share at n "
        "days counts only the accounts observed n days: started at least n days before the "
        "reporting date, or at first value within n days already."
    )
    body = _chart(
        charts.ttv_curves(total, "All accounts, by start month"), "chart-ttv-cohorts"
    ) + _chart_or_note(
        by_segment,
        lambda frame: charts.ttv_curves(frame, "By segment and start month", by="segment"),
        "chart-ttv-by-segment",
        "marts.fct_ttv_cohorts_by_segment has no rows.",
    )
    return Section("time-to-value", title, scope, body)


#: Health bands in the order of their scores (the lowest first), then the x value.
_BAND_ORDER = "min(min(health_score)) over (partition by health_band)"


def health_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Account health"
    if missing := _missing(con, ["fct_account_health"]):
        return _missing_section("health", title, missing, as_of)
    by_segment = _read(
        con,
        f"""
        select segment, health_band, count(*) as accounts
        from marts.fct_account_health
        where is_reporting_date
        group by segment, health_band
        order by {_BAND_ORDER}, health_band, segment
        """,
    )
    over_time = _read(
        con,
        f"""
        select as_of_date, health_band, count(*) as accounts
        from marts.fct_account_health
        group by as_of_date, health_band
        order by {_BAND_ORDER}, health_band, as_of_date
        """,
    )
    if over_time.is_empty():
        return Section(
            "health",
            title,
            f"Reporting date {iso(as_of)}.",
            _note(
                "marts.fct_account_health has no rows: no account with MRR on a scored date "
                "(the health score is computed every Monday and on the reporting date)."
            ),
        )
    scope = (
        f"By segment: the bands' shares of each segment's accounts on the reporting date "
        f"{iso(as_of)}. Over time: the bands' shares on every scored date from {iso(over_time['as_of_date'].min())} to "  # type: ignore[arg-type]
        f"{iso(over_time['as_of_date'].max())}."  # type: ignore[arg-type]
    )
    body = _chart_or_note(
        by_segment,
        lambda frame: charts.band_bars(frame, "By segment", x="segment", x_title="segment"),
        "chart-health-by-segment",
        f"No account was scored on the reporting date {iso(as_of)}.",
    ) + _chart(
        charts.band_bars(over_time, "Over time", x="as_of_date", x_title="scored date"),
        "chart-health-over-time",
    )
    return Section("health", title, scope, body)


def _risk_rows(frame: pl.DataFrame) -> list[tuple[str, list[str]]]:
    return [
        (
            r["account_id"],
            [
                _text(r["list_rank"]),
                _text(r["account_name"]),
                _text(r["owner"]),
                _text(r["segment"]),
                _nowrap(usd(r["arr_at_risk_usd"])),
                _nowrap(iso(r["renewal_date"])),
                f"{_text(r['health_score'])} ({_text(r['health_band'])})",
                _nowrap(percent(r["churn_probability"])),
                _nowrap(usd(r["expected_arr_lost_usd"])),
                _items(r["reasons"]),
                _text(r["play"]),
            ],
        )
        for r in frame.iter_rows(named=True)
    ]


def _expansion_rows(frame: pl.DataFrame) -> list[tuple[str, list[str]]]:
    return [
        (
            r["account_id"],
            [
                _text(r["list_rank"]),
                _text(r["account_name"]),
                _text(r["owner"]),
                _text(r["segment"]),
                _nowrap(usd(r["current_arr_usd"])),
                _text(r["purchased_seats"]),
                _text(r["urgency"]),
                _nowrap(usd(r["estimated_opportunity_usd"])),
                _items(r["signals"]),
            ],
        )
        for r in frame.iter_rows(named=True)
    ]


RISK_HEADERS = (
    "rank",
    "account",
    "owner",
    "segment",
    "ARR at risk",
    "renewal",
    "health",
    "churn probability",
    "expected ARR lost",
    "reasons",
    "play",
)
EXPANSION_HEADERS = (
    "rank",
    "account",
    "owner",
    "segment",
    "ARR",
    "seats",
    "urgency",
    "estimated opportunity",
    "signals",
)


def lists_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Risk and expansion lists"
    marts = ["risk_list", "risk_list_reasons", "expansion_list", "expansion_list_signals"]
    if missing := _missing(con, marts):
        return _missing_section("lists", title, missing, as_of)
    risk = _read(
        con,
        """
        select l.list_rank, l.account_id, l.account_name, l.owner, l.segment, l.arr_at_risk_usd,
               l.renewal_date, l.health_score, l.health_band, l.churn_probability,
               l.expected_arr_lost_usd, l.play,
               list(r.reason order by r.reason_order) filter (where r.reason is not null)
                   as reasons
        from marts.risk_list as l
        left join marts.risk_list_reasons as r on r.account_id = l.account_id
        group by all
        order by l.list_rank
        """,
    )
    expansion = _read(
        con,
        """
        select l.list_rank, l.account_id, l.account_name, l.owner, l.segment, l.current_arr_usd,
               l.purchased_seats, l.urgency, l.estimated_opportunity_usd,
               list(s.signal order by s.signal_type) filter (where s.signal is not null)
                   as signals
        from marts.expansion_list as l
        left join marts.expansion_list_signals as s on s.account_id = l.account_id
        group by all
        order by l.list_rank
        """,
    )
    risk_html = (
        _table("table-risk-list", RISK_HEADERS, _risk_rows(risk))
        if not risk.is_empty()
        else _note(
            f"No account is on the risk list as of {iso(as_of)}: none met the list's rules "
            "(a red band, a renewal soon at a low score, or enough churn-risk points)."
        )
    )
    expansion_html = (
        _table("table-expansion-list", EXPANSION_HEADERS, _expansion_rows(expansion))
        if not expansion.is_empty()
        else _note(
            f"No account is on the expansion list as of {iso(as_of)}: none had a seat-limit, "
            "team-growth or sustained-health signal."
        )
    )
    scope = (
        f"The lists as of the reporting date {iso(as_of)}: {risk.height} accounts at risk, "
        f"{expansion.height} expansion candidates."
    )
    body = f"<h3>Risk list</h3>{risk_html}<h3>Expansion list</h3>{expansion_html}"
    return Section("lists", title, scope, body)


_VERSION_IN_USE = (
    "health_model_version in ("
    "select health_model_version from marts.fct_account_health where is_reporting_date)"
)


def backtest_section(con: duckdb.DuckDBPyConnection, as_of: date) -> Section:
    title = "Health backtest: lift and calibration"
    marts = [
        "fct_health_backtest",
        "fct_health_backtest_deciles",
        "fct_health_backtest_calibration",
    ]
    if missing := _missing(con, marts):
        return _missing_section("backtest", title, missing, as_of)
    first, last, evaluated, version = _row(
        con,
        f"""
        select min(first_scored_date), max(last_scored_date), max(evaluated_as_of_date),
               string_agg(distinct health_model_version, ', ')
        from marts.fct_health_backtest where {_VERSION_IN_USE}
        """,
    )
    deciles = _read(
        con,
        f"""
        select scorer, horizon_days, decile, scored_rows, lift
        from marts.fct_health_backtest_deciles where {_VERSION_IN_USE}
        order by scorer, horizon_days, decile
        """,
    )
    calibration = _read(
        con,
        f"""
        select scorer, horizon_days, probability_bin, scored_rows, mean_probability, churn_rate
        from marts.fct_health_backtest_calibration where {_VERSION_IN_USE}
        order by scorer, horizon_days, probability_bin
        """,
    )
    if deciles.is_empty() or first is None:
        return Section(
            "backtest",
            title,
            f"Reporting date {iso(as_of)}.",
            _note(
                "No backtest yet for the health model in use: a scored date enters the backtest "
                "only once its churn horizon (churn_horizon_days, 90 days by default) has passed "
                "by the reporting date, so there is no complete outcome window yet. It fills in "
                "as history grows past the horizon."
            ),
        )
    scope = (
        f"Health model {version}: rows scored from {iso(first)} to {iso(last)}, whose churn "
        f"outcome is known by the reporting date {iso(as_of)} (evaluated as of {iso(evaluated)})."
    )
    lift = charts.scorer_lines(
        deciles,
        "Lift by risk decile (1 = riskiest)",
        x="decile",
        y="lift",
        x_title="risk decile",
        y_title="lift (decile churn rate / overall)",
        y_format=".2f",
    )
    body = _chart(lift, "chart-backtest-lift")
    if calibration.is_empty():
        body += _note(
            "No calibration yet: calibration needs a scorer that gives a probability, a fitted "
            "churn model in use (`csw fit-churn-model`); the health score and the churn-risk "
            "points are not probabilities."
        )
    else:
        figure = charts.scorer_lines(
            calibration,
            "Calibration: predicted probability vs observed churn rate",
            x="mean_probability",
            y="churn_rate",
            x_title="mean predicted probability",
            y_title="observed churn rate",
            y_format=charts.PERCENT_FORMAT,
            diagonal=True,
        )
        body += _chart(figure, "chart-backtest-calibration")
    return Section("backtest", title, scope, body)


SECTIONS: tuple[Callable[[duckdb.DuckDBPyConnection, date], Section], ...] = (
    retention_section,
    bridge_section,
    movements_section,
    cohort_section,
    ttv_section,
    health_section,
    lists_section,
    backtest_section,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
header p, .scope { color: #555; }
.empty { background: #f6f6f6; border-left: 4px solid #bbb; padding: 0.6rem 1rem; }
nav ol { columns: 2; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left;
         vertical-align: top; }
.nowrap { white-space: nowrap; }
td ol { margin: 0; padding-left: 1.2rem; }
section { margin-top: 2.5rem; }
"""


def _page(title: str, as_of: date, sections: Sequence[Section], month: date | None) -> str:
    contents = "".join(f'<li><a href="#{s.anchor}">{_text(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{_text(s.title)}</h2>'
        f'<p class="scope">{_text(s.scope)}</p>{s.body}</section>'
        for s in sections
    )
    dated = (
        f"Reporting date {iso(as_of)}."
        if month is None
        else f"Finance close {month:%Y-%m}: the MRR bridge shows the closed month {month:%Y-%m}; "
        f"the other sections are as of the reporting date {iso(as_of)}."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_text(title)}</title><style>{_STYLE}</style>"
        # plotly.js once, inlined: the page works offline and loads nothing
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><header><h1>{_text(title)}</h1>"
        f"<p>{_text(dated)} Every figure is read from the warehouse's marts; money "
        "in US dollars with cents, ratios as percentages, dates as YYYY-MM-DD.</p></header>"
        f"<nav><ol>{contents}</ol></nav>{body}</body></html>\n"
    )


def render_report(
    con: duckdb.DuckDBPyConnection, *, title: str | None = None, month: date | None = None
) -> str:
    """The report of the warehouse behind ``con`` as one self-contained HTML page.

    ``month`` (the first day of a closed month) pins the page to a finance close: the MRR
    bridge shows that month and the header says so; every other section is as of the reporting
    date either way."""
    if month is not None and month.day != 1:
        raise ReportError(
            f"the finance close's month must be the first day of a month, not {iso(month)}: "
            f"pass {iso(month.replace(day=1))}"
        )
    as_of = reporting_date(con)
    sections = [
        bridge_section(con, as_of, month) if build is bridge_section else build(con, as_of)
        for build in SECTIONS
    ]
    default = (
        f"Customer success report, {iso(as_of)}"
        if month is None
        else f"Customer success report, finance close {month:%Y-%m}"
    )
    return _page(title or default, as_of, sections, month)


def write_report(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    title: str | None = None,
    month: date | None = None,
) -> Path:
    """Render the report (``month``: see render_report) and write it to ``path`` atomically (a
    temp file renamed over it)."""
    text = render_report(con, title=title, month=month)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).chmod(0o644)  # mkstemp's 0600 would hide the page from other readers
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
