"""Issue 13 point 2: the event vocabulary checked against the data.

Event names the configured health model does not know are reported with their counts by a
warn-level dbt test that stores its failures (shown in ``csw run``'s summary and as a Dagster
asset check); above ``max_unmapped_event_share`` of all events an error-level test fails the
build with the list; events marked ``counts_as_activity: false`` make nobody active.

Each warehouse is built only up to the vocabulary checks and the daily activity facts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, create_raw_warehouse, failures, query
from pinned_model import pinned_health_config
from test_dbt_customer_success import event

from metrics.dbt_vars import dbt_vars
from metrics.health_config import EventSpec
from orchestration.defs.dbt.test_failures import stored_failures

AS_OF = "2024-06-15"
SELECT = (
    "--select",
    "+tag:vocabulary",
    "+int_account_daily_activity",
    "--exclude",
    "tag:referential",
    "--exclude-resource-type",
    "unit_test",
)
WARN, LIMIT = "events_not_in_feature_map", "unmapped_event_share_within_limit"


def _raw() -> dict[str, list[dict[str, Any]]]:
    """7 events: 4 of names the default model knows, 3 of two names it does not (3/7 = 0.43)."""
    return {
        "events": [
            event("acc_a", "u1", "login", "2024-06-01"),
            event("acc_a", "u1", "login", "2024-06-01", hour=11),
            event("acc_a", "u1", "dashboard_viewed", "2024-06-01"),
            # u1's only events of 2 June are ad views; acc_b's u2 only dislikes a song
            event("acc_a", "u1", "ad_viewed", "2024-06-02"),
            event("acc_a", "u1", "ad_viewed", "2024-06-02", hour=11),
            event("acc_b", "u2", "song_disliked", "2024-06-02"),
            event("acc_b", "u3", "login", "2024-06-02"),
        ]
    }


def _not_activity_vars() -> dict[str, Any]:
    """The pinned model with both unknown names known, as events that are not activity."""
    config = pinned_health_config()
    events = {
        **config.events,
        "ad_viewed": EventSpec(counts_as_activity=False),
        "song_disliked": EventSpec(counts_as_activity=False),
    }
    return dbt_vars(date.fromisoformat(AS_OF), config.model_copy(update={"events": events}))


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("dbt"), AS_OF)


def _warehouse(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    warehouse = tmp_path_factory.mktemp(name) / "warehouse.duckdb"
    create_raw_warehouse(warehouse, _raw())
    return warehouse


@pytest.fixture(scope="module")
def default_build(dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    warehouse = _warehouse(tmp_path_factory, "default")
    return warehouse, dbt.build(warehouse, *SELECT)


def _tests(result: Any) -> dict[str, Any]:
    return {r.node.name: r for r in result.result.results if r.node.resource_type == "test"}


def _activity(warehouse: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse)) as con:
        return query(
            con,
            "select account_id, cast(activity_date as varchar), events, active_users "
            "from intermediate.int_account_daily_activity order by all",
        )


def test_unknown_event_names_warn_with_their_counts(default_build: tuple[Path, Any]) -> None:
    warehouse, result = default_build
    assert result.success, failures(result)
    tests = _tests(result)
    assert (str(tests[WARN].status), tests[WARN].failures) == ("warn", 2)
    assert str(tests[LIMIT].status) == "pass", "3 of 7 events is below the default 0.5"
    stored = stored_failures(warehouse, [WARN], limit=10)[WARN]
    rows = {row[0]: dict(zip(stored.columns, row, strict=True)) for row in stored.sample}
    assert set(rows) == {"ad_viewed", "song_disliked"}
    assert (rows["ad_viewed"]["child_rows"], rows["ad_viewed"]["accounts"]) == ("2", "1")
    assert rows["song_disliked"]["child_rows"] == "1"
    assert rows["ad_viewed"]["share_of_events"] == str(round(2 / 7, 4))
    assert stored.sample_lines()[0].startswith("event_name=ad_viewed"), "largest first"


def test_unknown_events_still_count_as_activity_by_default(
    default_build: tuple[Path, Any],
) -> None:
    warehouse, _ = default_build
    assert _activity(warehouse) == [
        ("acc_a", "2024-06-01", 3, 1),
        ("acc_a", "2024-06-02", 2, 1),
        ("acc_b", "2024-06-02", 2, 2),
    ]


def test_above_the_share_the_build_fails_with_the_list(
    dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = _warehouse(tmp_path_factory, "strict")
    result = dbt.build(warehouse, *SELECT, vars_override={"max_unmapped_event_share": 0.4})
    assert not result.success
    tests = _tests(result)
    assert (str(tests[LIMIT].status), tests[LIMIT].failures) == ("fail", 2)
    stored = stored_failures(warehouse, [LIMIT], limit=10)[LIMIT]
    assert {row[0] for row in stored.sample} == {"ad_viewed", "song_disliked"}
    share = stored.columns.index("unmapped_share")
    assert {row[share] for row in stored.sample} == {str(round(3 / 7, 4))}


def test_a_limit_of_1_never_fails_even_when_every_event_is_unmapped(
    dbt: Dbt, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """13 events of 5 unknown names (1, 3, 3, 3, 3): the per-name shares 1/13 + 4 x 3/13 add up
    to 1.0000000000000002 in floating point, which failed the maximum limit 1. The share is one
    ratio, unmapped events over all events, compared exactly."""
    counts = {"ad_viewed": 1, "song_disliked": 3, "thumbs_up": 3, "thumbs_down": 3, "skip": 3}
    assert not set(counts) & set(pinned_health_config().events)
    assert sum(n / 13 for n in (1, 3, 3, 3, 3)) > 1.0  # the rounding the check must not make
    raw = {
        "events": [
            event("acc_a", "u1", name, "2024-06-01", hour=hour)
            for name, n in counts.items()
            for hour in range(n)
        ]
    }
    warehouse = tmp_path_factory.mktemp("all_unmapped") / "warehouse.duckdb"
    create_raw_warehouse(warehouse, raw)
    result = dbt.build(warehouse, *SELECT, vars_override={"max_unmapped_event_share": 1})
    assert result.success, failures(result)
    assert str(_tests(result)[LIMIT].status) == "pass"


def test_events_marked_not_activity_make_nobody_active(
    dbt: Dbt, default_build: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Built first with the default map, then incrementally with the two names marked as not
    activity: the days built under the old list are rebuilt, by value."""
    warehouse = _warehouse(tmp_path_factory, "not_activity")
    assert dbt.build(warehouse, *SELECT).success
    result = dbt.build(warehouse, *SELECT, vars_override=_not_activity_vars())
    assert result.success, failures(result)
    assert _activity(warehouse) == [
        ("acc_a", "2024-06-01", 3, 1),
        ("acc_b", "2024-06-02", 1, 1),
    ]
    with duckdb.connect(str(warehouse)) as con:
        users = query(
            con,
            "select user_id, cast(activity_date as varchar) "
            "from intermediate.int_user_daily_activity order by all",
        )
    assert users == [("u1", "2024-06-01"), ("u3", "2024-06-02")]
    tests = _tests(result)
    assert (str(tests[WARN].status), tests[WARN].failures) == ("pass", 0), "now known names"


def test_dagster_shows_both_checks_on_the_vocabulary_asset() -> None:
    from orchestration.defs.dbt.assets import build_dbt_assets

    checks = {
        spec.name: spec.asset_key.to_user_string()
        for assets in build_dbt_assets()
        for spec in assets.check_specs
        if spec.name in {WARN, LIMIT}
    }
    assert checks == {
        WARN: "intermediate/int_event_vocabulary",
        LIMIT: "intermediate/int_event_vocabulary",
    }


def test_the_run_summary_names_the_unknown_events_with_their_counts(
    default_build: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``csw run`` prints for the warned check: the stored rows, largest first."""
    import dagster as dg

    from orchestration.cli import _print_checks
    from orchestration.pipeline_run import CheckOutcome

    warehouse, _ = default_build
    warned = CheckOutcome(
        "intermediate/int_event_vocabulary", WARN, dg.AssetCheckSeverity.WARN, failed_rows=2
    )
    _print_checks([warned], warehouse)
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning intermediate/int_event_vocabulary: {WARN} (2 row(s))" in out
    assert "2 row(s) in audit.events_not_in_feature_map" in out
    assert "event_name=ad_viewed, accounts=1" in out and "child_rows=2" in out
    assert "event_name=song_disliked" in out
