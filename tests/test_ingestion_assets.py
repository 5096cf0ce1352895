"""The ingestion assets and checks materialise in-process; ``csw ingest`` reports and exits."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from ingestion_fixtures import example_row, table_path, write_csv
from typer.testing import CliRunner

from ingestion.contract import TABLES
from orchestration.cli import app
from orchestration.defs.ingestion import ingestion_asset_checks, ingestion_assets
from orchestration.defs.ingestion.summary import ingestion_resources, run_ingestion
from orchestration.resources import duckdb_resource
from orchestration.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    landing = tmp_path / "landing"
    landing.mkdir()
    return Settings(
        landing_dir=landing,
        warehouse_path=tmp_path / "wh" / "warehouse.duckdb",
        duckdb_memory_limit="512MB",
        duckdb_threads=2,
    )


def _landing_with_one_refused_file(landing: Path) -> None:
    write_csv(landing, "accounts", "a.csv", [example_row("accounts", segment="nope")])
    write_csv(landing, "accounts", "b.csv", [example_row("accounts", account_id="a2")])
    table_path(landing, "accounts", "empty.csv").write_bytes(b"")
    write_csv(landing, "plans", "p.csv", [example_row("plans")])


def test_one_asset_per_contract_table_grouped_by_system() -> None:
    specs = {spec.key: spec for a in ingestion_assets for spec in a.specs}
    assert set(specs) == {dg.AssetKey([t.system, t.name]) for t in TABLES}
    assert all(specs[dg.AssetKey([t.system, t.name])].group_name == t.system for t in TABLES)
    check_keys = {key for c in ingestion_asset_checks for key in c.check_keys}
    assert check_keys == {
        dg.AssetCheckKey(dg.AssetKey([t.system, t.name]), "contract_expectations") for t in TABLES
    }


def test_materialize_assets_and_checks_in_process(settings: Settings) -> None:
    _landing_with_one_refused_file(settings.landing)

    result = dg.materialize(
        [*ingestion_assets, *ingestion_asset_checks], resources=ingestion_resources(settings)
    )

    assert result.success  # a refused file does not fail the asset
    accounts = result.asset_materializations_for_node("crm__accounts")[0].metadata
    assert accounts["files_loaded"].value == 2
    assert accounts["files_refused"].value == 1
    assert accounts["rows_loaded"].value == 1
    assert accounts["rows_quarantined"].value == 1
    assert accounts["dagster/row_count"].value == 1
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert len(checks) == len(TABLES)
    assert not checks["crm/accounts"].passed
    assert "crm/accounts/empty.csv" in (checks["crm/accounts"].description or "")
    assert checks["crm/accounts"].metadata["rows_quarantined"].value == 1
    assert checks["billing/plans"].passed
    assert checks["product/events"].passed  # no files: nothing refused
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    assert {t for (t,) in tables} == {t.name for t in TABLES} | {"ingest_manifest", "quarantine"}


def test_check_passes_once_the_refused_file_is_replaced(settings: Settings) -> None:
    _landing_with_one_refused_file(settings.landing)
    first = run_ingestion(settings)
    assert first.success and not first.ok
    assert "crm/accounts:contract_expectations" in first.failed_checks

    write_csv(settings.landing, "accounts", "empty.csv", [example_row("accounts", account_id="a3")])
    second = run_ingestion(settings)

    assert second.ok
    assert second.failed_checks == ()
    accounts = next(t for t in second.tables if t.table == "crm/accounts")
    assert (accounts.files_loaded, accounts.files_skipped, accounts.files_refused) == (1, 2, 0)


def test_duckdb_resource_applies_memory_limit_and_threads(settings: Settings) -> None:
    settings.warehouse.parent.mkdir(parents=True)
    with duckdb_resource(settings).get_connection() as conn:
        threads = conn.execute("SELECT current_setting('threads')").fetchone()
        memory = conn.execute("SELECT current_setting('memory_limit')").fetchone()
    assert threads == (2,)
    assert memory is not None and memory[0].startswith("488")  # 512MB shown in MiB


def _cli(settings: Settings) -> list[str]:
    return ["ingest", "--landing", str(settings.landing), "--warehouse", str(settings.warehouse)]


def test_csw_ingest_exits_nonzero_when_a_file_is_refused(settings: Settings) -> None:
    _landing_with_one_refused_file(settings.landing)
    result = CliRunner().invoke(app, _cli(settings), terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "crm/accounts" in result.output
    assert "refused crm/accounts/empty.csv: the file is empty" in result.output
    assert "raw.ingest_manifest" in result.output


def test_csw_ingest_succeeds_and_is_idempotent(settings: Settings) -> None:
    write_csv(settings.landing, "plans", "p.csv", [example_row("plans")])
    runner = CliRunner()
    first = runner.invoke(app, _cli(settings), terminal_width=200)
    second = runner.invoke(app, _cli(settings), terminal_width=200)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Ingestion succeeded" in second.output
    plans_line = next(line for line in second.output.splitlines() if "billing/plans" in line)
    cells = [cell.strip() for cell in plans_line.split("│")[1:-1]]
    assert cells[:4] == ["billing/plans", "0", "1", "0"]  # loaded, skipped, refused


def test_csw_ingest_without_a_landing_directory_says_what_to_do(
    settings: Settings, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["ingest", "--landing", str(tmp_path / "nowhere")], terminal_width=200
    )
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


def test_a_crashing_asset_is_reported_and_the_other_tables_still_load(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion import loader

    write_csv(settings.landing, "plans", "p.csv", [example_row("plans")])
    write_csv(settings.landing, "accounts", "a.csv", [example_row("accounts")])
    real_insert = loader.insert_good_rows

    def crash_on_accounts(conn, version):
        if version.schema.name == "accounts":
            raise RuntimeError("simulated crash")
        return real_insert(conn, version)

    monkeypatch.setattr(loader, "insert_good_rows", crash_on_accounts)
    outcome = run_ingestion(settings)

    assert not outcome.success and not outcome.ok
    tables = {t.table: t for t in outcome.tables}
    assert tables["crm/accounts"].error == "RuntimeError: simulated crash"
    assert tables["billing/plans"].files_loaded == 1
