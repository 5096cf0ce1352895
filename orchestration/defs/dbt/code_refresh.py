"""Rebuild an incremental model in full when the code it is built by has changed.

An incremental model keeps the rows earlier runs built: after an upgrade that changes its SQL, a
macro it uses or a model upstream of it (:func:`~orchestration.defs.dbt.project.lineage_code_versions`),
those rows would stay as the old code made them beside new rows made by the new code. The code
version each model was last built by is kept in ``raw.incremental_code_versions``; the pipeline's
dbt call names the models built by other code in ``CSW_FULL_REFRESH_MODELS``, and dbt rebuilds
those in full (``macros/should_full_refresh.sql``). Models configured
``full_refresh: false`` (the backtest history, the list of health-model versions) keep their rows
by design and are left out. A model with no recorded version (a warehouse from before this table)
counts as changed: nothing says which code built its rows, so the first run after the upgrade
rebuilds it once (on a new warehouse the model is built in full anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb

from ingestion.sql import relation_exists
from orchestration.defs.dbt.project import lineage_code_versions

TABLE = "raw.incremental_code_versions"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    model VARCHAR PRIMARY KEY,
    code_version VARCHAR NOT NULL,
    built_at TIMESTAMP NOT NULL
)"""


def refreshable_incremental_models(
    manifest: Mapping[str, Any], uids: Iterable[str]
) -> dict[str, str]:
    """Model name -> lineage code version of the incremental models among ``uids`` that a
    ``--full-refresh`` rebuilds (not ``full_refresh: false``)."""
    nodes, versions = manifest["nodes"], lineage_code_versions(manifest)
    return {
        nodes[u]["name"]: versions[nodes[u]["name"]]
        for u in sorted(uids)
        if u in nodes
        and nodes[u]["resource_type"] == "model"
        and nodes[u]["config"].get("materialized") == "incremental"
        and nodes[u]["config"].get("full_refresh") is not False
    }


def changed_code(con: duckdb.DuckDBPyConnection, current: Mapping[str, str]) -> list[str]:
    """The models of ``current`` last built by another code version, or by code nobody recorded
    (sorted)."""
    if not current:
        return []
    stored = (
        dict(con.execute(f"SELECT model, code_version FROM {TABLE}").fetchall())
        if relation_exists(con, "raw", "incremental_code_versions")
        else {}
    )
    return sorted(m for m, v in current.items() if stored.get(m) != v)


def remember_code(con: duckdb.DuckDBPyConnection, current: Mapping[str, str]) -> None:
    """Record that the models of ``current`` were built by these code versions."""
    if not current:
        return
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?)",
        [[m, v, now] for m, v in sorted(current.items())],
    )
