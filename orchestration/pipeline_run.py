"""Running a job of the definitions in-process, as ``csw run`` and the tests do.

:func:`run_job` executes a job and reads what happened from its events into a
:class:`RunOutcome`: failed steps, failed and warned checks, per-table ingestion counts, ignored
files and what was published. ``csw`` runs it through :func:`run_in_worker`, which keeps the main
thread free to show progress and to stop the run's child processes (the ``dbt build`` that
dagster-dbt starts) on SIGTERM, SIGINT or SIGHUP.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import dagster as dg

from orchestration.definitions import PIPELINE_JOB, build_definitions
from orchestration.defs.ingestion.summary import (
    IgnoredFile,
    TableSummary,
    ignored_files,
    materialised_metadata,
    step_errors,
    table_summaries,
)
from orchestration.defs.settings_resource import FULL_REFRESH_TAG
from orchestration.instance import cli_instance
from orchestration.settings import Settings

EventListener = Callable[[dg.EventLogEntry], None]
T = TypeVar("T")

#: Signals that stop a run; the exit code is 128 + the signal's number (130, 143, 129).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds a child gets to end after SIGTERM before it is killed.
CHILD_GRACE_S = 10.0
#: Seconds the run's thread gets to wind up (mark the run failed) once its children are gone.
RUN_GRACE_S = 10.0


@dataclass(frozen=True)
class CheckOutcome:
    """A check that did not pass."""

    asset: str
    name: str
    severity: dg.AssetCheckSeverity
    description: str | None = None
    failed_rows: int | None = None

    @property
    def label(self) -> str:
        return f"{self.asset}: {self.name}"


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    run_id: str
    failures: tuple[str, ...]
    failed_checks: tuple[str, ...]
    warned_checks: tuple[str, ...]
    job: str = PIPELINE_JOB
    #: Every check that did not pass, with its description and failed row count.
    checks: tuple[CheckOutcome, ...] = ()
    #: Step key -> the root cause of its failure, on one line.
    step_errors: Mapping[str, str] = field(default_factory=dict)
    tables: tuple[TableSummary, ...] = ()
    ignored: tuple[IgnoredFile, ...] = ()
    #: Asset key (``published/warehouse``) -> its materialisation metadata values.
    published: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The job succeeded, no ERROR check failed, no file was refused or quarantined
        beyond the share, and no file that looks like data was left outside the table folders."""
        return (
            self.success
            and not self.failed_checks
            and not any(t.files_refused or t.over_share or t.over_share_files for t in self.tables)
            and not any(f.blocking for f in self.ignored)
        )


def _quiet_run_config(log_level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def execute(
    job: dg.JobDefinition,
    run_config: Mapping[str, Any],
    listener: EventListener | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute ``job`` in this thread; ``listener`` gets each event of the run as it is stored.

    The listener is registered on the instance for the run's id before the run starts
    (``DagsterInstance.add_event_listener``, which Dagster uses itself to stream the events of
    an in-process step), so it sees the events in order while the run works.
    """
    run_id = str(uuid.uuid4())
    with cli_instance() as instance:
        if listener is not None:
            instance.add_event_listener(run_id, listener)
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config,
            run_id=run_id,
            tags=tags,
        )


_VARS = re.compile(r"--vars \{.*?\}(?= --|`|\s*$)", re.DOTALL)
_DUCKDB_LOCK = re.compile(r'Could not set lock on file "([^"]+)".*?\(PID (\d+)\)', re.DOTALL)


def is_duckdb_lock_error(message: str) -> bool:
    return _DUCKDB_LOCK.search(message) is not None


def compact_error(message: str) -> str:
    """A step's error for a terminal: a DuckDB lock conflict in one line, dbt's ``--vars``
    (the whole health model as JSON) left out."""
    if lock := _DUCKDB_LOCK.search(message):
        return (
            f"the warehouse {lock.group(1)} is open for writing in another process (pid"
            f" {lock.group(2)}), e.g. a Dagster run or a notebook; wait for it to finish or close"
            " it, then run again"
        )
    message = message.removeprefix("dagster._core.definitions.events.Failure: ")
    return _VARS.sub("--vars <see csw dbt-vars>", message).strip()


def _checks(result: dg.ExecuteInProcessResult) -> tuple[CheckOutcome, ...]:
    outcomes = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        failed = evaluation.metadata.get("dagster_dbt/failed_row_count")
        outcomes.append(
            CheckOutcome(
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                evaluation.severity,
                evaluation.description,
                int(failed.value) if failed is not None else None,  # type: ignore[arg-type]
            )
        )
    return tuple(outcomes)


def outcome_of(
    result: dg.ExecuteInProcessResult, job_name: str, max_quarantine_share: float
) -> RunOutcome:
    """What a finished run did, from its events."""
    errors = {step: compact_error(message) for step, message in step_errors(result).items()}
    checks = _checks(result)
    metadata = materialised_metadata(result)
    return RunOutcome(
        success=result.success,
        run_id=result.run_id,
        failures=tuple(f"{step}: {message}" for step, message in errors.items()),
        failed_checks=tuple(c.label for c in checks if c.severity == dg.AssetCheckSeverity.ERROR),
        warned_checks=tuple(c.label for c in checks if c.severity == dg.AssetCheckSeverity.WARN),
        job=job_name,
        checks=checks,
        step_errors=errors,
        tables=table_summaries(metadata, errors, max_quarantine_share),
        ignored=ignored_files(metadata),
        published={
            key.to_user_string(): values
            for key, values in metadata.items()
            if key.path[0] == "published"
        },
    )


def run_job(
    settings: Settings,
    job_name: str = PIPELINE_JOB,
    log_level: str = "WARNING",
    listener: EventListener | None = None,
    full_refresh: bool = False,
) -> RunOutcome:
    """Execute ``job_name`` in this process; the outcome lists failed steps and checks.

    ``full_refresh``: the run tag ``csw/full_refresh`` makes every dbt call ``--full-refresh``
    and bypasses every skip (docs/operations.md, "Rebuilding everything: --full-refresh")."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    job = build_definitions(settings).resolve_job_def(job_name)
    tags = {FULL_REFRESH_TAG: "true"} if full_refresh else None
    result = execute(job, _quiet_run_config(log_level), listener, tags)
    return outcome_of(result, job_name, settings.max_quarantine_share)


# --- Stopping a run and its children ----------------------------------------------------------


class RunInterruptedError(Exception):
    """A stop signal arrived while a run was working; its children have been stopped."""

    def __init__(self, signum: int, children: tuple[int, ...], run_finished: bool) -> None:
        self.signum = signum
        self.children = children
        #: Whether the run's thread wound up; if not, the process must exit without waiting.
        self.run_finished = run_finished
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Stop(BaseException):
    """Raised in the main thread by the signal handler (BaseException: nothing catches it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc (Linux)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> list[int]:
    """The living children of ``pid``, their children and so on (empty without /proc)."""
    if not Path("/proc").is_dir():
        return []
    table = _process_table()
    found: list[int] = []
    parents = {pid}
    while parents:
        children = [p for p, (ppid, state) in table.items() if ppid in parents and state != "Z"]
        found += children
        parents = set(children)
    return found


def _python_helper(pid: int) -> bool:
    """multiprocessing's resource tracker or fork server: it ignores SIGTERM by design and ends
    by itself when this process does."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"from multiprocessing." in cmdline


def stop_children(
    grace_s: float = CHILD_GRACE_S, keep: frozenset[int] = frozenset()
) -> tuple[int, ...]:
    """SIGTERM this process's descendants but ``keep`` (those from before the run), e.g. the
    ``dbt build``; SIGKILL those still there after ``grace_s``."""
    children = [
        pid for pid in descendants(os.getpid()) if pid not in keep and not _python_helper(pid)
    ]
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while (left := set(children) & set(descendants(os.getpid()))) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        _signal(pid, signal.SIGKILL)
    return tuple(children)


def _signal(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signum)


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """In the main thread, the stop signals raise :class:`_Stop` (once) instead of their usual
    effect; the previous handlers come back afterwards."""
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            raise _Stop(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_in_worker(work: Callable[[], T], tick: Callable[[], None], tick_s: float = 0.5) -> T:
    """Run ``work`` in a thread and return its result; call ``tick`` every ``tick_s`` meanwhile.

    Dagster installs no signal handlers off the main thread, so the stop signals stay ours: on
    SIGTERM, SIGINT or SIGHUP this stops the child processes the run started (the ``dbt
    build``), gives the run's thread :data:`RUN_GRACE_S` to wind up, and raises
    :class:`RunInterruptedError`. A child still there when the run ends is stopped too.
    """
    if threading.current_thread() is not threading.main_thread():
        return work()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc

    worker = threading.Thread(target=target, name="csw-run", daemon=True)
    before = frozenset(descendants(os.getpid()))
    with _stop_signals_raise():
        try:
            worker.start()
            while worker.is_alive():
                worker.join(tick_s)
                tick()
        except _Stop as stop:
            children = stop_children(keep=before)
            worker.join(RUN_GRACE_S)
            raise RunInterruptedError(stop.signum, children, not worker.is_alive()) from None
        # A child the run left behind (a dbt build whose events dagster-dbt stopped reading
        # after an error) would go on writing the warehouse after the command returned.
        stop_children(keep=before)
    if "error" in box:
        raise box["error"]
    return box["value"]
