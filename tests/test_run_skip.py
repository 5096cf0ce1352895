"""``csw run`` with nothing new does nothing, says why, and decides it before importing Dagster;
any change of landing files, configuration, code, as-of date, warehouse or publication makes it
run (issue 16 point 1, ``orchestration/run_state.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

import orchestration.definitions
import orchestration.pipeline_run
from ingestion.synthetic import GeneratorConfig, generate_extracts
from orchestration import run_state
from orchestration.cli import app
from orchestration.pipeline_run import RunOutcome
from orchestration.settings import Settings

SAMPLE = GeneratorConfig(accounts=12, months=3, seed=5, start=date(2024, 1, 1))
AS_OF = SAMPLE.last_day


def _args(settings: Settings) -> list[str]:
    return [
        "run",
        "--landing",
        str(settings.landing),
        "--warehouse",
        str(settings.warehouse),
        "--publish",
        str(settings.publish),
        "--as-of",
        settings.as_of.isoformat(),
    ]


def _settings(root: Path) -> Settings:
    return Settings(
        home=root / "home",
        landing_dir=root / "landing",
        warehouse_path=root / "wh" / "warehouse.duckdb",
        publish_dir=root / "published",
        as_of=AS_OF,
        # the defaults, as `csw run` (the fixture's first run) has them: dbt keeps its parse
        # state only while the profile (memory limit and threads among it) stays the same
    )


def _code_copy(to: Path) -> Path:
    """The code the fingerprint reads, copied as it is now: in a working tree being edited (by
    a developer, during the test) the live code would change between the runs of a test."""
    for name in run_state.CODE_PATHS:
        source = run_state.REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, to / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


@pytest.fixture(scope="module")
def code_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = _code_copy(tmp_path_factory.mktemp("code"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_state, "REPO_ROOT", root)
        yield root


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory, code_root: Path) -> Settings:
    """One successful ``csw run`` on a small generated landing."""
    root = tmp_path_factory.mktemp("skip")
    settings = _settings(root)
    generate_extracts(settings.landing, SAMPLE)
    result = CliRunner().invoke(app, _args(settings), terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Running: no successful run is recorded in this warehouse." in result.output
    return settings


def _checksums(warehouse: Path) -> dict[str, tuple[int, int]]:
    """(rows, sum of row hashes) of every base table, but the run state itself."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
            " WHERE NOT (schema_name = 'raw' AND table_name = 'run_state')"
        ).fetchall()
        return {
            t: con.execute(f"SELECT count(*), coalesce(sum(hash(x)), 0) FROM {t} x").fetchone()
            for (t,) in tables
        }


#: The dbt steps' own records, written by every step that runs.
BOOKKEEPING = ("raw.asset_versions", "raw.incremental_code_versions")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()  # an empty _staging folder comes and goes; the lake's data are its files
    }


def _no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the pipeline was built although nothing changed")

    monkeypatch.setattr(orchestration.definitions, "build_definitions", refuse)
    monkeypatch.setattr(orchestration.pipeline_run, "build_definitions", refuse)


def test_a_second_run_with_nothing_new_does_nothing_and_says_why(
    done: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_pipeline(monkeypatch)
    tables, published = _checksums(done.warehouse), _files(done.publish)
    last = run_state.last_run(done)
    assert last is not None

    result = CliRunner().invoke(app, _args(done), terminal_width=200)

    assert result.exit_code == 0, result.output
    assert "Nothing to do" in result.output
    assert f"nothing changed since run {last.run_id[:8]} at" in result.output
    assert _checksums(done.warehouse) == tables
    assert _files(done.publish) == published


def test_the_decision_imports_neither_dagster_nor_dbt(done: Settings, code_root: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from typer.testing import CliRunner\n"
        "from orchestration import run_state\n"
        "from orchestration.cli import app\n"
        f"run_state.REPO_ROOT = Path({str(code_root)!r})\n"
        f"result = CliRunner().invoke(app, {_args(done)!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'Nothing to do' in result.output, result.output\n"
        "print(sorted(m for m in ('dagster', 'dagster_dbt', 'dbt') if m in sys.modules))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().splitlines()[-1] == "[]"


@contextmanager
def _touched(path: Path) -> Iterator[None]:
    """``path``'s modification time moved by a second, then put back."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        yield
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _changed(settings: Settings) -> str:
    same, reason = run_state.unchanged(settings)
    assert not same, reason
    return reason


def test_unchanged_when_nothing_changed(done: Settings) -> None:
    same, reason = run_state.unchanged(done)
    assert same, reason
    assert reason.startswith("nothing changed since run ")


def test_a_landing_file_touched_added_or_removed_makes_it_run(done: Settings) -> None:
    a_file = next(p for p in sorted(done.landing.rglob("*")) if p.is_file())
    with _touched(a_file):
        assert "landing" in _changed(done)
    extra = a_file.with_name("extra_" + a_file.name)
    extra.write_bytes(a_file.read_bytes())
    try:
        assert "landing" in _changed(done)
    finally:
        extra.unlink()
    moved = a_file.with_name("moved_" + a_file.name)
    a_file.rename(moved)
    try:
        assert "landing" in _changed(done)
    finally:
        moved.rename(a_file)
    assert run_state.unchanged(done)[0]


def test_configuration_and_as_of_changes_make_it_run(done: Settings, tmp_path: Path) -> None:
    assert "configuration" in _changed(done.model_copy(update={"max_quarantine_share": 0.2}))
    assert "configuration" in _changed(done.model_copy(update={"churn_horizon_days": 30}))
    shipped = Path(run_state.REPO_ROOT / "metrics" / "config" / "health_model.yaml")
    model = tmp_path / "health_model.yaml"
    model.write_text(shipped.read_text().replace("name:", "name: other_", 1))
    assert "configuration" in _changed(done.model_copy(update={"health_model": model}))
    later = done.model_copy(update={"as_of": AS_OF + timedelta(days=1)})
    assert "as-of date" in _changed(later)


def test_code_changes_make_it_run(
    done: Settings, code_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    macro = next(iter(sorted((code_root / "dbt_project" / "macros").glob("*.sql"))))
    text = macro.read_text()
    macro.write_text(text + "\n")
    try:
        assert "code" in _changed(done)
    finally:
        macro.write_text(text)
    assert run_state.unchanged(done)[0]
    real = run_state._package_version
    monkeypatch.setattr(
        run_state, "_package_version", lambda p: "9.9.9" if p == "dbt-core" else real(p)
    )
    assert "code" in _changed(done)


def test_the_code_digest_reads_file_contents(tmp_path: Path) -> None:
    model = tmp_path / "dbt_project" / "models" / "m.sql"
    model.parent.mkdir(parents=True)
    model.write_text("select 1 as a")
    stat = model.stat()
    before = run_state.code_digest(tmp_path)
    model.write_text("select 2 as a")  # same size
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_state.code_digest(tmp_path) != before
    (tmp_path / "ingestion").mkdir()
    (tmp_path / "ingestion" / "new.py").write_text("")
    assert run_state.code_digest(tmp_path) not in {before, run_state.code_digest(tmp_path / "x")}


def test_a_missing_or_other_publication_makes_it_run(done: Settings) -> None:
    current = done.publish / "current"
    target = current.readlink()
    current.unlink()
    try:
        assert "publication" in _changed(done)
    finally:
        current.symlink_to(target)
    with _touched(done.serving_copy):
        assert "publication" in _changed(done)
    assert run_state.unchanged(done)[0]


def test_a_warehouse_changed_by_another_process_makes_it_run(done: Settings) -> None:
    with duckdb.connect(str(done.warehouse)) as con:
        con.execute(
            "CREATE TEMP TABLE newest AS"
            " SELECT * FROM raw.ingest_manifest ORDER BY loaded_at DESC LIMIT 1"
        )
        con.execute("UPDATE newest SET source_file = 'x.csv', loaded_at = now()::TIMESTAMP")
        con.execute("INSERT INTO raw.ingest_manifest SELECT * FROM newest")
    try:
        assert "warehouse" in _changed(done)
    finally:
        with duckdb.connect(str(done.warehouse)) as con:
            con.execute("DELETE FROM raw.ingest_manifest WHERE source_file = 'x.csv'")
    assert run_state.unchanged(done)[0]


def test_without_a_recorded_run_it_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert "no successful run" in _changed(settings)
    settings.warehouse.parent.mkdir(parents=True)
    duckdb.connect(str(settings.warehouse)).close()
    assert "no successful run" in _changed(settings)


def _outcome(ok: bool) -> RunOutcome:
    return RunOutcome(
        success=ok, run_id="r-" + str(ok), failures=(), failed_checks=(), warned_checks=()
    )


def test_a_failed_run_records_nothing_and_a_successful_one_is_recorded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.landing.mkdir(parents=True)
    settings.warehouse.parent.mkdir(parents=True)
    failed = run_state.run_or_skip(settings, runner=lambda: _outcome(False))
    assert not failed.skipped and failed.outcome is not None
    assert run_state.last_run(settings) is None
    assert not run_state.unchanged(settings)[0]

    ran = run_state.run_or_skip(settings, runner=lambda: _outcome(True))
    assert not ran.skipped
    last = run_state.last_run(settings)
    assert last is not None and last.run_id == "r-True"
    assert set(last.components) == set(run_state.fingerprint(settings))

    again = run_state.run_or_skip(settings, runner=lambda: _outcome(True))
    assert again.skipped and again.outcome is None and "r-True" in again.reason
    forced = run_state.run_or_skip(settings, force=True, runner=lambda: _outcome(True))
    assert not forced.skipped and forced.outcome is not None


@pytest.mark.parametrize("flag", ["--force", "--full-refresh"])
def test_force_and_full_refresh_bypass_the_fast_path(
    done: Settings, flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, str] | None] = []

    def execute(_job: object, _config: object, _listener: object, tags: object) -> None:
        started.append(json.loads(json.dumps(tags)))
        raise RuntimeError("stopped at the start of the run")

    monkeypatch.setattr(orchestration.pipeline_run, "execute", execute)
    result = CliRunner().invoke(app, [*_args(done), flag], terminal_width=200)
    assert "Nothing to do" not in result.output
    assert isinstance(result.exception, RuntimeError), result.output
    expected = {"csw/full_refresh": "true"} if flag == "--full-refresh" else None
    assert started == [expected]
    assert run_state.unchanged(done)[0], "a run that did not finish records nothing"


@contextmanager
def _executed(warehouse: Path, do: str, undo: str) -> Iterator[None]:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(do)
    try:
        yield
    finally:
        with duckdb.connect(str(warehouse)) as con:
            con.execute(undo)


def test_a_churn_fit_or_a_dbt_build_outside_csw_run_makes_it_run(done: Settings) -> None:
    """``csw fit-churn-model`` and ``csw demo``'s churn-model job rebuild marts without
    publishing them: the next ``csw run`` must run (and republish)."""
    from metrics.churn_model import FITS_TABLE, _create_tables

    with duckdb.connect(str(done.warehouse)) as con:
        _create_tables(con)  # as a first fit leaves it (empty: no fit yet)
    try:
        assert run_state.unchanged(done)[0], "an empty fits table is no fit"
        fit = (
            f"INSERT INTO {FITS_TABLE} (churn_model_version, fitted_at)"
            " VALUES ('f1-test', now()::TIMESTAMP)"
        )
        with _executed(done.warehouse, fit, f"DELETE FROM {FITS_TABLE}"):
            assert "warehouse" in _changed(done)
        assert run_state.unchanged(done)[0]
        rebuilt = (
            "UPDATE raw.asset_versions SET run_id = 'churn-model-job', built_at = now()::TIMESTAMP"
            " WHERE step = (SELECT min(step) FROM raw.asset_versions)"
        )
        with duckdb.connect(str(done.warehouse), read_only=True) as con:
            kept = con.execute(
                "SELECT step, run_id, built_at FROM raw.asset_versions ORDER BY step LIMIT 1"
            ).fetchone()
        assert kept is not None
        back = (
            f"UPDATE raw.asset_versions SET run_id = '{kept[1]}', built_at = '{kept[2]}'"
            f" WHERE step = '{kept[0]}'"
        )
        with _executed(done.warehouse, rebuilt, back):
            assert "warehouse" in _changed(done)
        assert run_state.unchanged(done)[0]
        refreshed = (
            "UPDATE raw.incremental_code_versions SET built_at = built_at + INTERVAL 1 SECOND"
        )
        undo = "UPDATE raw.incremental_code_versions SET built_at = built_at - INTERVAL 1 SECOND"
        with _executed(done.warehouse, refreshed, undo):
            assert "warehouse" in _changed(done)
    finally:
        with duckdb.connect(str(done.warehouse)) as con:
            con.execute("DROP SCHEMA ml CASCADE")
    assert run_state.unchanged(done)[0]


def test_csw_run_decides_through_run_or_skip_and_a_run_not_ok_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One path (``run_state.run_or_skip``, which the benchmarks measure), the landing taken
    once, and a run that finished with a failed check leaves the last recorded run as it was."""
    settings = _settings(tmp_path)
    settings.landing.mkdir(parents=True)
    settings.warehouse.parent.mkdir(parents=True)
    assert not run_state.run_or_skip(settings, runner=lambda: _outcome(True)).skipped
    decisions: list[run_state.RunDecision] = []
    real_run_or_skip, real_landing = run_state.run_or_skip, run_state._COMPONENTS["landing"]
    landings: list[str] = []

    def spy(*args: Any, **kwargs: Any) -> run_state.RunDecision:
        decisions.append(real_run_or_skip(*args, **kwargs))
        return decisions[-1]

    def landing(s: Settings) -> str:
        landings.append(real_landing(s))
        return landings[-1]

    def failed_check(*_args: object, **_kwargs: object) -> RunOutcome:
        return RunOutcome(
            success=True, run_id="r-check", failures=(), failed_checks=("a",), warned_checks=()
        )

    monkeypatch.setattr(run_state, "run_or_skip", spy)
    monkeypatch.setitem(run_state._COMPONENTS, "landing", landing)
    monkeypatch.setattr(orchestration.pipeline_run, "run_job", failed_check)
    later = settings.model_copy(update={"as_of": AS_OF + timedelta(days=1)})

    result = CliRunner().invoke(app, _args(later), terminal_width=200)

    assert result.exit_code == 1, result.output
    assert "Running: the as-of date changed since run r-True" in result.output
    assert [(d.skipped, d.outcome and d.outcome.run_id) for d in decisions] == [(False, "r-check")]
    assert len(landings) == 1, "the fingerprint is taken once"
    last = run_state.last_run(later)
    assert last is not None and last.run_id == "r-True"
    assert "as-of date" in _changed(later)


def test_csw_demos_jobs_record_no_run_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``csw demo``'s churn model job rebuilds marts the pipeline published: recording its run
    would make the next ``csw run`` say "Nothing to do" with the published marts stale."""
    from orchestration import cli

    settings = _settings(tmp_path)
    settings.landing.mkdir(parents=True)
    settings.warehouse.parent.mkdir(parents=True)

    def ok(_settings: Settings, job: str = "pipeline", **_kwargs: object) -> RunOutcome:
        return RunOutcome(
            success=True, run_id=f"r-{job}", failures=(), failed_checks=(), warned_checks=()
        )

    monkeypatch.setattr(orchestration.pipeline_run, "run_job", ok)
    outcomes = cli._run_jobs(settings, cli.DEMO_JOBS)
    assert [o.run_id for o in outcomes] == [f"r-{job}" for job in cli.DEMO_JOBS]
    assert run_state.last_run(settings) is None
    assert "no successful run" in _changed(settings)


def test_the_benchmarks_run_step_fails_when_the_run_was_not_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose job succeeded with a failed check is no successful measurement."""
    from benchmarks import steps

    settings = _settings(tmp_path)
    settings.landing.mkdir(parents=True)
    settings.warehouse.parent.mkdir(parents=True)

    def failed_check(*_args: object, **_kwargs: object) -> RunOutcome:
        return RunOutcome(
            success=True, run_id="r-check", failures=(), failed_checks=("a",), warned_checks=()
        )

    monkeypatch.setattr(orchestration.pipeline_run, "run_job", failed_check)
    # the Dagster instance's step statistics of the run: there is no such run here
    monkeypatch.setattr(steps, "_run_detail", lambda _s, o, _t: {"run_id": o.run_id})
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    ok, detail = steps.step_run(settings)
    assert (ok, detail["skipped"], detail["run_id"]) == (False, False, "r-check")


def test_files_the_adapters_rewrite_each_run_do_not_make_it_run(tmp_path: Path) -> None:
    """An adapter rewrites its contract files and reports in the landing directory on every run
    (new modification times); its source folder is what tells whether anything changed."""
    settings = _settings(tmp_path)
    source = tmp_path / "stripe_export"
    source.mkdir()
    (source / "customers.json").write_text("[]")
    adapters = tmp_path / "adapters.yaml"
    adapters.write_text(f"adapters:\n  - system: stripe\n    source: {source}\n")
    settings = settings.model_copy(update={"adapters": adapters})
    written = [
        settings.landing / "billing" / "customers" / "stripe.csv",
        settings.landing / "_adapters" / "stripe" / "_rejects.csv",
    ]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a\n")
    settings.warehouse.parent.mkdir(parents=True)
    assert not run_state.run_or_skip(settings, runner=lambda: _outcome(True)).skipped

    for path in written:  # the adapter's next run: the same files written again
        path.write_text("a\nb\n")
    assert run_state.unchanged(settings)[0], run_state.unchanged(settings)[1]
    with _touched(source / "customers.json"):
        assert "landing" in _changed(settings)
    other = settings.landing / "billing" / "customers" / "manual_export.csv"
    other.write_text("a\n")
    assert "landing" in _changed(settings)


# --- Inside Dagster: raw data versions, dbt code versions, dbt steps that skip -------------------


def _dbt_model_keys(job: object) -> set[object]:
    from orchestration.defs.dbt.assets import build_dbt_assets

    return {key for assets in build_dbt_assets() for key in assets.keys} & set(
        job.asset_layer.executable_asset_keys  # type: ignore[attr-defined]
    )


def test_a_dagster_run_with_nothing_new_skips_every_dbt_step_and_says_why(done: Settings) -> None:
    from orchestration.definitions import PIPELINE_JOB, build_definitions
    from orchestration.defs.dbt.assets import SKIPPED
    from orchestration.defs.dbt.project import code_versions
    from orchestration.pipeline_run import _quiet_run_config, execute

    tables = _checksums(done.warehouse)
    job = build_definitions(done).resolve_job_def(PIPELINE_JOB)
    result = execute(job, _quiet_run_config("WARNING"))
    assert result.success

    models = _dbt_model_keys(job)
    observed = {
        e.asset_key: e.event_specific_data.asset_observation  # type: ignore[union-attr]
        for e in result.get_asset_observation_events()
    }
    assert models and set(observed) >= models
    assert {observed[k].description for k in models} == {SKIPPED}
    assert all(observed[k].metadata["input_digest"].value for k in models)
    checked = {e.asset_key for e in result.get_asset_check_evaluations()}
    assert not checked & models, "no dbt test ran"
    assert _checksums(done.warehouse) == tables

    materialised = {e.asset_key: e for e in result.get_asset_materialization_events()}
    with duckdb.connect(str(done.warehouse), read_only=True) as con:
        versions = run_state.raw_data_versions(con)
    assert versions
    for path, version in versions.items():
        tags = materialised[dg_key(path)].event_specific_data.materialization.tags  # type: ignore[union-attr]
        assert tags["dagster/data_version"] == version
        assert tags["dagster/code_version"].startswith("contract-")
    some_model = sorted(models, key=str)[0]
    mat_tags = materialised[some_model].event_specific_data.materialization.tags  # type: ignore[union-attr]
    assert mat_tags["dagster/code_version"] in set(code_versions().values())


def dg_key(path: str) -> object:
    import dagster as dg

    return dg.AssetKey(path.split("/"))


def _fact_keys() -> set[object]:
    from orchestration.defs.dbt.assets import DAILY_FACT_TAG, _unique_ids_by_key
    from orchestration.defs.dbt.project import loaded_manifest

    nodes = loaded_manifest()["nodes"]
    return {k for k, uid in _unique_ids_by_key().items() if DAILY_FACT_TAG in nodes[uid]["tags"]}


def _uid(key: object) -> str:
    from orchestration.defs.dbt.assets import _unique_ids_by_key

    return _unique_ids_by_key()[key]


def test_a_models_inputs_are_the_raw_tables_vars_and_code_it_and_its_parents_read(
    done: Settings,
) -> None:
    from metrics.dbt_vars import dbt_vars
    from orchestration.defs.dbt.assets import _unique_ids_by_key, model_inputs

    facts = _fact_keys()
    assert len(facts) == 4
    mrr = dg_key("marts/fct_mrr_monthly")
    keys = set(_unique_ids_by_key())
    vars_ = dbt_vars(AS_OF)

    def changed(inputs: object, against: object) -> set[str]:
        return {
            u
            for u, d in inputs.digests.items()  # type: ignore[attr-defined]
            if against.digests[u] != d  # type: ignore[attr-defined]
        }

    with duckdb.connect(str(done.warehouse)) as con:
        before = model_inputs(keys, vars_, con)
        assert before.missing == frozenset()
        assert set(before.digests) == set(before.keys) == {_uid(k) for k in keys}
        later = changed(model_inputs(keys, {**vars_, "as_of": "2030-01-01"}, con), before)
        assert later and not later & {_uid(f) for f in facts}
        assert _uid(dg_key("marts/dim_accounts")) in later
        changed_map = [{**r, "feature": "other"} for r in vars_["feature_map"]]
        remapped = changed(model_inputs(keys, {**vars_, "feature_map": changed_map}, con), before)
        assert _uid(dg_key("intermediate/int_account_daily_feature_usage")) in remapped
        assert _uid(dg_key("intermediate/int_user_daily_events")) not in remapped
        assert _uid(mrr) not in remapped
        for path, reaches_facts in (
            ("billing/subscription_items", False),
            ("product/events", True),
        ):
            system, table = path.split("/")
            con.begin()
            con.execute(
                "INSERT INTO raw.ingest_manifest SELECT * REPLACE ('x.csv' AS source_file,"
                " now()::TIMESTAMP AS loaded_at) FROM raw.ingest_manifest"
                " WHERE system = ? AND table_name = ? LIMIT 1",
                [system, table],
            )
            moved = changed(model_inputs(keys, vars_, con), before)
            assert _uid(dg_key(f"staging/stg_{system}__{table}")) in moved, path
            assert bool(moved & {_uid(f) for f in facts}) is reaches_facts, path
            assert (_uid(mrr) in moved) is (not reaches_facts), path
            con.rollback()
        con.begin()
        con.execute("DROP TABLE intermediate.int_user_daily_events")
        assert model_inputs(facts, vars_, con).missing == {
            _uid(dg_key("intermediate/int_user_daily_events"))
        }
        con.rollback()


def test_a_parent_outside_the_selection_counts_with_what_it_was_last_built_from(
    done: Settings,
) -> None:
    """A subset run (the churn-model job, a mart from the UI) builds a model from its parents'
    tables as they are: their recorded digests, not what a full run would build today."""
    from metrics.dbt_vars import dbt_vars
    from orchestration.defs.dbt.assets import _last_builds, model_inputs

    vocabulary = dg_key("intermediate/int_event_vocabulary")
    parent = "model.cs_warehouse.int_user_daily_events"
    vars_ = dbt_vars(AS_OF)
    with duckdb.connect(str(done.warehouse)) as con:
        recorded = {u: b.input_digest for u, b in _last_builds(con).items()}
        alone = model_inputs({vocabulary}, vars_, con, recorded).digests[_uid(vocabulary)]
        with_parent = model_inputs(
            {vocabulary, dg_key("intermediate/int_user_daily_events")}, vars_, con, recorded
        ).digests[_uid(vocabulary)]
        assert alone == with_parent, "after a full run, recorded and computed digests agree"
        stale = {**recorded, parent: "built from yesterday's events"}
        assert model_inputs({vocabulary}, vars_, con, stale).digests[_uid(vocabulary)] != alone
        con.begin()
        con.execute(
            "INSERT INTO raw.ingest_manifest SELECT * REPLACE ('x.csv' AS source_file,"
            " now()::TIMESTAMP AS loaded_at) FROM raw.ingest_manifest"
            " WHERE table_name = 'events' LIMIT 1"
        )
        # new events: the parent is not rebuilt in a subset, so its child's inputs are as before
        assert model_inputs({vocabulary}, vars_, con, recorded).digests[_uid(vocabulary)] == alone
        con.rollback()


def test_the_vars_a_models_tests_read_are_among_its_inputs(done: Settings) -> None:
    from metrics.dbt_vars import dbt_vars
    from orchestration.defs.dbt.assets import model_inputs

    vocabulary = dg_key("intermediate/int_event_vocabulary")  # unmapped_event_share_within_limit
    vars_ = dbt_vars(AS_OF)
    stricter = {**vars_, "max_unmapped_event_share": vars_["max_unmapped_event_share"] / 2}
    with duckdb.connect(str(done.warehouse)) as con:
        before = model_inputs({vocabulary}, vars_, con).digests
        assert model_inputs({vocabulary}, stricter, con).digests != before


def test_a_model_sharing_a_test_with_a_rebuilt_one_is_rebuilt_so_the_test_runs() -> None:
    from orchestration.defs.dbt.assets import _unique_ids_by_key, _with_tests_partners

    everything = set(_unique_ids_by_key().values())
    activity = "model.cs_warehouse.int_account_daily_activity"  # events_without_crm_account
    accounts = "model.cs_warehouse.stg_crm__accounts"
    assert accounts in _with_tests_partners({activity}, everything)
    assert _with_tests_partners({activity}, everything - {accounts}) == {activity}
    users = "model.cs_warehouse.stg_product__users"  # no test shared with anything rebuilt
    assert users not in _with_tests_partners({activity}, everything)


def test_a_checks_only_run_from_the_ui_starts_dbt() -> None:
    from types import SimpleNamespace

    import dagster as dg

    from orchestration.defs.dbt.assets import _checks_only

    check = dg.AssetCheckKey(dg.AssetKey(["marts", "risk_list"]), "not_null")
    assert _checks_only(
        SimpleNamespace(selected_asset_keys=set(), selected_asset_check_keys={check})
    )
    assert not _checks_only(
        SimpleNamespace(
            selected_asset_keys={dg.AssetKey(["marts", "risk_list"])},
            selected_asset_check_keys={check},
        )
    )


def test_the_pipeline_builds_every_dbt_model_in_one_step(done: Settings) -> None:
    from orchestration.definitions import PIPELINE_JOB, build_definitions

    job = build_definitions(done).resolve_job_def(PIPELINE_JOB)
    # Dagster splits a multi-asset into one node per subset when other assets sit between its
    # models (dbt_models, dbt_models_2, ...): each node would be a dbt call of its own
    steps = {name for name in job.graph.node_names() if name.startswith("dbt_")}
    assert steps == {"dbt_models"}, steps


@pytest.mark.e2e  # a run that rebuilds most dbt models (~35 s on the small sample): the e2e tier
def test_a_new_as_of_date_skips_the_daily_facts_and_rebuilds_what_reads_it(
    done: Settings,
) -> None:
    from orchestration.definitions import PIPELINE_JOB, build_definitions
    from orchestration.defs.dbt.assets import SKIPPED
    from orchestration.defs.dbt.project import dbt_project
    from orchestration.defs.settings_resource import AS_OF_TAG
    from orchestration.pipeline_run import _quiet_run_config, execute

    facts = _fact_keys()
    before = _checksums(done.warehouse)
    job = build_definitions(done).resolve_job_def(PIPELINE_JOB)
    other = (AS_OF - timedelta(days=1)).isoformat()  # the sample has no FX rate after AS_OF
    result = execute(job, _quiet_run_config("WARNING"), tags={AS_OF_TAG: other})
    assert result.success
    skipped = {
        e.asset_key
        for e in result.get_asset_observation_events()
        if e.event_specific_data.asset_observation.description == SKIPPED  # type: ignore[union-attr]
    }
    assert facts <= skipped
    assert dg_key("marts/dim_accounts") not in skipped
    # the date travels in the environment, so dbt re-parsed only what reads it
    calls = list((dbt_project().project_dir / "target").glob(f"dbt_models-{result.run_id[:7]}-*"))
    assert len(calls) == 1, calls
    log = "".join(p.read_text() for p in calls[0].glob("dbt.log*"))
    assert "Unable to do partial parsing" not in log
    after = _checksums(done.warehouse)
    for fact in ("int_user_daily_events", "int_account_daily_activity"):
        assert after[f"intermediate.{fact}"] == before[f"intermediate.{fact}"]
    with duckdb.connect(str(done.warehouse), read_only=True) as con:
        (as_of,) = con.execute("SELECT max(as_of_date) FROM marts.dim_accounts").fetchone()
    assert as_of.isoformat() == other


def test_the_full_refresh_tag_adds_full_refresh_to_every_dbt_call(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from orchestration.defs.dbt.assets import _build_args
    from orchestration.defs.settings_resource import FULL_REFRESH_TAG, SettingsResource

    resource = SettingsResource.from_settings(_settings(tmp_path))
    for tags, expected in (({FULL_REFRESH_TAG: "true"}, True), ({}, False)):
        context = SimpleNamespace(run=SimpleNamespace(tags={"csw/as_of": "2024-03-31", **tags}))
        args, _ = _build_args(context, resource)  # type: ignore[arg-type]
        assert ("--full-refresh" in args) is expected
        assert json.loads(args[args.index("--vars") + 1])["code_versions"]


@pytest.mark.e2e  # a full rebuild of every dbt model (~40 s on the small sample): the e2e tier
def test_full_refresh_rebuilds_every_dbt_model_and_leaves_the_lake_alone(done: Settings) -> None:
    lake = done.warehouse.parent / "lake"
    files = _files(lake)
    before = _checksums(done.warehouse)
    result = CliRunner().invoke(app, [*_args(done), "--full-refresh"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Nothing to do" not in result.output
    assert _files(lake) == files
    after = _checksums(done.warehouse)
    same = [t for t in before if t.startswith("raw.") and t not in BOOKKEEPING]
    same += [f"intermediate.{f}" for f in ("int_user_daily_events", "int_account_daily_activity")]
    assert {t: after[t] for t in same} == {t: before[t] for t in same}
    last = run_state.last_run(done)
    assert last is not None
    with duckdb.connect(str(done.warehouse), read_only=True) as con:
        runs = {r[0] for r in con.execute("SELECT run_id FROM raw.asset_versions").fetchall()}
    assert runs == {last.run_id}, "every dbt step ran in the full refresh"


def test_the_daily_facts_code_versions_are_recorded_after_a_run(done: Settings) -> None:
    from orchestration.defs.dbt.project import model_code_versions

    with duckdb.connect(str(done.warehouse), read_only=True) as con:
        stored = dict(
            con.execute("SELECT model, code_version FROM raw.incremental_code_versions").fetchall()
        )
    facts = ("int_user_daily_events", "int_account_daily_activity")
    assert {f: stored.get(f) for f in facts} == {f: model_code_versions()[f] for f in facts}


@pytest.mark.e2e  # a run that rebuilds every dbt model (~40 s on the small sample): the e2e tier
def test_rows_an_incremental_model_kept_from_older_code_are_rebuilt(done: Settings) -> None:
    from orchestration.definitions import PIPELINE_JOB, build_definitions
    from orchestration.pipeline_run import _quiet_run_config, execute

    fact = "intermediate.int_user_daily_events"
    before = _checksums(done.warehouse)[fact]
    with duckdb.connect(str(done.warehouse)) as con:
        # rows as an older release built them, and a record saying which code that was
        con.execute(
            f"UPDATE {fact} SET events = events + 1000 WHERE activity_date = (SELECT min(activity_date) FROM {fact})"
        )
        con.execute("UPDATE raw.incremental_code_versions SET code_version = 'older release'")
        con.execute("DELETE FROM raw.asset_versions")  # as after a code change: no step skips
    assert _checksums(done.warehouse)[fact] != before
    job = build_definitions(done).resolve_job_def(PIPELINE_JOB)
    assert execute(job, _quiet_run_config("WARNING")).success
    assert _checksums(done.warehouse)[fact] == before


def test_a_model_is_recorded_as_built_only_when_dbt_built_it_and_its_tests_passed() -> None:
    from orchestration.defs.dbt.assets import built_cleanly

    manifest = {
        "parent_map": {
            "test.p.not_null_a": ["model.p.a"],
            "test.p.rel_b_c": ["model.p.b", "model.p.c"],
            "test.p.warns_d": ["model.p.d"],
        }
    }
    results = {
        "results": [
            {"unique_id": "model.p.a", "status": "success"},
            {"unique_id": "test.p.not_null_a", "status": "pass"},
            {"unique_id": "model.p.b", "status": "success"},
            {"unique_id": "model.p.c", "status": "success"},
            {"unique_id": "test.p.rel_b_c", "status": "fail"},
            {"unique_id": "model.p.d", "status": "success"},
            {"unique_id": "test.p.warns_d", "status": "warn"},
            {"unique_id": "model.p.e", "status": "error"},
            {"unique_id": "model.p.f", "status": "skipped"},
            {"unique_id": "seed.p.g", "status": "success"},
            {"unique_id": "model.p.h", "status": "success"},  # its test did not run
        ]
    }
    manifest["child_map"] = {
        "model.p.a": ["test.p.not_null_a"],
        "model.p.b": ["test.p.rel_b_c"],
        "model.p.c": ["test.p.rel_b_c"],
        "model.p.d": ["test.p.warns_d", "model.p.e"],
        "model.p.h": ["test.p.unique_h"],
    }
    assert built_cleanly(results, manifest) == {"model.p.a", "model.p.d", "seed.p.g"}


def test_models_about_to_be_built_forget_their_inputs_first(tmp_path: Path) -> None:
    from orchestration.defs.dbt.assets import _forget, _last_builds, _remember

    warehouse = str(tmp_path / "w.duckdb")
    _remember(warehouse, {"model.p.a": "d1", "model.p.b": "d2"}, "run-1")
    with duckdb.connect(warehouse) as con:  # a record of the step-per-selection format
        con.execute("INSERT INTO raw.asset_versions VALUES ('a1b2', 'd', 'r', now(), '[]')")
    _forget(warehouse, ["model.p.b"])  # a run stopped while building b leaves it to be rebuilt
    with duckdb.connect(warehouse) as con:
        assert {u: b.input_digest for u, b in _last_builds(con).items()} == {"model.p.a": "d1"}


def test_a_raw_table_changed_outside_ingestion_changes_its_data_version(tmp_path: Path) -> None:
    from ingestion_fixtures import example_row, open_warehouse, write_csv

    wh = open_warehouse(tmp_path)
    write_csv(wh.landing, "accounts", "a.csv", [example_row("accounts")])
    wh.ingest("accounts")
    before = run_state.raw_data_versions(wh.conn)
    wh.conn.execute("DELETE FROM raw.accounts")  # by hand: the manifest does not change
    after = run_state.raw_data_versions(wh.conn)
    assert before["crm/accounts"] != after["crm/accounts"]


def test_the_dbt_resource_starts_dbt_without_asking_its_version_or_building_an_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    import dagster_dbt.core.resource as dagster_dbt_resource

    from orchestration.defs.dbt.assets import dbt_resource

    def no_subprocess(*args: object, **kwargs: object) -> bytes:
        raise AssertionError(f"dbt --version was run: {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess)
    resource = dbt_resource()
    assert str(resource._cli_version) == metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_recording_no_model_is_no_error(tmp_path: Path) -> None:
    """A call whose models' tests were not selected (the UI's 'without checks') records none."""
    from orchestration.defs.dbt.assets import _forget, _last_builds, _remember

    warehouse = str(tmp_path / "w.duckdb")
    _forget(warehouse, [])
    _remember(warehouse, {}, "run-1")
    with duckdb.connect(warehouse) as con:
        assert _last_builds(con) == {}


def test_the_models_below_a_rebuilt_one_are_rebuilt_so_outputs_stay_in_topological_order() -> None:
    """CI e2e caught it: a staging partner rebuilt for a relationships test came after its
    skipped child (int_account_milestones), which Dagster refuses."""
    from orchestration.defs.dbt.assets import _unique_ids_by_key, _with_descendants

    everything = set(_unique_ids_by_key().values())
    users = "model.cs_warehouse.stg_product__users"
    below = _with_descendants({users}, everything)
    assert "model.cs_warehouse.int_account_milestones" in below
    assert "model.cs_warehouse.stg_crm__accounts" not in below
    assert _with_descendants({users}, {users}) == {users}


@pytest.mark.parametrize("rows", [2, 3])
def test_the_digests_see_one_column_changed_alike_on_an_even_number_of_rows(
    tmp_path: Path, rows: int
) -> None:
    """DuckDB's hash of several values (or of a row) combines per-column hashes so that XOR-ing
    it over the rows cancels a change made alike to an even number of them: every row's
    ``built_at`` moved by a second, an entity column edited by hand on two rows."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.incremental_code_versions AS SELECT 'm' || i AS model,"
            " 'v' AS code_version, TIMESTAMP '2026-01-01' AS built_at FROM range(?) r(i)",
            [rows],
        )
        con.execute(
            "CREATE TABLE raw.ingest_manifest AS SELECT 'crm' AS system, 'accounts' AS table_name,"
            " 'f' || i AS source_file, 'sha' AS file_sha256, 'loaded' AS status,"
            " TIMESTAMP '2026-01-01' AS loaded_at FROM range(?) r(i)",
            [rows],
        )
        con.execute(
            "CREATE TABLE raw.accounts AS SELECT 'a' || i AS account_id, 'smb' AS segment"
            " FROM range(?) r(i)",
            [rows],
        )
    settings: Any = type("S", (), {"warehouse": warehouse})()

    def digests() -> tuple[str, dict[str, str]]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return run_state.warehouse_digest(settings), run_state.raw_data_versions(con)

    before = digests()
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE raw.incremental_code_versions SET built_at = built_at + INTERVAL 1 SECOND"
        )
    after_refresh = digests()
    assert after_refresh[0] != before[0]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE raw.ingest_manifest SET loaded_at = loaded_at + INTERVAL 1 SECOND")
    after_reload = digests()
    assert after_reload[1]["crm/accounts"] != after_refresh[1]["crm/accounts"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE raw.accounts SET segment = 'enterprise'")
    assert digests()[1]["crm/accounts"] != after_reload[1]["crm/accounts"]
