"""An incremental model keeps rows built by earlier code: when its code, or the code of a model
it is built from, changes, the step that builds it runs with ``--full-refresh`` once, so an
upgrade never leaves old rows beside new ones. Models configured ``full_refresh: false`` (the
backtest history) are never refreshed that way."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.defs.dbt.code_refresh import (
    changed_code,
    refreshable_incremental_models,
    remember_code,
)
from orchestration.defs.dbt.project import loaded_manifest, model_code_versions


def _uids(*names: str) -> list[str]:
    nodes = loaded_manifest()["nodes"]
    return [uid for uid, n in nodes.items() if n["resource_type"] == "model" and n["name"] in names]


def test_the_daily_facts_are_refreshable_and_the_backtest_history_is_not() -> None:
    uids = _uids("int_user_daily_events", "fct_health_backtest", "fct_account_health")
    models = refreshable_incremental_models(loaded_manifest(), uids)
    assert set(models) == {"int_user_daily_events"}
    assert models["int_user_daily_events"] == model_code_versions()["int_user_daily_events"]


def test_a_model_built_by_other_code_is_named_and_the_same_code_is_not(tmp_path: Path) -> None:
    current = {"int_user_daily_events": "v2", "int_user_daily_activity": "v1"}
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        # nothing recorded (a warehouse from before the record): its rows' code is unknown
        assert changed_code(con, current) == sorted(current)
        remember_code(con, {"int_user_daily_events": "v1"})
        assert changed_code(con, current) == sorted(current)
        remember_code(con, {"int_user_daily_events": "v1", "int_user_daily_activity": "v1"})
        assert changed_code(con, current) == ["int_user_daily_events"]
        remember_code(con, current)
        assert changed_code(con, current) == []
