"""The one ``Definitions`` object: ingestion assets, dbt assets and checks, jobs, resources.

``dagster dev`` and ``dagster definitions validate`` load :func:`defs` (see ``[tool.dagster]`` in
pyproject.toml); ``csw`` builds the same definitions with its own settings.
"""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings, load_settings

PIPELINE_JOB = "pipeline"


def build_definitions(settings: Settings) -> dg.Definitions:
    from orchestration.defs.dbt.assets import build_dbt_assets, dbt_resource
    from orchestration.defs.ingestion.assets import ingestion_asset_checks, ingestion_assets
    from orchestration.defs.settings_resource import SettingsResource
    from orchestration.resources import duckdb_resource

    pipeline = dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest new extracts, build and test every dbt model.",
    )
    return dg.Definitions(
        assets=[*ingestion_assets, build_dbt_assets()],
        asset_checks=[*ingestion_asset_checks],
        jobs=[pipeline],
        resources={
            "duckdb": duckdb_resource(settings),
            "dbt": dbt_resource(),
            "settings": SettingsResource.from_settings(settings),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
