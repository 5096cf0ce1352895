"""Issue 13 point 1: the health model is configured per deployment (``health_model``, env
``CSW_HEALTH_MODEL``, ``--health-model``), and every consumer reads the configured file: the
dbt calls of Dagster runs (through ``SettingsResource``), the definitions, ``csw dbt-vars``,
``csw run`` and ``csw demo``. And the tests pin their own copy of the default model.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pinned_model import PINNED_HEALTH_MODEL, pinned_dbt_vars
from typer.testing import CliRunner

from metrics import health_config
from metrics.health_config import DEFAULT_CONFIG_PATH, HealthConfigError, load_health_config
from orchestration.cli import app
from orchestration.defs.dbt.assets import _build_args
from orchestration.defs.settings_resource import SettingsResource
from orchestration.settings import Settings, load_settings

AS_OF = date(2025, 6, 30)
SHIPPED_GREEN = "bands: {green: 80, yellow: 50}"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CSW_HEALTH_MODEL", "CSW_MAX_UNMAPPED_EVENT_SHARE", "CSW_HOME"):
        monkeypatch.delenv(name, raising=False)


def _tuned(directory: Path, green: int = 85) -> Path:
    """A copy of the default model (the tests' own) whose green band starts at ``green``."""
    text = PINNED_HEALTH_MODEL.read_text(encoding="utf-8")
    assert text.count(SHIPPED_GREEN) == 1
    path = directory / "our_model.yaml"
    path.write_text(text.replace(SHIPPED_GREEN, f"bands: {{green: {green}, yellow: 50}}"))
    return path


def _green(vars_: dict) -> int:
    return vars_["health_model"]["health_score"]["bands"]["green"]


def _dbt_vars_of(args: list[str]) -> dict:
    return json.loads(args[args.index("--vars") + 1])


def test_unset_means_the_shipped_model(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    assert settings.health_model is None
    resource = SettingsResource.from_settings(settings)
    assert resource.health_config() == load_health_config(DEFAULT_CONFIG_PATH)


def test_a_relative_path_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSW_HEALTH_MODEL", "models/ours.yaml")
    assert load_settings().health_model == tmp_path / "models" / "ours.yaml"
    assert load_settings(health_model=Path("/etc/abs.yaml")).health_model == Path("/etc/abs.yaml")


def test_every_dbt_call_of_a_dagster_run_gets_the_configured_model(tmp_path: Path) -> None:
    from orchestration.definitions import build_definitions

    tuned = _tuned(tmp_path)
    settings = Settings(home=tmp_path, health_model=tuned, max_unmapped_event_share=0.2)
    resource = build_definitions(settings).resources["settings"]
    assert isinstance(resource, SettingsResource)
    context = SimpleNamespace(run=SimpleNamespace(tags={"csw/as_of": AS_OF.isoformat()}))
    args, environment = _build_args(context, resource)  # type: ignore[arg-type]
    vars_ = _dbt_vars_of(args)
    assert _green(vars_) == 85
    assert environment["CSW_AS_OF"] == AS_OF.isoformat(), "the date travels in the environment"
    assert "as_of" not in vars_
    assert vars_["max_unmapped_event_share"] == 0.2


def test_the_definitions_refuse_a_missing_configured_model(tmp_path: Path) -> None:
    from orchestration.definitions import build_definitions

    absent = tmp_path / "absent.yaml"
    with pytest.raises(HealthConfigError, match="no such health-model configuration") as raised:
        build_definitions(Settings(home=tmp_path, health_model=absent))
    assert str(absent) in str(raised.value)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result.exit_code, result.output


def test_csw_dbt_vars_prints_the_configured_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned = _tuned(tmp_path, green=85)
    code, output = _invoke("dbt-vars", "--as-of", "2025-06-30", "--health-model", str(tuned))
    assert code == 0, output
    assert _green(json.loads(output)) == 85
    monkeypatch.setenv("CSW_HEALTH_MODEL", str(_tuned(tmp_path / "..", green=90)))
    code, output = _invoke("dbt-vars", "--as-of", "2025-06-30")
    assert code == 0, output
    assert _green(json.loads(output)) == 90


@pytest.mark.parametrize("command", [["run"], ["demo"], ["dbt-vars"]])
def test_a_missing_configured_model_stops_with_exit_2(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    (tmp_path / "landing").mkdir()
    landing = ["--landing", str(tmp_path / "landing")] * (command == ["run"])
    code, output = _invoke(*command, *landing, "--health-model", "no/such/model.yaml")
    assert code == 2, output
    assert "no/such/model.yaml" in output.replace("\n", "")
    assert "Traceback" not in output
    assert not (tmp_path / "home" / "landing" / "crm").exists(), "demo generated before checking"


def test_the_tests_vars_do_not_follow_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment tunes the shipped file: the pinned tests' vars stay the tests' copy's."""
    tuned = _tuned(tmp_path, green=70)
    monkeypatch.setattr(health_config, "DEFAULT_CONFIG_PATH", tuned)
    health_config.default_health_config.cache_clear()
    try:
        assert health_config.default_health_config().health_score.bands.green == 70
        assert _green(pinned_dbt_vars(AS_OF)) == 80
    finally:
        health_config.default_health_config.cache_clear()


# --- column names do not encode a default window --------------------------------------------------

MODELS = Path(__file__).resolve().parents[1] / "dbt_project" / "models"
#: Fixed horizons, not configuration: fct_ttv_cohorts' accounts_reached_within_7d .. _90d.
FIXED_HORIZON = re.compile(r"^accounts_reached_within_\d+d$")
WINDOW_SUFFIX = re.compile(r"_\d+d\b")


def _documented_columns(folder: Path) -> dict[str, list[str]]:
    """Model name -> the columns its YAML documents (contracts of the marts), for ``folder``."""
    out: dict[str, list[str]] = {}
    for path in folder.rglob("_*.yml"):
        if path.name.endswith("__unit_tests.yml"):
            continue
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            out[model["name"]] = [c["name"] for c in model.get("columns", [])]
    return out


def test_no_published_or_scored_column_is_named_after_a_default_window() -> None:
    """The marts and the customer-success measures are named by role (``tickets_in_window``),
    so tuning a window leaves every name right; the signal history's per-window columns are
    generated from the configured windows and are left out."""
    columns = {
        **_documented_columns(MODELS / "marts"),
        **{
            name: cols
            for name, cols in _documented_columns(MODELS / "intermediate").items()
            if name in {"int_account_health_measures", "int_account_health_scores"}
        },
    }
    assert "fct_account_health" in columns and "int_account_health_measures" in columns
    named = {
        (model, column)
        for model, cols in columns.items()
        for column in cols
        if WINDOW_SUFFIX.search(column) and not FIXED_HORIZON.match(column)
    }
    assert named == set()
    alerts = (MODELS / "marts" / "customer_success" / "adoption_alerts.sql").read_text()
    assert not re.findall(r"'\w+_\d+d'", alerts), "alert types are window-neutral too"
