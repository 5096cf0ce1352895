"""dbt models as Dagster assets, with dbt tests as asset checks.

Sources map onto the ingestion assets through ``meta.dagster.asset_key`` in
``dbt_project/models/staging/_sources.yml``, so lineage runs from extract file to published list.
"""

import json
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from metrics.dbt_vars import dbt_vars
from orchestration.defs.dbt.project import dbt_project, prepared_manifest
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Models are keyed ``<layer>/<model>`` (``marts/fct_mrr_monthly``) and grouped by layer."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in {"model", "seed", "snapshot"}:
            return dg.AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in {"model", "seed", "snapshot"}:
            return _layer(dbt_resource_props)
        return super().get_group_name(dbt_resource_props)


def _layer(props: Mapping[str, Any]) -> str:
    """The folder under ``models/`` (staging, intermediate, marts), or the resource type."""
    fqn = props.get("fqn", [])
    return fqn[1] if props["resource_type"] == "model" and len(fqn) > 2 else props["resource_type"]


@cache
def build_dbt_assets() -> dg.AssetsDefinition:
    """The ``@dbt_assets`` definition; built on first use because it needs the manifest."""

    @dbt_assets(
        manifest=prepared_manifest(),
        project=dbt_project(),
        dagster_dbt_translator=WarehouseDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
        name="dbt_models",
        pool=WAREHOUSE_WRITER_POOL,
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
    ) -> Iterator[Any]:
        # Unit tests pin the default configuration and hand-made inputs: they run in CI (pytest),
        # not against production data, where a tuned health_model.yaml would fail them.
        args = [
            "build",
            "--exclude-resource-type",
            "unit_test",
            "--vars",
            json.dumps(dbt_vars(settings.as_of_for(context))),
        ]
        with settings.dbt_environment_applied():
            yield from dbt.cli(args, context=context).stream()

    return dbt_models


def dbt_resource() -> DbtCliResource:
    # The dbt next to this interpreter, so a run works without the virtualenv on PATH.
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(DBT_EXECUTABLE))
