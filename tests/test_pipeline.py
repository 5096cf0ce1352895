"""The whole pipeline through Dagster: definitions load, a run on generated data, a failing run."""

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
from orchestration.defs.jobs import FINANCE_CLOSE_JOB, PIPELINE_JOB, WEEKLY_LISTS_JOB
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
            "select sum(mrr_usd) from marts.fct_mrr_movements"
            " where segment = 'all' and month <= date '2024-04-01'"
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


def test_weekly_lists_and_finance_close_jobs_publish_their_files(completed_run: Settings) -> None:
    for job in (WEEKLY_LISTS_JOB, FINANCE_CLOSE_JOB):
        outcome = run_job(completed_run, job)
        assert outcome.success, (job, outcome.failures)
    lists = completed_run.publish / "lists"
    assert (lists / "latest").resolve().name == SAMPLE.last_day.isoformat()
    assert (lists / "latest" / "risk_list.csv").exists()
    close = completed_run.publish / "finance" / "2024-03"
    with duckdb.connect() as con:
        periods = con.execute(
            f"select distinct period_grain, period_end, is_complete"
            f" from '{close / 'retention.parquet'}'"
        ).fetchall()
        bridge_months = con.execute(
            f"select distinct month from '{close / 'mrr_bridge.parquet'}'"
        ).fetchall()
    # The sample starts in January 2024, so March closes its month only: the first quarter
    # has no cohort (nobody had MRR in December 2023) and so no retention row.
    assert periods == [("month", date(2024, 3, 31), True)]
    assert bridge_months == [(date(2024, 3, 1),)]


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
