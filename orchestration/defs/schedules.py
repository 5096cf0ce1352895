"""When the jobs run. Each run is tagged with the date it reports as of (``csw/as_of``), the
tick's date in the schedules' timezone, so a late or retried run still reports the right day."""

import dagster as dg

from orchestration.defs.jobs import (
    CHURN_MODEL_JOB,
    FINANCE_CLOSE_JOB,
    PIPELINE_JOB,
    WEEKLY_LISTS_JOB,
)
from orchestration.defs.settings_resource import AS_OF_TAG

#: (name, job, cron, description)
SCHEDULES: tuple[tuple[str, str, str, str], ...] = (
    (
        "daily_pipeline",
        PIPELINE_JOB,
        "0 6 * * *",
        "Every day at 06:00: ingest, build, test, publish.",
    ),
    ("weekly_lists", WEEKLY_LISTS_JOB, "0 7 * * 1", "Mondays at 07:00: publish the CSM lists."),
    (
        "monthly_finance_close",
        FINANCE_CLOSE_JOB,
        "0 7 2 * *",
        "The 2nd at 07:00: publish the closed month.",
    ),
    (
        "monthly_churn_model",
        CHURN_MODEL_JOB,
        "30 6 1 * *",
        "The 1st at 06:30, after the daily pipeline: fit the learned churn model and rebuild the "
        "models that apply it.",
    ),
)


def _schedule(
    name: str, job: str, cron: str, description: str, timezone: str
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job_name=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        description=description,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=f"{name}:{as_of}", tags={AS_OF_TAG: as_of})

    return _tick


def build_schedules(timezone: str) -> list[dg.ScheduleDefinition]:
    return [_schedule(*spec, timezone=timezone) for spec in SCHEDULES]
