"""The serving copy for BI (issue 15 point 1): marts and reporting views only, no personal data,
readable by DuckDB 1.1 and later, with the marts' descriptions as comments.

The default tier publishes a hand-made warehouse (tests/fake_marts.py) that also holds a raw,
staging, intermediate and audit layer; the pipeline's own serving copy is checked in
tests/test_pipeline.py. The ``e2e`` test opens a real pipeline's serving copy with duckdb 1.1.3
installed in a separate virtualenv and compares what it reads with what this duckdb reads.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.defs.dbt.project import mart_names
from orchestration.defs.publishing import publisher
from orchestration.defs.publishing.reporting_views import REPORTING_SCHEMA, REPORTING_VIEWS
from tests.fake_marts import write_marts

REPO = Path(__file__).resolve().parents[1]
DUMP = REPO / ".ci" / "dump_duckdb.py"
OLD_DUCKDB = "1.1.3"


def _working_warehouse(path: Path) -> Path:
    """Marts with comments, beside the layers BI users must not read."""
    write_marts(path, 3)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.contacts as select 'c1' as contact_id, 'a@b.example' as email"
        )
        con.execute("create schema staging")
        con.execute("create view staging.stg_contacts as select * from raw.contacts")
        con.execute("create schema intermediate")
        con.execute("create table intermediate.int_x as select 1 as x")
        con.execute("create schema audit")
        con.execute("create table audit.assert_x as select 1 as x")
        con.execute("comment on table marts.dim_accounts is 'One row per account.'")
        con.execute("comment on column marts.dim_accounts.account_name is 'The name, it''s here.'")
    return path


def _relations(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(
        con.execute(
            "select schema_name, table_name from duckdb_tables()"
            " union all select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
    )


def test_the_serving_copy_holds_marts_and_reporting_views_in_the_1_1_format(
    tmp_path: Path,
) -> None:
    warehouse = _working_warehouse(tmp_path / "warehouse.duckdb")

    served = publisher.publish_serving_copy(warehouse, tmp_path / "published", mart_names())

    # opened under another name: a view naming the working file's catalog would not bind
    moved = shutil.copyfile(served, tmp_path / "bi.duckdb")
    with duckdb.connect(str(moved), read_only=True) as con:
        assert _relations(con) == {("marts", m) for m in mart_names()} | {
            (REPORTING_SCHEMA, v.name) for v in REPORTING_VIEWS
        }
        for view in REPORTING_VIEWS:
            assert con.execute(f"select count(*) from reporting.{view.name}").fetchone()[0] >= 0
        columns = {c for (c,) in con.execute("select column_name from duckdb_columns()").fetchall()}
        assert not columns & publisher.PRIVATE_COLUMNS
        comments = con.execute(
            "select comment from duckdb_tables() where table_name = 'dim_accounts'"
            " union all select comment from duckdb_columns()"
            " where table_name = 'dim_accounts' and column_name = 'account_name'"
        ).fetchall()
        assert comments == [("One row per account.",), ("The name, it's here.",)]
        [(tags,)] = con.execute(
            "select tags from duckdb_databases() where database_name = 'bi'"
        ).fetchall()
    assert tags["storage_version"] == "v1.0.0+", "readable by DuckDB 1.0 and later"
    assert sorted(p.name for p in served.parent.iterdir()) == ["warehouse.duckdb"]


def test_a_value_that_looks_like_an_email_address_holds_the_serving_copy_back(
    tmp_path: Path,
) -> None:
    warehouse = _working_warehouse(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.dim_accounts set account_name = 'jane.doe@customer.example'")
    publish = tmp_path / "published"

    with pytest.raises(publisher.PersonalDataError) as raised:
        publisher.publish_serving_copy(warehouse, publish, mart_names())

    assert "marts.dim_accounts.account_name" in str(raised.value)
    assert "jane.doe@customer.example" not in str(raised.value), "the message repeats no address"
    assert not publish.exists() or not list(publish.iterdir()), "nothing is left behind"


def test_the_identities_the_lists_need_may_be_work_email_addresses(tmp_path: Path) -> None:
    """A CRM's account owner is often the CSM's e-mail (the Salesforce and HubSpot adapters map
    it so by default), a product's user id often the user's: the lists name them, so they are
    published; any other column holding an address still holds the copy back."""
    warehouse = _working_warehouse(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        for table in ("dim_accounts", "risk_list", "expansion_list"):
            con.execute(f"update marts.{table} set owner = 'ada@vendor.example'")
        con.execute("update marts.adoption_alerts set subject = 'user@customer.example'")
    publish = tmp_path / "published"

    served = publisher.publish_serving_copy(warehouse, publish, mart_names())

    with duckdb.connect(str(served), read_only=True) as con:
        owners = con.execute("select distinct owner from marts.risk_list").fetchall()
        subjects = con.execute("select distinct subject from marts.adoption_alerts").fetchall()
    assert owners == [("ada@vendor.example",)]
    assert subjects == [("user@customer.example",)]


def test_a_mart_missing_from_the_warehouse_is_named(tmp_path: Path) -> None:
    warehouse = _working_warehouse(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table marts.fct_mrr_monthly")

    with pytest.raises(publisher.ServingCopyError, match=r"fct_mrr_monthly.*csw run"):
        publisher.publish_serving_copy(warehouse, tmp_path / "published", mart_names())


def test_the_reporting_views_read_project_marts_and_say_which() -> None:
    for view in REPORTING_VIEWS:
        named = set(re.findall(r"\bmarts\.(\w+)", view.sql))
        assert named == set(view.reads), view.name
        assert set(view.reads) <= set(mart_names()), view.name
        assert view.description.strip(), view.name


# --- DuckDB 1.1 --------------------------------------------------------------------------------


def _dump(python: Path, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [str(python), str(DUMP), str(path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _old_duckdb_python(venv: Path) -> Path:
    """A virtualenv with duckdb 1.1.3 (pip fetches it from the machine's package index)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"duckdb=={OLD_DUCKDB}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        pytest.skip(f"pip could not install duckdb=={OLD_DUCKDB}: {installed.stderr[-500:]}")
    return python


@pytest.mark.e2e
def test_duckdb_1_1_reads_the_pipelines_serving_copy_as_duckdb_2_does(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from ingestion.synthetic import GeneratorConfig, generate_extracts
    from orchestration.pipeline_run import run_job
    from orchestration.settings import Settings

    sample = GeneratorConfig(accounts=30, months=4, seed=3, start=date(2024, 1, 1))
    home = tmp_path_factory.mktemp("home")
    generate_extracts(home / "landing", sample)
    settings = Settings(
        home=home,
        landing_dir=home / "landing",
        as_of=sample.last_day,
        duckdb_threads=2,
        duckdb_memory_limit="2GB",
    )
    outcome = run_job(settings)
    assert outcome.success, outcome.failures
    old = _old_duckdb_python(tmp_path_factory.mktemp("venv") / f"duckdb-{OLD_DUCKDB}")

    current = _dump(Path(sys.executable), settings.serving_copy)
    before = _dump(old, settings.serving_copy)

    assert before.pop("duckdb") == OLD_DUCKDB and current.pop("duckdb") == duckdb.__version__
    assert before == current
    assert set(current["tables"]) == {f"marts.{m}" for m in mart_names()}  # type: ignore[arg-type]
    assert set(current["views"]) == {f"reporting.{v.name}" for v in REPORTING_VIEWS}  # type: ignore[arg-type]
    assert any(rows for rows in current["views"].values()), "the views read rows"  # type: ignore[union-attr]
    assert len(current["comments"]) > len(mart_names()), "columns' comments, not only tables'"  # type: ignore[arg-type]
