"""The HTML report in a real headless Chromium (Debian's chromium + chromedriver, via selenium).

Run by `make test-browser`, which installs both first (.ci/install-chromium). Without them the
tests FAIL and say so: CI must not pass without having looked at the page. The page is written
from a small warehouse built once (tests/report_warehouse.py) and opened from its file:// path
with the network-related features of Chromium off; then:

* the browser's console has no error (a failed script, a blocked load);
* nothing came from the network: the navigation entry is the file and every resource the page
  loaded is ``file:`` or ``data:``;
* every chart rendered, the calibration too (the fixture gives its mart rows, as the sample fits
  no churn model): an ``svg.main-svg`` with one drawn trace per trace of the figure;
* the figures plotly.js holds (each div's ``gd.data``) equal the marts, compared with DuckDB
  queries of the same warehouse; the text drawn on the page (the bridge's bar labels, the axes'
  percent ticks, the lists' cells) is the marts' values in the report's formats.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from report_warehouse import add_calibration_rows, build_warehouse, check_figures, expected_lists

from metrics.charts import usd
from metrics.html_report import CHART_IDS, TABLE_IDS, write_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1300,1000",
)


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and "
            "chromium-driver; run .ci/install-chromium (as root or with sudo), then "
            "`make test-browser` again",
            pytrace=False,
        )


@dataclass(frozen=True)
class Opened:
    warehouse: Path
    #: the page Chromium opened
    page: Path
    driver: Any
    #: milliseconds from navigation start to the load event (reported, never asserted)
    load_ms: int


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opened]:
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("report_browser")
    warehouse = build_warehouse(root)
    page = root / "report.html"
    with duckdb.connect(str(warehouse)) as con:
        add_calibration_rows(con)  # the sample fits no churn model: draw a calibration too
        write_report(con, page)
    profile = tempfile.mkdtemp(prefix="csw-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.get(page.as_uri())
        load_ms = driver.execute_script(
            "const t = performance.getEntriesByType('navigation')[0];"
            "return Math.round(t.loadEventEnd - t.startTime);"
        )
        print(f"report.html: {page.stat().st_size} bytes, loaded in {load_ms} ms")
        yield Opened(warehouse, page, driver, load_ms)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def marts(opened: Opened) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(opened.warehouse)) as con:
        yield con


def _charts_on_page(driver: Any) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.plotly-graph-div')).map(g => g.id);"
    )


def test_the_page_logs_no_console_error(opened: Opened) -> None:
    entries = opened.driver.get_log("browser")
    errors = [e for e in entries if e["level"] in {"SEVERE", "ERROR"}]
    assert errors == []


def test_every_chart_rendered_its_traces(opened: Opened) -> None:
    charts = _charts_on_page(opened.driver)
    # every chart, the calibration too (the fixture gave its mart rows)
    assert set(charts) == {chart for ids in CHART_IDS.values() for chart in ids}
    for chart in charts:
        drawn = opened.driver.execute_script(
            """
            const gd = document.getElementById(arguments[0]);
            return {
              svgs: gd.querySelectorAll('svg.main-svg').length,
              traces: gd.data.length,
              rendered: gd._fullData.filter(t => t.visible === true).length,
              // a trace's group with something in it: a path with a shape, or the heatmap image
              drawn: Array.from(gd.querySelectorAll(
                  '.cartesianlayer .overplot g.trace, .cartesianlayer .overplot g.hm'))
                .filter(g => g.querySelector('image') ||
                  Array.from(g.querySelectorAll('path')).some(p => (p.getAttribute('d') || '')
                    .length > 1)).length,
            };
            """,
            chart,
        )
        assert drawn["svgs"] >= 1, chart
        assert drawn["traces"] > 0, chart
        assert drawn["rendered"] == drawn["traces"], (chart, drawn)
        assert drawn["drawn"] >= drawn["traces"], (chart, drawn)


def test_nothing_was_fetched_from_the_network(opened: Opened) -> None:
    """The page came from its file and everything it loaded was the file or inline data."""
    entries = opened.driver.execute_script(
        """
        return {
          navigation: performance.getEntriesByType('navigation').map(e => e.name),
          resources: performance.getEntriesByType('resource').map(e => e.name),
        };
        """
    )
    assert entries["navigation"] == [opened.page.as_uri()]
    assert all(name.startswith(("file:", "data:")) for name in entries["resources"]), entries


def test_the_figures_in_the_browser_equal_the_marts(
    opened: Opened, marts: duckdb.DuckDBPyConnection
) -> None:
    figures = {
        chart: opened.driver.execute_script(
            "return JSON.parse(JSON.stringify(document.getElementById(arguments[0]).data));",
            chart,
        )
        for chart in _charts_on_page(opened.driver)
    }
    # the calibration chart is compared with its mart too (check_backtest skips an empty one)
    assert "chart-backtest-calibration" in figures
    ((calibration_rows,),) = marts.execute(
        "select count(*) from marts.fct_health_backtest_calibration"
    ).fetchall()
    assert calibration_rows > 0
    check_figures(figures, marts)


def test_the_text_drawn_is_the_marts_values_formatted(
    opened: Opened, marts: duckdb.DuckDBPyConnection
) -> None:
    driver = opened.driver
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll("
        "'#chart-mrr-bridge .waterfalllayer text')).map(t => t.textContent);"
    )
    ((month,),) = marts.execute(
        "select max(period_start) from marts.fct_revenue_retention "
        "where period_grain = 'month' and is_complete"
    ).fetchall()
    (row,) = marts.execute(
        """
        select starting_mrr_usd, new_mrr_usd, expansion_mrr_usd, reactivation_mrr_usd,
               -contraction_mrr_usd, -churned_mrr_usd, ending_mrr_usd
        from marts.fct_mrr_bridge where month = ?
        """,
        [month],
    ).fetchall()
    assert labels == [usd(v) for v in row]
    for chart in ("chart-retention-total", "chart-ttv-cohorts", "chart-health-over-time"):
        ticks = driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'#' + arguments[0] + ' .ytick text')).map(t => t.textContent);",
            chart,
        )
        assert ticks, chart
        assert all(t.endswith("%") for t in ticks), (chart, ticks)
    expected = expected_lists(marts)
    for table in TABLE_IDS:
        shown = driver.execute_script(
            """
            return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map(
              tr => [tr.dataset.accountId,
                     Array.from(tr.querySelectorAll('li')).map(li => li.textContent)]);
            """,
            table,
        )
        assert shown == [[account, items] for account, _, items in expected[table]]
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
            ".map(tr => Array.from(tr.cells).slice(0, 5).map(td => td.textContent));",
            table,
        )
        assert cells == [list(c[:5]) for _, c, _ in expected[table]]
