"""csw report and csw lists read the serving copy and print exact figures in every format."""

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

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
              (2, 'acc_2', 'csm_bo', 1200.00::decimal(18,2)),
              (1, 'acc_1', 'csm_ada', 2400.00::decimal(18,2))
            ) t(list_rank, account_id, owner, arr_at_risk_usd)
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
    assert "| 2025-02-01 | all | 300.00 |" in row


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
    assert "Revenue retention by quarter" in out and "0.7517" in out


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
