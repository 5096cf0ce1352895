"""The health model the tests pin: their own copy of the shipped default.

``tests/fixtures/health_model.yaml`` is a copy of ``metrics/config/health_model.yaml`` as shipped.
Every test whose expected values follow from the model's numbers (the dbt unit tests, the
customer-success and incremental dbt tests, the validation messages quoting lines of the file)
reads this copy, so a deployment that tunes the shipped file (or points ``CSW_HEALTH_MODEL``
elsewhere) never breaks the suite. Tests of the shipped file itself only check that it is valid.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from metrics.dbt_vars import dbt_vars
from metrics.health_config import HealthConfig, load_health_config

PINNED_HEALTH_MODEL = Path(__file__).resolve().parent / "fixtures" / "health_model.yaml"


@cache
def pinned_health_config() -> HealthConfig:
    return load_health_config(PINNED_HEALTH_MODEL)


def pinned_dbt_vars(as_of: date) -> dict[str, Any]:
    """The vars of a dbt call as of ``as_of`` with the pinned model (what dbt_harness passes)."""
    return dbt_vars(as_of, pinned_health_config())
