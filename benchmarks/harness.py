"""The benchmark harness behind ``csw bench`` and ``make bench``.

For each tier: make sure its dataset and next-day delta are cached (:mod:`benchmarks.datasets`),
then run every measured step (:mod:`benchmarks.steps`) in a fresh ``python -m benchmarks.steps``
process while a thread samples the RSS of that process tree (:mod:`benchmarks.rss`); write
``<results>/<tier>.json`` and print a table with each run's ratio to the floor.

Measurements, in this order, each from the state the previous one left:

``floor``        DuckDB reads every extract file once (rows per table)
``full``         ``csw run``'s path (``run_or_skip``: nothing is recorded yet, so the ``pipeline``
                 job runs) from an empty warehouse and publish dir
``rerun``        ``csw run``'s path again, same landing directory and as-of date, on ``full``'s
                 warehouse: nothing new (issue 16 point 1)
``fixed``        ``csw run --force``'s path on ``full``'s warehouse: every step runs and finds
                 nothing to load, build or publish: the fixed cost of a run (issue 16 point 4)
``ingest``       the ``ingest`` job from an empty warehouse (a second, separate warehouse)
``dbt``          ``dbt build`` on the warehouse ``ingest`` left
``publish``      marts to Parquet and the serving copy, from the warehouse ``dbt`` left
``incremental``  ``csw run``'s path as of the next day on ``full``'s warehouse, after the next
                 day's extract files joined the landing directory

``ratios_to_floor`` divides each run by the floor, ``ratios_to_full`` the rerun and the
incremental run by the full run.

Unmeasured set-up: generating a missing dataset, writing the delta, ``dbt parse`` when the
manifest is stale (the ``prepare`` step; a one-off after the dbt project changes).
"""

from __future__ import annotations

import io
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import datasets
from benchmarks.datasets import Dataset, Tier
from benchmarks.rss import TreeSampler

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / "benchmarks" / "data"
DEFAULT_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: Groups of measurements ``--measure`` can pick, and the measurements in each.
MEASURE_GROUPS: dict[str, tuple[str, ...]] = {
    "floor": ("floor",),
    "full": ("full",),
    "rerun": ("rerun",),
    "fixed": ("fixed",),
    "stages": ("ingest", "dbt", "publish"),
    "incremental": ("incremental",),
    "engines": ("engines_ingest", "export", "dbt_duckdb", "dbt_spark"),
}
#: What ``csw bench`` measures without --measure: every group but the engines, which needs the
#: spark extra and Java (``csw bench --engine spark`` asks for it).
DEFAULT_MEASURES: tuple[str, ...] = tuple(g for g in MEASURE_GROUPS if g != "engines")
#: The measurement of the engines group and the step each runs, in order, on one warehouse.
ENGINE_STEPS = (
    ("engines_ingest", "ingest"),
    ("export", "export"),
    ("dbt_duckdb", "dbt_duckdb"),
    ("dbt_spark", "dbt_spark"),
)
#: Measurements made on the full run's warehouse: asking for one runs ``full`` first.
ON_FULL = ("rerun", "fixed", "incremental")
METHODS: dict[str, str] = {
    "floor": "DuckDB count(*) and bit_xor(hash(column)) of every column of every extract file,"
    " per table",
    "full": "csw run's path (run_state.run_or_skip, then the pipeline job: ingest, dbt build"
    " with tests, publish), empty warehouse",
    "rerun": "csw run's path again on the full run's warehouse, same landing and as-of date:"
    " nothing new",
    "fixed": "csw run --force's path on the full run's warehouse, same landing and as-of date:"
    " every step runs and finds nothing to load, build or publish (the fixed cost of a run)",
    "ingest": "ingest job via run_job, empty warehouse",
    "dbt": "dbt build (models + tests) with csw's vars and CSW_* env, on the ingested warehouse",
    "publish": "publish_marts + publish_serving_copy (the published/warehouse asset's work)",
    "incremental": "csw run's path as of the next day on the full run's warehouse, after one "
    "more day of extracts landed",
    "engines_ingest": "ingest job via run_job, empty warehouse (the engines' shared input)",
    "export": "the raw tables as Parquet beside the warehouse (ingestion/parquet_export.py); the"
    " events lake is read in place",
    "dbt_duckdb": "dbt build --selector spark_ready (models + data tests) on DuckDB",
    "dbt_spark": "dbt build --selector spark_ready (models + data tests) on Spark, local mode"
    " (session method), from the exported Parquet",
}
PACKAGES = (
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "dagster",
    "dagster-dbt",
    "polars",
    "pyarrow",
    "great-expectations",
)


@dataclass
class BenchOptions:
    tiers: list[Tier]
    measures: tuple[str, ...] = DEFAULT_MEASURES
    data_dir: Path = DEFAULT_DATA_DIR
    results_dir: Path = DEFAULT_RESULTS_DIR
    #: Measure this git revision (exported under ``<data>/code/``) instead of the working tree.
    code_ref: str | None = None
    memory_limit: str | None = None
    threads: int | None = None
    #: Seconds before a step's process group is stopped; None waits for ever.
    timeout_s: float | None = None
    keep_work: bool = False
    regenerate: bool = False


# --- facts --------------------------------------------------------------------------------------


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with Path(path).open() as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_facts() -> dict[str, Any]:
    mem_kb = _first_line("/proc/meminfo", "MemTotal")
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "cpu_model": _first_line("/proc/cpuinfo", "model name") or platform.processor(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def code_facts(ref: str | None) -> dict[str, Any]:
    if ref is not None:
        return {"ref": ref, "commit": _git("rev-parse", f"{ref}^{{commit}}"), "dirty": False}
    status = _git("status", "--porcelain")
    return {
        "ref": "working tree",
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def code_snapshot(ref: str, data_dir: Path) -> Path:
    """The files of ``ref`` under ``<data>/code/<commit>/``, plus this harness's own modules."""
    commit = _git("rev-parse", f"{ref}^{{commit}}")
    if commit is None:
        raise ValueError(f"{ref!r} is not a git revision of {REPO_ROOT}")
    target = data_dir / "code" / commit[:12]
    if not (target / ".complete").exists():
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        (target / ".complete").touch()
    (target / "benchmarks").mkdir(exist_ok=True)
    for module in (REPO_ROOT / "benchmarks").glob("*.py"):
        shutil.copyfile(module, target / "benchmarks" / module.name)
    return target


# --- one measured process -----------------------------------------------------------------------


@dataclass(frozen=True)
class Runner:
    """How to start a step: the code to run it with and the DuckDB settings to give it."""

    code_dir: Path
    memory_limit: str
    threads: int
    logs: Path
    timeout_s: float | None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.code_dir), *filter(None, [env.get("PYTHONPATH")])]
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("DAGSTER_HOME", None)  # each step uses a Dagster home of its own
        return env

    def measure(
        self, name: str, step: str, landing: Path, home: Path, as_of: str
    ) -> dict[str, Any]:
        """Run ``step`` in a fresh process tree; wall time, peak tree RSS and its result."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        result_file = self.logs / f"{name}.result.json"
        result_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "benchmarks.steps",
            step,
            "--landing",
            str(landing),
            "--home",
            str(home),
            "--as-of",
            as_of,
            "--memory-limit",
            self.memory_limit,
            "--threads",
            str(self.threads),
            "--result",
            str(result_file),
        ]
        status: int | str
        cpu_before, busy_before = _children_cpu_s(), _system_busy_s()
        with log.open("w") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                command,
                cwd=self.code_dir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout stops it all
            )
            with TreeSampler(proc.pid) as sampler:
                try:
                    status = proc.wait(timeout=self.timeout_s)
                except subprocess.TimeoutExpired:
                    _stop_group(proc)
                    status = "timeout"
            wall = time.perf_counter() - started
        cpu = _children_cpu_s() - cpu_before
        others = max(0.0, _system_busy_s() - busy_before - cpu)
        sample = sampler.result
        reported = _read_json(result_file) or {}
        record: dict[str, Any] = {
            "step": step,
            "method": METHODS.get(name, step),
            "as_of": as_of,
            "exit_status": status,
            "ok": status == 0,
            "wall_s": round(wall, 3),
            "peak_rss_mb": round(sample.peak_rss_mb, 1),
            "peak_at_s": sample.peak_at_s,
            "peak_processes": sample.peak_processes,
            "rss_samples": sample.samples,
            # CPU seconds of the step's tree, and of everything else on the machine meanwhile:
            # other_cores > 0.2 means the figures are disturbed by other work.
            "cpu_s": round(cpu, 2),
            "other_cpu_s": round(others, 2),
            "other_cores": round(others / wall, 2) if wall else None,
            "in_process_s": reported.get("in_process_s"),
            "own_peak_rss_mb": reported.get("own_peak_rss_mb"),
            "largest_child_peak_rss_mb": reported.get("largest_child_peak_rss_mb"),
            "error": reported.get("error") if status == 0 else _failure(reported, status, log),
            "detail": reported.get("detail", {}),
            "log": str(log),
            "rss_profile_mb": _downsample(sample.profile),
        }
        return record


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _system_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the step's own process group (started with its own session), then reap it."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(reported: dict[str, Any], status: int | str, log: Path) -> str:
    if reported.get("error"):
        return str(reported["error"])
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
    except OSError:
        tail = []
    return f"exit status {status}: " + " | ".join(tail)[-2000:]


def _downsample(profile: list[tuple[float, float]], points: int = 120) -> list[list[float]]:
    """At most ``points`` (seconds, MiB) pairs, each the peak of its bucket."""
    if len(profile) <= points:
        return [list(p) for p in profile]
    size = -(-len(profile) // points)
    return [
        list(max(profile[i : i + size], key=lambda p: p[1])) for i in range(0, len(profile), size)
    ]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- one tier -----------------------------------------------------------------------------------


def ensure_dataset(
    tier: Tier, options: BenchOptions, console: Console
) -> tuple[Dataset, dict[str, Any]]:
    root = options.data_dir / tier.name
    facts, why = datasets.cached(root, tier.config)
    if facts is not None and facts.get("generator_fingerprint") != datasets.generator_fingerprint():
        if options.regenerate:
            facts, why = None, "the generator changed"
        else:
            console.print(
                f"[yellow]{tier.name}: the generator's code changed since the cached dataset was"
                " made; using it anyway (pass --regenerate to rebuild it).[/yellow]"
            )
    elif facts is not None and options.regenerate:
        facts, why = None, "--regenerate"
    generation: dict[str, Any] = {"cached": facts is not None, "reason": why}
    if facts is None:
        c = tier.config
        console.print(f"{tier.name}: generating {c.accounts} accounts x {c.months} months ({why})")
        config_json = json.dumps(datasets.config_facts(c))
        command = [sys.executable, "-m", "benchmarks.datasets", str(root), config_json]
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        with TreeSampler(proc.pid) as sampler:
            out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"generating {tier.name} failed (exit {proc.returncode})")
        facts = json.loads(out.strip().splitlines()[-1])
        generation.update(
            wall_s=round(time.perf_counter() - started, 2),
            peak_rss_mb=round(sampler.result.peak_rss_mb, 1),
        )
    dataset = Dataset(tier, root, facts)
    delta = datasets.ensure_delta(dataset)
    return dataset, {**generation, "delta": delta}


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_tier(tier: Tier, options: BenchOptions, console: Console) -> dict[str, Any]:
    dataset, generation = ensure_dataset(tier, options, console)
    wanted = [m for group in options.measures for m in MEASURE_GROUPS[group]]
    if set(ON_FULL) & set(wanted) and "full" not in wanted:
        wanted.insert(0, "full")
    code_dir = code_snapshot(options.code_ref, options.data_dir) if options.code_ref else REPO_ROOT
    from orchestration.settings import load_settings

    defaults = load_settings()
    runner = Runner(
        code_dir=code_dir,
        memory_limit=options.memory_limit or defaults.duckdb_memory_limit,
        threads=options.threads or defaults.duckdb_threads,
        logs=dataset.root / "logs",
        timeout_s=options.timeout_s,
    )
    work = _fresh(dataset.root / "work")
    as_of, next_day = str(dataset.as_of), str(dataset.next_day)
    facts = dataset.facts
    results: dict[str, Any] = {
        "tier": tier.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "code": code_facts(options.code_ref),
        "settings": {
            "duckdb_memory_limit": runner.memory_limit,
            "duckdb_threads": runner.threads,
            # the steps' settings follow --threads unless CSW_DBT_THREADS sets dbt's own
            "dbt_threads": int(os.environ.get("CSW_DBT_THREADS", runner.threads)),
        },
        "dataset": {
            "accounts": tier.config.accounts,
            "months": tier.config.months,
            "seed": tier.config.seed,
            "events_per_user_day": tier.config.events_per_user_day,
            "as_of": as_of,
            "events": facts["events"],
            "files": facts["files"],
            "bytes": facts["bytes"],
            "mb": round(facts["bytes"] / 2**20, 1),
            "rows": facts["rows"],
            "generator_fingerprint": facts.get("generator_fingerprint"),
            "generation": {k: v for k, v in generation.items() if k != "delta"},
        },
        "delta": generation["delta"],
        "setup": {},
        "measurements": {},
    }
    measurements: dict[str, dict[str, Any]] = results["measurements"]

    def record(name: str, entry: dict[str, Any]) -> None:
        measurements[name] = entry
        state = "[green]ok[/green]" if entry["ok"] else f"[red]{entry['exit_status']}[/red]"
        console.print(
            f"{tier.name} {name:<12} {entry['wall_s']:>9.1f} s {entry['peak_rss_mb']:>9.0f} MB"
            f"  {state}"
        )
        if not entry["ok"]:
            console.print(f"  [red]{entry['error']}[/red]")

    def skipped(name: str, why: str) -> None:
        measurements[name] = {"step": name, "ok": False, "exit_status": "skipped", "error": why}
        console.print(f"{tier.name} {name:<12} skipped: {why}")

    console.print(
        f"[bold]{tier.name}[/bold]: {tier.config.accounts} accounts x {tier.config.months} months,"
        f" {facts['events']:,} events, {facts['files']} files, {results['dataset']['mb']} MB"
        f" ({'cached' if generation['cached'] else 'generated'}); code: {code_dir}"
    )
    if set(wanted) - {"floor"}:
        prepare = runner.measure("prepare", "prepare", dataset.landing, work / "prepare", as_of)
        results["setup"]["prepare"] = {k: prepare[k] for k in ("wall_s", "ok", "error", "detail")}
        if not prepare["ok"]:
            console.print(f"[red]dbt parse failed; only the floor runs:[/red] {prepare['error']}")
    else:
        prepare = {"ok": True, "error": None}

    needs_dbt = "prepare (dbt parse) failed: " + str(prepare["error"])[:300]
    if "floor" in wanted:
        record("floor", runner.measure("floor", "floor", dataset.landing, work / "floor", as_of))
    if "full" in wanted:
        if prepare["ok"]:
            record("full", runner.measure("full", "run", dataset.landing, work / "full", as_of))
        else:
            skipped("full", needs_dbt)
    if "rerun" in wanted:
        if measurements.get("full", {}).get("ok"):
            record("rerun", runner.measure("rerun", "run", dataset.landing, work / "full", as_of))
        else:
            skipped("rerun", "the full run did not succeed")
    if "fixed" in wanted:
        if measurements.get("full", {}).get("ok"):
            record(
                "fixed",
                runner.measure("fixed", "forced_run", dataset.landing, work / "full", as_of),
            )
        else:
            skipped("fixed", "the full run did not succeed")
    if "ingest" in wanted:
        stages = work / "stages"
        previous_ok = prepare["ok"]
        for name in MEASURE_GROUPS["stages"]:
            if previous_ok:
                record(name, runner.measure(name, name, dataset.landing, stages, as_of))
                previous_ok = measurements[name]["ok"]
            else:
                skipped(name, needs_dbt if not prepare["ok"] else "an earlier stage failed")
    if "export" in wanted:
        engines = work / "engines"
        previous_ok = prepare["ok"]
        for name, step in ENGINE_STEPS:
            if previous_ok:
                record(name, runner.measure(name, step, dataset.landing, engines, as_of))
                previous_ok = measurements[name]["ok"]
            else:
                skipped(name, needs_dbt if not prepare["ok"] else "an earlier step failed")
    if "incremental" in wanted:
        if measurements.get("full", {}).get("ok"):
            landing_next = work / "landing-next"
            datasets.link_tree(dataset.landing, landing_next)
            datasets.link_tree(dataset.delta, landing_next)
            record(
                "incremental",
                runner.measure("incremental", "run", landing_next, work / "full", next_day),
            )
        else:
            skipped("incremental", "the full run did not succeed")

    results["ratios_to_floor"] = ratios(measurements)
    results["ratios_to_full"] = ratios_to_full(measurements)
    if not options.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    write_results(results, options.results_dir / f"{tier.name}.json")
    console.print(results_table(results))
    return results


def ratios(measurements: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    floor = measurements.get("floor", {})
    if not floor.get("ok") or not floor.get("wall_s"):
        return {}
    return {
        name: {
            "wall": round(m["wall_s"] / floor["wall_s"], 2),
            "peak_rss": round(m["peak_rss_mb"] / floor["peak_rss_mb"], 2),
        }
        for name, m in measurements.items()
        if m.get("ok") and name != "floor"
    }


def ratios_to_full(measurements: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Wall time of the rerun and of the incremental run divided by the full run's."""
    full = measurements.get("full", {})
    if not full.get("ok") or not full.get("wall_s"):
        return {}
    return {
        name: round(measurements[name]["wall_s"] / full["wall_s"], 3)
        for name in ON_FULL
        if measurements.get(name, {}).get("ok")
    }


def write_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _note(name: str, m: dict[str, Any]) -> str:
    d = m.get("detail") or {}
    if not m.get("ok"):
        return str(m.get("error") or "")[:120]
    if name == "floor":
        return f"{d.get('total_rows', 0):,} rows, {d.get('files', 0)} files"
    if d.get("skipped"):
        return f"skipped ({d.get('run_or_skip_s', 0):.1f} s to decide): {d.get('reason', '')}"
    if "stages_s" in d:
        parts = [f"{k} {v:.1f}" for k, v in d["stages_s"].items()]
        run = d.get("dagster_run_s")
        if run is not None:
            parts.append(f"outside run {m['wall_s'] - run:.1f}")
        files = f"; {d['files_decided']} files" if d.get("files_decided") is not None else ""
        nodes = f"; {d['dbt_nodes_run']} dbt nodes" if d.get("dbt_nodes_run") is not None else ""
        marts = (
            f"; {d['marts_published']} marts published"
            if d.get("marts_published") is not None
            else ""
        )
        return "Dagster s: " + ", ".join(parts) + files + nodes + marts
    if name == "dbt":
        return (
            f"{d.get('models', 0)} models {d.get('models_s', 0):.1f} s,"
            f" {d.get('tests', 0)} tests {d.get('tests_s', 0):.1f} s (thread time)"
        )
    if name == "publish":
        return (
            f"{d.get('marts', 0)} marts {d.get('marts_s', 0):.1f} s,"
            f" serving copy {d.get('serving_copy_s', 0):.1f} s"
        )
    return ""


def results_table(results: dict[str, Any]) -> Table:
    ds, machine = results["dataset"], results["machine"]
    table = Table(
        title=f"Tier {results['tier']}: {ds['accounts']:,} accounts x {ds['months']} months, "
        f"{ds['events']:,} events, {ds['files']} files, {ds['mb']} MB",
        caption=f"{machine['cores']} cores, {machine['memory_gb']} GB, {machine['cpu_model']}; "
        f"DuckDB {results['settings']['duckdb_memory_limit']} x "
        f"{results['settings']['duckdb_threads']} threads; other cores: mean cores other"
        " processes used meanwhile (above 0.2 the figures are disturbed)",
    )
    for header, justify in (
        ("run", "left"),
        ("wall s", "right"),
        ("x floor", "right"),
        ("peak RSS MB", "right"),
        ("x floor RSS", "right"),
        ("exit", "right"),
        ("other cores", "right"),
        ("where the time went", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    ratio = results.get("ratios_to_floor", {})
    for name, m in results["measurements"].items():
        r = ratio.get(name, {})
        table.add_row(
            name,
            f"{m['wall_s']:.1f}" if "wall_s" in m else "",
            "1.0" if name == "floor" and m.get("ok") else f"{r['wall']:.1f}" if r else "",
            f"{m['peak_rss_mb']:.0f}" if "peak_rss_mb" in m else "",
            "1.0" if name == "floor" and m.get("ok") else f"{r['peak_rss']:.1f}" if r else "",
            str(m["exit_status"]),
            f"{m['other_cores']:.2f}" if m.get("other_cores") is not None else "",
            _note(name, m),
        )
    return table


def run(options: BenchOptions, console: Console | None = None) -> int:
    """Benchmark every tier of ``options``; 0 when every measurement succeeded, else 1."""
    console = console or Console()
    failed = False
    for tier in options.tiers:
        try:
            results = run_tier(tier, options, console)
        except (ValueError, RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            console.print(f"[red]{tier.name}: the benchmark could not run:[/red] {exc}")
            return 2
        failed |= not all(m.get("ok") for m in results["measurements"].values())
        console.print(f"Results: {options.results_dir / (tier.name + '.json')}")
    return 1 if failed else 0
