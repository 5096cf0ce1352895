"""Files a killed process leaves behind: temporary files that carry the writer's pid in their name.

A writer names its temporary file after its own pid and renames it into place when done; a
process killed in between leaves the file. The next run removes such a file when its writer is
gone, or when it is older than :data:`STALE_AFTER_S` (its pid may belong to another process by
then). The temporary file of a live writer is left alone: it may be in use.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

#: A temporary file older than this is left over whoever holds its pid now.
STALE_AFTER_S = 3600.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def left_over(path: Path, pid: int, now: float | None = None) -> bool:
    """Whether ``path``, written by ``pid``, was left by a process that is gone or is too old."""
    try:
        modified = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    age = (time.time() if now is None else now) - modified
    return age > STALE_AFTER_S or not pid_alive(pid)


def remove(path: Path) -> None:
    """Delete a file, a symbolic link or a whole folder; one already gone is fine (another run
    may be cleaning up at the same time)."""

    def already_gone(_function: object, _path: str, exc_info: tuple) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=already_gone)
    else:
        path.unlink(missing_ok=True)
