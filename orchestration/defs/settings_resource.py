"""The settings object as a Dagster resource, so assets and sensors read the same locations."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from metrics.dbt_vars import dbt_vars
from metrics.health_config import HealthConfig, load_health_config
from orchestration.settings import Settings

#: Every asset that writes the warehouse runs in this pool; dagster.yaml limits it to one slot
#: because DuckDB allows a single writer per file.
WAREHOUSE_WRITER_POOL = "warehouse_writer"

#: Run tag a schedule sets to the date its tick stands for; it wins over the settings' date.
AS_OF_TAG = "csw/as_of"
#: Run tag (value "true") that rebuilds every dbt model from scratch (``--full-refresh`` on every
#: dbt call) and bypasses every skip; ``csw run --full-refresh`` sets it.
FULL_REFRESH_TAG = "csw/full_refresh"


def _today_utc() -> date:
    return datetime.now(UTC).date()


class SettingsResource(dg.ConfigurableResource):
    """Resolved settings (see ``orchestration.settings``), carried into runs as plain strings."""

    landing_dir: str
    warehouse_path: str
    publish_dir: str
    #: The reporting date set explicitly (flag or CSW_AS_OF); empty = today (UTC) when a run starts,
    #: so a long-running deployment never reports as of the day its code was loaded.
    as_of: str = ""
    duckdb_memory_limit: str
    duckdb_threads: int
    dbt_threads: int
    #: The dbt target (CSW_ENGINE): duckdb or spark.
    engine: str = "duckdb"
    spark_driver_memory: str = "4g"
    max_quarantine_share: float = 0.05
    publish_max_shrink: float = 0.5
    force_publish: bool = False
    dbt_target_keep: int = 10
    extract_freshness_days: int = 3
    alert_webhook: str = ""
    alert_command: str = ""
    dagster_url: str = ""
    #: The health-model YAML (absolute); empty = the shipped default.
    health_model: str = ""
    max_unmapped_event_share: float = 0.5
    churn_horizon_days: int = 90
    #: The adapters YAML (absolute, CSW_ADAPTERS); empty = no adapter assets.
    adapters: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SettingsResource:
        return cls(
            landing_dir=str(settings.landing),
            warehouse_path=str(settings.warehouse),
            publish_dir=str(settings.publish),
            as_of=settings.as_of.isoformat() if "as_of" in settings.model_fields_set else "",
            duckdb_memory_limit=settings.duckdb_memory_limit,
            duckdb_threads=settings.duckdb_threads,
            dbt_threads=settings.dbt_threads or settings.duckdb_threads,
            engine=settings.engine,
            spark_driver_memory=settings.spark_driver_memory,
            max_quarantine_share=settings.max_quarantine_share,
            publish_max_shrink=settings.publish_max_shrink,
            force_publish=settings.force_publish,
            dbt_target_keep=settings.dbt_target_keep,
            extract_freshness_days=settings.extract_freshness_days,
            alert_webhook=settings.alert_webhook,
            alert_command=settings.alert_command,
            dagster_url=settings.dagster_url,
            health_model=str(settings.health_model or ""),
            max_unmapped_event_share=settings.max_unmapped_event_share,
            churn_horizon_days=settings.churn_horizon_days,
            adapters=str(settings.adapters or ""),
        )

    def health_config(self) -> HealthConfig:
        """The configured health model, read and validated now (a run sees the file as it is
        when the run starts); raises HealthConfigError naming the file and every problem."""
        return load_health_config(Path(self.health_model) if self.health_model else None)

    def dbt_vars(self, as_of: date) -> dict[str, Any]:
        """The vars of every dbt call of a run: ``as_of`` and the configured health model."""
        return dbt_vars(
            as_of, self.health_config(), self.max_unmapped_event_share, self.churn_horizon_days
        )

    def as_of_for(self, context: dg.AssetExecutionContext | dg.OpExecutionContext) -> date:
        """The run's reporting date: its ``csw/as_of`` tag, else the settings' date, else today."""
        tagged = context.run.tags.get(AS_OF_TAG)
        if tagged:
            return date.fromisoformat(tagged)
        return date.fromisoformat(self.as_of) if self.as_of else _today_utc()

    @staticmethod
    def full_refresh_for(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> bool:
        """Whether the run has the ``csw/full_refresh`` tag set to true."""
        return context.run.tags.get(FULL_REFRESH_TAG, "").lower() == "true"

    def dbt_environment(self) -> dict[str, str]:
        """The variables ``dbt_project/profiles.yml`` reads."""
        return {
            "CSW_WAREHOUSE_PATH": str(Path(self.warehouse_path).resolve()),
            "CSW_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "CSW_DBT_THREADS": str(self.dbt_threads),
            "CSW_ENGINE": self.engine,
            "CSW_SPARK_DRIVER_MEMORY": self.spark_driver_memory,
        }

    @contextmanager
    def dbt_environment_applied(self, extra: Mapping[str, str] | None = None) -> Iterator[None]:
        """dagster-dbt starts dbt with this process's environment: set ours (and ``extra``) for
        the call only."""
        environment = {**self.dbt_environment(), **(extra or {})}
        saved = {k: os.environ.get(k) for k in environment}
        os.environ.update(environment)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
