"""dbt models as Dagster assets, with dbt tests as asset checks.

Sources map onto the ingestion assets through ``meta.dagster.asset_key`` in
``dbt_project/models/staging/_sources.yml``, so lineage runs from extract file to published list.
"""

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    dbt_assets,
)

from ingestion.sql import relation_exists
from metrics.dbt_vars import (
    DEFAULT_CHURN_HORIZON_DAYS,
    DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
    dbt_vars,
)
from metrics.health_config import HealthConfig
from orchestration.defs.dbt import target_cleanup
from orchestration.defs.dbt.code_refresh import (
    changed_code,
    refreshable_incremental_models,
    remember_code,
)
from orchestration.defs.dbt.project import (
    code_versions,
    dbt_project,
    loaded_manifest,
    model_code_versions,
    prepared_manifest,
    vars_used,
)
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource
from orchestration.run_state import raw_data_versions

DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
#: dbt's parse state, which dagster-dbt copies from the project's target folder into each call's.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


#: The team that owns an asset nobody else claims: ingestion, staging, publication.
DATA_ENGINEERING = "team:data-engineering"
#: Owners of dbt models by their folder under ``models/``; the longest matching folder wins, and
#: an ``owner`` in the model's dbt ``meta`` wins over both.
OWNERS_BY_FOLDER: dict[tuple[str, ...], str] = {
    ("staging",): DATA_ENGINEERING,
    ("intermediate",): DATA_ENGINEERING,
    ("marts",): "team:revops-analytics",
    ("marts", "customer_success"): "team:customer-success-ops",
}


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Models are keyed ``<layer>/<model>`` (``marts/fct_mrr_monthly``) and grouped by layer;
    owners come from dbt ``meta.owner``, else from the model's folder (``OWNERS_BY_FOLDER``)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in {"model", "seed", "snapshot"}:
            return dg.AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in {"model", "seed", "snapshot"}:
            return _layer(dbt_resource_props)
        return super().get_group_name(dbt_resource_props)

    def get_code_version(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """sha256 of the node's SQL and of every macro it uses (``project.node_code_version``),
        the value of the ``code_versions`` var; dagster-dbt's own is the SQL alone."""
        found = code_versions().get(dbt_resource_props.get("unique_id", ""))
        return found or super().get_code_version(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        declared = _meta_owners(dbt_resource_props) or super().get_owners(dbt_resource_props)
        if declared:
            return list(declared)
        folders = tuple(dbt_resource_props.get("fqn", [])[1:-1])
        for depth in range(len(folders), 0, -1):
            if folders[:depth] in OWNERS_BY_FOLDER:
                return [OWNERS_BY_FOLDER[folders[:depth]]]
        return None


def _meta_owners(props: Mapping[str, Any]) -> list[str]:
    """``meta: {owner: ...}`` of a model (top level or under ``config``), a name or a list;
    a bare name is a team (``finance`` -> ``team:finance``), as Dagster wants e-mails or teams."""
    meta = props.get("meta") or {}
    declared = meta.get("owner") or ((props.get("config") or {}).get("meta") or {}).get("owner")
    names = [declared] if isinstance(declared, str) else list(declared or [])
    return [n if "@" in n or n.startswith("team:") else f"team:{n}" for n in map(str, names)]


def _layer(props: Mapping[str, Any]) -> str:
    """The folder under ``models/`` (staging, intermediate, marts), or the resource type."""
    fqn = props.get("fqn", [])
    return fqn[1] if props["resource_type"] == "model" and len(fqn) > 2 else props["resource_type"]


#: The daily facts (tag ``daily_fact``) are their own ``@dbt_assets`` (one step of a run that can
#: be selected and re-run on its own), the rest another, as in dagster-io/dagster-open-platform.
#: docs/health-model.md "Incremental event facts". The other incremental models (the health
#: history, dim_health_model_versions, the backtest) stay in ``dbt_models``.
DAILY_FACT_TAG = "daily_fact"
INCREMENTAL_SELECTION = f"tag:{DAILY_FACT_TAG}"


def production_build_args(
    as_of: date,
    config: HealthConfig | None = None,
    max_unmapped_event_share: float = DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
    churn_horizon_days: int = DEFAULT_CHURN_HORIZON_DAYS,
) -> list[str]:
    """``dbt build`` as the pipeline runs it as of ``as_of`` with the health model ``config``
    (the shipped default when None); the benchmark's dbt step and ``csw backtest --candidate``
    too."""
    return _build_args_with(
        _with_code_versions(dbt_vars(as_of, config, max_unmapped_event_share, churn_horizon_days))
    )


def _with_code_versions(vars_: dict[str, Any]) -> dict[str, Any]:
    """``vars_`` plus ``code_versions`` (model name -> code version): an incremental model whose
    rows were built by other code rebuilds them."""
    return {**vars_, "code_versions": model_code_versions()}


def _build_args_with(vars_: dict[str, Any]) -> list[str]:
    """``dbt build`` with ``vars_``.

    Unit tests pin their own copy of the configuration (tests/fixtures/health_model.yaml) and
    hand-made inputs: they run in CI (pytest), not against production data, where a tuned
    health model would fail them. Every call passes the same vars, so a run sees one reporting
    date and one configuration.
    """
    return ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(vars_)]


def _run_vars(context: dg.AssetExecutionContext, settings: SettingsResource) -> dict[str, Any]:
    """The run's vars: its reporting date, the configured health model (``health_model``) and
    the models' code versions."""
    return _with_code_versions(settings.dbt_vars(settings.as_of_for(context)))


def _build_args(context: dg.AssetExecutionContext, settings: SettingsResource) -> list[str]:
    """The run's ``dbt build``: its vars, and ``--full-refresh`` when the run asks for it."""
    return [*_build_args_with(_run_vars(context, settings)), *full_refresh_args(context, settings)]


def full_refresh_args(context: dg.AssetExecutionContext, settings: SettingsResource) -> list[str]:
    """``--full-refresh`` when the run has the ``csw/full_refresh`` tag (``csw run --full-refresh``):
    every incremental model is rebuilt from its sources (the daily facts from the lake); models
    configured ``full_refresh: false`` (the backtest history) keep their rows."""
    return ["--full-refresh"] if settings.full_refresh_for(context) else []


def _before_incremental(context: dg.AssetExecutionContext) -> list[str]:
    """Extra args for the part of ``dbt_models`` that runs before the incremental models.

    Dagster runs that part as a subset (``--select`` of its models): dbt's eager indirect
    selection would also pick tests with a parent built only after the incremental models (the
    singular test of fct_account_health that also reads dim_accounts). They run in the later part.
    """
    if context.selected_asset_keys & _downstream_of_incremental():
        return []
    return ["--exclude", f"{INCREMENTAL_SELECTION}+,resource_type:test"]


@cache
def _downstream_of_incremental() -> frozenset[dg.AssetKey]:
    """The asset keys of the models built from the daily facts."""
    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    nodes, children = manifest["nodes"], manifest["child_map"]
    todo = [uid for uid, n in nodes.items() if DAILY_FACT_TAG in n.get("tags", [])]
    seen: set[str] = set()
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    translator = WarehouseDbtTranslator()
    return frozenset(
        translator.get_asset_key(nodes[uid])
        for uid in seen
        if uid in nodes and nodes[uid]["resource_type"] == "model"
    )


# --- Skipping a dbt step whose inputs did not change -------------------------------------------

#: The digest of the inputs each dbt step (a selection of models) last built from.
VERSIONS_TABLE = "raw.asset_versions"
VERSIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (
    step VARCHAR PRIMARY KEY,
    input_digest VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    built_at TIMESTAMP NOT NULL,
    models VARCHAR
)"""
SKIPPED = "skipped: inputs unchanged"
_BUILT_TYPES = frozenset({"model", "seed", "snapshot"})


@dataclass(frozen=True)
class StepInputs:
    """What a dbt step builds from: ``digest`` of the raw tables' data versions, the vars its
    models read and the code versions of its models, their upstream models and their tests."""

    step: str
    digest: str
    #: Selected models whose relation is not in the warehouse (dropped, or never built).
    missing: tuple[str, ...]
    keys: tuple[dg.AssetKey, ...]
    #: The unique ids of the step's models.
    models: tuple[str, ...] = ()


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@cache
def _unique_ids_by_key() -> Mapping[dg.AssetKey, str]:
    translator = WarehouseDbtTranslator()
    return {
        translator.get_asset_key(node): uid
        for uid, node in loaded_manifest()["nodes"].items()
        if node["resource_type"] in _BUILT_TYPES
    }


@cache
def _depths() -> Mapping[str, int]:
    """unique_id -> the length of its longest path from a source: a topological order (Dagster
    wants a multi-asset's outputs in one)."""
    parents = loaded_manifest()["parent_map"]
    depth: dict[str, int] = {}
    for uid in parents:
        todo = [uid]
        while todo:
            current = todo[-1]
            pending = [p for p in parents.get(current, []) if p not in depth]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            depth[current] = 1 + max((depth[p] for p in parents.get(current, [])), default=-1)
    return depth


def _ancestors(parents: Mapping[str, list[str]], uids: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(uids)
    while todo:
        for parent in parents.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _relations(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()"
        " UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
    ).fetchall()
    return {(schema, name) for schema, name in rows}


def _source_versions(
    con: duckdb.DuckDBPyConnection,
    sources: Iterable[Mapping[str, Any]],
    existing: set[tuple[str, str]],
) -> dict[str, str]:
    """``<source>/<table>`` -> its data version: a contract table's from the ingestion manifest
    (``run_state.raw_data_versions``); another source's (the churn model's fits, small) from its
    rows; "absent" when it does not exist."""
    loaded = raw_data_versions(con)
    versions = {}
    for source in sources:
        key = f"{source['source_name']}/{source['name']}"
        schema, table = source["schema"], source.get("identifier") or source["name"]
        if key in loaded:
            versions[key] = loaded[key]
        elif (schema, table) in existing:
            row = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM "{schema}"."{table}" t'
            ).fetchone()
            versions[key] = _sha(list(row or ()))
        else:
            versions[key] = "absent"
    return dict(sorted(versions.items()))


def step_inputs(
    selected: Iterable[dg.AssetKey], vars_: Mapping[str, Any], con: duckdb.DuckDBPyConnection
) -> StepInputs:
    """The inputs of a dbt step that builds the ``selected`` models, read from the warehouse."""
    manifest = loaded_manifest()
    nodes, sources = manifest["nodes"], manifest["sources"]
    by_key = _unique_ids_by_key()
    depth = _depths()
    keys = tuple(sorted((k for k in selected if k in by_key), key=lambda k: (depth[by_key[k]], k)))
    uids = sorted(by_key[k] for k in keys)
    upstream = _ancestors(manifest["parent_map"], uids)
    tests = {c for u in uids for c in manifest["child_map"].get(u, []) if c.startswith("test.")}
    coded = sorted((set(uids) | upstream | tests) & set(nodes))
    used = [vars_used(manifest, nodes[u]) for u in coded]
    names = set(vars_) if any(v is None for v in used) else set().union(*used)
    existing = _relations(con)
    raw = _source_versions(con, [sources[u] for u in upstream if u in sources], existing)
    missing = tuple(
        nodes[u]["name"]
        for u in uids
        if nodes[u]["config"].get("materialized") != "ephemeral"
        and (nodes[u]["schema"], nodes[u]["alias"]) not in existing
    )
    versions = code_versions()
    digest = _sha(
        {
            "code": {u: versions.get(u, "") for u in coded},
            "vars": {n: vars_.get(n) for n in sorted(names - {"code_versions"})},
            "raw": raw,
        }
    )
    return StepInputs(_sha(uids)[:16], digest, missing, keys, tuple(uids))


@dataclass(frozen=True)
class LastBuild:
    input_digest: str
    run_id: str
    built_at: datetime


def _last_build(con: duckdb.DuckDBPyConnection, step: str) -> LastBuild | None:
    if not relation_exists(con, "raw", "asset_versions"):
        return None
    row = con.execute(
        f"SELECT input_digest, run_id, built_at FROM {VERSIONS_TABLE} WHERE step = ?", [step]
    ).fetchone()
    return LastBuild(*row) if row else None


def _remember(warehouse: str, inputs: StepInputs, run_id: str) -> None:
    """Record what the step built from, and forget every other step that holds one of its
    models: a subset rebuilt from the UI (another as-of date) changed what that step built."""
    models = json.dumps(sorted(inputs.models))
    with duckdb.connect(warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(VERSIONS_DDL)
        con.execute(f"ALTER TABLE {VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS models VARCHAR")
        con.execute(
            f"DELETE FROM {VERSIONS_TABLE} WHERE step <> ? AND (models IS NULL"
            " OR len(list_intersect(CAST(models AS VARCHAR[]), CAST(? AS VARCHAR[]))) > 0)",
            [inputs.step, models],
        )
        con.execute(
            f"INSERT OR REPLACE INTO {VERSIONS_TABLE}"
            " (step, input_digest, run_id, built_at, models) VALUES (?, ?, ?, ?, ?)",
            [inputs.step, inputs.digest, run_id, datetime.now(UTC).replace(tzinfo=None), models],
        )


def _skipped(inputs: StepInputs, last: LastBuild) -> Iterator[Any]:
    """Per model: an observation saying why dbt did not run, and a materialisation marked
    skipped so the steps downstream still run and decide for themselves (a step with a missing
    upstream output would be skipped by Dagster whatever its other inputs)."""
    versions, by_key = code_versions(), _unique_ids_by_key()
    for key in inputs.keys:
        metadata = {
            # dagster-dbt's key for the node: the progress line counts each node once
            "unique_id": by_key[key],
            "skipped": SKIPPED,
            "input_digest": inputs.digest[:16],
            "code_version": versions.get(by_key[key], "")[:16],
            "unchanged_since_run": last.run_id,
            "built_at": last.built_at.isoformat(timespec="seconds"),
        }
        yield dg.AssetObservation(asset_key=key, description=SKIPPED, metadata=metadata)
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _build_or_skip(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: SettingsResource,
    extra_args: Sequence[str] = (),
) -> Iterator[Any]:
    """``dbt build`` of the step's models, unless what they build from is what they were last
    built from (and the run is no full refresh, and every model's relation exists)."""
    vars_ = _run_vars(context, settings)
    refresh = full_refresh_args(context, settings)
    by_key = _unique_ids_by_key()
    incremental = refreshable_incremental_models(
        loaded_manifest(), [by_key[k] for k in context.selected_asset_keys if k in by_key]
    )
    with duckdb.connect(settings.warehouse_path) as con:
        inputs = step_inputs(context.selected_asset_keys, vars_, con)
        last = _last_build(con, inputs.step)
        recoded = changed_code(con, incremental)
    if not refresh and not inputs.missing and last and last.input_digest == inputs.digest:
        context.log.info(f"{SKIPPED} since run {last.run_id} ({inputs.digest[:16]})")
        yield from _skipped(inputs, last)
        return
    if recoded and not refresh:
        context.log.info(
            f"rebuilding in full: {', '.join(recoded)} last built by other or unrecorded code"
            " (its own or a model's upstream)"
        )
        refresh = ["--full-refresh"]
    args = [*_build_args_with(vars_), *extra_args, *refresh]
    with settings.dbt_environment_applied():
        yield from _streamed(dbt.cli(args, context=context), settings.dbt_target_keep)
    _remember(settings.warehouse_path, inputs, context.run_id)
    with duckdb.connect(settings.warehouse_path) as con:
        remember_code(con, incremental)


def _streamed(invocation: DbtCliInvocation, keep: int = 10) -> Iterator[Any]:
    """The invocation's events; then its parse state becomes the project's, for the next call.

    dagster-dbt gives every invocation its own target folder and copies the project target's
    ``partial_parse.msgpack`` into it. That file comes from ``dbt parse`` without the run's vars
    and environment, so dbt parsed the whole project again on each of the run's three ``dbt
    build`` calls (about 3 s each). The file written by this call matches the next call of the
    same run; dbt checks vars, profile and files before using it and parses in full if they
    differ, so a stale copy only costs the parse it would have cost anyway. Replaced atomically:
    another run may copy it at the same time.

    The call's folder is marked as running while dbt runs; afterwards, whether dbt succeeded or
    not, the call folders beyond the newest ``keep`` (``settings.dbt_target_keep``) and the
    parse-state temp files of killed processes are removed (``target_cleanup``).
    """
    running = target_cleanup.mark_running(invocation.target_path)
    try:
        yield from invocation.stream()
        written = invocation.target_path / PARTIAL_PARSE_FILE
        if written.is_file():
            project = dbt_project()
            shared = project.project_dir / project.target_path / PARTIAL_PARSE_FILE
            shared.parent.mkdir(parents=True, exist_ok=True)
            staged = shared.with_name(f".{PARTIAL_PARSE_FILE}.{os.getpid()}.tmp")
            shutil.copyfile(written, staged)
            staged.replace(shared)
    finally:
        running.unlink(missing_ok=True)
        _tidy_target(invocation.target_path.parent, keep)


def _tidy_target(calls: Path, keep: int) -> None:
    """Prune old call folders and stale parse-state temps; housekeeping never fails a build."""
    project = dbt_project()
    try:
        target_cleanup.prune_call_folders(calls, keep)
        target_cleanup.remove_stale_parse_temps(project.project_dir / project.target_path)
    except OSError as exc:
        dg.get_dagster_logger().warning(f"could not prune dbt's target folder {calls}: {exc}")


@cache
def build_dbt_assets() -> list[dg.AssetsDefinition]:
    """The ``@dbt_assets`` definitions: the incremental models, and every other model.

    Built on first use because they need the manifest. Both write the warehouse, so both are in
    the writer pool. The other models sit on both sides of the incremental ones (staging before,
    the rest after); Dagster runs them as subsets around the incremental step.
    """
    manifest, project = prepared_manifest(), dbt_project()
    translator = WarehouseDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    )

    @dbt_assets(
        manifest=manifest,
        project=project,
        select=INCREMENTAL_SELECTION,
        dagster_dbt_translator=translator,
        name="dbt_incremental_models",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def dbt_incremental_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
    ) -> Iterator[Any]:
        yield from _build_or_skip(context, dbt, settings)

    @dbt_assets(
        manifest=manifest,
        project=project,
        exclude=INCREMENTAL_SELECTION,
        dagster_dbt_translator=translator,
        name="dbt_models",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
    ) -> Iterator[Any]:
        yield from _build_or_skip(context, dbt, settings, _before_incremental(context))

    return [dbt_incremental_models, dbt_models]


def dbt_resource() -> DbtCliResource:
    # The dbt next to this interpreter, so a run works without the virtualenv on PATH.
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(DBT_EXECUTABLE))
