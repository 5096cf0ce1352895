from datetime import date
from pathlib import Path

import pytest

from orchestration.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HOME",
        "LANDING_DIR",
        "WAREHOUSE_PATH",
        "PUBLISH_DIR",
        "AS_OF",
        "TIMEZONE",
        "DUCKDB_THREADS",
        "DBT_THREADS",
    ):
        monkeypatch.delenv(f"CSW_{name}", raising=False)


def test_defaults_live_under_dot_csw() -> None:
    s = load_settings()
    assert s.landing == Path(".csw/landing")
    assert s.warehouse == Path(".csw/warehouse.duckdb")
    assert s.publish == Path(".csw/published")
    assert s.serving_copy == Path(".csw/published/warehouse.duckdb")


def test_home_moves_every_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSW_HOME", "/srv/csw")
    s = load_settings()
    assert s.landing == Path("/srv/csw/landing")
    assert s.warehouse == Path("/srv/csw/warehouse.duckdb")


def test_environment_overrides_defaults_and_flags_override_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSW_WAREHOUSE_PATH", "/env/wh.duckdb")
    monkeypatch.setenv("CSW_AS_OF", "2025-06-30")
    from_env = load_settings()
    assert from_env.warehouse == Path("/env/wh.duckdb")
    assert from_env.as_of == date(2025, 6, 30)

    from_flags = load_settings(warehouse_path=Path("/flag/wh.duckdb"), as_of=None)
    assert from_flags.warehouse == Path("/flag/wh.duckdb")
    assert from_flags.as_of == date(2025, 6, 30), "a flag left unset must not hide the env value"


def test_as_of_defaults_to_today_utc() -> None:
    from datetime import UTC, datetime

    assert load_settings().as_of == datetime.now(UTC).date()


def test_invalid_values_are_rejected_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="as_of"):
        Settings(as_of="31/06/2025")
    with pytest.raises(ValueError, match="nonsense"):
        Settings(nonsense=1)


def test_dbt_threads_follow_duckdb_threads_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.defs.settings_resource import SettingsResource

    assert load_settings(duckdb_threads=3).dbt_threads == 3
    monkeypatch.setenv("CSW_DBT_THREADS", "1")
    s = load_settings(duckdb_threads=3)
    assert (s.duckdb_threads, s.dbt_threads) == (3, 1)
    env = SettingsResource.from_settings(s).dbt_environment()
    assert env["CSW_DBT_THREADS"] == "1"
