"""Peak resident memory of a whole process tree, sampled from ``/proc`` (Linux only).

``psutil`` is not a dependency of the project, so :class:`TreeSampler` reads ``/proc`` itself:
every ``interval`` seconds it finds the root process and all its descendants (by parent pid in
``/proc/<pid>/stat``) and sums their ``VmRSS`` from ``/proc/<pid>/status``. The peak of that sum
is the tree's peak RSS.

Two limits of the method, both documented in ``docs/performance.md``:

* a child that starts and ends between two samples (100 ms apart) is not seen; and
* pages shared between processes (the Python interpreter, shared libraries) count once per
  process, so the sum is an upper bound of the tree's physical memory.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process visible now."""
    parents: dict[int, int] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name (field 2) is in parentheses and may contain spaces or ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def rss_kb(pid: int) -> int:
    """Resident set size of one process in KiB (0 when it has ended or is a zombie)."""
    try:
        with (PROC / str(pid) / "status").open() as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class TreeSample:
    """What the sampler saw of one process tree."""

    peak_rss_kb: int = 0
    #: Seconds after the sampler started when the peak was seen.
    peak_at_s: float = 0.0
    #: Most processes seen in the tree at once.
    peak_processes: int = 0
    samples: int = 0
    #: (seconds since start, total RSS in MiB), one point per second, for a coarse profile.
    profile: list[tuple[float, float]] = field(default_factory=list)

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_kb / 1024


class TreeSampler:
    """Samples the RSS of ``root``'s process tree in a background thread until stopped.

    Use as a context manager around the wait for the root process::

        proc = subprocess.Popen(...)
        with TreeSampler(proc.pid) as sampler:
            proc.wait()
        sampler.result.peak_rss_mb
    """

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.result = TreeSample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{root}", daemon=True)
        self._started = 0.0

    def sample_once(self) -> int:
        pids = tree_pids(self.root)
        total = sum(rss_kb(pid) for pid in pids)
        elapsed = time.perf_counter() - self._started
        r = self.result
        r.samples += 1
        r.peak_processes = max(r.peak_processes, len(pids))
        if total > r.peak_rss_kb:
            r.peak_rss_kb, r.peak_at_s = total, round(elapsed, 2)
        if not r.profile or elapsed - r.profile[-1][0] >= 1.0:
            r.profile.append((round(elapsed, 1), round(total / 1024, 1)))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
