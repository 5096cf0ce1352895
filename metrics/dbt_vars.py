"""The metric configuration as dbt vars: how ``metrics/config/health_model.yaml`` reaches SQL.

Every dbt invocation (Dagster, ``csw``, tests) passes these vars; dbt_project.yml defines none of
them, so each number is written once, in the YAML. The SQL computes; Python only hands over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import yaml

from metrics.health_config import HealthConfig, default_health_config

#: Hex digits of the content hash shown as a model's version in every scored row.
VERSION_DIGITS = 12


@dataclass(frozen=True)
class ModelVersion:
    """Which health model scored a row: its content hash, its optional name, its YAML."""

    #: The first VERSION_DIGITS hex digits of ``sha256``: the ``health_model_version`` columns.
    version: str
    #: sha256 of the validated model as canonical JSON (keys sorted, no spaces, UTF-8).
    sha256: str
    name: str | None
    #: The validated model as YAML (every field written out, comments dropped); it loads back
    #: to the same model, hence the same version.
    yaml_text: str


def model_version(config: HealthConfig | None = None) -> ModelVersion:
    """The version of ``config`` (the packaged default when None).

    The hash is of the validated model, not of the file's bytes: comments, layout, key order,
    ``0.70`` for ``0.7`` and defaults left out or written out score the same and so are the same
    version, while every value the SQL reads (and the name) is in it.
    """
    config = config or default_health_config()
    model = config.model_dump(mode="json")
    canonical = json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    text = yaml.safe_dump(model, sort_keys=False, allow_unicode=True, width=100)
    header = f"# health model {digest[:VERSION_DIGITS]}" + (
        f" ({config.name})" if config.name else ""
    )
    return ModelVersion(digest[:VERSION_DIGITS], digest, config.name, f"{header}\n{text}")


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
        # Which model scored the rows (their health_model_version / _name columns) and its YAML
        # for marts.dim_health_model_versions.
        "health_model_version": asdict(model_version(config)),
    }


#: Share of all events whose name the health model does not know above which the build fails
#: (dbt test unmapped_event_share_within_limit); the setting max_unmapped_event_share.
DEFAULT_MAX_UNMAPPED_EVENT_SHARE = 0.5
#: Days after a scored date in which MRR going to 0 counts as churn (the setting
#: churn_horizon_days): the backtest's outcome and what the learned churn model predicts.
DEFAULT_CHURN_HORIZON_DAYS = 90


def dbt_vars(
    as_of: date,
    config: HealthConfig | None = None,
    max_unmapped_event_share: float = DEFAULT_MAX_UNMAPPED_EVENT_SHARE,
    churn_horizon_days: int = DEFAULT_CHURN_HORIZON_DAYS,
) -> dict[str, Any]:
    """All vars of a dbt invocation: the reporting date, the metric configuration (``config``,
    the packaged default when None), the vocabulary check's limit and the churn horizon."""
    return {
        "as_of": as_of.isoformat(),
        **metric_vars(config),
        "max_unmapped_event_share": max_unmapped_event_share,
        "churn_horizon_days": churn_horizon_days,
    }
