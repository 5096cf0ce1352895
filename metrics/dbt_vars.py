"""The metric configuration as dbt vars: how ``metrics/config/health_model.yaml`` reaches SQL.

Every dbt invocation (Dagster, ``csw``, tests) passes these vars; dbt_project.yml defines none of
them, so each number is written once, in the YAML. The SQL computes; Python only hands over.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from metrics.health_config import HealthConfig, default_health_config


def metric_vars(config: HealthConfig | None = None) -> dict[str, Any]:
    """The dbt vars for ``config`` (the packaged default when None)."""
    config = config or default_health_config()
    lifecycle = config.lifecycle
    return {
        # The whole model, for the customer-success marts.
        "health_model": config.model_dump(mode="json"),
        # Event name -> feature, as rows a model can turn into a relation.
        "feature_map": [
            {
                "event_name": name,
                "feature": spec.feature,
                "is_core": spec.core,
                "counts_as_activity": spec.counts_as_activity,
            }
            for name, spec in config.events.items()
        ],
        # Shortcuts the revenue marts read (dim_accounts' lifecycle and engagement model).
        "engagement_model_thresholds": lifecycle.engagement_model_arr.model_dump(),
        "renewal_window_days": lifecycle.renewal_window_days,
        "lifecycle_stage_days": lifecycle.stage_days.model_dump(),
    }


#: Share of all events whose name the health model does not know above which the build fails
#: (dbt test unmapped_event_share_within_limit); the setting max_unmapped_event_share.
DEFAULT_MAX_UNMAPPED_EVENT_SHARE = 0.5


def dbt_vars(
    as_of: date,
    config: HealthConfig | None = None,
    max_unmapped_event_share: float = DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
) -> dict[str, Any]:
    """All vars of a dbt invocation: the reporting date, the metric configuration (``config``,
    the packaged default when None) and the vocabulary check's limit."""
    return {
        "as_of": as_of.isoformat(),
        **metric_vars(config),
        "max_unmapped_event_share": max_unmapped_event_share,
    }
