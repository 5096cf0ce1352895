"""Resource factories from :class:`~orchestration.settings.Settings`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings


def duckdb_connection_config(settings: Settings) -> dict[str, str | int]:
    """DuckDB settings applied to every connection to the warehouse."""
    return {"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, but a connection is closed when the code using it fails too.

    ``DuckDBResource.get_connection`` (dagster-duckdb 0.29) closes after its ``yield`` without
    a ``finally``: an exception inside the ``with`` block (a publication held back, a crashed
    load) left the connection, and DuckDB's file lock, to the garbage collector, so the next run
    in the same process found the warehouse locked.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con:
            try:
                yield con
            finally:
                con.close()  # closing twice (theirs on success) is harmless


def duckdb_resource(settings: Settings) -> DuckDBResource:
    """The warehouse as a dagster-duckdb resource: every connection gets the settings' memory
    limit and thread count."""
    return WarehouseResource(
        database=str(settings.warehouse), connection_config=duckdb_connection_config(settings)
    )


def warehouse_resources(settings: Settings) -> dict[str, object]:
    """The resources every asset that touches the warehouse needs."""
    from orchestration.defs.settings_resource import SettingsResource

    return {
        "duckdb": duckdb_resource(settings),
        "settings": SettingsResource.from_settings(settings),
    }
