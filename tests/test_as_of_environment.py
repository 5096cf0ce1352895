"""The reporting date reaches dbt as var ``as_of`` or, in the pipeline's call, as the environment
variable CSW_AS_OF (orchestration/defs/dbt/assets.py ``vars_and_environment``): a var that changes
daily would make dbt parse the whole project on every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dbt_harness import Dbt, create_raw_warehouse

from orchestration.defs.dbt.assets import AS_OF_ENVIRONMENT, vars_and_environment


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), as_of="2024-06-30")


def _compile(dbt: Dbt, tmp_path: Path, as_of_var: str | None) -> Any:
    warehouse = tmp_path / "warehouse.duckdb"
    if not warehouse.exists():
        create_raw_warehouse(warehouse, {})
    result = dbt.invoke(
        warehouse,
        "compile",
        "--inline",
        "select {{ as_of_date() }} as d",
        vars_override={"as_of": as_of_var},
    )
    return result


def _compiled_date(dbt: Dbt, tmp_path: Path, as_of_var: str | None) -> str:
    result = _compile(dbt, tmp_path, as_of_var)
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


def test_the_date_comes_from_the_environment_when_the_var_is_not_set(
    dbt: Dbt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(AS_OF_ENVIRONMENT, "2023-02-28")
    assert "cast('2023-02-28' as date)" in _compiled_date(dbt, tmp_path, None)
    assert "cast('2024-01-31' as date)" in _compiled_date(dbt, tmp_path, "2024-01-31")
    monkeypatch.setenv(AS_OF_ENVIRONMENT, "28/02/2023")
    refused = _compile(dbt, tmp_path, None)
    assert not refused.success
    assert "YYYY-MM-DD, got '28/02/2023'" in capfd.readouterr().out


def test_the_pipeline_passes_the_date_in_the_environment_and_the_rest_as_vars() -> None:
    passed, environment = vars_and_environment({"as_of": "2024-03-31", "feature_map": [1]})
    assert passed == {"feature_map": [1]}
    assert environment == {AS_OF_ENVIRONMENT: "2024-03-31"}
    assert vars_and_environment({"feature_map": [1]}) == ({"feature_map": [1]}, {})
