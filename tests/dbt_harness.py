"""Shared pytest helpers for the dbt tests: a raw warehouse built by hand, dbt run in-process.

A test module builds schema `raw` exactly as ingestion writes it (contract columns and types, then
the lineage columns) with :func:`create_raw_warehouse`, parses the dbt project once with
:class:`Dbt` and builds it into as many warehouses as it needs. dbt writes its target/ and logs/
under the given work directory (pytest's tmp), never into dbt_project/. Every warehouse file must
be named warehouse.duckdb (in its own directory): dbt-duckdb names the database after the file's
stem, and the manifest parsed once bakes that name into every relation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pinned_model import pinned_dbt_vars

from ingestion.contract import TABLES

dbt_main = pytest.importorskip("dbt.cli.main")

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
LINEAGE = "_source_file VARCHAR, _source_row BIGINT, _file_sha256 VARCHAR, _loaded_at TIMESTAMP"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


def create_raw_warehouse(
    path: Path,
    rows: dict[str, list[dict[str, Any]]],
    loaded_at: datetime = datetime(2024, 6, 15),
) -> None:
    """Schema `raw` as ingestion writes it, with ``rows`` per table name (missing tables empty).

    Columns a row leaves out are null, except created_at / updated_at (a fixed default) and the
    lineage columns (file ``<table>.csv``, the row's position, ``loaded_at``).
    """
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists raw")
        for table in TABLES:
            columns = ", ".join(f'"{c.name}" {c.type.duckdb_type}' for c in table.columns)
            con.execute(f"create or replace table raw.{table.name} ({columns}, {LINEAGE})")
            names = [
                *table.column_names,
                "_source_file",
                "_source_row",
                "_file_sha256",
                "_loaded_at",
            ]
            table_rows = rows.get(table.name, [])
            if not table_rows:
                continue
            defaults = {
                "created_at": ts("2023-10-01 00:00:00"),
                "updated_at": ts("2024-01-01 00:00:00"),
                "_source_file": f"{table.name}.csv",
                "_file_sha256": "0" * 64,
                "_loaded_at": loaded_at,
            }
            values = [
                [row.get(c, n if c == "_source_row" else defaults.get(c)) for c in names]
                for n, row in enumerate(table_rows, start=1)
            ]
            placeholders = ", ".join("?" for _ in names)
            con.executemany(f"insert into raw.{table.name} values ({placeholders})", values)
    finally:
        con.close()


def project_args(work: Path) -> list[str]:
    """dbt's project and profile (dbt_project/), its target/ and logs/ under ``work``."""
    return [
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for the block only (dbt reads profiles.yml's from there)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Dbt:
    """One parsed manifest, reused by every build of a test module (dbt parses once)."""

    def __init__(self, work: Path, as_of: str, engine: str = "duckdb") -> None:
        self.work = work
        self.as_of = as_of
        #: The dbt target (CSW_ENGINE, dbt_project/profiles.yml): duckdb or spark.
        self.engine = engine
        self.common = project_args(work)
        with _environment(CSW_ENGINE=engine):
            result = dbt_main.dbtRunner().invoke(["parse", "--quiet", *self.common])
        assert result.success, result.exception
        self.manifest = result.result

    def invoke(
        self,
        warehouse: Path,
        command: str,
        *args: str,
        as_of: str | None = None,
        vars_override: dict[str, Any] | None = None,
    ) -> Any:
        """Run ``dbt <command>`` against ``warehouse`` with the vars as of ``as_of`` of the
        tests' own health model (tests/fixtures/health_model.yaml, not the shipped file, so a
        deployment's tuning never breaks them), ``vars_override`` replacing some of them."""
        with _environment(CSW_WAREHOUSE_PATH=str(warehouse), CSW_ENGINE=self.engine):
            runner = dbt_main.dbtRunner(manifest=self.manifest)
            return runner.invoke(
                [
                    command,
                    "--quiet",
                    *self.common,
                    "--vars",
                    json.dumps(
                        {**pinned_dbt_vars(d(as_of or self.as_of)), **(vars_override or {})}
                    ),
                    *args,
                ]
            )

    def build(
        self,
        warehouse: Path,
        *args: str,
        as_of: str | None = None,
        vars_override: dict[str, Any] | None = None,
    ) -> Any:
        return self.invoke(warehouse, "build", *args, as_of=as_of, vars_override=vars_override)


def failures(result: Any) -> list[str]:
    """The errors and failed tests of a dbt result, one line each (the exception if none ran)."""
    if result.result is None:
        return [repr(result.exception)]
    return [
        f"{r.node.unique_id}: {r.status}: {r.message}"
        for r in result.result.results
        if str(r.status) in {"error", "fail", "runtime error"}
    ]


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()
