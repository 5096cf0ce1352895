"""The HTML report (metrics/html_report.py): one offline page whose figures are the marts' values.

One small warehouse is generated and built once for the module (tests/report_warehouse.py); the
page is rendered from it and read back: the script and link sources, plotly.js, the chart divs,
each chart's figure data (the JSON handed to Plotly.newPlot) against DuckDB queries of the marts,
and the list tables. The edge cases (an empty mart, a missing one, no reporting date, a failed
write) render copies of that warehouse. Chromium renders the same page in test_report_browser.py.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from plotly.offline import get_plotlyjs
from report_warehouse import (
    add_calibration_rows,
    build_warehouse,
    check_backtest,
    check_figures,
    expected_lists,
    page_figures,
    page_tags,
    reporting_date,
)

from metrics import charts
from metrics.formatting import iso, percent, usd
from metrics.html_report import (
    CHART_IDS,
    TABLE_IDS,
    ReportError,
    render_report,
    write_report,
)


@dataclass(frozen=True)
class Rendered:
    warehouse: Path
    page: str


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    warehouse = build_warehouse(tmp_path_factory.mktemp("html_report"))
    with duckdb.connect(str(warehouse)) as con:
        # everything into the file, so that the edge cases' copies of it are whole
        con.execute("checkpoint")
        return Rendered(warehouse, render_report(con))


@pytest.fixture
def marts(rendered: Rendered):
    with duckdb.connect(str(rendered.warehouse)) as con:
        yield con


def _copy(rendered: Rendered, tmp_path: Path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(rendered.warehouse, copy)
    return copy


def _render_after(copy: Path, *statements: str) -> str:
    with duckdb.connect(str(copy)) as con:
        for statement in statements:
            con.execute(statement)
        return render_report(con)


def _calibration_is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("select count(*) from marts.fct_health_backtest_calibration").fetchall() == [
        (0,)
    ]


# --- offline ------------------------------------------------------------------------------------


def test_the_page_loads_nothing_from_the_network(rendered: Rendered) -> None:
    sources = [
        (tag, name, value)
        for tag, attributes in page_tags(rendered.page).tags
        for name, value in attributes.items()
        if name in {"src", "href", "srcset", "data", "action"}
    ]
    # nothing but the table of contents' anchors: no script, style, image or font from a URL
    assert sources
    assert all(
        tag == "a" and name == "href" and (value or "").startswith("#")
        for tag, name, value in sources
    ), sources
    # and outside plotly.js itself (whose bundle names plotly's CDN for map data we do not
    # use) no URL at all: no CDN, no link to plotly's cloud
    outside = rendered.page.replace(get_plotlyjs(), "")
    assert re.findall(r"(?:https?:)?//[\w.-]+\.\w+", outside) == []


def test_plotly_js_is_inlined_once(rendered: Rendered) -> None:
    assert rendered.page.count(get_plotlyjs()) == 1
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", rendered.page, flags=re.DOTALL)
    # the library's script, then one small script per chart
    assert sum(len(s) > 100_000 for s in scripts) == 1
    assert scripts[0] == get_plotlyjs()


# --- charts -------------------------------------------------------------------------------------


def test_every_chart_is_on_the_page(rendered: Rendered, marts: duckdb.DuckDBPyConnection) -> None:
    drawn = set(page_figures(rendered.page))
    expected = {chart for charts in CHART_IDS.values() for chart in charts}
    if _calibration_is_empty(marts):
        # no churn model fitted on the sample: the calibration is explained, not drawn
        expected.remove("chart-backtest-calibration")
        assert "No calibration yet" in rendered.page
    assert drawn == expected
    for chart in expected:
        assert f'<div id="{chart}" class="plotly-graph-div"' in rendered.page


def test_the_charts_show_the_marts_values(
    rendered: Rendered, marts: duckdb.DuckDBPyConnection
) -> None:
    check_figures(page_figures(rendered.page), marts)


def test_calibration_is_drawn_from_its_mart(rendered: Rendered, tmp_path: Path) -> None:
    """The sample fits no churn model, so its calibration mart is empty: give it rows (the lift
    deciles' rates as bins) and the chart must show exactly them."""
    copy = _copy(rendered, tmp_path)
    with duckdb.connect(str(copy)) as con:
        add_calibration_rows(con)
        page = render_report(con)
    figures = page_figures(page)
    assert "chart-backtest-calibration" in figures
    with duckdb.connect(str(copy), read_only=True) as con:
        assert not _calibration_is_empty(con)
        check_backtest(figures, con)


def test_a_finance_close_page_shows_its_month(
    rendered: Rendered, marts: duckdb.DuckDBPyConnection
) -> None:
    """A close's page is pinned to the closed month: its bridge is that month's row of
    fct_mrr_bridge (not the latest complete month's) and its header says which close it is."""
    ((latest,),) = marts.execute(
        "select max(period_start) from marts.fct_revenue_retention "
        "where period_grain = 'month' and is_complete"
    ).fetchall()
    month = date(latest.year, latest.month - 1, 1)  # the sample's latest is September
    (row,) = marts.execute(
        """
        select starting_mrr_usd, new_mrr_usd, expansion_mrr_usd, reactivation_mrr_usd,
               -contraction_mrr_usd, -churned_mrr_usd, ending_mrr_usd
        from marts.fct_mrr_bridge where month = ?
        """,
        [month],
    ).fetchall()
    (latest_row,) = marts.execute(
        "select starting_mrr_usd from marts.fct_mrr_bridge where month = ?", [latest]
    ).fetchall()
    assert row[0] != latest_row[0], "the two months' bridges must differ, else this proves nothing"
    page = render_report(marts, month=month)
    (trace,) = page_figures(page)["chart-mrr-bridge"]
    assert trace["y"] == pytest.approx([float(v) for v in row], abs=1e-9)
    assert trace["text"] == [usd(v) for v in row]
    header = re.search(r"<header>(.*?)</header>", page, flags=re.DOTALL)
    assert header is not None
    assert f"Finance close {month:%Y-%m}" in header.group(1)
    assert f"as of the reporting date {reporting_date(marts).isoformat()}" in header.group(1)
    # the other sections are the reporting date's, as on the lists' page
    assert (
        page_figures(page)["chart-mrr-movements"]
        == page_figures(rendered.page)["chart-mrr-movements"]
    )
    # and without a month the header names no close
    assert "Finance close" not in rendered.page


def test_a_finance_close_month_without_a_bridge_is_explained(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    page = render_report(marts, month=date(2020, 1, 1))
    assert "chart-mrr-bridge" not in page_figures(page)
    assert "marts.fct_mrr_bridge has no row for the month 2020-01-01" in page
    with pytest.raises(ReportError, match="first day of a month"):
        render_report(marts, month=date(2024, 8, 15))


# --- lists --------------------------------------------------------------------------------------


def test_the_lists_show_the_marts_rows_with_their_reasons(
    rendered: Rendered, marts: duckdb.DuckDBPyConnection
) -> None:
    tables = page_tags(rendered.page).tables
    expected = expected_lists(marts)
    assert set(TABLE_IDS) == set(expected)
    for table in TABLE_IDS:
        assert expected[table], f"the sample's {table} is empty: the test would prove nothing"
        assert tables[table] == expected[table]
    # at least one account has several reasons, in their order
    assert any(len(reasons) > 1 for _, _, reasons in expected["table-risk-list"])


# --- scope and empty marts ----------------------------------------------------------------------


def test_each_section_states_its_range_and_the_reporting_date(
    rendered: Rendered, marts: duckdb.DuckDBPyConnection
) -> None:
    as_of = reporting_date(marts).isoformat()
    scopes = re.findall(
        r'<section id="([^"]+)"><h2>[^<]*</h2><p class="scope">([^<]*)</p>', rendered.page
    )
    assert {anchor for anchor, _ in scopes} >= set(CHART_IDS) | {"lists"}
    for anchor, scope in scopes:
        assert as_of in scope, anchor
        # and a data range: some other date, or the list sizes
        assert len(re.findall(r"\d{4}-\d{2}-\d{2}", scope)) >= 2 or anchor == "lists", anchor


def test_an_empty_mart_is_explained_not_drawn(rendered: Rendered, tmp_path: Path) -> None:
    page = _render_after(
        _copy(rendered, tmp_path),
        "delete from marts.fct_mrr_movements",
        "delete from marts.fct_health_backtest",
        "delete from marts.fct_health_backtest_deciles",
        "delete from marts.risk_list_reasons",
        "delete from marts.risk_list",
        "delete from marts.fct_revenue_retention_by_segment",
    )
    figures = page_figures(page)
    assert "chart-mrr-movements" not in figures
    assert "marts.fct_mrr_movements has no rows" in page
    assert "chart-backtest-lift" not in figures
    assert "no complete outcome window yet" in page
    assert 'id="table-risk-list"' not in page
    assert "No account is on the risk list" in page
    assert "chart-retention-by-segment" not in figures
    assert "marts.fct_revenue_retention_by_segment has no complete quarter" in page
    # the other sections are untouched
    assert {"chart-mrr-bridge", "chart-cohort-retention", "chart-retention-total"} <= set(figures)


def test_a_missing_mart_is_named(rendered: Rendered, tmp_path: Path) -> None:
    page = _render_after(_copy(rendered, tmp_path), "drop table marts.fct_cohort_adoption")
    assert "chart-cohort-retention" not in page_figures(page)
    assert "marts.fct_cohort_adoption is not in this warehouse" in page
    assert "csw run" in page


def test_no_reporting_date_is_an_error_saying_what_to_do(
    rendered: Rendered, tmp_path: Path
) -> None:
    with pytest.raises(ReportError, match=r"marts\.dim_accounts is empty.*csw run"):
        _render_after(_copy(rendered, tmp_path), "delete from marts.dim_accounts")


# --- writing ------------------------------------------------------------------------------------


def test_write_report_replaces_the_file_whole(rendered: Rendered, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    target.write_text("the previous report")
    with duckdb.connect(str(rendered.warehouse)) as con:
        assert write_report(con, target) == target
    assert target.read_text(encoding="utf-8") == rendered.page
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_a_failed_report_leaves_the_previous_file(rendered: Rendered, tmp_path: Path) -> None:
    copy = _copy(rendered, tmp_path)
    target = tmp_path / "report.html"
    target.write_text("the previous report")
    with duckdb.connect(str(copy)) as con:
        con.execute("delete from marts.dim_accounts")
        with pytest.raises(ReportError):
            write_report(con, target)
    assert target.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "warehouse.duckdb"]


# --- formats ------------------------------------------------------------------------------------


def test_money_and_ratios_follow_one_rule() -> None:
    """The rule of metrics/formatting.py (docs/report.md), the one the CLI's tables use too:
    cents everywhere, one decimal of percent, half away from zero; only axis ticks round."""
    assert usd(Decimal("1234567.5")) == "$1,234,567.50"
    assert usd(Decimal("1234.565")) == "$1,234.57"
    assert usd(Decimal("-305.3496")) == "-$305.35"
    assert usd(None) == ""
    assert percent(Decimal("1.043150")) == "104.3%"
    assert percent(0.99995) == "100.0%"
    assert percent(None) == ""
    assert (charts.usd, charts.percent, charts.iso) == (usd, percent, iso)
    assert charts.USD_FORMAT == "$,.2f" and charts.USD_AXIS_FORMAT == "$,.0f"


def test_chart_hovers_show_cents_and_only_axes_round() -> None:
    """Every money hover is ``$,.2f`` (cents); the whole-dollar format is for axis ticks only."""
    row = dict.fromkeys(
        ["starting_mrr_usd", "ending_mrr_usd", *(c for c, _, _ in charts.BRIDGE_STEPS)],
        Decimal("1.005"),
    )
    waterfall = charts.mrr_waterfall(row, "t")
    assert "$,.2f" in waterfall.data[0].hovertemplate
    assert waterfall.data[0].text[0] == "$1.01"
    frame = pl.DataFrame(
        {"month": [date(2025, 1, 1)], "movement": ["new"], "mrr_usd": [1.5], "accounts": [1]}
    )
    bars = charts.movements_bars(frame, "t")
    assert "$,.2f" in bars.data[0].hovertemplate
    assert bars.layout.yaxis.tickformat == "$,.0f"
