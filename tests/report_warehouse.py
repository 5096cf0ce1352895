"""Shared by the HTML report's tests (test_html_report, test_report_browser): a small warehouse
built once per module, the figures read back from a page, and their comparison with the marts.

The expected values are DuckDB queries of the marts written here, not the report's own queries:
the report must show what the marts hold. Figures are compared trace by trace, as plotly.js gets
them: from the JSON in the page (default tier) or from each chart's ``gd.data`` in Chromium
(browser tier), so one comparison serves both.
"""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, failures

from ingestion.contract import TABLES
from ingestion.loader import ingest_table
from ingestion.synthetic import GeneratorConfig, generate_extracts
from metrics.charts import TTV_DAYS, iso, percent, usd

#: Ten months of data from January; the reporting date in the middle of October, so the report
#: must leave out what is not over: October (the bridge shows September) and the fourth quarter
#: (NRR/GRR show the second and third).
SAMPLE = GeneratorConfig(accounts=30, months=10, seed=5, start=date(2024, 1, 1))
AS_OF = date(2024, 10, 17)
#: A churn horizon short enough that early scored dates have a known outcome: the backtest marts
#: have rows (the default 90 days leaves few on ten months).
HORIZON_DAYS = 28

Traces = list[dict[str, Any]]


def build_warehouse(root: Path) -> Path:
    """Generate, ingest and build (dbt run) the sample; the warehouse's path.

    Open it with ``duckdb.connect(path)``, not read-only: dbt's in-process connection to the
    file stays open, and DuckDB refuses a second one with another configuration."""
    generate_extracts(root / "landing", SAMPLE)
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for schema in TABLES:
            outcome = ingest_table(
                con, schema, root / "landing", validation_dir=root / "validation"
            )
            assert outcome.files_refused == 0, schema.name
    dbt = Dbt(root / "dbt", as_of=AS_OF.isoformat())
    result = dbt.invoke(warehouse, "run", vars_override={"churn_horizon_days": HORIZON_DAYS})
    assert result.success, failures(result)
    return warehouse


def add_calibration_rows(con: duckdb.DuckDBPyConnection) -> None:
    """The sample fits no churn model, so its calibration mart is empty: give it rows (the lift
    deciles' churn rates as bins) so that the calibration chart is drawn and can be checked."""
    con.execute(
        """
        insert into marts.fct_health_backtest_calibration by name
        select evaluated_as_of_date, horizon_days, health_model_version, health_model_name,
               churn_model_version, scorer, decile - 1 as probability_bin, scored_rows,
               churned_rows, churn_rate as mean_probability, churn_rate
        from marts.fct_health_backtest_deciles
        """
    )
    ((rows,),) = con.execute(
        "select count(*) from marts.fct_health_backtest_calibration"
    ).fetchall()
    assert rows > 0, "no lift deciles to make calibration rows of"


# --- reading the page ---------------------------------------------------------------------------

_NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"(?P<id>[^"]+)",\s*')


def page_figures(page: str) -> dict[str, Traces]:
    """The traces of every ``Plotly.newPlot`` call of the page, by div id, as plotly.js gets
    them (the JSON that plotly.io.to_html writes)."""
    decoder = json.JSONDecoder()
    figures: dict[str, Traces] = {}
    for match in _NEW_PLOT.finditer(page):
        data, _ = decoder.raw_decode(page, match.end())
        figures[match.group("id")] = data
    return figures


class _Tags(HTMLParser):
    """Every start tag with its attributes; the text of each table's cells and list items."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[tuple[str, list[str], list[str]]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._items: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None and "data-account-id" in attributes:
            self.tables[self._table].append((attributes["data-account-id"] or "", [], []))
        elif tag == "td" and self._table is not None:
            self._cell = []
        elif tag == "li" and self._cell is not None:
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1][1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None and self._table is not None:
            self.tables[self._table][-1][2].append("".join(self._item))
            self._item = None

    def handle_data(self, data: str) -> None:
        if self._item is not None:
            self._item.append(data)
        if self._cell is not None:
            self._cell.append(data)


def page_tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


# --- the marts' values --------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _floats(values: list[Any]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def reporting_date(con: duckdb.DuckDBPyConnection) -> date:
    ((as_of,),) = _rows(con, "select max(as_of_date) from marts.dim_accounts")
    return as_of


def _by(traces: Traces, key: Any) -> dict[Any, dict[str, Any]]:
    """Traces by their ``meta`` (made hashable), each meta once."""
    found: dict[Any, dict[str, Any]] = {}
    for trace in traces:
        meta = trace.get("meta")
        meta_key = tuple(meta) if isinstance(meta, list) else meta
        assert meta_key not in found, f"two traces with meta {meta_key!r}"
        found[meta_key] = trace
    assert set(found) == set(key), f"traces {sorted(map(str, found))} != {sorted(map(str, key))}"
    return found


def _series(rows: list[tuple[Any, ...]]) -> dict[Any, tuple[list[Any], list[Any]]]:
    """(key, x, y) rows in x order -> key: (xs, ys)."""
    series: dict[Any, tuple[list[Any], list[Any]]] = {}
    for key, x, y in rows:
        xs, ys = series.setdefault(key, ([], []))
        xs.append(x)
        ys.append(y)
    return series


def _assert_series(traces: Traces, expected: dict[Any, tuple[list[Any], list[Any]]]) -> None:
    shown = _by(traces, expected)
    for key, (xs, ys) in expected.items():
        assert shown[key]["x"] == xs, key
        assert shown[key]["y"] == pytest.approx(_floats(ys), abs=1e-9), key


def check_retention(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    for chart, mart, segment in (
        ("chart-retention-total", "fct_revenue_retention", "null"),
        ("chart-retention-by-segment", "fct_revenue_retention_by_segment", "segment"),
    ):
        rows = _rows(
            con,
            f"""
            select [{segment}, measure], strftime(period_start, '%Y-%m-%d'), value
            from marts.{mart}
            unpivot (value for measure in (nrr, grr))
            where period_grain = 'quarter' and is_complete
            order by all
            """,
        )
        assert rows, f"{mart} has no complete quarter on the sample"
        _assert_series(figures[chart], _series([(tuple(k), x, y) for k, x, y in rows]))


def check_bridge(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    as_of = reporting_date(con)
    # the latest month over by the reporting date, by the calendar (the report asks the
    # retention mart's is_complete)
    (row,) = _rows(
        con,
        f"""
        select starting_mrr_usd, new_mrr_usd, expansion_mrr_usd, reactivation_mrr_usd,
               -contraction_mrr_usd, -churned_mrr_usd, ending_mrr_usd
        from marts.fct_mrr_bridge
        where month = (select max(month) from marts.fct_mrr_bridge
                       where last_day(month) <= date '{as_of}')
        """,
    )
    (trace,) = figures["chart-mrr-bridge"]
    assert trace["type"] == "waterfall"
    assert trace["y"] == pytest.approx(_floats(list(row)), abs=1e-9)
    assert trace["measure"] == ["absolute", *["relative"] * 5, "absolute"]
    # the labels on the bars are the same amounts, formatted by the money rule
    assert trace["text"] == [usd(v) for v in row]


def check_movements(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    # flat rows are left out of the chart: they never move MRR
    assert _rows(
        con, "select count(*) from marts.fct_mrr_movements where movement = 'flat' and mrr_usd <> 0"
    ) == [(0,)]
    rows = _rows(
        con,
        """
        select movement, strftime(month, '%Y-%m-%d'), mrr_usd from marts.fct_mrr_movements
        where movement <> 'flat' order by movement, month
        """,
    )
    _assert_series(figures["chart-mrr-movements"], _series(rows))


def check_cohorts(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    (trace,) = figures["chart-cohort-retention"]
    cells = {
        (cohort, months): float(value) if value is not None else None
        for cohort, months, value in _rows(
            con,
            """
            select strftime(cohort_month, '%Y-%m-%d'), months_since_start, revenue_retention
            from marts.fct_cohort_adoption
            """,
        )
    }
    positions = {
        (cohort, months): value
        for cohort, row in zip(trace["y"], trace["z"], strict=True)
        for months, value in zip(trace["x"], row, strict=True)
    }
    assert set(cells) <= set(positions)
    shown = {k: v for k, v in positions.items() if v is not None}
    assert shown == pytest.approx({k: v for k, v in cells.items() if v is not None}, abs=1e-9)


def check_ttv(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    """Each start cohort's line is the mart's reached_within_<n>d_share (a NULL share is a gap,
    None in the trace) and its hover counts are the mart's observed_<n>d_accounts."""
    shares = ", ".join(f"reached_within_{n}d_share" for n in TTV_DAYS)
    observed = ", ".join(f"observed_{n}d_accounts" for n in TTV_DAYS)
    for chart, mart, segment in (
        ("chart-ttv-cohorts", "fct_ttv_cohorts", "null"),
        ("chart-ttv-by-segment", "fct_ttv_cohorts_by_segment", "segment"),
    ):
        rows = _rows(
            con,
            f"select {segment}, start_month, [{shares}], [{observed}] from marts.{mart} "
            "order by all",
        )
        expected = {(seg, iso(month)): (ys, counts) for seg, month, ys, counts in rows}
        shown = {(t.get("meta"), t["name"]): t for t in figures[chart]}
        assert set(shown) == set(expected)
        for key, (ys, counts) in expected.items():
            assert shown[key]["x"] == list(TTV_DAYS)
            assert shown[key]["y"] == pytest.approx(_floats(ys), abs=1e-12), key
            assert shown[key]["customdata"] == counts, key
    # the sample has young cohorts (observed fewer than their accounts) and a NULL share, else
    # the division by all accounts and the gap would go untested
    assert _rows(
        con,
        """
        select bool_or(observed_90d_accounts < accounts), bool_or(reached_within_90d_share is null)
        from marts.fct_ttv_cohorts_by_segment
        """,
    ) == [(True, True)]


def check_health(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    for chart, x, where in (
        ("chart-health-by-segment", "segment", "where is_reporting_date"),
        ("chart-health-over-time", "strftime(as_of_date, '%Y-%m-%d')", ""),
    ):
        rows = _rows(
            con,
            f"""
            select health_band, {x} as x, count(*) from marts.fct_account_health {where}
            group by all order by health_band, x
            """,
        )
        assert rows
        shown = _by(figures[chart], {band for band, _, _ in rows})
        for band, (xs, ys) in _series(rows).items():
            pairs = dict(zip(shown[band]["x"], shown[band]["y"], strict=True))
            assert pairs == dict(zip(xs, ys, strict=True)), band


def _version_in_use(con: duckdb.DuckDBPyConnection) -> str:
    ((version,),) = _rows(
        con,
        "select distinct health_model_version from marts.fct_account_health where is_reporting_date",
    )
    return version


def check_backtest(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    version = _version_in_use(con)
    # (chart, mart, x, y, the order of the points)
    for chart, mart, x, y, order in (
        ("chart-backtest-lift", "fct_health_backtest_deciles", "decile", "lift", "decile"),
        (
            "chart-backtest-calibration",
            "fct_health_backtest_calibration",
            "mean_probability",
            "churn_rate",
            "probability_bin",
        ),
    ):
        rows = _rows(
            con,
            f"""
            select [scorer, horizon_days::varchar], {x}, {y} from marts.{mart}
            where health_model_version = '{version}' order by scorer, horizon_days, {order}
            """,
        )
        if not rows:
            assert chart not in figures, f"{chart} drawn from an empty {mart}"
            continue
        expected = {
            (scorer, int(horizon)): (_floats(xs), ys)
            for (scorer, horizon), (xs, ys) in _series(
                [(tuple(k), x_, y_) for k, x_, y_ in rows]
            ).items()
        }
        shown = _by(figures[chart], expected)
        for key, (xs, ys) in expected.items():
            assert shown[key]["x"] == pytest.approx(xs, abs=1e-12), key
            assert shown[key]["y"] == pytest.approx(_floats(ys), abs=1e-12), key


def check_figures(figures: dict[str, Traces], con: duckdb.DuckDBPyConnection) -> None:
    """Every chart of the page shows the marts' values."""
    check_retention(figures, con)
    check_bridge(figures, con)
    check_movements(figures, con)
    check_cohorts(figures, con)
    check_ttv(figures, con)
    check_health(figures, con)
    check_backtest(figures, con)


def expected_lists(
    con: duckdb.DuckDBPyConnection,
) -> dict[str, list[tuple[str, list[str], list[str]]]]:
    """Per list table: (account_id, the cells the report must show, the reasons/signals in
    order), in list_rank order, from the marts."""
    risk = _rows(
        con,
        """
        select l.account_id, l.list_rank, l.account_name, l.owner, l.segment, l.arr_at_risk_usd,
               l.renewal_date, l.health_score, l.health_band, l.churn_probability,
               l.expected_arr_lost_usd, l.play,
               coalesce((select list(reason order by reason_order) from marts.risk_list_reasons r
                         where r.account_id = l.account_id), [])
        from marts.risk_list l order by l.list_rank
        """,
    )
    expansion = _rows(
        con,
        """
        select l.account_id, l.list_rank, l.account_name, l.owner, l.segment, l.current_arr_usd,
               l.purchased_seats, l.urgency, l.estimated_opportunity_usd,
               coalesce((select list(signal order by signal_type)
                         from marts.expansion_list_signals s where s.account_id = l.account_id), [])
        from marts.expansion_list l order by l.list_rank
        """,
    )
    risk_rows = [
        (
            account,
            [
                _text(rank),
                _text(name),
                _text(owner),
                _text(seg),
                usd(arr),
                iso(renewal),
                f"{score} ({band})",
                percent(prob),
                usd(lost),
                "".join(reasons),
                _text(play),
            ],
            list(reasons),
        )
        for account, rank, name, owner, seg, arr, renewal, score, band, prob, lost, play, reasons in risk
    ]
    expansion_rows = [
        (
            account,
            [
                _text(rank),
                _text(name),
                _text(owner),
                _text(seg),
                usd(arr),
                _text(seats),
                _text(urgency),
                usd(opportunity),
                "".join(signals),
            ],
            list(signals),
        )
        for account, rank, name, owner, seg, arr, seats, urgency, opportunity, signals in expansion
    ]
    return {"table-risk-list": risk_rows, "table-expansion-list": expansion_rows}
