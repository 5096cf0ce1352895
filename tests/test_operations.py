"""Operations (issue 12 point 8): the landing sensor without floods, failure alerts, freshness
checks of the extracts, owners of every asset, the health configuration checked on load."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from ingestion_fixtures import Warehouse, example_row, open_warehouse, table_path, write_csv

from ingestion.contract import TABLES
from ingestion.synthetic import GeneratorConfig, generate_extracts
from orchestration.defs.ingestion.sensors import SENSOR_TAG, landing_sensor
from orchestration.defs.settings_resource import SettingsResource
from orchestration.settings import Settings

TINY = GeneratorConfig(accounts=5, months=2, seed=3, start=date(2024, 1, 1))


def _settings_resource(home: Path, **overrides: object) -> SettingsResource:
    return SettingsResource.from_settings(Settings(home=home, **overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    """The code location's definitions, built once for the module (dbt parse on first use)."""
    from orchestration.definitions import build_definitions

    return build_definitions(Settings(home=tmp_path_factory.mktemp("defs")))


# --- the landing sensor -----------------------------------------------------------------------


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def generated(tmp_path: Path) -> SettingsResource:
    """Settings whose landing directory holds the generator's extracts of a tiny sample."""
    settings = _settings_resource(tmp_path)
    generate_extracts(Path(settings.landing_dir), TINY)
    return settings


def _tick(
    settings: SettingsResource, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance, resources={"settings": settings}
    )
    return landing_sensor(context)


def _landing_files(settings: SettingsResource) -> list[str]:
    landing = Path(settings.landing_dir)
    return sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file())


def test_first_tick_over_a_full_landing_dir_starts_one_run_for_every_file(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    files = _landing_files(generated)
    assert len(files) > 50, "the sample has a file per day of events"

    first = _tick(generated, instance, None)

    [request] = first.run_requests
    assert set(request.asset_selection) == {dg.AssetKey([t.system, t.name]) for t in TABLES}
    assert request.tags["csw/files"] == str(len(files))
    assert request.tags[SENSOR_TAG] == "landing_sensor"
    assert request.run_key == f"landing:{request.tags['csw/digest']}"
    assert sorted(json.loads(first.cursor)) == files

    second = _tick(generated, instance, first.cursor)
    assert not second.run_requests


def test_a_changed_file_starts_one_run_for_its_table_only(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    first = _tick(generated, instance, None)
    plans = Path(generated.landing_dir) / "billing/plans/plans.csv"
    plans.write_text(plans.read_text() + "\n")

    [request] = _tick(generated, instance, first.cursor).run_requests

    assert request.asset_selection == [dg.AssetKey(["billing", "plans"])]
    assert request.tags["csw/files"] == "1"
    assert request.run_key != first.run_requests[0].run_key


def test_a_misplaced_file_starts_a_run_that_lists_it(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    """A file no table loads (a typo in its folder) is reported by the run it starts, not at
    the next daily run; marker files written beside extracts start nothing."""
    first = _tick(generated, instance, None)
    landing = Path(generated.landing_dir)
    (landing / "crm/accounts/_SUCCESS").write_text("")
    assert not _tick(generated, instance, first.cursor).run_requests

    typo = landing / "crm/acounts/accounts.csv"
    typo.parent.mkdir()
    typo.write_text("account_id\na1\n")
    [request] = _tick(generated, instance, first.cursor).run_requests
    assert request.asset_selection == [dg.AssetKey(["landing", "unrecognised_files"])]
    assert request.tags["csw/files"] == "1"


def test_a_retried_tick_asks_for_the_same_run_key(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    """Dagster drops a RunRequest whose run_key already started a run: a tick evaluated twice
    with the same cursor (a daemon restart between evaluation and cursor update) starts one."""
    once = _tick(generated, instance, None)
    again = _tick(generated, instance, None)
    assert [r.run_key for r in once.run_requests] == [r.run_key for r in again.run_requests]


def test_same_bytes_with_a_new_mtime_start_nothing(tmp_path: Path) -> None:
    import os

    settings = _settings_resource(tmp_path)
    path = Path(settings.landing_dir) / "crm/accounts/a.csv"
    path.parent.mkdir(parents=True)
    path.write_text("account_id\n1\n")
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(settings, instance, None)
        os.utime(path, ns=(1, 1))
        assert not _tick(settings, instance, first.cursor).run_requests


def _add_run(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict
) -> dg.DagsterRun:
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.utils import make_new_run_id

    run = DagsterRun(job_name="ingest", run_id=make_new_run_id(), status=status, tags=tags)
    return instance.add_run(run)


def test_no_run_while_a_sensor_started_ingest_run_is_still_in_progress(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    running = _add_run(instance, dg.DagsterRunStatus.STARTED, {SENSOR_TAG: "landing_sensor"})

    held = _tick(generated, instance, None)

    assert not held.run_requests
    assert running.run_id in (held.skip_reason.skip_message or "")
    assert held.cursor is None, "the files stay out of the cursor until a run is requested"

    instance.report_run_failed(running)
    [request] = _tick(generated, instance, held.cursor).run_requests
    assert request.tags["csw/files"] == str(len(_landing_files(generated)))


def test_runs_not_started_by_the_sensor_do_not_hold_it_back(
    generated: SettingsResource, instance: dg.DagsterInstance
) -> None:
    _add_run(instance, dg.DagsterRunStatus.STARTED, {"dagster/schedule_name": "daily_pipeline"})
    _add_run(instance, dg.DagsterRunStatus.SUCCESS, {SENSOR_TAG: "landing_sensor"})
    assert len(_tick(generated, instance, None).run_requests) == 1


def test_sensor_skips_without_a_landing_directory(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = _tick(_settings_resource(tmp_path / "nowhere"), instance, None)
    assert not result.run_requests
    assert "no landing directory" in (result.skip_reason.skip_message or "")


# --- failure alerts ---------------------------------------------------------------------------


@dg.op
def load_extracts() -> None:
    raise RuntimeError("disk full on /data")


@dg.job
def nightly() -> None:
    load_extracts()


class _Received:
    """What the local webhook received: (path, content type, body) per POST."""

    def __init__(self) -> None:
        import queue

        self.requests: queue.Queue[tuple[str, str, bytes]] = queue.Queue()


@pytest.fixture
def webhook() -> tuple[str, _Received]:
    """A real HTTP server on 127.0.0.1 that records every POST and answers 204."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.put((self.path, self.headers["Content-Type"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/csw", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _stdin_to_file_command(tmp_path: Path, out: Path) -> str:
    import shlex
    import sys

    script = tmp_path / "write stdin.py"
    script.write_text(
        "import pathlib, sys\npathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())\n"
    )
    return shlex.join([sys.executable, str(script), str(out)])


def _failure_context(
    instance: dg.DagsterInstance, settings: SettingsResource
) -> dg.RunFailureSensorContext:
    result = nightly.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"settings": settings},
    ).for_run_failure()


def test_a_failed_run_is_posted_to_the_webhook_and_piped_to_the_command(
    tmp_path: Path, instance: dg.DagsterInstance, webhook: tuple[str, _Received]
) -> None:
    from orchestration.defs.alerts import run_failure_alert

    url, received = webhook
    out = tmp_path / "alert out" / "payload.json"
    out.parent.mkdir()
    settings = _settings_resource(
        tmp_path,
        alert_webhook=url,
        alert_command=_stdin_to_file_command(tmp_path, out),
        dagster_url="http://dagster.internal:3000/",
    )
    context = _failure_context(instance, settings)

    run_failure_alert(context)

    path, content_type, body = received.requests.get(timeout=10)
    assert (path, content_type) == ("/hooks/csw", "application/json")
    payload = json.loads(body)
    run_id = context.dagster_run.run_id
    assert payload["job"] == "nightly"
    assert payload["run_id"] == run_id
    [step] = payload["failed_steps"]
    assert step["step"] == "load_extracts"
    assert "RuntimeError: disk full on /data" in step["error"]
    assert payload["url"] == f"http://dagster.internal:3000/runs/{run_id}"
    assert "disk full on /data" in payload["text"]
    assert json.loads(out.read_bytes()) == payload, "the command gets the same JSON on stdin"


def test_no_link_without_the_dagster_url(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    from orchestration.defs.alerts import run_failure_alert

    out = tmp_path / "payload.json"
    settings = _settings_resource(tmp_path, alert_command=_stdin_to_file_command(tmp_path, out))
    run_failure_alert(_failure_context(instance, settings))
    assert json.loads(out.read_bytes())["url"] is None


def test_an_alert_that_cannot_be_delivered_is_reported_not_raised(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    import shlex
    import socket
    import sys

    from orchestration.defs.alerts import deliver, run_failure_alert

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    failing = shlex.join(
        [sys.executable, "-c", "import sys; sys.stderr.write('no route to pager'); sys.exit(3)"]
    )

    problems = deliver({"text": "x"}, webhook=closed, command=failing)

    assert len(problems) == 2
    assert closed in problems[0]
    assert "exit status 3" in problems[1] and "no route to pager" in problems[1]
    assert "not found" in deliver({}, webhook="", command="/nonexistent/pager --now")[0]
    assert "http" in deliver({}, webhook="file:///etc/passwd", command="")[0]

    settings = _settings_resource(tmp_path, alert_webhook=closed, alert_command=failing)
    assert run_failure_alert(_failure_context(instance, settings)) is None


def test_the_failure_sensor_is_registered_and_running_by_default(defs: dg.Definitions) -> None:
    sensor = defs.resolve_sensor_def("run_failure_alert")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


# --- freshness of the extracts ----------------------------------------------------------------


def _loaded_days_ago(warehouse: Warehouse, table_name: str, days: float) -> None:
    """Move the manifest's load time of every file of ``table_name`` ``days`` into the past."""
    warehouse.conn.execute(
        "UPDATE raw.ingest_manifest SET loaded_at = loaded_at - to_microseconds(?::BIGINT)"
        " WHERE table_name = ?",
        [int(days * 86_400 * 1_000_000), table_name],
    )


def _freshness(tmp_path: Path, **overrides: object) -> dict[str, dg.AssetCheckResult]:
    """Every extract_freshness check evaluated against the warehouse under ``tmp_path``."""
    from orchestration.defs.ingestion.freshness import freshness_checks
    from orchestration.resources import duckdb_resource

    settings = Settings(
        home=tmp_path,
        warehouse_path=tmp_path / "warehouse.duckdb",
        duckdb_threads=1,
        **overrides,  # type: ignore[arg-type]
    )
    resources = {
        "duckdb": duckdb_resource(settings),
        "settings": SettingsResource.from_settings(settings),
    }
    results = {}
    for check in freshness_checks:
        [key] = check.check_keys
        assert key.name == "extract_freshness"
        results[key.asset_key.to_user_string()] = check(**resources)
    return results


@pytest.fixture(scope="module")
def aged_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """accounts last loaded 5 days ago; contacts loaded 5 days ago and a refused file today;
    plans loaded now; no file ever of any other table. Only read by the tests."""
    tmp_path = tmp_path_factory.mktemp("aged")
    warehouse = open_warehouse(tmp_path)
    write_csv(warehouse.landing, "accounts", "a.csv", [example_row("accounts")])
    write_csv(warehouse.landing, "contacts", "c.csv", [example_row("contacts")])
    warehouse.ingest("accounts")
    warehouse.ingest("contacts")
    _loaded_days_ago(warehouse, "accounts", 5)
    _loaded_days_ago(warehouse, "contacts", 5)
    table_path(warehouse.landing, "contacts", "broken.csv").write_bytes(b"")
    assert warehouse.ingest("contacts").files_refused == 1
    write_csv(warehouse.landing, "plans", "p.csv", [example_row("plans")])
    warehouse.ingest("plans")
    warehouse.conn.close()
    return tmp_path


def test_a_table_without_a_new_file_for_n_days_is_flagged(aged_warehouse: Path) -> None:
    results = _freshness(aged_warehouse)

    assert set(results) == {t.asset_path for t in TABLES}
    assert all(r.severity == dg.AssetCheckSeverity.WARN for r in results.values())
    accounts = results["crm/accounts"]
    assert not accounts.passed
    assert 4.9 < accounts.metadata["days_since"].value < 5.1
    assert accounts.metadata["last_file"].value == "crm/accounts/a.csv"
    assert "no new crm/accounts file for 5.0 days" in (accounts.description or "")
    assert "more than 3" in (accounts.description or "")

    assert not results["crm/contacts"].passed, "a refused file is not a new extract"
    assert results["crm/contacts"].metadata["last_file"].value == "crm/contacts/c.csv"

    plans = results["billing/plans"]
    assert plans.passed
    assert plans.metadata["days_since"].value < 1
    assert plans.metadata["last_file_at"].value is not None


def test_a_table_that_never_had_a_file_is_flagged_with_that_reason(aged_warehouse: Path) -> None:
    events = _freshness(aged_warehouse)["product/events"]
    assert not events.passed
    assert "no product/events file has ever loaded" in (events.description or "")
    assert events.metadata["last_file_at"].value == "never"


def test_the_number_of_days_is_a_setting(aged_warehouse: Path) -> None:
    assert _freshness(aged_warehouse, extract_freshness_days=6)["crm/accounts"].passed
    assert not _freshness(aged_warehouse, extract_freshness_days=4)["crm/accounts"].passed


def test_a_warehouse_never_ingested_flags_every_table(tmp_path: Path) -> None:
    results = _freshness(tmp_path)
    assert not any(r.passed for r in results.values())


def test_freshness_checks_run_in_the_ingest_and_pipeline_jobs(defs: dg.Definitions) -> None:
    expected = {
        dg.AssetCheckKey(dg.AssetKey([t.system, t.name]), "extract_freshness") for t in TABLES
    }
    for job in ("ingest", "pipeline"):
        keys = defs.resolve_job_def(job).asset_layer.asset_graph.asset_check_keys
        assert expected <= set(keys), job


# --- owners -----------------------------------------------------------------------------------

DATA_ENGINEERING = "team:data-engineering"


def test_every_asset_has_an_owner(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert len(keys) > 40
    assert [k.to_user_string() for k in keys if not graph.get(k).owners] == []


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("crm/accounts", DATA_ENGINEERING),
        ("staging/stg_crm__accounts", DATA_ENGINEERING),
        ("intermediate/int_account_mrr_monthly", DATA_ENGINEERING),
        ("intermediate/int_account_health_scores", DATA_ENGINEERING),
        ("marts/fct_mrr_monthly", "team:revops-analytics"),
        ("marts/dim_accounts", "team:revops-analytics"),
        ("marts/fct_account_health", "team:customer-success-ops"),
        ("marts/risk_list", "team:customer-success-ops"),
        ("published/warehouse", DATA_ENGINEERING),
        ("published/lists", DATA_ENGINEERING),
    ],
)
def test_owners_by_layer(defs: dg.Definitions, key: str, owner: str) -> None:
    node = defs.resolve_asset_graph().get(dg.AssetKey.from_user_string(key))
    assert list(node.owners) == [owner]


def _model(fqn: list[str], **meta: object) -> dict[str, object]:
    return {"resource_type": "model", "name": fqn[-1], "fqn": fqn, "meta": meta, "config": {}}


def test_an_owner_in_dbt_meta_wins_over_the_layer() -> None:
    from orchestration.defs.dbt.assets import WarehouseDbtTranslator

    translator = WarehouseDbtTranslator()
    mart = ["cs_warehouse", "marts", "fct_mrr_monthly"]
    assert translator.get_owners(_model(mart, owner="finance@example.com")) == [
        "finance@example.com"
    ]
    assert translator.get_owners(_model(mart, owner="finance")) == ["team:finance"]
    assert translator.get_owners(_model(mart, owner=["team:finance", "cfo@example.com"])) == [
        "team:finance",
        "cfo@example.com",
    ]
    in_config = {**_model(mart), "config": {"meta": {"owner": "team:finance"}}}
    assert translator.get_owners(in_config) == ["team:finance"]
    assert translator.get_owners(_model(mart)) == ["team:revops-analytics"]


# --- the health configuration is checked when the code location loads ------------------------


def test_a_bad_health_config_fails_loading_the_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metrics import health_config
    from orchestration.definitions import build_definitions

    bad = tmp_path / "health_model.yaml"
    bad.write_text("windows: [30, 90\n")
    monkeypatch.setattr(health_config, "DEFAULT_CONFIG_PATH", bad)
    health_config.default_health_config.cache_clear()
    try:
        with pytest.raises(health_config.HealthConfigError, match="not valid YAML") as raised:
            build_definitions(Settings(home=tmp_path))
        assert str(bad) in str(raised.value)
    finally:
        health_config.default_health_config.cache_clear()


def test_csw_ingest_runs_the_freshness_checks_without_failing_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_ingestion`` (``csw ingest``) evaluates extract_freshness; a WARN never fails it."""
    from dagster._core.events import DagsterEventType

    from orchestration.defs.ingestion.summary import run_ingestion

    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the run's events are kept there
    landing = tmp_path / "landing"
    write_csv(landing, "accounts", "a.csv", [example_row("accounts")])
    settings = Settings(home=tmp_path, landing_dir=landing, duckdb_threads=1)

    outcome = run_ingestion(settings)

    with dg.DagsterInstance.get() as instance:
        records = instance.get_records_for_run(
            outcome.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    freshness = {
        e.asset_key.to_user_string(): e.passed
        for e in evaluations
        if e.check_name == "extract_freshness"
    }
    assert len(freshness) == len(TABLES)
    assert freshness["crm/accounts"] is True
    assert freshness["product/events"] is False
    assert not any("extract_freshness" in c for c in outcome.failed_checks)


# --- one writer at a time -----------------------------------------------------------------------


def test_every_step_that_opens_the_warehouse_is_in_the_writer_pool(defs: dg.Definitions) -> None:
    """DuckDB allows one process per file: a check that only reads still opens it read-write
    through the resource, so under a multi-process executor it must queue like the writers."""
    from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL

    graph = defs.resolve_asset_graph()
    definitions = [*graph.assets_defs, *(defs.asset_checks or [])]
    outside = [
        d.node_def.name
        for d in definitions
        if "duckdb" in d.required_resource_keys
        and getattr(d.node_def, "pool", None) != WAREHOUSE_WRITER_POOL
    ]
    assert outside == []
