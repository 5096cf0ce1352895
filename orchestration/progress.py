"""What ``csw run`` and ``csw ingest`` show while they work: stage, table, dbt node N of M, elapsed.

The run's events reach :meth:`RunProgress.listener` as Dagster stores them (see
``orchestration.pipeline_run.execute``), in the thread that runs the job. They are queued and
shown from the main thread by :meth:`RunProgress.tick`: on a terminal as one live status line (rich),
elsewhere (CI logs, pipes) as plain lines at each stage, table and tenth of the dbt nodes, and at
least every :data:`HEARTBEAT_S` seconds.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any

import dagster as dg
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from ingestion.contract import TABLES

#: A plain-output run prints a line at least this often, so a CI log shows it is alive.
HEARTBEAT_S = 60.0

#: dbt node events: a model's materialisation, a test's check evaluation or observation.
_DBT_NODE_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ASSET_OBSERVATION,
}
#: Ingestion steps worth a line each: the table loads.
_TABLES = frozenset(t.asset_path for t in TABLES)
#: dbt resource types dagster-dbt reports one event for (unit tests are excluded from the build).
_DBT_NODE_TYPES = {"model", "seed", "snapshot", "test"}


def dbt_node_count(manifest: Mapping[str, Any]) -> int:
    """M of "dbt node N of M": the nodes a full build reports (ephemeral models run inline)."""
    return sum(
        1
        for node in manifest["nodes"].values()
        if node["resource_type"] in _DBT_NODE_TYPES
        and node.get("config", {}).get("materialized") != "ephemeral"
        and node.get("config", {}).get("enabled", True)
    )


def pipeline_dbt_node_count() -> int:
    from orchestration.defs.dbt.project import prepared_manifest

    return dbt_node_count(json.loads(prepared_manifest().read_text(encoding="utf-8")))


def stage_of(step_key: str) -> str:
    if step_key.startswith("dbt_"):
        return "dbt"
    if step_key.startswith("published__"):
        return "publish"
    return "ingest"


def step_label(step_key: str) -> str:
    """``crm__accounts`` -> ``crm/accounts``, ``published__warehouse`` -> ``published/warehouse``."""
    return step_key.replace("__", "/")


def _elapsed(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


@dataclass
class RunState:
    """Where a run is, from its events."""

    dbt_total: int
    stage: str = "starting"
    current: str = ""
    dbt_nodes: set[str] = field(default_factory=set)

    def apply(self, entry: dg.EventLogEntry) -> bool:
        """Take in one event; whether it is worth a line in plain output."""
        event = entry.dagster_event
        if event is None or not entry.step_key:
            return False
        step = entry.step_key
        if event.event_type == dg.DagsterEventType.STEP_START:
            label = step_label(step)
            self.stage = stage_of(step)
            if self.stage == "ingest" and label not in _TABLES:
                self.current = "checks"  # a table's checks: not worth a line each
                return False
            self.current = label
            return True
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            self.stage, self.current = stage_of(step), f"{step_label(step)} failed"
            return True
        if stage_of(step) == "dbt" and event.event_type in _DBT_NODE_EVENTS:
            return self._dbt_node(event)
        return False

    def _dbt_node(self, event: dg.DagsterEvent) -> bool:
        data = event.event_specific_data
        node = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
        metadata = getattr(node or data, "metadata", None) or {}
        unique_id = metadata.get("unique_id")
        key = str(getattr(unique_id, "value", unique_id)) if unique_id is not None else repr(data)
        if key in self.dbt_nodes:
            return False
        before = self._tenths()
        self.dbt_nodes.add(key)
        if event.asset_key is not None:
            self.current = event.asset_key.to_user_string()
        return self._tenths() > before or len(self.dbt_nodes) == self.dbt_total

    def _tenths(self) -> int:
        """Tenths of the dbt nodes done; 0 while the total is unknown (a job other than the
        pipeline), whose nodes then show on the heartbeat, not one line each."""
        return len(self.dbt_nodes) * 10 // self.dbt_total if self.dbt_total else 0

    def describe(self) -> str:
        text = f"{self.stage}: {self.current}" if self.current else self.stage
        if self.stage == "dbt" and self.dbt_total:
            text += f" (dbt node {len(self.dbt_nodes)} of {self.dbt_total})"
        return text


class RunProgress:
    """Shows a run's progress on ``console``; a context manager around the run."""

    def __init__(
        self,
        console: Console,
        dbt_total: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.state = RunState(dbt_total)
        self._events: queue.SimpleQueue[dg.EventLogEntry] = queue.SimpleQueue()
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._live: Progress | None = None
        self._task: TaskID | None = None

    def listener(self, entry: dg.EventLogEntry) -> None:
        """Called with each event of the run, in the run's thread."""
        self._events.put(entry)

    def __enter__(self) -> RunProgress:
        if self.console.is_terminal:
            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._live.start()
            self._task = self._live.add_task(self.state.describe(), total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.tick()
        if self._live is not None:
            self._live.stop()

    def tick(self) -> None:
        """Show what the events queued since the last tick say (main thread)."""
        while True:
            try:
                entry = self._events.get_nowait()
            except queue.Empty:
                break
            if self.state.apply(entry) and self._live is None:
                self._print()
        if self._live is not None and self._task is not None:
            self._live.update(self._task, description=self.state.describe())
        elif self._clock() - self._last_line >= HEARTBEAT_S:
            self._print()

    def _print(self) -> None:
        now = self._clock()
        self._last_line = now
        self.console.print(
            f"[{_elapsed(now - self._started)}] {self.state.describe()}",
            markup=False,
            highlight=False,
        )
