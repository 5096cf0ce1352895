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
from orchestration.defs.ingestion.assets import UNRECOGNISED_FILES_KEY
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


def test_one_asset_per_contract_table_grouped_by_system_and_the_landing_inventory() -> None:
    specs = {spec.key: spec for a in ingestion_assets for spec in a.specs}
    assert set(specs) == {dg.AssetKey([t.system, t.name]) for t in TABLES} | {
        UNRECOGNISED_FILES_KEY
    }
    assert all(specs[dg.AssetKey([t.system, t.name])].group_name == t.system for t in TABLES)
    check_keys = {key for c in ingestion_asset_checks for key in c.check_keys}
    assert check_keys == {
        dg.AssetCheckKey(dg.AssetKey([t.system, t.name]), "contract_expectations") for t in TABLES
    } | {dg.AssetCheckKey(UNRECOGNISED_FILES_KEY, "no_blocking_files")}


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
    assert len(checks) == len(TABLES) + 1  # and the landing inventory's
    assert checks["landing/unrecognised_files"].passed
    assert not checks["crm/accounts"].passed
    assert "crm/accounts/empty.csv" in (checks["crm/accounts"].description or "")
    assert checks["crm/accounts"].metadata["rows_quarantined"].value == 1
    assert checks["billing/plans"].passed
    assert checks["product/events"].passed  # no files: nothing refused
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    assert {t for (t,) in tables} == {t.name for t in TABLES} | {
        "ingest_manifest",
        "ingest_ignored",
        "quarantine",
        "lake_files",  # the events lake's registry; raw.events is a view over the lake
    }


def test_check_passes_once_the_refused_file_is_replaced(settings: Settings) -> None:
    _landing_with_one_refused_file(settings.landing)
    first = run_ingestion(settings)
    assert first.success and not first.ok
    assert "crm/accounts:contract_expectations" in first.failed_checks

    write_csv(settings.landing, "accounts", "empty.csv", [example_row("accounts", account_id="a3")])
    # a.csv's only row was quarantined: that fails the check too until it is re-sent
    write_csv(settings.landing, "accounts", "a.csv", [example_row("accounts")])
    second = run_ingestion(settings)

    assert second.ok
    assert second.failed_checks == ()
    accounts = next(t for t in second.tables if t.table == "crm/accounts")
    assert (accounts.files_loaded, accounts.files_skipped, accounts.files_refused) == (2, 1, 0)


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
    plans_line = next(
        line for line in second.output.splitlines() if "billing/plans" in line and "│" in line
    )
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


def _accounts_asset_and_check() -> list:
    key = dg.AssetKey(["crm", "accounts"])
    asset = next(a for a in ingestion_assets if key in a.keys)
    return [
        asset,
        *(c for c in ingestion_asset_checks if any(k.asset_key == key for k in c.check_keys)),
    ]


def _accounts_check(settings: Settings) -> dg.AssetCheckEvaluation:
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    result = dg.materialize(_accounts_asset_and_check(), resources=ingestion_resources(settings))
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _accounts(n: int, bad: int, prefix: str) -> list[dict]:
    return [
        example_row("accounts", account_id=f"{prefix}{i}", segment="nope" if i < bad else "smb")
        for i in range(n)
    ]


def test_contract_check_fails_when_a_files_quarantined_share_is_too_high(
    settings: Settings,
) -> None:
    write_csv(settings.landing, "accounts", "ok.csv", _accounts(40, 1, "a"))  # 2.5%
    write_csv(settings.landing, "accounts", "bad.csv", _accounts(10, 3, "b"))  # 30%

    check = _accounts_check(settings)

    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    description = check.description or ""
    assert "crm/accounts/bad.csv: 3 of 10 rows quarantined (30.0%)" in description
    assert "crm/accounts/ok.csv" not in description
    assert "5.0%" in description  # the threshold, named
    files = {f["source_file"]: f for f in check.metadata["files"].value}
    assert (
        files["crm/accounts/ok.csv"]["rows_read"],
        files["crm/accounts/ok.csv"]["rows_quarantined"],
    ) == (40, 1)
    assert (
        files["crm/accounts/bad.csv"]["rows_read"],
        files["crm/accounts/bad.csv"]["rows_quarantined"],
    ) == (10, 3)


def test_contract_check_passes_below_the_quarantine_share(settings: Settings) -> None:
    write_csv(settings.landing, "accounts", "ok.csv", _accounts(40, 2, "a"))  # 5%: not above
    check = _accounts_check(settings)
    assert check.passed, check.description
    assert check.metadata["rows_quarantined"].value == 2


def test_a_file_whose_rows_are_all_quarantined_always_fails_the_check(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"max_quarantine_share": 1.0})
    write_csv(settings.landing, "accounts", "all.csv", _accounts(3, 3, "a"))
    check = _accounts_check(settings)
    assert not check.passed
    assert "crm/accounts/all.csv: 3 of 3 rows quarantined (100.0%)" in (check.description or "")


def test_a_missing_landing_directory_fails_the_table_asset(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"landing_dir": tmp_path / "nowhere"})
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    result = dg.materialize(
        _accounts_asset_and_check()[:1],
        resources=ingestion_resources(settings),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert f"{tmp_path / 'nowhere'} does not exist" in message
    assert "CSW_LANDING_DIR" in message


def test_a_missing_table_folder_is_fine(settings: Settings) -> None:
    check = _accounts_check(settings)  # the landing root exists, crm/accounts/ does not
    assert check.passed


def test_raw_table_assets_have_an_owner() -> None:
    specs = [spec for a in ingestion_assets for spec in a.specs]
    assert specs and all(spec.owners == ["team:data-engineering"] for spec in specs)
