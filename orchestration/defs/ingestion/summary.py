"""Materialising the ingestion assets in-process and summarising the run per table.

``csw ingest`` calls :func:`run_ingestion`; tests call it too. The summary is read from the
materialisation metadata of each asset (see ``outcome_metadata`` in ``assets.py``), so it is
what the Dagster UI shows for the same run.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from ingestion.contract import TABLES
from orchestration.defs.ingestion.assets import (
    asset_key,
    ingestion_asset_checks,
    ingestion_assets,
    quarantined_beyond,
)
from orchestration.resources import warehouse_resources
from orchestration.settings import Settings

if TYPE_CHECKING:
    from orchestration.pipeline_run import EventListener

#: The asset listing files outside the table folders (ingestion, issue 12 point 2).
UNRECOGNISED_FILES_KEY = dg.AssetKey(["landing", "unrecognised_files"])


@dataclass(frozen=True)
class FileNote:
    """A file worth naming in a summary: refused, or quarantined beyond the allowed share."""

    source_file: str
    outcome: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    message: str

    def describe(self) -> str:
        if self.outcome == "refused":  # the message names the file
            read = f" ({self.rows_read:,} rows read, none loaded)" if self.rows_read else ""
            return f"{self.message}{read}"
        return (
            f"{self.source_file}: {self.rows_quarantined:,} of {self.rows_read:,} rows quarantined"
            f" ({self.rows_loaded:,} loaded); reasons in raw.quarantine"
        )


@dataclass(frozen=True)
class IgnoredFile:
    """A file under the landing directory that no table loads."""

    source_file: str
    blocking: bool
    message: str


@dataclass(frozen=True)
class TableSummary:
    table: str
    files_loaded: int = 0
    files_skipped: int = 0
    files_refused: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    refused: tuple[str, ...] = ()
    #: The step's error when the asset itself failed (a crash, not a refused file).
    error: str | None = None
    #: Refused files and files quarantined beyond the share, with their row counts.
    notes: tuple[FileNote, ...] = ()
    #: More than the allowed share of the rows this run read was quarantined.
    over_share: bool = False

    @property
    def has_news(self) -> bool:
        """Whether the run did anything with this table worth a row of its own."""
        return bool(
            self.error
            or self.files_loaded
            or self.files_refused
            or self.rows_quarantined
            or self.notes
        )

    @property
    def over_share_files(self) -> tuple[FileNote, ...]:
        return tuple(n for n in self.notes if n.outcome != "refused")


@dataclass(frozen=True)
class IngestionRun:
    run_id: str
    success: bool
    tables: tuple[TableSummary, ...]
    failed_checks: tuple[str, ...] = field(default=())
    ignored: tuple[IgnoredFile, ...] = ()

    @property
    def files_refused(self) -> int:
        return sum(t.files_refused for t in self.tables)

    @property
    def ok(self) -> bool:
        """Every asset materialised, every check passed, no file was refused, quarantined
        beyond the share or left outside the table folders looking like data."""
        return (
            self.success
            and self.files_refused == 0
            and not self.failed_checks
            and not any(t.over_share or t.over_share_files for t in self.tables)
            and not any(f.blocking for f in self.ignored)
        )


def ingestion_resources(settings: Settings) -> dict[str, object]:
    return warehouse_resources(settings)


def _root_cause(error: Any) -> str:
    """The innermost error of Dagster's wrapped step error, e.g. ``RuntimeError: disk full``."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def step_errors(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Step key -> the root cause of its failure."""
    return {
        event.step_key: _root_cause(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure
        and event.step_key
        and event.step_failure_data
        and event.step_failure_data.error
    }


def materialised_metadata(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dict[str, Any]]:
    """Each materialised asset's metadata values."""
    return {
        event.asset_key: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }


def _notes(files: Sequence[Mapping[str, Any]], max_share: float) -> tuple[FileNote, ...]:
    notes = []
    for f in files:
        read, quarantined = int(f.get("rows_read") or 0), int(f.get("rows_quarantined") or 0)
        if f.get("outcome") == "refused" or quarantined_beyond(quarantined, read, max_share):
            notes.append(
                FileNote(
                    str(f["source_file"]),
                    str(f.get("outcome")),
                    read,
                    int(f.get("rows_loaded") or 0),
                    quarantined,
                    str(f.get("message") or ""),
                )
            )
    return tuple(notes)


def table_summaries(
    metadata: Mapping[dg.AssetKey, Mapping[str, Any]],
    errors: Mapping[str, str],
    max_quarantine_share: float,
) -> tuple[TableSummary, ...]:
    """Per contract table, what its asset's materialisation (or failure) says."""
    tables = []
    ingested = any(asset_key(schema) in metadata for schema in TABLES)
    for schema in TABLES:
        key = asset_key(schema)
        meta = metadata.get(key)
        if meta is None:
            step = "__".join(key.path)
            if step in errors or ingested:
                tables.append(
                    TableSummary(schema.asset_path, error=errors.get(step, "not materialised"))
                )
            continue
        files = meta.get("files") or []
        rows_read = sum(int(f.get("rows_read") or 0) for f in files)
        tables.append(
            TableSummary(
                schema.asset_path,
                files_loaded=int(meta["files_loaded"]),
                files_skipped=int(meta["files_skipped"]),
                files_refused=int(meta["files_refused"]),
                rows_loaded=int(meta["rows_loaded"]),
                rows_quarantined=int(meta["rows_quarantined"]),
                rows_duplicate=int(meta["rows_duplicate"]),
                refused=tuple(f["message"] for f in files if f["outcome"] == "refused"),
                notes=_notes(files, max_quarantine_share),
                over_share=quarantined_beyond(
                    int(meta["rows_quarantined"]), rows_read, max_quarantine_share
                ),
            )
        )
    return tuple(tables)


def ignored_files(metadata: Mapping[dg.AssetKey, Mapping[str, Any]]) -> tuple[IgnoredFile, ...]:
    """The files outside the table folders, from ``landing/unrecognised_files``."""
    files = (metadata.get(UNRECOGNISED_FILES_KEY) or {}).get("files") or []
    return tuple(
        IgnoredFile(str(f["source_file"]), bool(f.get("blocking")), str(f.get("message") or ""))
        for f in files
    )


def failed_check_names(result: dg.ExecuteInProcessResult) -> tuple[str, ...]:
    return tuple(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    )


def run_ingestion(
    settings: Settings,
    *,
    log_level: str = "WARNING",
    listener: "EventListener | None" = None,
) -> IngestionRun:
    """Materialise every ingestion asset and its check in-process (Dagster's console log at
    ``log_level``: refused files are logged as errors); ``listener`` sees each event."""
    from orchestration.defs.ingestion.freshness import freshness_checks
    from orchestration.pipeline_run import execute

    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    job = dg.Definitions(
        assets=list(ingestion_assets),
        asset_checks=[*ingestion_asset_checks, *freshness_checks],
        resources=ingestion_resources(settings),
    ).resolve_implicit_global_asset_job_def()
    result = execute(
        job,
        {"loggers": {"console": {"config": {"log_level": log_level}}}},
        listener,
    )
    metadata = materialised_metadata(result)
    return IngestionRun(
        result.run_id,
        result.success,
        table_summaries(metadata, step_errors(result), settings.max_quarantine_share),
        failed_check_names(result),
        ignored_files(metadata),
    )
