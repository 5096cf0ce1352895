"""The Dagster instance in-process runs (``csw``) record themselves in."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg


@contextmanager
def cli_instance() -> Iterator[dg.DagsterInstance]:
    """The deployment's instance when ``DAGSTER_HOME`` is set (runs show in the UI), else a
    throw-away one."""
    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
    else:
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
