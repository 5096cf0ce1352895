"""Adapters wired in: the CSW_ADAPTERS configuration, the ``adapters/<system>`` Dagster assets
upstream of ingestion with their ``no_rejected_rows`` check, and ``csw adapt``.

Sources are the hand-written Stripe fixtures (``tests/fixtures/stripe/``): ``airbyte_current``
adapts with no rejected row (and the "past MRR cannot be reconstructed" warning),
``fivetran_lines`` has rows the adapter rejects. No dbt build here: the assets are executed with
the ingestion assets only.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.contract import TABLES
from orchestration.cli import app
from orchestration.definitions import PIPELINE_JOB, build_definitions
from orchestration.defs.adapters.assets import (
    CHECK_NAME,
    WARNINGS_CHECK_NAME,
    adapter_key,
    with_adapter_deps,
)
from orchestration.defs.adapters.config import (
    AdapterConfig,
    AdaptersConfigError,
    load_adapters_config,
)
from orchestration.defs.adapters.registry import SYSTEMS
from orchestration.defs.ingestion.assets import ingestion_assets
from orchestration.pipeline_run import outcome_of
from orchestration.resources import warehouse_resources
from orchestration.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
OK_SOURCE = FIXTURES / "stripe" / "airbyte_current"
REJECTING_SOURCE = FIXTURES / "stripe" / "fivetran_lines"
STRIPE_TABLES = [dg.AssetKey(t.split("/")) for t in SYSTEMS["stripe"].writes]

runner = CliRunner()


def _yaml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "adapters.yaml"
    path.write_text(text)
    return path


# --- the configuration ----------------------------------------------------------------------------


def test_config_paths_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    (tmp_path / "conf" / "maps").mkdir(parents=True)
    (tmp_path / "conf" / "maps" / "stripe.yaml").write_text("account_metadata_key: sf_id\n")
    path = _yaml(
        tmp_path / "conf",
        "adapters:\n"
        "  - {system: stripe, source: ../exports/stripe, mapping: maps/stripe.yaml}\n"
        "  - {system: segment, source: /data/segment}\n",
    )
    assert load_adapters_config(path) == (
        AdapterConfig(
            "stripe",
            tmp_path / "conf" / "../exports/stripe",
            tmp_path / "conf" / "maps" / "stripe.yaml",
        ),
        AdapterConfig("segment", Path("/data/segment"), None),
    )


def test_config_names_the_file_and_every_problem(tmp_path: Path) -> None:
    (tmp_path / "bad_map.yaml").write_text("account_metadata_kee: x\n")
    path = _yaml(
        tmp_path,
        "adapters:\n"
        "  - {system: stripe, source: a, mapping: bad_map.yaml}\n"
        "  - {system: zendesk, source: b}\n"
        "  - {system: segment}\n"
        "  - {system: hubspot, source: c, mapping: nowhere.yaml}\n"
        "  - {system: salesforce, source: d, mappings: x.yaml}\n"
        "  - {system: segment, source: e}\n",
    )
    with pytest.raises(AdaptersConfigError) as raised:
        load_adapters_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: the adapters configuration (CSW_ADAPTERS) has 6 problem")
    for expected in (
        "adapters[0] (stripe): mapping:",
        "account_metadata_kee",
        "adapters[1] (zendesk): system 'zendesk' is not one of stripe, salesforce, hubspot",
        "adapters[2] (segment): source is missing",
        f"adapters[3] (hubspot): mapping file {tmp_path / 'nowhere.yaml'} does not exist",
        "adapters[4] (salesforce): unknown field(s) mappings",
        "adapters[5] (segment): segment is configured twice",
        "unset CSW_ADAPTERS",
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adapters: [stripe\n", "not valid YAML"),
        ("- {system: stripe, source: a}\n", "must hold `adapters:`"),
        ("adapters: []\n", "`adapters` is empty"),
    ],
)
def test_config_shape_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(AdaptersConfigError, match=expected):
        load_adapters_config(_yaml(tmp_path, text))


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AdaptersConfigError, match="the file does not exist"):
        load_adapters_config(tmp_path / "absent.yaml")


# --- the definitions ------------------------------------------------------------------------------


def test_without_adapters_the_definitions_are_as_before(tmp_path: Path) -> None:
    defs = build_definitions(Settings(home=tmp_path))
    graph = defs.resolve_asset_graph()
    assert not [k for k in graph.get_all_asset_keys() if k.path[0] == "adapters"]
    # ingestion has no upstream asset and no adapter check exists
    assert all(not graph.get(dg.AssetKey([t.system, t.name])).parent_keys for t in TABLES)
    assert not [k for k in graph.asset_check_keys if k.name in (CHECK_NAME, WARNINGS_CHECK_NAME)]


def _configured(tmp_path: Path, source: Path = OK_SOURCE) -> Settings:
    path = _yaml(
        tmp_path / "conf",
        f"adapters:\n  - {{system: stripe, source: {source}}}\n"
        f"  - {{system: segment, source: {tmp_path / 'segment'}}}\n",
    )
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    return Settings(home=tmp_path, landing_dir=landing, adapters=path, duckdb_threads=1)


def test_configured_adapters_are_assets_upstream_of_the_tables_they_write(tmp_path: Path) -> None:
    defs = build_definitions(_configured(tmp_path))
    graph = defs.resolve_asset_graph()
    stripe, segment = adapter_key("stripe"), adapter_key("segment")
    assert graph.get(dg.AssetKey(["billing", "customers"])).parent_keys == {stripe}
    assert graph.get(dg.AssetKey(["billing", "invoices"])).parent_keys == {stripe}
    assert graph.get(dg.AssetKey(["product", "events"])).parent_keys == {segment}
    assert graph.get(dg.AssetKey(["billing", "fx_rates"])).parent_keys == set()
    assert graph.get(dg.AssetKey(["crm", "accounts"])).parent_keys == set()
    node = graph.get(stripe)
    assert node.group_name == "adapters"
    assert list(node.owners) == ["team:data-engineering"]
    assert dg.AssetCheckKey(stripe, CHECK_NAME) in graph.asset_check_keys
    assert dg.AssetCheckKey(stripe, WARNINGS_CHECK_NAME) in graph.asset_check_keys
    # the daily pipeline adapts, then ingests
    pipeline = defs.resolve_job_def(PIPELINE_JOB).asset_layer.asset_graph
    assert {stripe, segment} <= set(pipeline.get_all_asset_keys())
    # writes landing files, not the warehouse: no DuckDB resource, no writer pool
    [stripe_def] = [a for a in graph.assets_defs if stripe in a.keys]
    assert "duckdb" not in stripe_def.required_resource_keys
    assert getattr(stripe_def.node_def, "pool", None) is None


def test_a_bad_adapters_config_fails_loading_the_definitions(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "adapters:\n  - {system: quickbooks, source: a}\n")
    with pytest.raises(AdaptersConfigError, match="quickbooks"):
        build_definitions(Settings(home=tmp_path, adapters=path))


# --- running the assets ---------------------------------------------------------------------------


def _materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    """The Stripe adapter and the ingestion of the tables it writes, as one run."""
    configs = load_adapters_config(settings.adapters)  # type: ignore[arg-type]
    stripe = [c for c in configs if c.system == "stripe"]
    from orchestration.defs.adapters.assets import build_adapter_assets

    return dg.materialize(
        [*build_adapter_assets(stripe), *with_adapter_deps(ingestion_assets, stripe)],
        selection=[adapter_key("stripe"), *STRIPE_TABLES],
        resources=warehouse_resources(settings),
        raise_on_error=False,
    )


def _raw_count(settings: Settings, table: str) -> int:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        row = con.execute(f"select count(*) from raw.{table}").fetchone()
    return int(row[0]) if row else 0


def test_a_run_adapts_then_ingests_what_the_adapter_wrote(tmp_path: Path) -> None:
    settings = _configured(tmp_path)
    result = _materialize(settings)
    assert result.success
    [materialized] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == adapter_key("stripe")
    ]
    meta = {k: v.value for k, v in materialized.metadata.items()}
    assert meta["method"] == "current_state"
    assert meta["rows_rejected"] == 0
    assert "Past MRR cannot be reconstructed" in str(meta["warnings"])
    assert meta["rows_read"] == meta["rows_written"] + meta["rows_excluded"]
    rows = meta["contract_rows"]
    assert set(rows) == set(SYSTEMS["stripe"].writes)
    # ingestion ran after the adapter in the same run and loaded exactly what it wrote
    for table in ("customers", "subscriptions", "subscription_items", "invoices"):
        assert rows[f"billing/{table}"] > 0
        assert _raw_count(settings, table) == rows[f"billing/{table}"], table
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[CHECK_NAME].passed


def test_adapter_warnings_warn_in_the_run_and_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warning (a current-state Stripe export: past MRR cannot be reconstructed) fails the
    WARN check ``no_warnings``: the run stays ok, and ``csw run``'s summary names it with the
    warning's text."""
    settings = _configured(tmp_path)
    result = _materialize(settings)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {CHECK_NAME, WARNINGS_CHECK_NAME}
    warned = checks[WARNINGS_CHECK_NAME]
    assert not warned.passed
    assert warned.severity == dg.AssetCheckSeverity.WARN
    assert "Past MRR cannot be reconstructed" in (warned.description or "")
    assert warned.metadata["warnings_count"].value == 1
    outcome = outcome_of(result, PIPELINE_JOB, settings.max_quarantine_share)
    assert outcome.ok, "a warning does not fail the run"
    assert outcome.warned_checks == ("adapters/stripe: no_warnings",)
    from orchestration.cli import _print_checks

    _print_checks(outcome.checks, settings.warehouse)
    out = " ".join(capsys.readouterr().out.split())
    assert "warning adapters/stripe: no_warnings:" in out
    assert "Past MRR cannot be reconstructed" in out


def test_rejected_rows_fail_the_check_and_the_run_naming_the_rejects_file(tmp_path: Path) -> None:
    settings = _configured(tmp_path, REJECTING_SOURCE)
    result = _materialize(settings)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == CHECK_NAME]
    rejects = settings.landing / "_adapters" / "stripe" / "_rejects.csv"
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert str(rejects) in (check.description or "")
    with rejects.open(newline="") as f:
        rejected = [r for r in csv.DictReader(f) if r["disposition"] == "rejected"]
    assert check.metadata["rows_rejected"].value == len(rejected) > 0
    # the rows that could be mapped are ingested; the run as a whole is not ok
    assert _raw_count(settings, "customers") > 0
    outcome = outcome_of(result, PIPELINE_JOB, settings.max_quarantine_share)
    assert not outcome.ok
    assert "adapters/stripe: no_rejected_rows" in outcome.failed_checks
    # no warning: the WARN check passes
    warnings_check = next(
        c for c in result.get_asset_check_evaluations() if c.check_name == WARNINGS_CHECK_NAME
    )
    assert warnings_check.passed


def test_an_unreadable_source_fails_the_adapter_and_skips_its_tables(tmp_path: Path) -> None:
    settings = _configured(tmp_path, tmp_path / "no_such_export")
    result = _materialize(settings)
    assert not result.success
    failure = result.failure_data_for_node("adapters__stripe")
    assert failure is not None
    assert str(tmp_path / "no_such_export") in str(failure.user_failure_data.description)
    assert not result.get_asset_materialization_events(), "nothing ingested after a failed adapter"


# --- csw adapt --------------------------------------------------------------------------------------


def test_csw_adapt_prints_the_accounting_method_and_warnings(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    result = runner.invoke(app, ["adapt", "stripe", "--from", str(OK_SOURCE), "--to", str(landing)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "history_method: current_state" in out
    assert "Past MRR cannot be reconstructed" in out
    assert "subscription_items" in out and "-> billing/customers: 1 rows" in out
    assert "Adapted." in out and f"csw ingest --landing {landing}" in out
    assert (landing / "billing" / "customers" / "stripe.csv").is_file()


def test_csw_adapt_exits_1_when_rows_were_rejected(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    result = runner.invoke(
        app, ["adapt", "stripe", "--from", str(REJECTING_SOURCE), "--to", str(landing)]
    )
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "Failed:" in out and "source row(s) were rejected" in out
    assert str(landing / "_adapters" / "stripe" / "_rejects.csv") in out
    assert "Adapted." not in out


@pytest.mark.parametrize("case", ["system", "source", "mapping"])
def test_csw_adapt_exits_2_on_usage_and_input_errors(tmp_path: Path, case: str) -> None:
    bad_mapping = tmp_path / "stripe.yaml"
    bad_mapping.write_text("status_mapp: {}\n")
    args = {
        "system": ["adapt", "quickbooks", "--from", str(OK_SOURCE)],
        "source": ["adapt", "stripe", "--from", str(tmp_path / "missing")],
        "mapping": ["adapt", "stripe", "--from", str(OK_SOURCE), "--mapping", str(bad_mapping)],
    }[case]
    result = runner.invoke(app, [*args, "--to", str(tmp_path / "landing")])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    expected = {
        "system": "'quickbooks'; adapt takes stripe, salesforce, hubspot, segment",
        "source": f"{tmp_path / 'missing'}: the source directory does not exist",
        "mapping": f"{bad_mapping}: unknown Stripe mapping field(s) status_mapp",
    }[case]
    assert expected in out
    assert not (tmp_path / "landing" / "billing").exists(), "nothing written"


def test_csw_run_stops_on_a_bad_adapters_config_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _yaml(tmp_path, "adapters:\n  - {system: stripe}\n")
    monkeypatch.setenv("CSW_ADAPTERS", str(path))
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["run", "--landing", str(tmp_path)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "Invalid adapters configuration:" in out and "source is missing" in out
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


# --- the registry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "source"),
    [
        ("stripe", "stripe/airbyte_current"),
        ("salesforce", "salesforce/fivetran"),
        ("hubspot", "hubspot/fivetran"),
        ("segment", "segment/s3"),
    ],
)
def test_the_registry_lists_the_tables_each_adapter_writes(
    tmp_path: Path, system: str, source: str
) -> None:
    """Ingestion depends on an adapter for exactly these tables: an adapter writing another
    one would be ingested before it runs."""
    adapter = SYSTEMS[system]
    shutil.copytree(FIXTURES / source, tmp_path / "source")
    result = adapter.adapt(tmp_path / "source", tmp_path / "landing", adapter.load_mapping(None))
    written = {
        p.relative_to(tmp_path / "landing").parts[:2]
        for p in (tmp_path / "landing").rglob("*.*")
        if not p.relative_to(tmp_path / "landing").parts[0].startswith("_")
    }
    assert {"/".join(w) for w in written} <= set(adapter.writes)
    assert set(result.contract_rows) <= set(adapter.writes)
