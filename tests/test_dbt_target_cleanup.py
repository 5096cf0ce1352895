"""dbt's target folder stays bounded: dagster-dbt's per-call folders are pruned after every dbt
call, and the parse-state temp files of killed processes go away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.dbt import target_cleanup
from orchestration.defs.settings_resource import SettingsResource
from orchestration.settings import Settings

HOUR_S = 3600.0


def _dead_pid() -> int:
    """The pid of a process that has ended (a child we started and waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _call_folder(target: Path, name: str, age_s: float) -> Path:
    """A call folder as dagster-dbt leaves it, last written ``age_s`` seconds ago."""
    folder = target / name
    (folder / "compiled").mkdir(parents=True)
    (folder / "run_results.json").write_text("{}")
    (folder / "partial_parse.msgpack").write_bytes(b"state")
    stamp = time.time() - age_s
    os.utime(folder, (stamp, stamp))
    return folder


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A project target folder: dbt's own files and folders, and nothing else yet."""
    target = tmp_path / "target"
    (target / "compiled" / "cs_warehouse").mkdir(parents=True)
    (target / "run").mkdir()
    (target / "manifest.json").write_text("{}")
    (target / "partial_parse.msgpack").write_bytes(b"shared state")
    for dbt_own in ("compiled", "run"):
        os.utime(target / dbt_own, (time.time() - 5 * HOUR_S,) * 2)
    return target


def test_call_folders_beyond_the_newest_are_pruned_and_dbt_files_are_kept(target: Path) -> None:
    # dagster-dbt 0.29 names a call's folder <op>-<run id[:7]>-<uuid4[:7]>, or <uuid4[:7]>
    # without a context (DbtCliResource._get_unique_target_path)
    ages = {
        "dbt_models-1a2b3c4-0f1e2d3": 500,
        "dbt_incremental_models-1a2b3c4-a1b2c3d": 400,
        "dbt_models-9f8e7d6-bbbbbbb": 300,
        "c0ffee1": 200,
        "dbt_models-5555555-6666666": 100,
    }
    for name, age in ages.items():
        _call_folder(target, name, age)

    removed = target_cleanup.prune_call_folders(target, keep=2)

    assert sorted(p.name for p in removed) == sorted(
        ["dbt_models-1a2b3c4-0f1e2d3", "dbt_incremental_models-1a2b3c4-a1b2c3d",
         "dbt_models-9f8e7d6-bbbbbbb"]
    )  # fmt: skip
    assert sorted(p.name for p in target.iterdir()) == [
        "c0ffee1",
        "compiled",
        "dbt_models-5555555-6666666",
        "manifest.json",
        "partial_parse.msgpack",
        "run",
    ]
    assert (target / "compiled" / "cs_warehouse").is_dir()
    assert (target / "partial_parse.msgpack").read_bytes() == b"shared state"


def test_the_folder_of_a_call_still_running_is_never_pruned(target: Path) -> None:
    running = _call_folder(target, "dbt_models-1111111-2222222", age_s=900)
    target_cleanup.mark_running(running)  # this process is alive, the call long under way
    os.utime(running, (time.time() - 900,) * 2)
    killed = _call_folder(target, "dbt_models-3333333-4444444", age_s=800)
    (killed / f"{target_cleanup.RUNNING_MARKER}{_dead_pid()}").touch()
    os.utime(killed, (time.time() - 800,) * 2)
    newest = _call_folder(target, "dbt_models-5555555-6666666", age_s=10)

    removed = target_cleanup.prune_call_folders(target, keep=1)

    assert removed == [killed], "a call whose process is gone is pruned like any other"
    assert running.is_dir() and newest.is_dir()


def test_keep_counts_from_the_newest(target: Path) -> None:
    names = [f"dbt_models-{n:07x}-{n:07x}" for n in range(1, 13)]
    for age, name in enumerate(reversed(names)):
        _call_folder(target, name, age_s=60 * (age + 1))

    target_cleanup.prune_call_folders(target, keep=10)

    left = sorted(p.name for p in target.iterdir() if target_cleanup.CALL_FOLDER.match(p.name))
    assert left == sorted(names[2:])


def test_parse_state_temp_files_of_killed_processes_are_removed(target: Path) -> None:
    dead = target / f".partial_parse.msgpack.{_dead_pid()}.tmp"
    live = target / f".partial_parse.msgpack.{os.getpid()}.tmp"
    old_live = target / f".partial_parse.msgpack.{os.getppid()}.tmp"
    for path in (dead, live, old_live):
        path.write_bytes(b"half")
    os.utime(old_live, (time.time() - 2 * HOUR_S,) * 2)  # its pid may be another process by now

    removed = target_cleanup.remove_stale_parse_temps(target)

    assert sorted(removed) == sorted([dead, old_live])
    assert live.exists(), "the temp file of a live process may be in use"
    assert (target / "partial_parse.msgpack").exists()


class _Invocation:
    """What ``_streamed`` uses of a ``DbtCliInvocation``: its events and its target folder."""

    def __init__(self, target_path: Path, fail: bool = False) -> None:
        self.target_path = target_path
        self.fail = fail

    def stream(self) -> Iterator[str]:
        self.target_path.mkdir(parents=True, exist_ok=True)
        markers = [p.name for p in self.target_path.iterdir()]
        yield f"markers while running: {markers}"
        if self.fail:
            raise RuntimeError("dbt build failed")


@pytest.mark.parametrize("fail", [False, True])
def test_every_dbt_call_prunes_the_folders_of_older_calls(
    target: Path, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    from types import SimpleNamespace

    from orchestration.defs.dbt import assets

    project = SimpleNamespace(project_dir=target.parent, target_path=Path("target"))
    monkeypatch.setattr(assets, "dbt_project", lambda: project)
    older = [_call_folder(target, f"dbt_models-{n:07x}-aaaaaaa", age_s=100 * n) for n in (1, 2, 3)]
    stale_temp = target / f".partial_parse.msgpack.{_dead_pid()}.tmp"
    stale_temp.write_bytes(b"half")
    call = target / "dbt_models-bbbbbbb-ccccccc"

    events: list[str] = []
    try:
        events.extend(assets._streamed(_Invocation(call, fail), keep=2))  # type: ignore[arg-type]
    except RuntimeError:
        assert fail
    else:
        assert not fail

    assert events == [f"markers while running: ['{target_cleanup.RUNNING_MARKER}{os.getpid()}']"]
    assert call.is_dir() and list(call.iterdir()) == [], "its running marker is gone"
    assert [p.exists() for p in older] == [True, False, False]
    assert not stale_temp.exists()


# --- a real dbt call through dagster-dbt --------------------------------------------------


def test_real_dbt_calls_leave_at_most_keep_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt_harness import create_raw_warehouse

    from orchestration.defs.dbt.assets import build_dbt_assets, dbt_resource

    home = tmp_path / "home"
    home.mkdir()
    create_raw_warehouse(home / "warehouse.duckdb", {})
    settings = Settings(
        home=home,
        as_of=date(2024, 4, 30),
        duckdb_threads=1,
        duckdb_memory_limit="1GB",
        dbt_target_keep=1,
    )
    calls = tmp_path / "dbt-target"
    # dagster-dbt puts every call's folder under DBT_TARGET_PATH: here, not the shared project
    monkeypatch.setenv("DBT_TARGET_PATH", str(calls))
    earlier = _call_folder(calls, "dbt_models-0000000-0000000", age_s=60)
    result = dg.materialize(
        [build_dbt_assets()[0]],
        # one model, without its tests (some also read models this test does not build)
        selection=dg.AssetSelection.assets(["staging", "stg_crm__accounts"]).without_checks(),
        resources={"dbt": dbt_resource(), "settings": SettingsResource.from_settings(settings)},
        raise_on_error=False,
    )
    assert result.success

    folders = [p.name for p in calls.iterdir() if p.is_dir()]
    assert not earlier.exists()
    assert len(folders) == 1, folders
    # the folder left is this call's, named as CALL_FOLDER expects
    assert target_cleanup.CALL_FOLDER.match(folders[0])
    assert folders[0].startswith(f"dbt_models-{result.run_id[:7]}-")
