"""One run per warehouse: a second ``csw run``/``ingest``/``demo`` waits or exits with code 3,
a killed holder leaves no stale lock, and a DuckDB lock conflict is one line (issue 12 point 7)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingestion_fixtures import example_row, write_csv
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.run_lock import WarehouseBusyError, lock_path, warehouse_lock

HOLD_LOCK = """
import sys
from pathlib import Path
from orchestration.run_lock import warehouse_lock
with warehouse_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""

HOLD_DUCKDB = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def _holder(script: str, warehouse: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


@pytest.fixture
def other_run(warehouse: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _holder(HOLD_LOCK, warehouse)
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_holder_is_refused_naming_the_first(
    warehouse: Path, other_run: subprocess.Popen[str]
) -> None:
    with pytest.raises(WarehouseBusyError) as busy, warehouse_lock(warehouse):
        pass
    assert busy.value.holder.pid == other_run.pid
    assert f"another run is writing this warehouse (pid {other_run.pid}, started" in str(busy.value)


def test_a_killed_holder_leaves_no_stale_lock(
    warehouse: Path, other_run: subprocess.Popen[str]
) -> None:
    other_run.kill()
    other_run.wait()
    assert lock_path(warehouse).exists()
    with warehouse_lock(warehouse) as path:
        assert path.read_text().split()[0] == str(__import__("os").getpid())


def test_a_waiting_run_gets_the_lock_once_the_holder_ends(
    warehouse: Path, other_run: subprocess.Popen[str]
) -> None:
    assert other_run.stdin is not None
    release = threading.Timer(0.5, other_run.stdin.close)
    release.start()
    try:
        with warehouse_lock(warehouse, wait_s=120) as path:
            assert other_run.poll() is not None, "the lock was granted while the holder lived"
            assert path.exists()
    finally:
        release.cancel()


def _commands(tmp_path: Path, warehouse: Path) -> dict[str, list[str]]:
    landing = tmp_path / "landing"
    write_csv(landing, "plans", "p.csv", [example_row("plans")])
    where = ["--landing", str(landing), "--warehouse", str(warehouse)]
    return {"run": ["run", *where], "ingest": ["ingest", *where], "demo": ["demo"]}


@pytest.mark.parametrize("command", ["run", "ingest", "demo"])
def test_a_second_command_exits_3_at_once_with_one_line(
    command: str,
    tmp_path: Path,
    warehouse: Path,
    other_run: subprocess.Popen[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CSW_WAREHOUSE_PATH", str(warehouse))
    result = CliRunner().invoke(app, _commands(tmp_path, warehouse)[command], terminal_width=200)
    assert result.exit_code == 3, result.output
    assert f"another run is writing this warehouse (pid {other_run.pid}" in result.output
    assert "--wait" in result.output
    assert "Traceback" not in result.output and '"health_model"' not in result.output
    assert not warehouse.exists(), "the second run touched the warehouse"


def test_a_warehouse_open_in_another_process_is_one_line_and_exit_3(
    tmp_path: Path, warehouse: Path
) -> None:
    warehouse.parent.mkdir(parents=True)
    holder = _holder(HOLD_DUCKDB, warehouse)
    try:
        result = CliRunner().invoke(
            app, _commands(tmp_path, warehouse)["ingest"], terminal_width=200
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 3, result.output
    lines = [line for line in result.output.splitlines() if "open for writing" in line]
    assert lines and f"pid {holder.pid}" in lines[0], result.output
    assert "Traceback" not in result.output and "Stack Trace" not in result.output
