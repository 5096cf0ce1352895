"""The measured steps, one per process: ``python -m benchmarks.steps <step> --landing DIR --home DIR``.

The harness starts each step in a fresh interpreter and samples the RSS of its process tree (dbt
runs in a child process of it), so a step's peak memory is its own. Steps, all reading the
landing directory ``--landing`` and writing under ``--home`` (``warehouse.duckdb``,
``published/``, ``dagster/``, ``logs/``):

``prepare``   ``dbt parse`` when the manifest is stale (not measured: a one-off after dbt edits)
``floor``     DuckDB reads every extract file once: ``count(*)`` and a hash of every value of
              every column, per table, with ``read_csv`` / ``read_parquet`` / ``read_json`` over
              the table's files
``run``       what ``csw run`` runs: :func:`orchestration.run_state.run_or_skip`, which skips
              when nothing changed since the last successful run (landing files, configuration,
              code, as-of date) and otherwise runs the ``pipeline`` job and records the run;
              the Dagster step durations come from the run's event log
``pipeline``  the ``pipeline`` job through :func:`orchestration.pipeline_run.run_job`: ingest,
              ``dbt build`` with tests, publish, without the skip decision
``ingest``    the ``ingest`` job through ``run_job``
``dbt``       ``dbt build`` (models and tests) run the way the dbt asset runs it: the same
              executable, ``--vars`` and ``CSW_*`` environment, threads = DuckDB threads
``publish``   what the ``published/warehouse`` asset does: every mart to Parquet, then the
              serving copy

``--result FILE`` receives a JSON object: ``ok``, ``error``, ``detail`` (per step), the step
process's own peak RSS (``VmHWM``) and that of its largest waited-for child (``ru_maxrss`` of the
children: dbt), cross-checks of the harness's sampled tree peak. The exit status is 0 when the step succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from orchestration.settings import Settings

#: Folder that holds ``orchestration/``, ``dbt_project/`` and ``dagster.yaml`` of the code measured.
CODE_ROOT = Path(__file__).resolve().parents[1]


def settings_for(args: argparse.Namespace) -> Settings:
    home = Path(args.home).resolve()
    overrides: dict[str, Any] = {
        "home": home,
        "landing_dir": Path(args.landing).resolve(),
        "warehouse_path": home / "warehouse.duckdb",
        "publish_dir": home / "published",
    }
    if args.as_of:
        overrides["as_of"] = date.fromisoformat(args.as_of)
    if args.memory_limit:
        overrides["duckdb_memory_limit"] = args.memory_limit
    if args.threads:
        overrides["duckdb_threads"] = args.threads
    return Settings(**overrides)


def use_own_dagster_home(settings: Settings) -> Path:
    """A Dagster instance of this measurement only (SQLite storage, the project's dagster.yaml),
    so the run's step durations can be read back and no deployment's history is touched."""
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    project_yaml = CODE_ROOT / "dagster.yaml"
    if project_yaml.is_file() and not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(project_yaml, dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


# --- prepare ------------------------------------------------------------------------------------


def step_prepare(settings: Settings) -> dict[str, Any]:
    from orchestration.defs.dbt.project import dbt_project, manifest_is_stale, prepared_manifest

    stale = manifest_is_stale(dbt_project())
    return {"manifest": str(prepared_manifest()), "parsed": stale}


# --- floor --------------------------------------------------------------------------------------


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _reader(fmt: str, files: list[Path]) -> str:
    paths = "[" + ", ".join(_quoted(p) for p in files) + "]"
    if fmt == "csv":
        return f"read_csv({paths}, header = true, all_varchar = true, union_by_name = true)"
    if fmt == "parquet":
        return f"read_parquet({paths}, union_by_name = true)"
    return f"read_json({paths}, format = 'newline_delimited', union_by_name = true)"


def step_floor(settings: Settings) -> dict[str, Any]:
    """Rows per table, reading every column of every extract file once."""
    import duckdb

    from ingestion.contract import TABLES
    from ingestion.landing import discover
    from orchestration.resources import duckdb_connection_config

    rows: dict[str, int] = {}
    files = 0
    with duckdb.connect(config=duckdb_connection_config(settings)) as con:
        for schema in TABLES:
            by_format: dict[str, list[Path]] = {}
            for f in discover(settings.landing, schema):
                if f.file_format is not None:
                    by_format.setdefault(f.file_format, []).append(f.path)
            rows[schema.asset_path] = 0
            for fmt, paths in by_format.items():
                source = _reader(fmt, paths)
                columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
                # A hash of every value: unlike count(column), which DuckDB may answer from
                # Parquet metadata, it cannot be computed without reading and decoding the value.
                hashes = ", ".join(f'bit_xor(hash("{c}"))' for c in columns)
                n = con.execute(f"SELECT count(*), {hashes} FROM {source}").fetchone()
                assert n is not None
                rows[schema.asset_path] += int(n[0])
                files += len(paths)
    return {"rows": rows, "files": files, "total_rows": sum(rows.values())}


# --- Dagster jobs -------------------------------------------------------------------------------


def stage_of(step_key: str) -> str:
    """Which stage a Dagster step of the pipeline belongs to."""
    if step_key.startswith("dbt"):
        return "dbt"
    if step_key.startswith("published"):
        return "publish"
    return "ingest"


def _raw_rows(settings: Settings, table: str) -> int:
    """Rows of ``raw.<table>``; 0 when the warehouse or the table does not exist (yet, or in the
    revision measured: the lake registry is newer than the manifest)."""
    import duckdb

    if not settings.warehouse.exists():
        return 0
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'raw' AND table_name = ?",
            [table],
        ).fetchone()
        if not found or not found[0]:
            return 0
        n = con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()
        return int(n[0]) if n else 0


def _manifest_rows(settings: Settings) -> int:
    return _raw_rows(settings, "ingest_manifest")


def _lake_files(settings: Settings) -> int:
    """Files registered in the events lake (``raw.lake_files``)."""
    return _raw_rows(settings, "lake_files")


def _dbt_nodes(instance: Any, run_id: str) -> dict[str, int]:
    """dbt nodes of the run from its event log: models built (materialisations), tests run
    (check evaluations), and models a dbt step reported without calling dbt (materialisations
    whose metadata says ``skipped``, each with an observation saying why)."""
    import dagster as dg

    counts = {"dbt_models_run": 0, "dbt_tests_run": 0, "dbt_models_skipped": 0}
    kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is None or not (entry.step_key or "").startswith("dbt"):
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            counts["dbt_tests_run"] += 1
        elif "skipped" in (event.event_specific_data.materialization.metadata or {}):
            counts["dbt_models_skipped"] += 1
        else:
            counts["dbt_models_run"] += 1
    counts["dbt_nodes_run"] = counts["dbt_models_run"] + counts["dbt_tests_run"]
    return counts


def _published(outcome: Any) -> dict[str, Any]:
    """What the run published: marts written and whether the publication was unchanged (None
    when the code measured does not say)."""
    warehouse = dict(getattr(outcome, "published", {}).get("published/warehouse") or {})
    written = warehouse.get("marts_published")
    return {
        "marts_published": len(written) if written is not None else None,
        "publication_unchanged": warehouse.get("unchanged"),
    }


def _run_detail(settings: Settings, outcome: Any, in_process_s: float) -> dict[str, Any]:
    """The Dagster run's step durations by stage, its dbt nodes and what it published."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        steps = {
            s.step_key: round(s.end_time - s.start_time, 3)
            for s in instance.get_run_step_stats(outcome.run_id)
            if s.start_time is not None and s.end_time is not None
        }
        run_stats = instance.get_run_stats(outcome.run_id)
        nodes = _dbt_nodes(instance, outcome.run_id)
    run_start = run_stats.start_time or run_stats.launch_time
    run_s = run_stats.end_time - run_start if run_stats.end_time and run_start else None
    stages: dict[str, float] = {}
    for key, seconds in steps.items():
        stages[stage_of(key)] = round(stages.get(stage_of(key), 0.0) + seconds, 3)
    slowest_ingest = sorted(
        ((k, v) for k, v in steps.items() if stage_of(k) == "ingest"), key=lambda kv: -kv[1]
    )[:3]
    return {
        "run_id": outcome.run_id,
        "as_of": settings.as_of.isoformat(),
        "run_job_s": round(in_process_s, 3),
        "dagster_run_s": round(run_s, 3) if run_s is not None else None,
        "stages_s": stages,
        "slowest_ingest_steps_s": dict(slowest_ingest),
        "steps": len(steps),
        **nodes,
        **_published(outcome),
        "failures": [f[:500] for f in outcome.failures],
        "failed_checks": list(outcome.failed_checks),
        "warned_checks": list(outcome.warned_checks),
    }


def _run_dagster_job(settings: Settings, job: str) -> tuple[bool, dict[str, Any]]:
    from orchestration.pipeline_run import run_job

    use_own_dagster_home(settings)
    manifest_before = _manifest_rows(settings)
    started = time.perf_counter()
    outcome = run_job(settings, job)
    detail = _run_detail(settings, outcome, time.perf_counter() - started)
    return outcome.success, {
        "job": job,
        **detail,
        "files_decided": _manifest_rows(settings) - manifest_before,
    }


def step_pipeline(settings: Settings) -> tuple[bool, dict[str, Any]]:
    return _run_dagster_job(settings, "pipeline")


def step_ingest(settings: Settings) -> tuple[bool, dict[str, Any]]:
    return _run_dagster_job(settings, "ingest")


@dataclass(frozen=True)
class _Decision:
    """:class:`orchestration.run_state.RunDecision`'s shape, for code measured without it."""

    skipped: bool
    reason: str
    outcome: Any


def _always_run(
    settings: Settings, *, full_refresh: bool = False, force: bool = False
) -> _Decision:
    """``run_or_skip`` of code from before issue 16, which had no skip: ``csw run`` ran the job."""
    from orchestration.pipeline_run import run_job

    reason = "the code measured has no orchestration.run_state: csw run always ran the job"
    return _Decision(False, reason, run_job(settings))


def run_or_skip_of_code() -> Callable[..., Any]:
    """``csw run``'s decision and run: :func:`orchestration.run_state.run_or_skip`, or, for a
    revision from before it existed (``--code-ref``), a plain run."""
    import orchestration.pipeline_run as pipeline_run

    try:
        import orchestration.run_state as run_state
    except ImportError:
        return _always_run
    # The editable install can supply run_state from the work tree to a revision without it.
    if Path(run_state.__file__).parent != Path(pipeline_run.__file__).parent:
        return _always_run
    return run_state.run_or_skip


def step_run(settings: Settings, *, force: bool = False) -> tuple[bool, dict[str, Any]]:
    """What ``csw run`` does: skip when nothing changed, else run the pipeline and record it;
    ``force``: ``csw run --force``, run even when nothing changed."""
    use_own_dagster_home(settings)
    manifest_before, lake_before = _manifest_rows(settings), _lake_files(settings)
    started = time.perf_counter()
    decision = run_or_skip_of_code()(settings, force=force)
    in_process_s = time.perf_counter() - started
    detail: dict[str, Any] = {
        "job": "pipeline",
        "skipped": decision.skipped,
        "reason": decision.reason,
        "run_or_skip_s": round(in_process_s, 3),
    }
    outcome = decision.outcome
    if outcome is None:
        nothing = {"dbt_nodes_run": 0, "marts_published": 0, "lake_files_written": 0}
        return True, {**detail, "as_of": settings.as_of.isoformat(), **nothing, "files_decided": 0}
    # ``ok``, not ``success``: a run whose job succeeded with a failed check is no success
    return outcome.ok, {
        **detail,
        **_run_detail(settings, outcome, in_process_s),
        "files_decided": _manifest_rows(settings) - manifest_before,
        "lake_files_written": _lake_files(settings) - lake_before,
    }


# --- dbt ----------------------------------------------------------------------------------------


def _run_results(target: Path, top: int = 8) -> dict[str, Any]:
    path = target / "run_results.json"
    if not path.is_file():
        return {}
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    nodes = [r for r in results if r["unique_id"].startswith("model.")]
    tests = [r for r in results if r["unique_id"].startswith("test.")]
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:top]
    return {
        "statuses": statuses,
        "models": len(nodes),
        "tests": len(tests),
        "models_s": round(sum(r["execution_time"] for r in nodes), 3),
        "tests_s": round(sum(r["execution_time"] for r in tests), 3),
        "slowest_nodes_s": {
            r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 3) for r in slowest
        },
        "failed": [r["unique_id"] for r in results if r["status"] in ("error", "fail")],
    }


def _dbt_build(
    settings: Settings, target: Path, output: str, extra: list[str]
) -> tuple[int, dict[str, str]]:
    """``dbt build`` as the dbt assets run it (csw's vars, the ``CSW_*`` environment of
    ``settings``) plus ``extra``; its exit code and environment. Output to logs/``output``."""
    from metrics.health_config import load_health_config
    from orchestration.defs.dbt.assets import DBT_EXECUTABLE, production_build_args
    from orchestration.defs.dbt.project import DBT_PROJECT_DIR
    from orchestration.defs.settings_resource import SettingsResource

    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **SettingsResource.from_settings(settings).dbt_environment()}
    command = [
        str(DBT_EXECUTABLE),
        *production_build_args(
            settings.as_of,
            load_health_config(settings.health_model),
            settings.max_unmapped_event_share,
        ),
        *extra,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(log_dir),
    ]
    with (log_dir / output).open("w") as out:
        done = subprocess.run(
            command, cwd=DBT_PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return done.returncode, env


def step_dbt(settings: Settings) -> tuple[bool, dict[str, Any]]:
    target = settings.home / "dbt-target"
    code, env = _dbt_build(settings, target, "dbt-build.out", [])
    return code == 0, {
        "threads": int(env["CSW_DBT_THREADS"]),
        "memory_limit": env["CSW_DUCKDB_MEMORY_LIMIT"],
        "exit_code": code,
        **_run_results(target),
    }


# --- engines (issue 17): the selector that builds on Spark, on each engine ----------------------

#: dbt_project/selectors.yml: what builds on Spark so far.
ENGINE_SELECTOR = "spark_ready"


def step_export(settings: Settings) -> dict[str, Any]:
    """The raw layer as Parquet beside the warehouse, for Spark (ingestion/parquet_export.py)."""
    import duckdb

    from ingestion.parquet_export import export_raw_tables

    lake = settings.warehouse.parent / "lake"
    with duckdb.connect(str(settings.warehouse)) as con:
        exported = export_raw_tables(con, lake)
    written = [e for e in exported if e.written]
    return {
        "tables_written": len(written),
        "rows_written": sum(e.rows for e in written),
        "rows_read_in_place": sum(e.rows for e in exported if not e.written),
        "lake_mb": round(sum(f.stat().st_size for f in lake.rglob("*.parquet")) / 2**20, 1),
    }


def _step_dbt_on(settings: Settings, engine: str) -> tuple[bool, dict[str, Any]]:
    """``dbt build --selector spark_ready`` (models and data tests) on ``engine``."""
    target = settings.home / f"dbt-target-{engine}"
    engine_settings = settings.model_copy(update={"engine": engine})
    code, env = _dbt_build(
        engine_settings, target, f"dbt-{engine}.out", ["--selector", ENGINE_SELECTOR]
    )
    return code == 0, {
        "engine": engine,
        "selector": ENGINE_SELECTOR,
        "threads": int(env["CSW_DBT_THREADS"]),
        "exit_code": code,
        **_run_results(target),
    }


def step_dbt_duckdb(settings: Settings) -> tuple[bool, dict[str, Any]]:
    return _step_dbt_on(settings, "duckdb")


def step_dbt_spark(settings: Settings) -> tuple[bool, dict[str, Any]]:
    return _step_dbt_on(settings, "spark")


# --- publish ------------------------------------------------------------------------------------


def step_publish(settings: Settings) -> dict[str, Any]:
    import duckdb

    from orchestration.defs.dbt.project import mart_names
    from orchestration.defs.publishing import publisher
    from orchestration.resources import duckdb_connection_config

    marts = mart_names()
    started = time.perf_counter()
    with duckdb.connect(str(settings.warehouse), config=duckdb_connection_config(settings)) as con:
        files = publisher.publish_marts(con, marts, settings.publish)
    marts_s = time.perf_counter() - started
    serving = publisher.publish_serving_copy(settings.warehouse, settings.publish)
    return {
        "marts": len(files),
        "marts_s": round(marts_s, 3),
        "serving_copy_s": round(time.perf_counter() - started - marts_s, 3),
        "serving_copy_mb": round(serving.stat().st_size / 2**20, 1),
    }


StepResult = dict[str, Any] | tuple[bool, dict[str, Any]]


def step_forced_run(settings: Settings) -> tuple[bool, dict[str, Any]]:
    """``csw run --force`` with nothing new: every step of the job runs and finds nothing to
    load, build or publish, so its wall time is the fixed cost of a run."""
    return step_run(settings, force=True)


STEPS: dict[str, Callable[[Settings], StepResult]] = {
    "prepare": step_prepare,
    "floor": step_floor,
    "run": step_run,
    "forced_run": step_forced_run,
    "pipeline": step_pipeline,
    "ingest": step_ingest,
    "dbt": step_dbt,
    "publish": step_publish,
    "export": step_export,
    "dbt_duckdb": step_dbt_duckdb,
    "dbt_spark": step_dbt_spark,
}


def _own_peak_rss_mb() -> float | None:
    """This process's peak RSS since its exec (``VmHWM``; ``ru_maxrss`` would also count the
    harness's pages at fork time)."""
    try:
        with Path("/proc/self/status").open() as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def run_step(name: str, settings: Settings) -> dict[str, Any]:
    """Run one step in this process and describe how it went (never raises)."""
    started = time.perf_counter()
    try:
        returned = STEPS[name](settings)
        ok, detail = returned if isinstance(returned, tuple) else (True, returned)
        error = None if ok else "the step reported a failure (see detail)"
    except Exception as exc:  # the harness records it; the traceback goes to the step's log
        traceback.print_exc()
        ok, detail, error = False, {}, f"{type(exc).__name__}: {exc}"[:2000]
    return {
        "step": name,
        "ok": ok,
        "error": error,
        "in_process_s": round(time.perf_counter() - started, 3),
        "detail": detail,
        "own_peak_rss_mb": _own_peak_rss_mb(),
        # The largest waited-for child (dbt): KiB on Linux.
        "largest_child_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.steps", description=__doc__)
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--landing", required=True, help="landing directory of the extracts")
    parser.add_argument("--home", required=True, help="warehouse, publish and Dagster home root")
    parser.add_argument("--as-of", help="reporting date YYYY-MM-DD")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit [CSW_DUCKDB_MEMORY_LIMIT]")
    parser.add_argument("--threads", type=int, help="DuckDB and dbt threads [CSW_DUCKDB_THREADS]")
    parser.add_argument("--result", help="write the step's JSON result here")
    args = parser.parse_args(argv)
    settings = settings_for(args)
    settings.home.mkdir(parents=True, exist_ok=True)
    result = run_step(args.step, settings)
    text = json.dumps(result, indent=2)
    if args.result:
        Path(args.result).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
