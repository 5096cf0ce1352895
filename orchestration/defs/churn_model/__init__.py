"""The learned churn model as a Dagster asset; see :mod:`orchestration.defs.churn_model.assets`."""

from orchestration.defs.churn_model.assets import CHURN_MODEL_KEY, churn_model_asset

__all__ = ["CHURN_MODEL_KEY", "churn_model_asset"]
