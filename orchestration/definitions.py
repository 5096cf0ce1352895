"""The one ``Definitions`` object: adapter assets (when ``CSW_ADAPTERS`` configures any),
ingestion assets, dbt assets and checks, jobs, resources.

``dagster dev`` and ``dagster definitions validate`` load :func:`defs` (see ``[tool.dagster]`` in
pyproject.toml); ``csw`` builds the same definitions with its own settings.

Loading them reads and validates the health-model configuration (``CSW_HEALTH_MODEL``, else the
shipped ``metrics/config/health_model.yaml``), so a bad or missing file fails the code location
with its message instead of the first run; and every asset gets an owner (``docs/operations.md``, "Owners").
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs.jobs import PIPELINE_JOB
from orchestration.settings import Settings, load_settings

__all__ = ["PIPELINE_JOB", "build_definitions", "defs"]


def with_default_owner(spec: dg.AssetSpec) -> dg.AssetSpec:
    """An asset without an owner belongs to data engineering (publication, and any asset added
    later without one); dbt models get theirs from the translator, raw tables from ingestion."""
    from orchestration.defs.dbt.assets import DATA_ENGINEERING

    return spec if spec.owners else spec.replace_attributes(owners=[DATA_ENGINEERING])


def build_definitions(settings: Settings) -> dg.Definitions:
    from metrics.health_config import load_health_config
    from orchestration.defs.alerts import run_failure_alert
    from orchestration.defs.churn_model import churn_model_asset
    from orchestration.defs.dbt.assets import build_dbt_assets, dbt_resource
    from orchestration.defs.ingestion.assets import ingestion_asset_checks
    from orchestration.defs.ingestion.freshness import freshness_checks
    from orchestration.defs.ingestion.sensors import landing_sensor
    from orchestration.defs.jobs import build_jobs
    from orchestration.defs.publishing.assets import build_publishing_assets
    from orchestration.defs.schedules import build_schedules
    from orchestration.resources import warehouse_resources

    # the configured model (settings.health_model, else the shipped one); raises
    # HealthConfigError naming the file, field and value
    load_health_config(settings.health_model)
    assets = [
        *_adapters_and_ingestion(settings),
        *build_dbt_assets(),
        churn_model_asset,
        *build_publishing_assets(),
    ]
    return dg.Definitions(
        assets=dg.map_asset_specs(with_default_owner, assets),
        asset_checks=[*ingestion_asset_checks, *freshness_checks],
        jobs=build_jobs(),
        schedules=build_schedules(settings.timezone),
        sensors=[landing_sensor, run_failure_alert],
        resources={**warehouse_resources(settings), "dbt": dbt_resource()},
    )


def _adapters_and_ingestion(settings: Settings) -> list[dg.AssetsDefinition]:
    """The ingestion assets, after the adapters CSW_ADAPTERS configures (read and validated
    now: AdaptersConfigError names the file and every problem); unset: ingestion alone."""
    from orchestration.defs.ingestion.assets import ingestion_assets

    if settings.adapters is None:
        return list(ingestion_assets)
    from orchestration.defs.adapters.assets import build_adapter_assets, with_adapter_deps
    from orchestration.defs.adapters.config import load_adapters_config

    configs = load_adapters_config(settings.adapters)
    return [*build_adapter_assets(configs), *with_adapter_deps(ingestion_assets, configs)]


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
