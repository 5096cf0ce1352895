"""CSW_ENGINE: a setting like the others, passed to dbt, and refused by the pipeline while the
pipeline builds on DuckDB only (docs/engines.md)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.dbt.assets import SPARK_NOT_IN_PIPELINE, _build_or_skip
from orchestration.defs.settings_resource import SettingsResource
from orchestration.settings import SettingsError, load_settings


def test_the_engine_comes_from_csw_engine_and_reaches_dbt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSW_HOME", str(tmp_path))
    assert load_settings().engine == "duckdb"
    monkeypatch.setenv("CSW_ENGINE", "spark")
    monkeypatch.setenv("CSW_SPARK_DRIVER_MEMORY", "6g")
    settings = load_settings()
    environment = SettingsResource.from_settings(settings).dbt_environment()
    assert environment["CSW_ENGINE"] == "spark"
    assert environment["CSW_SPARK_DRIVER_MEMORY"] == "6g"


def test_an_unknown_engine_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSW_ENGINE", "trino")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "CSW_ENGINE" in str(raised.value) and "trino" in str(raised.value)


def test_the_pipeline_refuses_spark_and_says_what_runs_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSW_HOME", str(tmp_path))
    monkeypatch.setenv("CSW_ENGINE", "spark")
    settings = SettingsResource.from_settings(load_settings())
    with pytest.raises(dg.Failure) as raised:
        next(_build_or_skip(None, None, settings))  # type: ignore[arg-type]
    assert raised.value.description == SPARK_NOT_IN_PIPELINE
    assert "docs/engines.md" in SPARK_NOT_IN_PIPELINE
