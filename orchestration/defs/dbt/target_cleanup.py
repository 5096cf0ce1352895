"""Keeping dbt's target folder bounded.

dagster-dbt 0.29 runs every dbt call in a folder of its own under the target folder
(``DbtCliResource._get_unique_target_path``): ``<op name>-<run id[:7]>-<uuid4[:7]>`` for a call
made with a context, as every asset step's is, and ``<uuid4[:7]>`` without one. Each holds the
call's manifest, compiled SQL, logs and a copy of the parse state, and nothing removes them: a
few MB per call, hundreds within an hour of runs. After every call the folders beyond the newest
``keep`` are deleted (``Settings.dbt_target_keep``), except the folder of a call still running:
a call marks its folder with ``.csw-running-<pid>`` for as long as it runs
(:func:`mark_running`), and a folder whose marker names a live process is kept whatever its age.

Nothing else under the target folder is touched: ``manifest.json``, ``partial_parse.msgpack``
and dbt's own ``compiled/`` and ``run/`` do not match the call folders' names. The parse state's
temporary copies (``.partial_parse.msgpack.<pid>.tmp``, see ``assets._streamed``) left by a
killed process are removed when their writer is gone or they are older than an hour.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestration.leftovers import left_over, pid_alive, remove

#: The name of a folder dagster-dbt made for one dbt call.
CALL_FOLDER = re.compile(r"^(?:[A-Za-z0-9_]+-[0-9a-f]{7}-)?[0-9a-f]{7}$")
#: Prefix of the file marking a call folder whose dbt call is running; the pid follows.
RUNNING_MARKER = ".csw-running-"
#: A temporary copy of the shared parse state: ``.partial_parse.msgpack.<pid>.tmp``.
PARSE_STATE_TEMP = re.compile(r"^\.partial_parse\.msgpack\.(\d+)\.tmp$")


def mark_running(call_folder: Path) -> Path:
    """Mark ``call_folder`` as in use by this process; delete the returned marker when done."""
    call_folder.mkdir(parents=True, exist_ok=True)
    marker = call_folder / f"{RUNNING_MARKER}{os.getpid()}"
    marker.touch()
    return marker


def _running(folder: Path) -> bool:
    pids = (
        marker.name.removeprefix(RUNNING_MARKER) for marker in folder.glob(f"{RUNNING_MARKER}*")
    )
    return any(pid.isdigit() and pid_alive(int(pid)) for pid in pids)


def _newest_first(folders: list[Path]) -> list[Path]:
    """By the time a folder last changed (dbt adds its files until the call ends), then name."""

    def changed(folder: Path) -> float:
        try:
            return folder.stat().st_mtime
        except FileNotFoundError:  # pruned by another process meanwhile
            return 0.0

    return sorted(folders, key=lambda f: (changed(f), f.name), reverse=True)


def call_folders(target: Path) -> list[Path]:
    """The dbt call folders under ``target``, newest first."""
    if not target.is_dir():
        return []
    found = [
        p
        for p in target.iterdir()
        if CALL_FOLDER.match(p.name) and p.is_dir() and not p.is_symlink()
    ]
    return _newest_first(found)


def prune_call_folders(target: Path, keep: int) -> list[Path]:
    """Delete the call folders under ``target`` beyond the newest ``keep``, except running ones."""
    doomed = [f for f in call_folders(target)[keep:] if not _running(f)]
    for folder in doomed:
        remove(folder)
    return doomed


def remove_stale_parse_temps(target: Path) -> list[Path]:
    """Delete the parse state's temporary copies under ``target`` left by killed processes."""
    if not target.is_dir():
        return []
    doomed = [
        p
        for p in target.iterdir()
        if (m := PARSE_STATE_TEMP.match(p.name)) and left_over(p, int(m.group(1)))
    ]
    for path in doomed:
        remove(path)
    return doomed
