"""Resource factories from :class:`~orchestration.settings.Settings`."""

from __future__ import annotations

from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings


def duckdb_connection_config(settings: Settings) -> dict[str, str | int]:
    """DuckDB settings applied to every connection to the warehouse."""
    return {"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}


def duckdb_resource(settings: Settings) -> DuckDBResource:
    """The warehouse as a dagster-duckdb resource: every connection gets the settings' memory
    limit and thread count."""
    return DuckDBResource(
        database=str(settings.warehouse), connection_config=duckdb_connection_config(settings)
    )


def warehouse_resources(settings: Settings) -> dict[str, object]:
    """The resources every asset that touches the warehouse needs."""
    from orchestration.defs.settings_resource import SettingsResource

    return {
        "duckdb": duckdb_resource(settings),
        "settings": SettingsResource.from_settings(settings),
    }
