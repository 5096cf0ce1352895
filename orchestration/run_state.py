"""Whether a run has anything to do: the fingerprint of what a run reads and writes.

``csw run`` asks :func:`unchanged` before it imports Dagster or dbt: when the landing files, the
configuration, the code, the as-of date and the warehouse and publication the last successful run
left are all as that run recorded them, a new run would change nothing, so it does not start.
The state lives in the warehouse (``raw.run_state``), because ``csw run``'s Dagster instance is
ephemeral unless DAGSTER_HOME is set. Only a successful run records a row (:func:`record`).

This module imports no Dagster and no dagster-dbt (the point is to decide in about a second);
:func:`run_or_skip` imports the pipeline only when a run happens.

What the fingerprint does not see (docs/operations.md, "When a run does nothing"): a landing file
rewritten with the same size and modification time, and changes outside the tracked code folders
and packages. ``csw run --force`` runs anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import duckdb

from ingestion.sql import relation_exists

if TYPE_CHECKING:
    from orchestration.pipeline_run import RunOutcome
    from orchestration.settings import Settings

STATE_TABLE = "raw.run_state"
STATE_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    run_id VARCHAR NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    components VARCHAR NOT NULL
)"""
#: Rows kept in ``raw.run_state``; only the newest is compared with.
KEEP_ROWS = 100

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The code a run executes: these folders and files under the repository (contents hashed).
CODE_PATHS = (
    "ingestion",
    "metrics",
    "orchestration",
    "adapters",
    "dbt_project/models",
    "dbt_project/macros",
    "dbt_project/tests",
    "dbt_project/seeds",
    "dbt_project/snapshots",
    "dbt_project/dbt_project.yml",
    "dbt_project/profiles.yml",
)
CODE_SUFFIXES = frozenset({".py", ".sql", ".yml", ".yaml", ".csv", ".json", ".md"})
#: Packages whose version changes what a run computes.
KEY_PACKAGES = ("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "duckdb", "polars")
#: Settings that do not change what a run computes (or are compared as their own component).
NEUTRAL_SETTINGS = frozenset(
    {
        "as_of",
        "run_lock_wait_s",
        "dbt_target_keep",
        "alert_webhook",
        "alert_command",
        "dagster_url",
        "duckdb_threads",
        "dbt_threads",
        "duckdb_memory_limit",
        "timezone",
        "home",
    }
)

#: Components taken before a run (what it reads), then after it (what it left), in the order
#: :func:`unchanged` names them.
INPUT_COMPONENTS = ("landing", "config", "code", "as_of")
OUTPUT_COMPONENTS = ("warehouse", "outputs")
DESCRIPTIONS = {
    "landing": "the landing files changed (a file added, removed, resized or modified)",
    "config": "the configuration changed (settings, health model or adapters file)",
    "code": "the code changed (project files or package versions)",
    "as_of": "the as-of date changed",
    "warehouse": "the warehouse was changed by something else since (files loaded, dbt models"
    " built or a churn model fitted outside csw run)",
    "outputs": "the publication is missing or is not the one that run left",
}


@dataclass(frozen=True)
class RunDecision:
    """What :func:`run_or_skip` did: skipped (and why), or ran (``outcome``)."""

    skipped: bool
    reason: str
    outcome: RunOutcome | None


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _walk(root: Path) -> Iterator[os.DirEntry[str]]:
    """Every file under ``root`` (no symbolic links followed), by ``os.scandir``."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        elif entry.is_file():
            yield entry


def _tree_listing(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under ``root``, sorted; no content read."""
    listing = []
    for entry in _walk(root):
        stat = entry.stat()
        listing.append((os.path.relpath(entry.path, root), stat.st_size, stat.st_mtime_ns))
    return sorted(listing)


def _adapter_sources(settings: Settings) -> list[Path]:
    """The source folders of the configured adapters: their files become landing files."""
    if settings.adapters is None:
        return []
    from orchestration.defs.adapters.config import load_adapters_config

    return [a.source for a in load_adapters_config(settings.adapters)]


def _adapter_outputs(settings: Settings) -> Callable[[str], bool]:
    """Whether a path relative to the landing directory is one the configured adapters write
    on every run: ``_adapters/<system>/*`` and ``<table folder>/<file_stem>.<csv|parquet>`` (or
    ``<file_stem>-<day>.parquet``) in the tables the system writes."""
    if settings.adapters is None:
        return lambda _path: False
    from adapters.core import REPORT_DIR
    from orchestration.defs.adapters.config import load_adapters_config
    from orchestration.defs.adapters.registry import SYSTEMS

    reports: set[tuple[str, str]] = set()
    stems: dict[PurePath, set[str]] = {}
    for adapter in load_adapters_config(settings.adapters):
        system = SYSTEMS[adapter.system]
        stem = system.load_mapping(adapter.mapping).file_stem
        reports.add((REPORT_DIR, adapter.system))
        for table in system.writes:
            stems.setdefault(PurePath(table), set()).add(stem)

    def written(relative: str) -> bool:
        path = PurePath(relative)
        by_stem = path.suffix in {".csv", ".parquet"} and any(
            path.stem == s or (path.suffix == ".parquet" and path.stem.startswith(s + "-"))
            for s in stems.get(path.parent, ())
        )
        return by_stem or path.parts[:2] in reports

    return written


def landing_digest(settings: Settings) -> str:
    """The landing files (but what the adapters write there on every run) and the adapters'
    source folders."""
    written = _adapter_outputs(settings)
    landing = [f for f in _tree_listing(settings.landing) if not written(f[0])]
    sources = [[str(root), _tree_listing(root)] for root in _adapter_sources(settings)]
    return _digest([[str(settings.landing), landing], *sources])


def config_digest(settings: Settings) -> str:
    """The settings that change outputs, the dbt vars (the health model, whole) but the date,
    and the adapters file's content."""
    from metrics.dbt_vars import dbt_vars
    from metrics.health_config import load_health_config

    vars_ = dbt_vars(
        settings.as_of,
        load_health_config(settings.health_model),
        settings.max_unmapped_event_share,
        settings.churn_horizon_days,
    )
    vars_.pop("as_of")
    chosen = settings.model_dump(mode="json", exclude=set(NEUTRAL_SETTINGS))
    adapters = settings.adapters.read_text(encoding="utf-8") if settings.adapters else ""
    return _digest({"settings": chosen, "dbt_vars": vars_, "adapters": adapters})


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def code_digest(root: Path | None = None) -> str:
    """sha256 over the contents of the code files (``CODE_PATHS`` under ``root``, by default the
    repository) and the key package versions."""
    root = REPO_ROOT if root is None else root
    hasher = hashlib.sha256()
    for name in CODE_PATHS:
        path = root / name
        files = [path] if path.is_file() else [Path(e.path) for e in _walk(path)]
        for file in sorted(f for f in files if f.suffix in CODE_SUFFIXES):
            hasher.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    hasher.update(json.dumps({p: _package_version(p) for p in KEY_PACKAGES}).encode())
    return hasher.hexdigest()


def _stat_of(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def outputs_digest(settings: Settings) -> str:
    """The published version ``current`` points at, and the serving copy as readers find it."""
    current = settings.publish / "current"
    target = str(current.readlink()) if current.is_symlink() else None
    return _digest({"current": target, "serving_copy": _stat_of(settings.serving_copy)})


#: What the warehouse's writers leave, table -> the columns that change with each write: files
#: loaded (manifest, lake registry), dbt models built (``raw.asset_versions``, also by the churn
#: model job and runs from the Dagster UI), incremental models' code, churn-model fits.
WAREHOUSE_STAMPS = {
    "raw.ingest_manifest": "source_file, file_sha256, status, loaded_at",
    "raw.lake_files": "path, loaded_at",
    "raw.asset_versions": "step, input_digest, run_id, built_at",
    "raw.incremental_code_versions": "model, code_version, built_at",
    "ml.churn_model_fits": "churn_model_version, fitted_at",
}


def warehouse_digest(settings: Settings) -> str:
    """What the warehouse's writers left: per table of ``WAREHOUSE_STAMPS`` holding rows, its
    row count and an order-independent hash of the columns each write changes."""
    summary: dict[str, Any] = {}
    if not settings.warehouse.is_file():
        return _digest(summary)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        tables = _table_names(con)
        for table, columns in WAREHOUSE_STAMPS.items():
            if table in tables:
                rows, hashed = con.execute(
                    f"SELECT count(*), bit_xor({_row_hash(columns)}) FROM {table}"
                ).fetchone() or (0, None)
                if rows:  # an empty table (created, nothing written yet) is as none
                    summary[table] = [rows, hashed]
    return _digest(summary)


def _row_hash(columns: str) -> str:
    """SQL: a hash of the row's ``columns`` (comma separated) to XOR over rows. DuckDB's
    ``hash(a, b)``, and its hash of a row, combine the per-column hashes so that a change made
    alike to an even number of rows (every ``built_at`` moved by a second) cancels in the XOR;
    the hash of the row's JSON text does not."""
    fields = ", ".join(f"{c} := {c}" for c in (c.strip() for c in columns.split(",")))
    return f"hash(to_json(struct_pack({fields})))"


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()
    return {r[0] for r in rows}


def raw_data_versions(con: duckdb.DuckDBPyConnection, only: str | None = None) -> dict[str, str]:
    """``<system>/<table>`` -> a digest of what its raw table holds: its manifest rows (file,
    checksum, status, when), for a lake table its registered lake files, and for an entity table
    its rows (:func:`_table_content`). It stays the same while no file is loaded into the table
    and nobody edits it, and changes with every file that is loaded. ``only``: that table's
    alone (an ingestion step's own version: hashing every entity table's rows in each of the
    steps cost 6 s of a run at L)."""
    tables = _table_names(con)
    if "raw.ingest_manifest" not in tables:
        return {}
    only_filter = "" if only is None else "WHERE system || '/' || table_name = $only"
    lake = (
        "SELECT table_name, count(*) AS n, bit_xor(hash(path)) AS h"
        " FROM raw.lake_files GROUP BY ALL"
        if "raw.lake_files" in tables
        else "SELECT NULL::VARCHAR AS table_name, 0 AS n, 0::UBIGINT AS h WHERE false"
    )
    rows = con.execute(
        f"""
        WITH m AS (
            SELECT system, table_name, count(*) AS n,
                   bit_xor({_row_hash("source_file, file_sha256, status, loaded_at")}) AS h
            FROM raw.ingest_manifest {only_filter} GROUP BY ALL
        ), l AS ({lake})
        SELECT m.system || '/' || m.table_name, m.n, m.h, l.n, l.h
        FROM m LEFT JOIN l USING (table_name)
        """,
        {} if only is None else {"only": only},
    ).fetchall()
    return {r[0]: _digest([*r[1:], _table_content(con, r[0], tables)])[:16] for r in rows}


def _table_content(con: duckdb.DuckDBPyConnection, path: str, tables: set[str]) -> list[Any]:
    """Row count and an order-independent hash of the rows of an entity table (``raw.<table>``,
    a few hundred thousand rows at most): a table changed outside ingestion (rows deleted or
    edited by hand) must not look as its manifest says. A lake table (a view) is left to its
    registry: hashing 151 million events on every run would cost what the lake saves."""
    table = f"raw.{path.split('/', 1)[1]}"
    if table not in tables:
        return []
    row = con.execute(f"SELECT count(*), bit_xor(hash(to_json(t))) FROM {table} t").fetchone()
    return list(row or ())


_COMPONENTS: dict[str, Callable[[Settings], str]] = {
    "landing": landing_digest,
    "config": config_digest,
    "code": lambda _settings: code_digest(),
    "as_of": lambda settings: settings.as_of.isoformat(),
    "warehouse": warehouse_digest,
    "outputs": outputs_digest,
}


def fingerprint(settings: Settings, components: tuple[str, ...] | None = None) -> dict[str, str]:
    """Each component's digest (all of them unless ``components`` names some)."""
    return {name: _COMPONENTS[name](settings) for name in components or tuple(_COMPONENTS)}


@dataclass(frozen=True)
class LastRun:
    run_id: str
    finished_at: datetime
    components: dict[str, str]


def last_run(settings: Settings) -> LastRun | None:
    """The newest row of ``raw.run_state``; None without a warehouse or a recorded run."""
    if not settings.warehouse.is_file():
        return None
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        if not relation_exists(con, "raw", "run_state"):
            return None
        row = con.execute(
            f"SELECT run_id, finished_at, components FROM {STATE_TABLE}"
            " ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    return LastRun(row[0], row[1], json.loads(row[2]))


def unchanged(settings: Settings) -> tuple[bool, str]:
    """(True, "nothing changed since run <id> at <time>") when every component equals the last
    successful run's; else (False, the first component that changed, in words)."""
    return _compare(settings, None)


def _compare(settings: Settings, now: dict[str, str] | None) -> tuple[bool, str]:
    """:func:`unchanged` against ``now`` (the fingerprint, taken here when None)."""
    last = last_run(settings)
    if last is None:
        return False, "no successful run is recorded in this warehouse"
    when = f"run {last.run_id[:8]} at {last.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    now = fingerprint(settings) if now is None else now
    for name, value in now.items():
        if last.components.get(name) != value:
            return False, f"{DESCRIPTIONS[name]} since {when}"
    return True, f"nothing changed since {when}"


def record(settings: Settings, run_id: str, before: dict[str, str] | None = None) -> None:
    """Store the fingerprint of a successful run: ``before`` (the inputs as the run started; taken
    now when None) and the warehouse and publication as the run left them."""
    inputs = before if before is not None else fingerprint(settings, INPUT_COMPONENTS)
    components = {
        **{k: inputs[k] for k in INPUT_COMPONENTS},
        **fingerprint(settings, OUTPUT_COMPONENTS),
    }
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(STATE_DDL)
        con.execute(
            f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?)",
            [run_id, datetime.now(UTC).replace(tzinfo=None), json.dumps(components)],
        )
        con.execute(
            f"DELETE FROM {STATE_TABLE} WHERE finished_at NOT IN"
            f" (SELECT finished_at FROM {STATE_TABLE} ORDER BY finished_at DESC LIMIT {KEEP_ROWS})"
        )


def run_or_skip(
    settings: Settings,
    *,
    full_refresh: bool = False,
    force: bool = False,
    runner: Callable[[], RunOutcome] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> RunDecision:
    """Skip when nothing changed (unless ``full_refresh`` or ``force``); else call ``on_run``
    with the reason, run the pipeline (``runner``, else
    :func:`orchestration.pipeline_run.run_job`) and record it if it was ok. The fingerprint is
    taken once, before the run: its inputs are what the record says the run read."""
    now = fingerprint(settings)
    if full_refresh or force:
        reason = "--full-refresh" if full_refresh else "--force"
    else:
        same, reason = _compare(settings, now)
        if same:
            return RunDecision(True, reason, None)
    if on_run is not None:
        on_run(reason)
    if runner is None:
        from orchestration.pipeline_run import run_job

        outcome = run_job(settings, full_refresh=full_refresh)
    else:
        outcome = runner()
    if outcome.ok:
        record(settings, outcome.run_id, now)
    return RunDecision(False, reason, outcome)
