"""The asset ``ml/churn_model``: fit the learned churn model on the warehouse's history.

It reads the intermediate models the pipeline built (features, churn outcomes, health scores),
fits and validates the model out of time (:func:`metrics.churn_model.fit_churn_model`), records
the fit in ``ml.churn_model_fits`` / ``ml.churn_model_coefficients`` and writes the artifact under
``<publish_dir>/models/churn/``. The dbt models that read those tables (``int_churn_predictions``
and the marts after it) are downstream of this asset; the job ``churn_model`` runs them after the
fit, the daily pipeline does not fit. A fit that is not accepted (or too little history)
materialises with its verdict; SQL then keeps using the last accepted fit, or none.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.jobs import CHURN_MODEL_KEY
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

if TYPE_CHECKING:
    from metrics.churn_model import ChurnModelFit
#: The intermediate models the fit reads (dbt assets keyed <layer>/<model>).
READS = (
    dg.AssetKey(["intermediate", "int_account_churn_features"]),
    dg.AssetKey(["intermediate", "int_account_churn_outcomes"]),
    dg.AssetKey(["intermediate", "int_account_health_scores"]),
)
OWNER = "team:customer-success-ops"


def fit_metadata(fit: "ChurnModelFit") -> dict[str, Any]:
    """What a materialisation shows: version, accepted, the AUCs out of time, the verdict."""
    metrics = {k: v for k, v in fit.metrics.items() if v is not None}
    split = fit.split
    return {
        "version": fit.version,
        "accepted": fit.accepted,
        "verdict": fit.verdict,
        "horizon_days": fit.horizon_days,
        "health_model_version": fit.health_model_version or "",
        **{k: dg.MetadataValue.float(float(v)) for k, v in metrics.items()},
        "split": dg.MetadataValue.json(
            {
                "kind": split.kind,
                "train": [split.train_from.isoformat(), split.train_to.isoformat()],
                "validation": [split.validation_from.isoformat(), split.validation_to.isoformat()],
                "train_rows": split.train_rows,
                "validation_rows": split.validation_rows,
            }
            if split
            else {}
        ),
        **(
            {"artifact": dg.MetadataValue.path(str(fit.artifact_path))} if fit.artifact_path else {}
        ),
    }


@dg.asset(
    key=CHURN_MODEL_KEY,
    group_name="ml",
    deps=list(READS),
    owners=[OWNER],
    pool=WAREHOUSE_WRITER_POOL,
    description="The learned churn model fitted on the warehouse's history (scikit-learn L2 "
    "logistic regression, calibrated, validated out of time on the latest complete outcome "
    "window): ml.churn_model_fits, ml.churn_model_coefficients and the artifact "
    "models/churn/<version>.json. Used by int_churn_predictions only when it beats the configured "
    "score. docs/churn-model.md.",
)
def churn_model_asset(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
) -> dg.MaterializeResult:
    # imported here: scikit-learn is only needed when fitting, not to load the definitions
    from metrics.churn_model import ChurnModelError, fit_churn_model

    as_of = settings.as_of_for(context)
    try:
        with duckdb.get_connection() as con:
            fit = fit_churn_model(
                con,
                as_of=as_of,
                horizon_days=settings.churn_horizon_days,
                publish_dir=Path(settings.publish_dir),
            )
    except ChurnModelError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    log = context.log.info if fit.accepted else context.log.warning
    log(f"churn model {fit.version}: {fit.verdict}")
    return dg.MaterializeResult(metadata=fit_metadata(fit))
