"""One writer per warehouse: an OS file lock beside the warehouse file.

``csw run``, ``csw ingest`` and ``csw demo`` hold :func:`warehouse_lock` for their whole run. The
lock is ``fcntl.flock`` on ``<warehouse>.lock``: the kernel releases it when the process ends, how
ever it ends, so a killed run never leaves a stale lock behind. The holder writes its pid and start
time into the file only so that a second run can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

#: How often a waiting run tries the lock again.
POLL_S = 0.2


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    started: str | None

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        return f"{pid}, started {self.started}" if self.started else pid


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse's lock."""

    def __init__(self, warehouse: Path, holder: LockHolder, waited_s: float) -> None:
        self.warehouse = warehouse
        self.holder = holder
        self.waited_s = waited_s
        waited = f" (waited {waited_s:g} s)" if waited_s else ""
        super().__init__(
            f"another run is writing this warehouse ({holder.describe()}){waited}; wait for it"
            f" or pass --wait SECONDS. Warehouse: {warehouse}"
        )


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def read_holder(path: Path) -> LockHolder:
    """The pid and start time the holder wrote (either may be missing while it starts)."""
    try:
        fields = path.read_text(encoding="utf-8").split()
    except OSError:
        return LockHolder(None, None)
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    return LockHolder(pid, fields[1] if len(fields) > 1 else None)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(handle: IO[str], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while not _try_lock(handle):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


@contextmanager
def warehouse_lock(warehouse: Path, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold the warehouse's lock for the block; wait up to ``wait_s`` seconds for it.

    Raises :class:`WarehouseBusyError` naming the holder when it is still held after ``wait_s``.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a": opening must not truncate what the holder wrote before we own the lock.
    with path.open("a+", encoding="utf-8") as handle:
        if not _acquire(handle, wait_s):
            raise WarehouseBusyError(warehouse, read_holder(path), wait_s)
        try:
            handle.seek(0)
            handle.truncate()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(f"{os.getpid()} {started}\n")
            handle.flush()
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
