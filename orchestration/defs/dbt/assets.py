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
from functools import cache, cached_property
from importlib import metadata
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
from packaging import version

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


#: The daily facts (incremental, built from the events lake; docs/health-model.md "Incremental
#: event facts").
DAILY_FACT_TAG = "daily_fact"
#: The environment variable naming (comma-separated) the incremental models to rebuild in full in
#: this call (code_refresh.py; read by macros/should_full_refresh.sql): dbt's own
#: ``--full-refresh`` is for every model at once. Not a var, so ``--vars`` stay the same from one
#: run to the next and dbt keeps its parse state.
FULL_REFRESH_MODELS_ENVIRONMENT = "CSW_FULL_REFRESH_MODELS"
#: Vars that say how to build, not what: left out of a model's input digest.
_BOOKKEEPING_VARS = frozenset({"code_versions"})


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


#: The reporting date travels to the pipeline's dbt call as this environment variable, which
#: macros/as_of_date.sql reads when var ``as_of`` is not set.
AS_OF_ENVIRONMENT = "CSW_AS_OF"


def vars_and_environment(vars_: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's vars split into those passed as ``--vars`` and the environment of the call:
    the reporting date goes to ``CSW_AS_OF``. dbt parses the whole project again whenever
    ``--vars`` differ from its last call (about 5 s), but re-parses only the files that read an
    environment variable whose value changed; the daily run's vars then stay the same from day
    to day."""
    passed = {k: v for k, v in vars_.items() if k != "as_of"}
    as_of = vars_.get("as_of")
    return passed, ({AS_OF_ENVIRONMENT: str(as_of)} if as_of is not None else {})


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


def run_invocation(
    vars_: Mapping[str, Any], refresh: Sequence[str], exclude: Sequence[str], recoded: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """The pipeline's ``dbt build``, and the environment of the call: the run's vars but the
    date (``vars_and_environment``), the models left out, ``--full-refresh`` when the run asks
    for it, the incremental models to rebuild in full."""
    passed, environment = vars_and_environment(vars_)
    environment[FULL_REFRESH_MODELS_ENVIRONMENT] = ",".join(recoded)
    excluded = ["--exclude", " ".join(_selectors(exclude))] if exclude else []
    return [*_build_args_with(passed), *excluded, *refresh], environment


def _build_args(
    context: dg.AssetExecutionContext, settings: SettingsResource
) -> tuple[list[str], dict[str, str]]:
    """The run's ``dbt build`` with every model: what :func:`run_invocation` makes of its vars."""
    return run_invocation(
        _run_vars(context, settings), full_refresh_args(context, settings), (), ()
    )


def full_refresh_args(context: dg.AssetExecutionContext, settings: SettingsResource) -> list[str]:
    """``--full-refresh`` when the run has the ``csw/full_refresh`` tag (``csw run --full-refresh``):
    every incremental model is rebuilt from its sources (the daily facts from the lake); models
    configured ``full_refresh: false`` (the backtest history) keep their rows."""
    return ["--full-refresh"] if settings.full_refresh_for(context) else []


# --- Skipping the models whose inputs did not change -----------------------------------------

#: The digest of the inputs each model (by unique id) was last built from, and by which run.
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
#: dbt statuses after which a node's relation holds what its inputs make and its tests passed.
_BUILT_OK = frozenset({"success"})
_TEST_OK = frozenset({"pass", "warn"})


@dataclass(frozen=True)
class ModelInputs:
    """What the selected models build from, per unique id: ``digests`` of their code and tests,
    the vars they read, the raw tables they read and their parent models' digests (so a change
    anywhere upstream reaches every model below it); ``missing``, the selected models whose
    relation is not in the warehouse (dropped, or never built)."""

    digests: Mapping[str, str]
    missing: frozenset[str]
    keys: Mapping[str, dg.AssetKey]


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
    """unique_id -> the length of its longest path from a source: a topological order."""
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
    """source unique id -> its data version: a contract table's from the ingestion manifest
    (``run_state.raw_data_versions``); another source's (the churn model's fits, small) from its
    rows; "absent" when it does not exist."""
    loaded = raw_data_versions(con)
    versions = {}
    for source in sources:
        key = f"{source['source_name']}/{source['name']}"
        schema, table = source["schema"], source.get("identifier") or source["name"]
        if key in loaded:
            versions[source["unique_id"]] = loaded[key]
        elif (schema, table) in existing:
            row = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM "{schema}"."{table}" t'
            ).fetchone()
            versions[source["unique_id"]] = _sha(list(row or ()))
        else:
            versions[source["unique_id"]] = "absent"
    return versions


def model_inputs(
    selected: Iterable[dg.AssetKey],
    vars_: Mapping[str, Any],
    con: duckdb.DuckDBPyConnection,
    recorded: Mapping[str, str] | None = None,
) -> ModelInputs:
    """The input digest of each ``selected`` model, read from the warehouse.

    A model's digest covers its code version and its tests', the vars read by its code and by
    its tests (all of them when one is read by a computed name), the data versions of the raw
    tables it reads, and a digest per parent model: a Merkle chain, so what changed in one raw
    table reaches exactly the models built from it. A selected parent (or an ephemeral one,
    compiled into its child) counts with the digest computed here; a parent outside the
    selection (a subset run: the churn-model job, a mart materialised from the UI) with the
    digest it was last built from (``recorded``, by unique id), since that is what its table
    holds.
    """
    manifest = loaded_manifest()
    nodes, sources = manifest["nodes"], manifest["sources"]
    parents, children = manifest["parent_map"], manifest["child_map"]
    by_key = _unique_ids_by_key()
    keys = {by_key[k]: k for k in selected if k in by_key}
    recorded = recorded or {}
    existing = _relations(con)

    def computed(uid: str) -> bool:
        return uid in keys or nodes[uid]["config"].get("materialized") == "ephemeral"

    todo = [u for u in keys]
    within: set[str] = set()
    while todo:  # the selected models and the ephemeral models they read through
        uid = todo.pop()
        if uid not in within:
            within.add(uid)
            todo.extend(p for p in parents.get(uid, []) if p in nodes and computed(p))
    read = {p for u in within for p in parents.get(u, []) if p in sources}
    raw = _source_versions(con, [sources[p] for p in sorted(read)], existing)
    versions = code_versions()
    digests: dict[str, str] = {}
    for uid in sorted(within, key=lambda u: (_depths().get(u, 0), u)):
        tests = sorted(c for c in children.get(uid, []) if c.startswith("test."))
        used = [vars_used(manifest, nodes[u]) for u in [uid, *tests] if u in nodes]
        names = set(vars_) if any(u is None for u in used) else set().union(*used)
        digests[uid] = _sha(
            {
                "code": {u: versions.get(u, "") for u in [uid, *tests]},
                "vars": {n: vars_.get(n) for n in sorted(names - _BOOKKEEPING_VARS)},
                "raw": {p: raw.get(p, "") for p in parents.get(uid, []) if p in sources},
                "parents": {
                    p: digests[p] if computed(p) else recorded.get(p, "unrecorded")
                    for p in parents.get(uid, [])
                    if p in nodes
                },
            }
        )
    missing = frozenset(
        uid
        for uid in keys
        if nodes[uid]["config"].get("materialized") != "ephemeral"
        and (nodes[uid]["schema"], nodes[uid]["alias"]) not in existing
    )
    return ModelInputs({u: digests[u] for u in keys}, missing, keys)


@dataclass(frozen=True)
class LastBuild:
    input_digest: str
    run_id: str
    built_at: datetime


def _last_builds(con: duckdb.DuckDBPyConnection) -> dict[str, LastBuild]:
    if not relation_exists(con, "raw", "asset_versions"):
        return {}
    rows = con.execute(f"SELECT step, input_digest, run_id, built_at FROM {VERSIONS_TABLE}")
    return {step: LastBuild(*rest) for step, *rest in rows.fetchall()}


def _unchanged(inputs: ModelInputs, last: Mapping[str, LastBuild]) -> dict[str, LastBuild]:
    """The models whose relation exists and whose inputs are those they were last built from."""
    return {
        uid: last[uid]
        for uid, digest in inputs.digests.items()
        if uid not in inputs.missing and uid in last and last[uid].input_digest == digest
    }


def _forget(warehouse: str, uids: Iterable[str]) -> None:
    """Before dbt runs: the models about to be built no longer hold what they were built from
    (a run stopped halfway leaves them to be built again)."""
    with duckdb.connect(warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(VERSIONS_DDL)
        con.execute(f"ALTER TABLE {VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS models VARCHAR")
        # rows of the step-per-selection format before per-model records: never matched again
        con.execute(
            f"DELETE FROM {VERSIONS_TABLE}"
            " WHERE split_part(step, '.', 1) NOT IN ('model', 'seed', 'snapshot')"
        )
        forgotten = [[u] for u in sorted(uids)]
        if forgotten:
            con.executemany(f"DELETE FROM {VERSIONS_TABLE} WHERE step = ?", forgotten)


def _remember(warehouse: str, digests: Mapping[str, str], run_id: str) -> None:
    """Record what each of ``digests``' models was built from."""
    if not digests:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    with duckdb.connect(warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(VERSIONS_DDL)
        con.executemany(
            f"INSERT OR REPLACE INTO {VERSIONS_TABLE}"
            " (step, input_digest, run_id, built_at, models) VALUES (?, ?, ?, ?, NULL)",
            [[uid, digest, run_id, now] for uid, digest in sorted(digests.items())],
        )


def built_cleanly(run_results: Mapping[str, Any], manifest: Mapping[str, Any]) -> set[str]:
    """The models of ``run_results`` that dbt built and whose tests all ran in the same call and
    passed (or warned): a model with a failed test, or a test that did not run (dbt stopped,
    or an upstream error skipped it), is built again next time, so the test runs again."""
    statuses = {r["unique_id"]: r["status"] for r in run_results.get("results", [])}
    children = manifest.get("child_map", {})

    def tests_passed(uid: str) -> bool:
        tests = [c for c in children.get(uid, []) if c.startswith("test.")]
        return all(statuses.get(t) in _TEST_OK for t in tests)

    return {
        uid
        for uid, status in statuses.items()
        if uid.split(".", 1)[0] in _BUILT_TYPES and status in _BUILT_OK and tests_passed(uid)
    }


def _with_tests_partners(to_build: set[str], selected: Iterable[str]) -> set[str]:
    """``to_build`` plus the selected models that share a test with one of them.

    dbt drops a test when one of its parents is excluded, so a relationships test between a
    rebuilt fact and an unchanged dimension would never run; building the dimension again
    (its inputs are unchanged, so its rows are too) keeps the test in the call."""
    manifest = loaded_manifest()
    selected = set(selected)
    partners: set[str] = set()
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] == "test":
            linked = [p for p in manifest["parent_map"].get(uid, []) if p in selected]
            if len(linked) > 1 and to_build.intersection(linked):
                partners.update(linked)
    return to_build | partners


def _with_descendants(to_build: set[str], selected: Iterable[str]) -> set[str]:
    """``to_build`` plus every selected model downstream of one of them: a model left out has
    no ancestor built in the call, so its skipped result can come before dbt's outputs, in the
    topological order Dagster wants of a multi-asset's outputs (a partner rebuilt for a test,
    above, would otherwise come after its skipped child)."""
    children, selected = loaded_manifest()["child_map"], set(selected)
    found, todo = set(to_build), list(to_build)
    while todo:
        for child in children.get(todo.pop(), []):
            if child in selected and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _skipped(
    keys: Mapping[str, dg.AssetKey], unchanged: Mapping[str, LastBuild], digests: Mapping[str, str]
) -> Iterator[Any]:
    """Per unchanged model: an observation saying why dbt did not build it, and a
    materialisation marked skipped, so the assets downstream still run and decide for
    themselves."""
    versions = code_versions()
    for uid in sorted(unchanged, key=lambda u: _depths().get(u, 0)):
        last = unchanged[uid]
        metadata = {
            # dagster-dbt's key for the node: the progress line counts each node once
            "unique_id": uid,
            "skipped": SKIPPED,
            "input_digest": digests[uid][:16],
            "code_version": versions.get(uid, "")[:16],
            "unchanged_since_run": last.run_id,
            "built_at": last.built_at.isoformat(timespec="seconds"),
        }
        yield dg.AssetObservation(asset_key=keys[uid], description=SKIPPED, metadata=metadata)
        yield dg.MaterializeResult(asset_key=keys[uid], metadata=metadata)


def _checks_only(context: dg.AssetExecutionContext) -> bool:
    """A run of dbt tests alone (asset checks selected in the UI without their models)."""
    return not context.selected_asset_keys and bool(context.selected_asset_check_keys)


def _selectors(uids: Iterable[str]) -> list[str]:
    """dbt's selectors for models by unique id (``fqn`` paths, as dagster-dbt writes them)."""
    nodes = loaded_manifest()["nodes"]
    return [".".join(nodes[u]["fqn"]) for u in sorted(uids)]


#: Issue 17 in progress: the revenue models build on Spark (docs/engines.md), the pipeline not yet.
SPARK_NOT_IN_PIPELINE = (
    "CSW_ENGINE=spark: the pipeline (`csw run`, Dagster) builds on DuckDB only so far. On Spark the"
    " revenue models build and match DuckDB's to the cent (docs/engines.md, `make test-spark`);"
    " the customer-success models do not run there yet. Unset CSW_ENGINE (or set it to duckdb)."
)


def _build_or_skip(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
) -> Iterator[Any]:
    """One ``dbt build`` of the selected models whose inputs changed since they were last built
    (all of them in a full refresh, or when a relation is missing), and of the models that share
    a test with them; the others are reported skipped and left out with their tests (dbt drops a
    test one of whose parents is excluded, and nothing such a test reads has changed)."""
    if settings.engine != "duckdb":
        raise dg.Failure(description=SPARK_NOT_IN_PIPELINE)
    vars_ = _run_vars(context, settings)
    refresh = full_refresh_args(context, settings)
    with duckdb.connect(settings.warehouse_path) as con:
        last = _last_builds(con)
        recorded = {uid: build.input_digest for uid, build in last.items()}
        inputs = model_inputs(context.selected_asset_keys, vars_, con, recorded)
        unchanged = {} if refresh else _unchanged(inputs, last)
        changed = _with_descendants(
            _with_tests_partners(set(inputs.digests) - set(unchanged), inputs.digests),
            inputs.digests,
        )
        unchanged = {u: b for u, b in unchanged.items() if u not in changed}
        to_build = sorted(changed)
        incremental = refreshable_incremental_models(loaded_manifest(), to_build)
        recoded = [] if refresh else changed_code(con, incremental)
    yield from _skipped(inputs.keys, unchanged, inputs.digests)
    if not to_build and not _checks_only(context):
        context.log.info(f"{SKIPPED}: every selected model")
        return
    if unchanged:
        context.log.info(f"{SKIPPED}: {len(unchanged)} models; building {len(to_build)}")
    if recoded:
        context.log.info(
            f"rebuilding in full: {', '.join(recoded)} last built by other or unrecorded code"
            " (its own or a model's upstream)"
        )
    args, environment = run_invocation(vars_, refresh, list(unchanged), recoded)
    _forget(settings.warehouse_path, to_build)
    with settings.dbt_environment_applied(environment):
        invocation = dbt.cli(args, context=context)
        try:
            yield from _streamed(invocation, settings.dbt_target_keep)
        finally:
            _record_built(settings.warehouse_path, invocation, inputs, incremental, context.run_id)


def _record_built(
    warehouse: str,
    invocation: DbtCliInvocation,
    inputs: ModelInputs,
    incremental: Mapping[str, str],
    run_id: str,
) -> None:
    """After dbt, succeeded or not: the input digests of the models it built cleanly, and the
    code versions of the incremental ones among them."""
    try:
        results = invocation.get_artifact("run_results.json")
    except (OSError, ValueError):  # dbt stopped before writing its results: nothing is recorded
        return
    built = built_cleanly(results, loaded_manifest()) & set(inputs.digests)
    _remember(warehouse, {u: inputs.digests[u] for u in built}, run_id)
    names = {loaded_manifest()["nodes"][u]["name"] for u in built}
    with duckdb.connect(warehouse) as con:
        remember_code(con, {m: v for m, v in incremental.items() if m in names})


def _streamed(invocation: DbtCliInvocation, keep: int = 10) -> Iterator[Any]:
    """The invocation's events; then its parse state becomes the project's, for the next call.

    dagster-dbt gives every invocation its own target folder and copies the project target's
    ``partial_parse.msgpack`` into it. That file comes from ``dbt parse`` without the run's vars
    and environment, so dbt would parse the whole project again on every call (about 5 s at M).
    The file written by this call matches the next run's call (its vars are the same from day to
    day; the date is an environment variable); dbt checks vars, profile and files before using
    it and parses in full if they differ, so a stale copy only costs the parse it would have
    cost anyway. Replaced atomically:
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
    """The ``@dbt_assets`` definition of every model, seed and test: one step of a run, one
    ``dbt build`` (each call costs dbt's start-up and parse, seconds before any model).

    Built on first use because it needs the manifest. It writes the warehouse, so it is in the
    writer pool.
    """
    manifest, project = prepared_manifest(), dbt_project()
    translator = WarehouseDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    )

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name="dbt_models",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
    ) -> Iterator[Any]:
        yield from _build_or_skip(context, dbt, settings)

    return [dbt_models]


class WarehouseDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the 3.7 s it spends before each dbt call: it runs
    ``dbt --version`` in a subprocess (2 s) to learn the version of the executable, and builds a
    dbt adapter in this process (1.7 s), used only to fetch column metadata and row counts,
    which these assets do not ask for. The executable is the dbt of this interpreter
    (``DBT_EXECUTABLE``), so its version is the installed dbt-core's."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) != DBT_EXECUTABLE:
            return super()._cli_version
        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


def dbt_resource() -> DbtCliResource:
    # The dbt next to this interpreter, so a run works without the virtualenv on PATH.
    return WarehouseDbtCliResource(project_dir=dbt_project(), dbt_executable=str(DBT_EXECUTABLE))
