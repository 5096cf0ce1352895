"""The whole pipeline through Dagster: definitions load, a run on generated data, a failing run."""

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.contract import TABLES
from ingestion.synthetic import GeneratorConfig, generate_extracts
from orchestration.cli import app
from orchestration.definitions import build_definitions
from orchestration.defs.dbt.project import mart_names, prepared_manifest
from orchestration.defs.jobs import FINANCE_CLOSE_JOB, PIPELINE_JOB, WEEKLY_LISTS_JOB
from orchestration.defs.publishing.publisher import LIST_MARTS, PRIVATE_COLUMNS
from orchestration.defs.publishing.reporting_views import REPORTING_SCHEMA, REPORTING_VIEWS
from orchestration.pipeline_run import run_job
from orchestration.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = GeneratorConfig(accounts=40, months=4, seed=11, start=date(2024, 1, 1))


def _settings(home: Path, as_of: date = SAMPLE.last_day) -> Settings:
    return Settings(home=home, as_of=as_of, duckdb_threads=2, duckdb_memory_limit="2GB")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    generate_extracts(out, SAMPLE)
    return out


@pytest.fixture(scope="module")
def completed_run(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = _settings(tmp_path_factory.mktemp("home")).model_copy(
        update={"landing_dir": landing}
    )
    outcome = run_job(settings)
    assert outcome.success, outcome.failures
    assert outcome.failed_checks == ()
    return settings


def test_definitions_map_dbt_sources_onto_the_ingestion_assets(tmp_path: Path) -> None:
    defs = build_definitions(_settings(tmp_path))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {t.asset_path for t in TABLES} <= keys
    assert {
        "marts/fct_mrr_monthly",
        "marts/fct_revenue_retention",
        "staging/stg_crm__accounts",
    } <= keys
    parents = graph.get(dg.AssetKey(["staging", "stg_crm__accounts"])).parent_keys
    assert parents == {dg.AssetKey(["crm", "accounts"])}, "lineage must start at the extract"
    assert defs.resolve_job_def(PIPELINE_JOB) is not None


def test_dagster_validates_the_code_location(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stderr + result.stdout


def test_a_run_ingests_builds_and_tests_every_model(completed_run: Settings) -> None:
    with duckdb.connect(str(completed_run.warehouse), read_only=True) as con:
        raw_accounts = con.execute("select count(*) from raw.accounts").fetchone()[0]
        in_dim = con.execute("select count(*) from marts.dim_accounts").fetchone()[0]
        months = con.execute("select count(distinct month) from marts.fct_mrr_monthly").fetchone()[
            0
        ]
        total = con.execute(
            "select sum(mrr_usd) from marts.fct_mrr_monthly where month = date '2024-04-01'"
        ).fetchone()[0]
        bridge_end = con.execute(
            "select sum(mrr_usd) from marts.fct_mrr_movements where month <= date '2024-04-01'"
        ).fetchone()[0]
    assert raw_accounts == SAMPLE.accounts == in_dim
    assert months == 4
    assert total > 0
    assert bridge_end == total, "summed movements from zero must give the MRR of the last month"


def test_a_second_run_changes_nothing(completed_run: Settings) -> None:
    def snapshot() -> list[tuple]:
        with duckdb.connect(str(completed_run.warehouse), read_only=True) as con:
            return con.execute(
                "select account_id, month, mrr_usd from marts.fct_mrr_monthly order by 1, 2"
            ).fetchall()

    before = snapshot()
    outcome = run_job(completed_run)
    assert outcome.success, outcome.failures
    assert snapshot() == before


def test_the_pipeline_publishes_marts_and_a_serving_copy(completed_run: Settings) -> None:
    published = completed_run.publish
    assert (published / "marts" / "fct_mrr_monthly.parquet").exists()
    with duckdb.connect(str(completed_run.serving_copy), read_only=True) as con:
        served = con.execute("select count(*) from marts.fct_mrr_monthly").fetchone()[0]
    assert served > 0


#: What an e-mail address looks like, to a scan of every text column.
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


def _emails(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> dict[str, int]:
    """Values that look like e-mail addresses, per text column of the tables of ``schemas``."""
    columns = con.execute(
        "select schema_name, table_name, column_name from duckdb_columns()"
        " where data_type = 'VARCHAR' and list_contains(?, schema_name)",
        [list(schemas)],
    ).fetchall()
    counts = " union all ".join(
        f"select '{s}.{t}.{c}' as col, count(*) as n from {s}.{t}"
        f" where regexp_matches(\"{c}\", '{EMAIL}')"
        for s, t, c in columns
    )
    return dict(con.execute(f"select col, n from ({counts}) where n > 0").fetchall())


def test_the_serving_copy_holds_marts_and_reporting_views_and_no_personal_data(
    completed_run: Settings,
) -> None:
    with duckdb.connect(str(completed_run.warehouse), read_only=True) as working:
        raw_emails = _emails(working, ("raw",))
    with duckdb.connect(str(completed_run.serving_copy), read_only=True) as con:
        relations = con.execute(
            "select schema_name, table_name, 'table' from duckdb_tables() union all"
            " select schema_name, view_name, 'view' from duckdb_views() where not internal"
        ).fetchall()
        columns = {c for (c,) in con.execute("select column_name from duckdb_columns()").fetchall()}
        served_emails = _emails(con, ("marts", REPORTING_SCHEMA))
    assert {schema for schema, _, _ in relations} == {"marts", REPORTING_SCHEMA}
    assert set(relations) == {("marts", m, "table") for m in mart_names()} | {
        (REPORTING_SCHEMA, v.name, "view") for v in REPORTING_VIEWS
    }
    assert not columns & PRIVATE_COLUMNS
    assert "raw.contacts.email" in raw_emails, "the scan finds the addresses the raw layer holds"
    assert served_emails == {}


def _described_marts() -> dict[str, tuple[str, dict[str, str]]]:
    """Every mart's description and its columns' descriptions, from the dbt manifest."""
    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    return {
        node["name"]: (
            node["description"],
            {c: col["description"] for c, col in node["columns"].items() if col["description"]},
        )
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"] in mart_names()
    }


def test_the_marts_descriptions_are_comments_of_the_serving_copy(completed_run: Settings) -> None:
    with duckdb.connect(str(completed_run.serving_copy), read_only=True) as con:
        tables = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        )
        views = dict(
            con.execute(
                "select view_name, comment from duckdb_views() where schema_name = ?",
                [REPORTING_SCHEMA],
            ).fetchall()
        )
        columns = {
            (schema, table, column): comment
            for schema, table, column, comment in con.execute(
                "select schema_name, table_name, column_name, comment from duckdb_columns()"
            ).fetchall()
        }
    described = _described_marts()
    assert sum(len(cols) for _, cols in described.values()) > 100, "the manifest describes"
    for mart, (description, described_columns) in described.items():
        assert tables[mart] == (description or None), mart
        for column, text in described_columns.items():
            assert columns["marts", mart, column] == text, (mart, column)
    assert views == {v.name: v.description for v in REPORTING_VIEWS}
    undescribed = [
        key for key, comment in columns.items() if key[0] == REPORTING_SCHEMA and not comment
    ]
    assert undescribed == []


def test_the_reporting_views_read_the_serving_copys_marts(
    completed_run: Settings, tmp_path: Path
) -> None:
    # under another file name: a view naming the working file's catalog would not bind
    served = shutil.copyfile(completed_run.serving_copy, tmp_path / "bi.duckdb")
    with duckdb.connect(str(served), read_only=True) as con:
        health = con.execute(
            "select account_id, account_name, health_score from reporting.account_health_current"
            " order by account_id"
        ).fetchall()
        expected_health = con.execute(
            "select h.account_id, a.account_name, h.health_score"
            " from marts.fct_account_health as h join marts.dim_accounts as a using (account_id)"
            " where h.is_reporting_date order by h.account_id"
        ).fetchall()
        retention = con.execute(
            "select period_grain, period_start, nrr, grr from reporting.retention_latest_closed"
            " order by period_grain"
        ).fetchall()
        latest = con.execute(
            "select period_grain, period_start, nrr, grr from marts.fct_revenue_retention"
            " where is_complete qualify period_start = max(period_start) over (partition by"
            " period_grain) order by period_grain"
        ).fetchall()
        counts = {
            v.name: con.execute(f"select count(*) from reporting.{v.name}").fetchone()[0]
            for v in REPORTING_VIEWS
        }
        [bridge_month] = con.execute(
            "select month from reporting.mrr_bridge_latest_closed_month"
        ).fetchall()
    assert health and health == expected_health
    assert retention and retention == latest
    assert all(counts.values()), counts
    assert bridge_month == (date(2024, 4, 1),), "the sample's reporting date closes April"


def test_weekly_lists_and_finance_close_jobs_publish_their_files(completed_run: Settings) -> None:
    for job in (WEEKLY_LISTS_JOB, FINANCE_CLOSE_JOB):
        outcome = run_job(completed_run, job)
        assert outcome.success, (job, outcome.failures)
    lists = completed_run.publish / "lists"
    assert (lists / "latest").resolve().name == SAMPLE.last_day.isoformat()
    for name in LIST_MARTS:
        assert (lists / "latest" / f"{name}.csv").exists(), name
    close = completed_run.publish / "finance" / "2024-03"
    march = "date '2024-03-01'"
    published = {
        name: f"select * from '{close / name}.parquet' order by all"
        for name in ("retention", "retention_by_segment", "mrr_bridge", "mrr_bridge_by_segment")
    }
    marts = {
        "retention": f"fct_revenue_retention where end_month = {march} and is_complete",
        "retention_by_segment": (
            f"fct_revenue_retention_by_segment where end_month = {march} and is_complete"
        ),
        "mrr_bridge": f"fct_mrr_bridge where month = {march}",
        "mrr_bridge_by_segment": f"fct_mrr_bridge_by_segment where month = {march}",
    }
    with duckdb.connect(str(completed_run.warehouse), read_only=True) as con:
        files = {name: con.execute(query).fetchall() for name, query in published.items()}
        expected = {
            name: con.execute(f"select * from marts.{where} order by all").fetchall()
            for name, where in marts.items()
        }
        periods = con.execute(
            f"select distinct period_grain, period_end, is_complete"
            f" from '{close / 'retention.parquet'}'"
        ).fetchall()
        segments = con.execute(
            f"select count(distinct segment) from '{close / 'mrr_bridge_by_segment.parquet'}'"
        ).fetchone()[0]
    assert files == expected
    # The sample starts in January 2024, so March closes its month only: the first quarter
    # has no cohort (nobody had MRR in December 2023) and so no retention row.
    assert periods == [("month", date(2024, 3, 31), True)]
    assert len(files["mrr_bridge"]) == 1, "the company's bridge: one row, no segment"
    assert len(files["mrr_bridge_by_segment"]) == segments > 1
    assert files["retention_by_segment"], "March's retention per segment"


def _fingerprint(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_failed_build_exits_non_zero_and_publishes_nothing(
    landing: Path, completed_run: Settings, tmp_path: Path
) -> None:
    broken = tmp_path / "landing"
    shutil.copytree(landing, broken)
    rates = broken / "billing" / "fx_rates" / "fx_rates.csv"
    lines = rates.read_text().splitlines(keepends=True)
    rates.write_text(
        "".join(line for line in lines if "2024-02-01" not in line or "EUR" not in line)
    )
    publish = tmp_path / "published"
    shutil.copytree(completed_run.publish, publish, symlinks=True)
    before = _fingerprint(publish)

    result = CliRunner().invoke(
        app,
        ["run", "--landing", str(broken), "--warehouse", str(tmp_path / "wh.duckdb"),
         "--publish", str(publish), "--as-of", SAMPLE.last_day.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "EUR" in result.output and "2024-02" in result.output
    assert _fingerprint(publish) == before


def test_the_lists_and_the_finance_close_publish_the_html_report_of_their_marts(
    completed_run: Settings,
) -> None:
    from metrics.html_report import render_report

    publish = completed_run.publish
    for job in (WEEKLY_LISTS_JOB, FINANCE_CLOSE_JOB):
        before = (
            (publish / "report.html").stat().st_mtime_ns
            if (publish / "report.html").exists()
            else 0
        )
        outcome = run_job(completed_run, job)
        assert outcome.success, (job, outcome.failures)
        assert (publish / "report.html").stat().st_mtime_ns > before, job
    closed = date(2024, 3, 1)  # the month before the reporting date's
    lists_page = publish / "lists" / SAMPLE.last_day.isoformat() / "report.html"
    close_page = publish / "finance" / f"{closed:%Y-%m}" / "report.html"
    with duckdb.connect(str(completed_run.serving_copy), read_only=True) as con:
        lists_expected = render_report(con)
        close_expected = render_report(con, month=closed)
    assert lists_expected != close_expected
    assert lists_page.read_text(encoding="utf-8") == lists_expected
    # the close's page is pinned to its month (its bridge is March's, not April's)
    assert close_page.read_text(encoding="utf-8") == close_expected
    # the top-level page is the newest publication's: the close ran last
    assert (publish / "report.html").read_text(encoding="utf-8") == close_expected
