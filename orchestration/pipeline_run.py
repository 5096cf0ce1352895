"""Running a job of the definitions in-process, as ``csw run`` and the tests do."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from orchestration.definitions import PIPELINE_JOB, build_definitions
from orchestration.instance import cli_instance
from orchestration.settings import Settings


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    run_id: str
    failures: tuple[str, ...]
    failed_checks: tuple[str, ...]
    warned_checks: tuple[str, ...]


def _quiet_run_config(log_level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def run_job(
    settings: Settings, job_name: str = PIPELINE_JOB, log_level: str = "WARNING"
) -> RunOutcome:
    """Execute ``job_name`` in this process; the outcome lists failed steps and checks."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    job = build_definitions(settings).resolve_job_def(job_name)
    with cli_instance() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=_quiet_run_config(log_level)
        )
    failures = tuple(
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error
    )
    not_passed = [e for e in result.get_asset_check_evaluations() if not e.passed]

    def names(severity: dg.AssetCheckSeverity) -> tuple[str, ...]:
        return tuple(
            f"{e.asset_key.to_user_string()}: {e.check_name}"
            for e in not_passed
            if e.severity == severity
        )

    return RunOutcome(
        result.success,
        result.run_id,
        failures,
        names(dg.AssetCheckSeverity.ERROR),
        names(dg.AssetCheckSeverity.WARN),
    )
