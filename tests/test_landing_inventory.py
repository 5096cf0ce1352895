"""Nothing under the landing directory is ignored silently: files no table asset owns are listed
with a reason (and the closest table for a typo), recorded, and fail a check when they look like
data."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from ingestion_fixtures import example_row, write_csv

from ingestion.landing import unrecognised_files
from orchestration.defs.ingestion.assets import (
    UNRECOGNISED_FILES_KEY,
    ingestion_asset_checks,
    ingestion_assets,
)
from orchestration.defs.ingestion.summary import ingestion_resources
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL
from orchestration.settings import Settings


def _touch(landing: Path, relative: str, text: str = "a,b\n1,2\n") -> None:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    write_csv(root, "accounts", "a.csv", [example_row("accounts")])  # owned: not listed
    _touch(root, "crm/accounts/sub/day=1/b.csv")  # owned (sub-folders are allowed)
    _touch(root, "crm/accounts/notes.xlsx")  # owned: refused by the asset, not ignored
    _touch(root, "crm/acounts/2024-06-01.csv")  # typo of a table folder
    _touch(root, "crm/users/u.csv")  # a table of another system
    _touch(root, "crmm/accounts/a.csv")  # typo of a system folder
    _touch(root, "stripe/charges/c.csv")  # unknown system and table
    _touch(root, "accounts.csv")  # directly under the landing root
    _touch(root, "billing/plans.csv")  # directly under a system folder
    _touch(root, "crm/accounts/_SUCCESS", "")  # marker
    _touch(root, "crm/accounts/.a.csv.swp")  # hidden
    _touch(root, ".DS_Store")  # hidden, at the root
    _touch(root, "product/events/_temporary/part-0.parquet")  # inside a marker folder
    return root


def test_inventory_lists_every_file_no_table_owns_with_a_reason(landing: Path) -> None:
    found = {f.source_file: f for f in unrecognised_files(landing)}

    assert set(found) == {
        "crm/acounts/2024-06-01.csv",
        "crm/users/u.csv",
        "crmm/accounts/a.csv",
        "stripe/charges/c.csv",
        "accounts.csv",
        "billing/plans.csv",
        "crm/accounts/_SUCCESS",
        "crm/accounts/.a.csv.swp",
        ".DS_Store",
        "product/events/_temporary/part-0.parquet",
    }
    blocking = {path for path, f in found.items() if f.blocking}
    assert blocking == {
        "crm/acounts/2024-06-01.csv",
        "crm/users/u.csv",
        "crmm/accounts/a.csv",
        "stripe/charges/c.csv",
        "accounts.csv",
        "billing/plans.csv",
    }
    closest = {path: f.closest_table for path, f in found.items() if f.blocking}
    assert closest == {
        "crm/acounts/2024-06-01.csv": "crm/accounts",
        "crm/users/u.csv": "product/users",
        "crmm/accounts/a.csv": "crm/accounts",
        "stripe/charges/c.csv": None,
        "accounts.csv": "crm/accounts",
        "billing/plans.csv": "billing/plans",
    }
    assert "unknown table folder crm/acounts" in found["crm/acounts/2024-06-01.csv"].reason
    assert "did you mean crm/accounts/" in found["crm/acounts/2024-06-01.csv"].message
    assert "unknown system folder stripe" in found["stripe/charges/c.csv"].reason
    assert "directly under the landing directory" in found["accounts.csv"].reason
    assert "directly under the system folder billing" in found["billing/plans.csv"].reason
    assert "marker" in found["crm/accounts/_SUCCESS"].reason
    assert "hidden" in found[".DS_Store"].reason


def test_inventory_of_a_clean_or_missing_landing_directory_is_empty(tmp_path: Path) -> None:
    write_csv(tmp_path / "landing", "plans", "p.csv", [example_row("plans")])
    assert unrecognised_files(tmp_path / "landing") == []
    assert unrecognised_files(tmp_path / "nowhere") == []


def _settings(tmp_path: Path, landing: Path) -> Settings:
    return Settings(
        landing_dir=landing,
        warehouse_path=tmp_path / "wh" / "warehouse.duckdb",
        duckdb_memory_limit="512MB",
        duckdb_threads=2,
    )


def _inventory_asset() -> list:
    asset = next(a for a in ingestion_assets if UNRECOGNISED_FILES_KEY in a.keys)
    checks = [
        c
        for c in ingestion_asset_checks
        if any(k.asset_key == UNRECOGNISED_FILES_KEY for k in c.check_keys)
    ]
    return [asset, *checks]


def _materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.materialize(
        _inventory_asset(), resources=ingestion_resources(settings), raise_on_error=False
    )


def test_the_asset_records_the_files_and_its_check_fails_on_blocking_ones(
    tmp_path: Path, landing: Path
) -> None:
    settings = _settings(tmp_path, landing)

    first = _materialize(settings)
    second = _materialize(settings)  # recording is idempotent

    assert second.success
    (materialization,) = second.asset_materializations_for_node("landing__unrecognised_files")
    meta = materialization.metadata
    assert meta["files_ignored"].value == 10
    assert meta["files_blocking"].value == 6
    files = {f["source_file"]: f for f in meta["files"].value}
    assert files["crm/acounts/2024-06-01.csv"]["outcome"] == "ignored"
    assert files["crm/acounts/2024-06-01.csv"]["blocking"] is True
    assert files["crm/accounts/_SUCCESS"]["blocking"] is False
    assert "crm/accounts" in files["crm/acounts/2024-06-01.csv"]["message"]
    (check,) = second.get_asset_check_evaluations()
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "crm/acounts/2024-06-01.csv" in (check.description or "")
    assert "did you mean crm/accounts/" in (check.description or "")
    assert "crm/accounts/_SUCCESS" not in (check.description or "")
    assert first.success
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        rows = conn.execute(
            "SELECT source_file, blocking, closest_table FROM raw.ingest_ignored ORDER BY 1"
        ).fetchall()
    assert len(rows) == 10
    assert ("crm/acounts/2024-06-01.csv", True, "crm/accounts") in rows


def test_a_file_moved_to_its_table_leaves_the_record_and_the_check_passes(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    _touch(landing, "crm/acounts/a.csv")
    _touch(landing, "crm/accounts/_SUCCESS", "")
    settings = _settings(tmp_path, landing)
    assert _materialize(settings).get_asset_check_evaluations()[0].passed is False

    (landing / "crm/acounts/a.csv").rename(landing / "crm/accounts/a.csv")
    result = _materialize(settings)

    (check,) = result.get_asset_check_evaluations()
    assert check.passed  # only a marker file is left: not blocking
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        rows = conn.execute("SELECT source_file, blocking FROM raw.ingest_ignored").fetchall()
    assert rows == [("crm/accounts/_SUCCESS", False)]


def test_the_inventory_asset_is_in_the_landing_group_and_the_writer_pool() -> None:
    asset = _inventory_asset()[0]
    spec = next(s for s in asset.specs if s.key == UNRECOGNISED_FILES_KEY)
    assert spec.group_name == "landing"
    assert asset.op.pool == WAREHOUSE_WRITER_POOL
    assert spec.owners == ["team:data-engineering"]


def test_the_inventory_asset_fails_when_the_landing_directory_is_missing(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "nowhere")
    result = _materialize(settings)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "does not exist" in json.dumps(str(failure.step_failure_data.error))
