"""csw report and csw lists read the serving copy and print exact figures in every format."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from metrics.formatting import cell, percent, usd
from orchestration.cli import app

runner = CliRunner()


@pytest.fixture
def publish(tmp_path: Path) -> Path:
    """A serving copy with the retention and bridge marts (company totals and by segment) and a
    risk list, as publishing leaves it."""
    folder = tmp_path / "published"
    folder.mkdir()
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute("create schema marts")
        con.execute(
            """
            create table retention as
            select * from (values
              ('quarter', date '2025-01-01', date '2025-03-31', 'all', 2, 300.0000::decimal(18,4),
               25.5000::decimal(18,4), 0.0000::decimal(18,4), 100.0000::decimal(18,4),
               225.5000::decimal(18,4), 0.751667::decimal(18,6), 0.666667::decimal(18,6), true),
              ('quarter', date '2025-01-01', date '2025-03-31', 'smb', 1, 100.0000::decimal(18,4),
               0.0000::decimal(18,4), 0.0000::decimal(18,4), 100.0000::decimal(18,4),
               0.0000::decimal(18,4), 0.000000::decimal(18,6), 0.000000::decimal(18,6), true),
              ('month', date '2025-01-01', date '2025-01-31', 'all', 2, 300.0000::decimal(18,4),
               0.0000::decimal(18,4), 0.0000::decimal(18,4), 0.0000::decimal(18,4),
               300.0000::decimal(18,4), 1.000000::decimal(18,6), 1.000000::decimal(18,6), true)
            ) t(period_grain, period_start, period_end, segment, cohort_accounts, starting_mrr_usd,
                expansion_mrr_usd, contraction_mrr_usd, churned_mrr_usd, ending_mrr_usd, nrr, grr,
                is_complete)
            """
        )
        con.execute(
            "create table marts.fct_revenue_retention as"
            " select * exclude (segment) from retention where segment = 'all'"
        )
        con.execute(
            "create table marts.fct_revenue_retention_by_segment as"
            " select * from retention where segment <> 'all'"
        )
        con.execute("drop table retention")
        con.execute(
            """
            create table marts.fct_mrr_bridge as
            select date '2025-02-01' as month,
                   300.0000::decimal(18,4) as starting_mrr_usd, 10.0000::decimal(18,4) as new_mrr_usd,
                   5.0000::decimal(18,4) as expansion_mrr_usd, 0.0000::decimal(18,4) as reactivation_mrr_usd,
                   1.0000::decimal(18,4) as contraction_mrr_usd, 100.0000::decimal(18,4) as churned_mrr_usd,
                   214.0000::decimal(18,4) as ending_mrr_usd, 2 as ending_accounts
            """
        )
        con.execute(
            "create table marts.fct_mrr_bridge_by_segment as"
            " select month, 'smb' as segment, * exclude (month) from marts.fct_mrr_bridge limit 0"
        )
        con.execute(
            """
            create table marts.risk_list as select * from (values
              (2, 'acc_2', 'csm_bo', 1200.00::decimal(18,2), date '2025-03-31'),
              (1, 'acc_1', 'csm_ada', 2400.00::decimal(18,2), date '2025-03-31')
            ) t(list_rank, account_id, owner, arr_at_risk_usd, as_of_date)
            """
        )
        con.execute(
            """
            create table marts.dim_accounts as select * from (values
              ('acc_1', 'csm_ada', date '2025-03-31'),
              ('acc_2', 'csm_bo', date '2025-03-31'),
              ('acc_3', 'csm_cy', date '2025-03-31')
            ) t(account_id, owner, as_of_date)
            """
        )
        con.execute(
            """
            create table marts.adoption_alerts as select * from (values
              ('acc_3', 'seat_drop', date '2025-03-31'),
              ('acc_1', 'seat_drop', date '2025-03-31')
            ) t(account_id, alert_type, as_of_date)
            """
        )
    return folder


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_retention_as_json_keeps_exact_decimals(publish: Path) -> None:
    out = _invoke("report", "retention", "--grain", "quarter", "--from", "2025-01", "--to", "2025-03",
                  "--format", "json", "--publish", str(publish))  # fmt: skip
    rows = json.loads(out)
    assert [r["segment"] for r in rows] == ["all"]
    assert Decimal(rows[0]["nrr"]) == Decimal("0.751667")
    assert Decimal(rows[0]["ending_mrr_usd"]) == Decimal("225.5")


def test_retention_by_segment_as_csv(publish: Path) -> None:
    out = _invoke("report", "retention", "--from", "2025-01", "--to", "2025-01", "--by", "segment",
                  "--format", "csv", "--publish", str(publish))  # fmt: skip
    lines = out.strip().splitlines()
    assert lines[0].startswith("period_grain,period_start,period_end,segment")
    assert [line.split(",")[3] for line in lines[1:]] == ["all", "smb"]


def test_mrr_bridge_as_markdown(publish: Path) -> None:
    out = _invoke("report", "mrr", "--from", "2025-02", "--to", "2025-02", "--format", "md",
                  "--publish", str(publish))  # fmt: skip
    header, rule, row = out.strip().splitlines()
    assert header.startswith("| month | segment | starting_mrr_usd")
    assert rule.startswith("|---|")
    assert (
        "| 2025-02-01 | all | $300.00 | $10.00 | $5.00 | $0.00 | $1.00 | $100.00 | $214.00 | 2 |"
        in row
    )


def test_lists_are_ranked_and_filtered_by_owner(publish: Path) -> None:
    out = _invoke("lists", "risk", "--format", "csv", "--publish", str(publish))
    assert [line.split(",")[1] for line in out.strip().splitlines()[1:]] == ["acc_1", "acc_2"]
    mine = _invoke(
        "lists", "risk", "--owner", "csm_bo", "--format", "csv", "--publish", str(publish)
    )
    assert [line.split(",")[1] for line in mine.strip().splitlines()[1:]] == ["acc_2"]


def test_table_format_prints_a_titled_table(publish: Path) -> None:
    out = _invoke(
        "report", "retention", "--from", "2025-01", "--to", "2025-03", "--publish", str(publish)
    )
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        nrr, grr, ending = con.sql(
            "select nrr, grr, ending_mrr_usd from marts.fct_revenue_retention"
            " where period_grain = 'quarter'"
        ).fetchall()[0]
    assert "Revenue retention by quarter" in out
    assert f" {percent(nrr)} " in out and f" {percent(grr)} " in out and f" {usd(ending)} " in out
    assert str(nrr) not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "mrr", "--from", "2025-13", "--to", "2025-02"], "YYYY-MM"),
        (["report", "mrr", "--from", "2025-03", "--to", "2025-02"], "after --to"),
        (
            ["report", "retention", "--grain", "week", "--from", "2025-01", "--to", "2025-02"],
            "unknown grain",
        ),
        (["lists", "champions"], "unknown list"),
        (["lists", "expansion"], "Run `csw run`"),
    ],
)
def test_bad_requests_exit_2_with_a_reason(publish: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--publish", str(publish)])
    assert result.exit_code == 2
    assert message in result.output


def test_reports_without_a_publication_say_what_to_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lists", "risk", "--publish", str(tmp_path)])
    assert result.exit_code == 2
    assert "csw run" in result.output


def test_ratios_show_as_percentages_and_money_with_cents_by_the_columns_name() -> None:
    """One rule (metrics/formatting.py, docs/report.md): cents, half away from zero, minus before
    the dollar sign; ratios named by the convention as percentages with one decimal."""
    assert usd(Decimal("1234.565")) == "$1,234.57"
    assert usd(Decimal("-305")) == "-$305.00"
    assert usd(-0.004) == "$0.00"
    assert percent(Decimal("1.043150")) == "104.3%"
    assert percent(0.99995) == "100.0%"
    assert cell("nrr", Decimal("1.0431")) == "104.3%"
    for ratio in ("grr", "logo_churn_rate", "band_share", "revenue_retention",
                  "seat_utilisation", "churn_probability"):  # fmt: skip
        assert cell(ratio, 0.5) == "50.0%", ratio
    assert cell("expansion_mrr_usd", Decimal("25.5")) == "$25.50"
    assert cell("current_arr_usd", 1200) == "$1,200.00"
    assert cell("accounts", 3) == "3"
    assert cell("month", date(2025, 2, 1)) == "2025-02-01"
    assert cell("is_complete", True) == "true"
    assert cell("nrr", None) == ""


# --- empty selections are explained -------------------------------------------------------------


def _split(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def test_an_empty_retention_period_says_which_periods_the_warehouse_has(publish: Path) -> None:
    code, out, _ = _split(["report", "retention", "--from", "2030-01", "--to", "2030-03",
                           "--publish", str(publish)])  # fmt: skip
    assert code == 0
    assert (
        "No quarter period starts between 2030-01 and 2030-03; the warehouse has quarter periods"
        " starting 2025-01 to 2025-01 (reporting date 2025-03-31)"
    ) in " ".join(out.split())


def test_an_empty_selection_as_json_keeps_stdout_valid_and_explains_on_stderr(
    publish: Path,
) -> None:
    code, out, err = _split(["report", "mrr", "--from", "2030-01", "--to", "2030-03",
                             "--format", "json", "--publish", str(publish)])  # fmt: skip
    assert code == 0
    assert json.loads(out) == []
    assert "No month between 2030-01 and 2030-03" in err
    assert "the warehouse has months 2025-02 to 2025-02" in err


def test_an_empty_csv_selection_is_a_header_and_the_reason_goes_to_stderr(publish: Path) -> None:
    code, out, err = _split(["report", "retention", "--grain", "year", "--from", "2025-01",
                             "--to", "2025-03", "--format", "csv", "--publish", str(publish)])  # fmt: skip
    assert code == 0
    assert out.strip().startswith("period_grain,period_start") and len(out.splitlines()) == 1
    assert "No year period starts between 2025-01 and 2025-03" in err
    assert "the warehouse has no year periods" in err


def test_an_unknown_owner_is_told_the_owners_on_the_list_and_the_known_csms(
    publish: Path,
) -> None:
    code, out, _ = _split(["lists", "risk", "--owner", "nobody", "--publish", str(publish)])
    assert code == 0
    text = " ".join(out.split())
    assert "No account of owner 'nobody' on the risk list as of 2025-03-31" in text
    assert "owners on it: csm_ada (1), csm_bo (1)" in text
    assert "CSMs of the warehouse's accounts: csm_ada, csm_bo, csm_cy" in text


def test_an_empty_list_says_no_account_met_its_rules(publish: Path) -> None:
    with duckdb.connect(str(publish / "warehouse.duckdb")) as con:
        con.execute("delete from marts.risk_list")
    code, out, err = _split(["lists", "risk", "--format", "csv", "--publish", str(publish)])
    assert code == 0
    assert out.startswith("list_rank,account_id")
    assert "The risk list is empty as of 2025-03-31: no account met its rules" in " ".join(
        err.split()
    )


def test_alerts_filtered_by_owner_keep_only_that_csms_accounts(publish: Path) -> None:
    out = _invoke(
        "lists", "alerts", "--owner", "csm_cy", "--format", "csv", "--publish", str(publish)
    )
    assert [line.split(",")[0] for line in out.strip().splitlines()[1:]] == ["acc_3"]


def test_report_help_says_empty_is_not_an_error_and_csv_json_are_exact() -> None:
    for args in (["report", "retention"], ["report", "mrr"], ["lists"]):
        text = " ".join(runner.invoke(app, [*args, "--help"], terminal_width=200).output.split())
        assert "exits 0" in text, args
        assert "exact" in text, args


def test_a_mart_of_an_older_shape_exits_2_and_says_to_rebuild(publish: Path) -> None:
    """A serving copy published before a column's rename gets a reason, not a traceback."""
    with duckdb.connect(str(publish / "warehouse.duckdb")) as con:
        con.execute("alter table marts.fct_mrr_bridge rename ending_accounts to account_count")
    result = runner.invoke(app, ["report", "mrr", "--from", "2025-02", "--to", "2025-02",
                                 "--publish", str(publish)], terminal_width=200)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "ending_accounts" in result.output and "csw run" in result.output
