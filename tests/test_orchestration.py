"""Schedules, the landing sensor and atomic publication, without running the whole pipeline."""

import json
import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from orchestration.defs.ingestion.sensors import landing_sensor
from orchestration.defs.publishing import publisher
from orchestration.defs.schedules import build_schedules
from orchestration.defs.settings_resource import AS_OF_TAG, SettingsResource
from orchestration.settings import Settings


def _settings_resource(home: Path) -> SettingsResource:
    return SettingsResource.from_settings(Settings(home=home))


# --- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "job", "cron", "tick"),
    [
        ("daily_pipeline", "pipeline", "0 6 * * *", datetime(2026, 11, 23, 6, 0)),
        ("weekly_lists", "weekly_lists", "0 7 * * 1", datetime(2026, 11, 23, 7, 0)),
        ("monthly_finance_close", "finance_close", "0 7 2 * *", datetime(2026, 12, 2, 7, 0)),
        ("monthly_churn_model", "churn_model", "30 6 1 * *", datetime(2026, 12, 1, 6, 30)),
    ],
)
def test_schedules_fire_at_their_times_and_tag_the_reporting_date(
    name: str, job: str, cron: str, tick: datetime
) -> None:
    schedules = {s.name: s for s in build_schedules("Europe/Berlin")}
    schedule = schedules[name]
    assert (schedule.job_name, schedule.cron_schedule) == (job, cron)
    assert schedule.execution_timezone == "Europe/Berlin"
    context = dg.build_schedule_context(
        scheduled_execution_time=tick.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags[AS_OF_TAG] == tick.date().isoformat()
    assert request.run_key == f"{name}:{tick.date().isoformat()}"


def test_the_weekly_schedule_only_fires_on_mondays() -> None:
    from dagster._utils.schedules import cron_string_iterator

    [weekly] = [s for s in build_schedules("UTC") if s.name == "weekly_lists"]
    start = datetime(2026, 11, 18, tzinfo=ZoneInfo("UTC")).timestamp()
    ticks = cron_string_iterator(start, weekly.cron_schedule, "UTC")
    fired = [next(ticks) for _ in range(3)]
    assert [t.date() for t in fired] == [date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)]
    assert all((t.hour, t.minute) == (7, 0) for t in fired)


# --- the landing sensor -----------------------------------------------------------------------


def _drop(landing: Path, relative: str, text: str) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _evaluate(settings: SettingsResource, cursor: str | None) -> dg.SensorResult:
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            cursor=cursor, instance=instance, resources={"settings": settings}
        )
        return landing_sensor(context)


def test_sensor_starts_one_run_per_tick_and_none_for_a_file_seen_before(tmp_path: Path) -> None:
    """One run for the new files of a tick (tests/test_operations.py has the rest)."""
    settings = _settings_resource(tmp_path)
    landing = Path(settings.landing_dir)
    _drop(landing, "crm/accounts/a.csv", "account_id\n1\n")
    _drop(landing, "product/events/2024-01-01.jsonl", '{"event_id": "e1"}\n')

    first = _evaluate(settings, None)
    [request] = first.run_requests
    assert request.tags["csw/files"] == "2"
    assert request.asset_selection == [
        dg.AssetKey(["crm", "accounts"]),
        dg.AssetKey(["product", "events"]),
    ]

    second = _evaluate(settings, first.cursor)
    assert second.run_requests == []

    touched = landing / "crm/accounts/a.csv"
    os.utime(touched, ns=(1, 1))  # same bytes, new mtime: seen before
    third = _evaluate(settings, second.cursor)
    assert third.run_requests == []

    _drop(landing, "crm/accounts/a.csv", "account_id\n2\n")  # re-sent with new content
    _drop(landing, "billing/plans/plans.csv", "plan_id\np\n")
    fourth = _evaluate(settings, third.cursor)
    [again] = fourth.run_requests
    assert again.tags["csw/files"] == "2"
    assert again.asset_selection == [
        dg.AssetKey(["billing", "plans"]),
        dg.AssetKey(["crm", "accounts"]),
    ]
    assert again.run_key != request.run_key
    assert json.loads(fourth.cursor).keys() == {
        "crm/accounts/a.csv",
        "product/events/2024-01-01.jsonl",
        "billing/plans/plans.csv",
    }


def test_sensor_skips_without_a_landing_directory(tmp_path: Path) -> None:
    result = _evaluate(_settings_resource(tmp_path / "nowhere"), None)
    assert result.run_requests is None or result.run_requests == []
    assert "no landing directory" in (result.skip_reason.skip_message or "")


# --- atomic publication ---------------------------------------------------------------------


def _warehouse(path: Path, version: int) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(f"create or replace table marts.fct_x as select {version} as version")
    return path


def test_a_reader_of_the_serving_copy_keeps_the_previous_complete_version(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", 1)
    publish = tmp_path / "published"
    serving = publisher.publish_serving_copy(warehouse, publish)

    reader = duckdb.connect(str(serving), read_only=True)
    _warehouse(warehouse, 2)
    publisher.publish_serving_copy(warehouse, publish)

    assert reader.execute("select version from marts.fct_x").fetchone() == (1,)
    reader.close()
    with duckdb.connect(str(serving), read_only=True) as fresh:
        assert fresh.execute("select version from marts.fct_x").fetchone() == (2,)
    assert [p.name for p in publish.iterdir()] == ["warehouse.duckdb"], "no temporary files left"


def test_a_copy_that_fails_half_way_leaves_the_previous_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", 1)
    publish = tmp_path / "published"
    publisher.publish_serving_copy(warehouse, publish)
    _warehouse(warehouse, 2)

    def half_copy(src: Path, dst: Path, marts: object = None) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(publisher, "write_serving_copy", half_copy)
    with pytest.raises(OSError, match="disk full"):
        publisher.publish_serving_copy(warehouse, publish)
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select version from marts.fct_x").fetchone() == (1,)
    assert [p.name for p in publish.iterdir()] == ["warehouse.duckdb"]


def test_marts_are_published_as_parquet_and_lists_by_day_with_latest(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", 3)
    publish = tmp_path / "published"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table marts.risk_list as"
            " select 1 as list_rank, 'a1' as account_id, 'x@y.example' as email"
        )
        [mart] = publisher.publish_marts(con, ["fct_x"], publish)
        day1 = publisher.publish_lists(con, publish, date(2026, 11, 16))
        day2 = publisher.publish_lists(con, publish, date(2026, 11, 23))
    assert mart == publish / "marts" / "fct_x.parquet"
    assert duckdb.sql(f"select version from '{mart}'").fetchall() == [(3,)]
    assert {p.name for p in day1} == {"risk_list.csv", "risk_list.parquet"}
    assert day2[0].parent.name == "2026-11-23"
    latest = publish / "lists" / "latest"
    assert latest.resolve() == (publish / "lists" / "2026-11-23").resolve()
    header = (latest / "risk_list.csv").read_text().splitlines()[0]
    assert header == "list_rank,account_id", "no e-mail address in a published list"


def test_previous_month_of_a_close() -> None:
    assert publisher.previous_month(date(2026, 12, 2)) == date(2026, 11, 1)
    assert publisher.previous_month(date(2027, 1, 2)) == date(2026, 12, 1)


class _FakeInvocation:
    """What ``_streamed`` uses of a ``DbtCliInvocation``: its events and its target folder."""

    def __init__(self, target_path: Path, parse_state: bytes) -> None:
        self.target_path = target_path
        self._parse_state = parse_state

    def stream(self):  # type: ignore[no-untyped-def]
        yield "event 1"
        # dbt writes its parse state while it runs
        (self.target_path / "partial_parse.msgpack").write_bytes(self._parse_state)
        yield "event 2"


def test_a_dbt_call_leaves_its_parse_state_for_the_next_call_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from orchestration.defs.dbt import assets

    monkeypatch.chdir(tmp_path)  # a copy made relative to the working directory would land here

    project_dir = tmp_path / "dbt_project"
    (project_dir / "target").mkdir(parents=True)
    (project_dir / "target" / "partial_parse.msgpack").write_bytes(b"from dbt parse, no vars")
    # target_path relative to the project, as DbtProject has it
    project = SimpleNamespace(project_dir=project_dir, target_path=Path("target"))
    monkeypatch.setattr(assets, "dbt_project", lambda: project)
    call_target = tmp_path / "dbt_models-abc"
    call_target.mkdir()

    events = list(assets._streamed(_FakeInvocation(call_target, b"this run's vars")))  # type: ignore[arg-type]

    assert events == ["event 1", "event 2"]
    shared = project_dir / "target" / "partial_parse.msgpack"
    assert shared.read_bytes() == b"this run's vars"
    assert [p.name for p in shared.parent.iterdir()] == ["partial_parse.msgpack"]  # no temp left
    assert not (tmp_path / "target").exists()  # not relative to the working directory
