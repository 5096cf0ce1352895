"""The jobs: the daily pipeline, the weekly lists, the monthly finance close, ingestion, and the
monthly fit of the learned churn model."""

import dagster as dg

from orchestration.defs.ingestion.assets import ingestion_assets

PIPELINE_JOB = "pipeline"
WEEKLY_LISTS_JOB = "weekly_lists"
FINANCE_CLOSE_JOB = "finance_close"
INGEST_JOB = "ingest"
CHURN_MODEL_JOB = "churn_model"

LISTS_KEY = dg.AssetKey(["published", "lists"])
FINANCE_CLOSE_KEY = dg.AssetKey(["published", "finance_close"])
#: The learned churn model's fit (orchestration/defs/churn_model); not part of the daily pipeline.
CHURN_MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
PUBLISHING_GROUP = "publishing"


def build_jobs() -> list:  # of unresolved asset jobs (not exported by dagster)
    return [
        dg.define_asset_job(
            PIPELINE_JOB,
            selection=dg.AssetSelection.all()
            - dg.AssetSelection.assets(LISTS_KEY, FINANCE_CLOSE_KEY, CHURN_MODEL_KEY),
            description="Ingest new extracts, build and test every dbt model, publish the marts "
            "and the serving copy.",
        ),
        dg.define_asset_job(
            WEEKLY_LISTS_JOB,
            selection=dg.AssetSelection.assets(LISTS_KEY),
            description="Publish the risk and expansion lists and the adoption alerts.",
        ),
        dg.define_asset_job(
            FINANCE_CLOSE_JOB,
            selection=dg.AssetSelection.assets(FINANCE_CLOSE_KEY),
            description="Publish the closed month's retention report and MRR bridge.",
        ),
        dg.define_asset_job(
            CHURN_MODEL_JOB,
            selection=dg.AssetSelection.assets(CHURN_MODEL_KEY).downstream()
            - dg.AssetSelection.groups(PUBLISHING_GROUP),
            description="Fit the learned churn model on the warehouse's history (validated out "
            "of time; used only when it beats the configured score), then rebuild and test the "
            "dbt models that apply it (int_churn_predictions, fct_account_health, risk_list, ...).",
        ),
        dg.define_asset_job(
            INGEST_JOB,
            selection=dg.AssetSelection.assets(*ingestion_assets),
            description="Load new extract files into raw.*, then check each table's contract "
            "and freshness (the landing sensor starts it for the tables with new files).",
        ),
    ]
