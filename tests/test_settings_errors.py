"""A bad setting is named the way the user wrote it: the flag or the CSW_* variable, with what
is expected instead, never pydantic's own wording or its links."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _no_csw_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("CSW_")]:
        monkeypatch.delenv(name)


def test_a_bad_environment_variable_is_named_with_its_value_and_the_expected_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSW_AS_OF", "30/06/2025")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "CSW_AS_OF='30/06/2025'" in message
    assert "YYYY-MM-DD" in message
    assert "pydantic" not in message


def test_a_bad_flag_is_named_as_the_flag() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(as_of="tomorrow")
    message = str(caught.value)
    assert "--as-of 'tomorrow'" in message
    assert "CSW_AS_OF" not in message


def test_every_problem_is_listed_and_bounds_are_said_in_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSW_PUBLISH_MAX_SHRINK", "1.5")
    monkeypatch.setenv("CSW_DUCKDB_THREADS", "many")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "CSW_PUBLISH_MAX_SHRINK='1.5'" in message and "at most 1" in message
    assert "CSW_DUCKDB_THREADS='many'" in message and "whole number" in message


def test_a_bound_is_said_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSW_CHURN_HORIZON_DAYS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "CSW_CHURN_HORIZON_DAYS='0' must be at least 1" in str(caught.value)


def test_a_misspelt_variable_is_refused_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSW_HEALTH_MODLE", "tuned.yaml")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "CSW_HEALTH_MODLE is not a setting" in str(caught.value)
    assert "did you mean CSW_HEALTH_MODEL?" in str(caught.value)


def test_the_cli_prints_the_named_problem_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSW_AS_OF", "notadate")
    result = CliRunner().invoke(app, ["lists", "risk"])
    assert result.exit_code == 2
    assert "CSW_AS_OF='notadate'" in result.output
    assert "errors.pydantic.dev" not in result.output
