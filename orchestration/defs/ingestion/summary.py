"""Materialising the ingestion assets in-process and summarising the run per table.

``csw ingest`` calls :func:`run_ingestion`; tests call it too. The summary is read from the
materialisation metadata of each asset (see ``outcome_metadata`` in ``assets.py``), so it is
what the Dagster UI shows for the same run.
"""

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ingestion.contract import TABLES
from orchestration.defs.ingestion.assets import (
    asset_key,
    ingestion_asset_checks,
    ingestion_assets,
)
from orchestration.instance import cli_instance
from orchestration.resources import warehouse_resources
from orchestration.settings import Settings


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


@dataclass(frozen=True)
class IngestionRun:
    run_id: str
    success: bool
    tables: tuple[TableSummary, ...]
    failed_checks: tuple[str, ...] = field(default=())

    @property
    def files_refused(self) -> int:
        return sum(t.files_refused for t in self.tables)

    @property
    def ok(self) -> bool:
        """Every asset materialised and no file was refused."""
        return self.success and self.files_refused == 0


def ingestion_resources(settings: Settings) -> dict[str, object]:
    return warehouse_resources(settings)


def _root_cause(error: Any) -> str:
    """The innermost error of Dagster's wrapped step error, e.g. ``RuntimeError: disk full``."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _step_errors(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        event.step_key: _root_cause(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure
        and event.step_key
        and event.step_failure_data
        and event.step_failure_data.error
    }


def run_ingestion(settings: Settings, *, log_level: str = "WARNING") -> IngestionRun:
    """Materialise every ingestion asset and its check in-process (Dagster's console log at
    ``log_level``: refused files are logged as errors)."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with cli_instance() as instance:
        result = dg.materialize(
            [*ingestion_assets, *ingestion_asset_checks],
            resources=ingestion_resources(settings),
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    metadata = {
        event.asset_key: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }
    errors = _step_errors(result)
    tables = []
    for schema in TABLES:
        key = asset_key(schema)
        meta = metadata.get(key)
        if meta is None:
            step = "__".join(key.path)
            tables.append(
                TableSummary(schema.asset_path, error=errors.get(step, "not materialised"))
            )
            continue
        files = meta.get("files") or []
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
            )
        )
    failed_checks = tuple(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    )
    return IngestionRun(result.run_id, result.success, tuple(tables), failed_checks)
