"""``csw run`` / ``csw ingest`` tell the truth: exit codes, the one-screen summary, progress,
configuration checked up front, and a killed run that takes its dbt child with it (issue 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from ingestion_fixtures import example_row, table_path, write_csv
from typer.testing import CliRunner

import metrics.health_config
from ingestion.synthetic import GeneratorConfig, generate_extracts
from orchestration.cli import app
from orchestration.defs.ingestion.summary import IngestionRun, TableSummary
from orchestration.pipeline_run import (
    RunInterruptedError,
    compact_error,
    descendants,
    run_in_worker,
)

SAMPLE = GeneratorConfig(accounts=12, months=3, seed=5, start=date(2024, 1, 1))
AS_OF = SAMPLE.last_day.isoformat()
EARLY = "2024-01-31"
CSW = Path(sys.executable).parent / "csw"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result.exit_code, result.output


def _run_args(root: Path, landing: Path, as_of: str = AS_OF) -> list[str]:
    return [
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(root / "wh" / "warehouse.duckdb"),
        "--publish",
        str(root / "published"),
        "--as-of",
        as_of,
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """``csw run`` on one warehouse: clean; as of the first month (marts shrink: publication
    held back); the same forced; then after bad files arrived: one refused, one whose rows are
    all quarantined (over ``max_quarantine_share``)."""
    root = tmp_path_factory.mktemp("truth")
    landing = root / "landing"
    generate_extracts(landing, SAMPLE)
    env_home = os.environ.get("CSW_HOME")
    os.environ["CSW_HOME"] = str(root / "home")
    try:
        clean = _invoke(*_run_args(root, landing))
        held = _invoke(*_run_args(root, landing, EARLY))
        forced = _invoke(*_run_args(root, landing, EARLY), "--force-publish")
        table_path(landing, "accounts", "broken.csv").write_bytes(b"")
        write_csv(
            landing,
            "contacts",
            "all_bad.csv",
            [
                example_row("contacts", contact_id=f"c-bad-{n}", started_at="not a date")
                for n in range(3)
            ],
        )
        bad = _invoke(*_run_args(root, landing))
    finally:
        if env_home is None:
            os.environ.pop("CSW_HOME", None)
        else:
            os.environ["CSW_HOME"] = env_home
    return {"clean": clean, "held": held, "forced": forced, "bad": bad}


def _summary(output: str) -> list[str]:
    """The lines from the summary's heading to the end."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary of"))
    return lines[start:]


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_a_clean_run_succeeds_and_says_what_it_published(runs: dict) -> None:
    code, output = runs["clean"]
    assert code == 0, output
    summary = "\n".join(_summary(output))
    assert "serving copy" in summary and "warehouse.duckdb" in summary
    assert "marts" in summary
    assert summary.splitlines()[-1].startswith("Succeeded")


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_a_run_with_a_refused_file_exits_non_zero_and_names_it(runs: dict) -> None:
    code, output = runs["bad"]
    assert code == 1, output
    summary = _summary(output)
    assert any("crm/accounts/broken.csv" in line and "empty" in line for line in summary)
    assert not any("succeeded" in line.lower() for line in summary), output
    assert summary[-1].startswith("Failed")


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_a_file_over_the_quarantine_share_is_named_with_its_row_counts(runs: dict) -> None:
    code, output = runs["bad"]
    assert code == 1
    line = next(line for line in _summary(output) if "crm/contacts/all_bad.csv" in line)
    assert "3 of 3 rows quarantined" in line, line


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_a_held_back_publication_fails_the_run_and_says_how_to_force(runs: dict) -> None:
    code, output = runs["held"]
    assert code == 1, output
    summary = "\n".join(_summary(output))
    assert "publication held back" in summary and "--force-publish" in summary
    assert "Published:" not in summary
    code, output = runs["forced"]
    assert code == 0, output
    summary = "\n".join(_summary(output))
    assert "Published although held back (--force-publish)" in summary and "Published:" in summary


def test_compact_error_drops_the_dbt_vars_and_shortens_a_duckdb_lock() -> None:
    dbt = (
        'The dbt CLI process with command\n\n`dbt build --vars {"as_of": "2024-01-31",'
        ' "health_model": {"a": {"b": 1}}} --select x`\n\nfailed with exit code `1`.'
    )
    assert compact_error(dbt) == (
        "The dbt CLI process with command\n\n`dbt build --vars <see csw dbt-vars> --select x`"
        "\n\nfailed with exit code `1`."
    )
    lock = (
        'IO Error: Could not set lock on file "/w/warehouse.duckdb": Conflicting lock is held in'
        " /usr/bin/python3 (PID 4242). See also https://duckdb.org/docs"
    )
    assert compact_error(lock).startswith(
        "the warehouse /w/warehouse.duckdb is open for writing in another process (pid 4242)"
    )
    assert "\n" not in compact_error(lock)


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_the_summary_fits_one_screen(runs: dict) -> None:
    for _code, output in runs.values():
        assert len(_summary(output)) <= 40, output


@pytest.mark.e2e  # four csw runs (~3 min): the e2e tier
def test_a_run_shows_its_progress_in_plain_lines_when_not_a_terminal(runs: dict) -> None:
    _code, output = runs["clean"]
    progress = [line for line in output.splitlines() if line.startswith("[")]
    stages = {line.split("]", 1)[1].split(":", 1)[0].strip() for line in progress}
    assert {"ingest", "dbt", "publish"} <= stages, progress
    assert any("crm/accounts" in line for line in progress)
    nodes = [line for line in progress if "dbt node" in line]
    assert nodes, progress
    last = nodes[-1].split("dbt node", 1)[1].rstrip(")").split()
    assert last[1] == "of" and int(last[0]) == int(last[2]) > 0, nodes[-1]


def test_run_without_a_landing_directory_exits_2_and_publishes_nothing(tmp_path: Path) -> None:
    code, output = _invoke(*_run_args(tmp_path, tmp_path / "does" / "not" / "exist"))
    assert code == 2, output
    assert "does not exist" in output
    assert not (tmp_path / "published").exists()
    assert not (tmp_path / "wh" / "warehouse.duckdb").exists()


@pytest.mark.parametrize("command", [["run"], ["demo"], ["dbt-vars"]])
def test_an_invalid_health_config_stops_before_anything_with_exit_2(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "health_model.yaml"
    text = metrics.health_config.DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    bad.write_text(text.replace("version: 1", "version: 1\nnot_a_field: 3"), encoding="utf-8")
    monkeypatch.setattr(metrics.health_config, "DEFAULT_CONFIG_PATH", bad)
    monkeypatch.setenv("CSW_HOME", str(tmp_path / "home"))
    (tmp_path / "landing").mkdir()
    code, output = _invoke(
        *command, *(["--landing", str(tmp_path / "landing")] * (command == ["run"]))
    )
    assert code == 2, output
    assert "not_a_field" in output
    assert "Traceback" not in output
    assert not (tmp_path / "home" / "landing" / "crm").exists(), "demo generated before checking"


def test_ingestion_run_is_not_ok_when_a_check_failed() -> None:
    tables = (TableSummary("crm/accounts", files_loaded=1, rows_loaded=3),)
    assert IngestionRun("r", True, tables).ok
    assert not IngestionRun("r", True, tables, failed_checks=("crm/accounts:share",)).ok


def test_ingest_fails_when_a_file_is_quarantined_beyond_the_share(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_csv(landing, "plans", "p.csv", [example_row("plans")])
    rows = [example_row("contacts", contact_id=f"c{n}") for n in range(4)]
    rows[1]["started_at"] = rows[3]["started_at"] = "nope"
    write_csv(landing, "contacts", "c.csv", rows)
    args = ["ingest", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb")]
    code, output = _invoke(*args)
    assert code == 1, output
    assert "crm/contacts/c.csv: 2 of 4 rows quarantined" in output
    code, output = _invoke(*args, "--max-quarantine-share", "0.6")
    assert code == 0, output


def _wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_child_the_run_leaves_behind_is_stopped_and_older_ones_are_kept() -> None:
    older = subprocess.Popen(["sleep", "60"])
    started: list[subprocess.Popen[bytes]] = []

    def work() -> str:
        started.append(subprocess.Popen(["sleep", "60"]))
        return "done"

    try:
        assert run_in_worker(work, lambda: None) == "done"
        assert started[0].wait(timeout=30) == -signal.SIGTERM
        assert older.poll() is None
    finally:
        older.kill()
        older.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_stop_signal_stops_the_runs_children_and_raises_with_its_exit_code() -> None:
    def work() -> None:
        child = subprocess.Popen(["sleep", "60"])
        os.kill(os.getpid(), signal.SIGTERM)
        child.wait()

    with pytest.raises(RunInterruptedError) as stop:
        run_in_worker(work, lambda: None)
    assert stop.value.exit_code == 143
    assert len(stop.value.children) == 1 and stop.value.run_finished


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigterm_stops_the_dbt_child_and_exits_143(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate_extracts(landing, GeneratorConfig(accounts=3, months=2, seed=1))
    env = {**os.environ, "CSW_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [str(CSW), *_run_args(tmp_path, landing)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        dbt = _wait_for(
            lambda: [p for p in descendants(proc.pid) if " build " in _cmdline(p)],
            300,
            "a dbt build child",
        )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, output
    _wait_for(lambda: not any(_alive(p) for p in dbt), 30, "the dbt child to end")
    assert "SIGTERM" in output and "Traceback" not in output, output


def test_the_summary_and_the_check_share_one_quarantine_rule() -> None:
    """A file whose every row was quarantined is named even when the share allows 100%, as the
    contract check fails it; a file within the share is not named."""
    import dagster as dg

    from orchestration.defs.ingestion.summary import table_summaries

    def file(name: str, read: int, quarantined: int) -> dict[str, object]:
        return {
            "source_file": f"crm/contacts/{name}",
            "outcome": "loaded",
            "rows_read": read,
            "rows_loaded": read - quarantined,
            "rows_quarantined": quarantined,
            "message": "",
        }

    files = [file("all_bad.csv", 3, 3), file("mostly_good.csv", 10, 1)]
    meta = {
        "files_loaded": 2,
        "files_skipped": 0,
        "files_refused": 0,
        "rows_loaded": 9,
        "rows_quarantined": 4,
        "rows_duplicate": 0,
        "files": files,
    }
    (contacts,) = [
        t
        for t in table_summaries({dg.AssetKey(["crm", "contacts"]): meta}, {}, 1.0)
        if t.table == "crm/contacts"
    ]
    assert [n.source_file for n in contacts.over_share_files] == ["crm/contacts/all_bad.csv"]
    assert not contacts.over_share


def test_a_busy_warehouse_is_not_sent_to_the_serving_copy_for_a_backtest(tmp_path: Path) -> None:
    """The serving copy has no raw layer and no ``ml`` schema, so `csw backtest --warehouse
    <serving copy>` cannot work: a busy working file says to wait or to use a copy of it."""
    from orchestration.backtest_report import EXIT_BUSY, BacktestError, open_read_only

    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "published" / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('ready', flush=True); time.sleep(120)", str(warehouse)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(BacktestError) as caught:
            open_read_only(warehouse, serving)
    finally:
        holder.kill()
        holder.wait()
    message = " ".join(str(caught.value).split())
    assert caught.value.exit_code == EXIT_BUSY
    assert f"--warehouse {serving}`" not in message
    assert "Wait for" in message and "copy of the working file" in message
    assert "no raw layer" in message
