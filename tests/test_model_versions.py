"""Every health, risk, expansion and alert row carries the version of the health model that
scored it, and marts.dim_health_model_versions keeps every version with its YAML text.

A version is the sha256 of the validated model as canonical JSON (metrics/dbt_vars.py
``model_version``), shown as its first 12 hex digits, plus the optional ``name`` of the YAML.
The dbt part builds the customer-success fixture of test_dbt_customer_success once with the
pinned model, then re-scores it with a tuned copy, then with the pinned model as of an earlier
date, and reads the marts and the versions table after each step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from dbt_harness import Dbt, create_raw_warehouse, failures, query
from pinned_model import PINNED_HEALTH_MODEL, pinned_health_config
from test_dbt_customer_success import AS_OF, EARLY, RAW

from metrics.dbt_vars import dbt_vars, metric_vars, model_version
from metrics.health_config import HealthConfig, HealthConfigError, load_health_config

#: The marts and the intermediate score model whose every row names the model version.
VERSIONED = (
    "intermediate.int_account_health_scores",
    "marts.fct_account_health",
    "marts.risk_list",
    "marts.expansion_list",
    "marts.adoption_alerts",
)


def _write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _tuned_text(name: str = "tuned") -> str:
    """The pinned model with a name and the green band moved from 80 to 75."""
    text = PINNED_HEALTH_MODEL.read_text(encoding="utf-8")
    assert text.count("\nversion: 1\n") == 1 and text.count("green: 80") == 1
    return text.replace("\nversion: 1\n", f"\nversion: 1\nname: {name}\n").replace(
        "green: 80", "green: 75"
    )


# --- the version of a model ---------------------------------------------------------------------


def test_the_version_is_the_hash_of_the_validated_model_as_canonical_json() -> None:
    config = pinned_health_config()
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    version = model_version(config)
    assert version.sha256 == digest
    assert version.version == digest[:12]
    assert version.name is None  # the pinned copy sets no name


def test_comments_layout_and_spelled_out_defaults_keep_the_version(tmp_path: Path) -> None:
    """The same model written another way (no comments, keys sorted, block style, every default
    written out) scores the same, so it is the same version; raw bytes would differ."""
    config = pinned_health_config()
    rewritten = yaml.safe_dump(
        config.model_dump(mode="json"), sort_keys=True, default_flow_style=False
    )
    assert rewritten != PINNED_HEALTH_MODEL.read_text(encoding="utf-8")
    same = load_health_config(_write(tmp_path, "# rewritten by hand\n" + rewritten))
    assert model_version(same).version == model_version(config).version


def test_a_changed_threshold_or_name_is_a_new_version(tmp_path: Path) -> None:
    pinned = model_version(pinned_health_config())
    tuned = model_version(load_health_config(_write(tmp_path, _tuned_text())))
    renamed_only = load_health_config(
        _write(tmp_path, _tuned_text("other").replace("green: 75", "green: 80"), "other.yaml")
    )
    assert tuned.name == "tuned"
    assert tuned.version != pinned.version
    assert model_version(renamed_only).name == "other"
    assert model_version(renamed_only).version not in {pinned.version, tuned.version}


def test_the_yaml_text_of_a_version_loads_back_to_the_same_version(tmp_path: Path) -> None:
    config = load_health_config(_write(tmp_path, _tuned_text()))
    version = model_version(config)
    assert "name: tuned" in version.yaml_text
    again = load_health_config(_write(tmp_path, version.yaml_text, "again.yaml"))
    assert again == config
    assert model_version(again) == version


@pytest.mark.parametrize(
    ("written", "rule"),
    [("''", "must be a non-empty name"), ("7", "must be a valid string")],
)
def test_a_name_must_be_a_non_empty_text(tmp_path: Path, written: str, rule: str) -> None:
    text = _tuned_text().replace("name: tuned", f"name: {written}")
    with pytest.raises(HealthConfigError) as raised:
        load_health_config(_write(tmp_path, text))
    assert f": name = {written}: {rule}" in str(raised.value)


def test_dbt_gets_the_version_as_a_var(tmp_path: Path) -> None:
    config = load_health_config(_write(tmp_path, _tuned_text()))
    version = model_version(config)
    passed = dbt_vars(date(2024, 6, 30), config)["health_model_version"]
    assert passed == {
        "version": version.version,
        "sha256": version.sha256,
        "name": "tuned",
        "yaml_text": version.yaml_text,
    }


# --- in the warehouse ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The versions every versioned table names, and the versions table, after one run."""

    versions: dict[str, set[tuple[Any, ...]]]
    rows: dict[str, int]
    table: list[dict[str, Any]]


def _read(warehouse: Path) -> Step:
    con = duckdb.connect(str(warehouse))
    try:
        versions = {
            t: set(query(con, f"select distinct health_model_version, health_model_name from {t}"))
            for t in VERSIONED
        }
        rows = {t: query(con, f"select count(*) from {t}")[0][0] for t in VERSIONED}
        cursor = con.execute(
            "select * from marts.dim_health_model_versions order by health_model_version"
        )
        names = [c[0] for c in cursor.description]
        table = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        return Step(versions, rows, table)
    finally:
        con.close()


@dataclass(frozen=True)
class Runs:
    pinned: HealthConfig
    tuned: HealthConfig
    first: Step
    second: Step
    third: Step
    #: the pinned model again as of AS_OF, then a --full-refresh build of the versions table
    fourth: Step
    refreshed: Step


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("versions")
    dbt = Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)
    warehouse = root / "warehouse.duckdb"
    create_raw_warehouse(warehouse, RAW)
    tuned = load_health_config(_write(root, _tuned_text()))
    scored = ("--select", "int_account_health_scores+", "dim_health_model_versions")

    def run(*args: str, **kwargs: Any) -> Step:
        result = dbt.invoke(warehouse, "run", *args, **kwargs)
        assert result.success, failures(result)
        return _read(warehouse)

    first = run()
    second = run(*scored, vars_override=metric_vars(tuned))
    third = run("--select", "dim_health_model_versions", as_of=EARLY)
    fourth = run("--select", "dim_health_model_versions")
    refreshed = run("--select", "dim_health_model_versions", "--full-refresh")
    return Runs(pinned_health_config(), tuned, first, second, third, fourth, refreshed)


def test_every_health_risk_expansion_and_alert_row_names_the_model_that_scored_it(
    runs: Runs,
) -> None:
    pinned, tuned = model_version(runs.pinned), model_version(runs.tuned)
    assert {t: n for t, n in runs.first.rows.items() if n == 0} == {}
    assert runs.first.versions == {t: {(pinned.version, None)} for t in VERSIONED}
    assert runs.second.versions == {t: {(tuned.version, "tuned")} for t in VERSIONED}


def test_the_versions_table_keeps_every_version_with_its_yaml_text(
    runs: Runs, tmp_path: Path
) -> None:
    pinned, tuned = model_version(runs.pinned), model_version(runs.tuned)
    [only] = runs.first.table
    assert (only["health_model_version"], only["health_model_name"]) == (pinned.version, None)
    assert only["content_sha256"] == pinned.sha256
    assert only["first_scored_as_of_date"] == date.fromisoformat(AS_OF)

    by_version = {r["health_model_version"]: r for r in runs.second.table}
    assert set(by_version) == {pinned.version, tuned.version}
    before, added = by_version[pinned.version], by_version[tuned.version]
    assert before == only  # the earlier version's row is kept as it was
    assert (added["health_model_version"], added["health_model_name"]) == (tuned.version, "tuned")
    assert added["first_built_at"] >= only["first_built_at"]
    for row, config in ((before, runs.pinned), (added, runs.tuned)):
        text = _write(tmp_path, row["yaml_text"], f"{row['health_model_version']}.yaml")
        assert load_health_config(text) == config


def test_an_earlier_reporting_date_moves_first_scored_as_of_back_and_nothing_else(
    runs: Runs,
) -> None:
    by_version = {r["health_model_version"]: r for r in runs.third.table}
    pinned = model_version(runs.pinned).version
    second = {r["health_model_version"]: r for r in runs.second.table}
    assert set(by_version) == set(second)
    assert by_version[pinned]["first_scored_as_of_date"] == date.fromisoformat(EARLY)
    assert {**by_version[pinned], "first_scored_as_of_date": None} == {
        **second[pinned],
        "first_scored_as_of_date": None,
    }
    tuned = model_version(runs.tuned).version
    assert by_version[tuned] == second[tuned]


def test_a_later_reporting_date_keeps_the_earliest_one(runs: Runs) -> None:
    assert runs.fourth.table == runs.third.table


def test_a_full_refresh_keeps_every_version(runs: Runs) -> None:
    """The table is the only record of the versions that scored earlier runs: --full-refresh
    (which rebuilds the incremental daily facts) must not empty it."""
    assert runs.refreshed.table == runs.fourth.table
