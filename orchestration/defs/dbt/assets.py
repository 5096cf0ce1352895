"""dbt models as Dagster assets, with dbt tests as asset checks.

Sources map onto the ingestion assets through ``meta.dagster.asset_key`` in
``dbt_project/models/staging/_sources.yml``, so lineage runs from extract file to published list.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    dbt_assets,
)

from metrics.dbt_vars import (
    DEFAULT_CHURN_HORIZON_DAYS,
    DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
    dbt_vars,
)
from metrics.health_config import HealthConfig
from orchestration.defs.dbt import target_cleanup
from orchestration.defs.dbt.project import dbt_project, prepared_manifest
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

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


#: The incremental models (the daily event fact) are their own ``@dbt_assets`` (one step of a
#: run that can be selected and re-run on its own), the rest another, as in
#: dagster-io/dagster-open-platform. docs/health-model.md "Incremental event facts".
INCREMENTAL_SELECTION = "config.materialized:incremental"


def production_build_args(
    as_of: date,
    config: HealthConfig | None = None,
    max_unmapped_event_share: float = DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
    churn_horizon_days: int = DEFAULT_CHURN_HORIZON_DAYS,
) -> list[str]:
    """``dbt build`` as the pipeline runs it as of ``as_of`` with the health model ``config``
    (the shipped default when None); the benchmark's dbt step and ``csw backtest --candidate``
    too."""
    return _build_args_with(dbt_vars(as_of, config, max_unmapped_event_share, churn_horizon_days))


def _build_args_with(vars_: dict[str, Any]) -> list[str]:
    """``dbt build`` with ``vars_``.

    Unit tests pin their own copy of the configuration (tests/fixtures/health_model.yaml) and
    hand-made inputs: they run in CI (pytest), not against production data, where a tuned
    health model would fail them. Every call passes the same vars, so a run sees one reporting
    date and one configuration.
    """
    return ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(vars_)]


def _build_args(context: dg.AssetExecutionContext, settings: SettingsResource) -> list[str]:
    """The run's vars: its reporting date and the configured health model (``health_model``)."""
    return _build_args_with(settings.dbt_vars(settings.as_of_for(context)))


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
    """The asset keys of the models built from the incremental models."""
    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    nodes, children = manifest["nodes"], manifest["child_map"]
    todo = [uid for uid, n in nodes.items() if n["config"].get("materialized") == "incremental"]
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
        with settings.dbt_environment_applied():
            yield from _streamed(
                dbt.cli(_build_args(context, settings), context=context),
                settings.dbt_target_keep,
            )

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
        args = [*_build_args(context, settings), *_before_incremental(context)]
        with settings.dbt_environment_applied():
            yield from _streamed(dbt.cli(args, context=context), settings.dbt_target_keep)

    return [dbt_incremental_models, dbt_models]


def dbt_resource() -> DbtCliResource:
    # The dbt next to this interpreter, so a run works without the virtualenv on PATH.
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(DBT_EXECUTABLE))
