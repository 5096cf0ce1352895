"""The warehouse resource gives its connection back even when the code using it fails."""

import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.resources import duckdb_resource
from orchestration.settings import load_settings


def _opens_from_another_process(database: Path) -> bool:
    probe = f"import duckdb; duckdb.connect({str(database)!r}).close()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def test_a_failure_inside_get_connection_closes_the_connection(tmp_path: Path) -> None:
    """dagster-duckdb's own get_connection closes only on success: a publication held back
    inside it kept the file locked, and the next run in the same process (csw demo's second
    job, a test) found the warehouse open in another process."""
    database = tmp_path / "warehouse.duckdb"
    resource = duckdb_resource(load_settings(warehouse_path=database))
    with pytest.raises(RuntimeError, match="held back"), resource.get_connection() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        raise RuntimeError("held back")
    assert _opens_from_another_process(database)
