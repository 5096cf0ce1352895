"""One settings object for every command and asset.

Values resolve in this order: command-line flags, then ``CSW_*`` environment variables, then
defaults under the home directory (``./.csw/`` unless ``CSW_HOME`` says otherwise).
"""

from __future__ import annotations

import difflib
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _today_utc() -> date:
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


class Settings(BaseSettings):
    """Where things live and the date everything is computed as of."""

    model_config = SettingsConfigDict(env_prefix="CSW_", extra="forbid", validate_default=True)

    home: Path = Field(default=Path(".csw"), description="Root of the default locations")
    landing_dir: Path | None = Field(default=None, description="Landing directory of the extracts")
    warehouse_path: Path | None = Field(default=None, description="The DuckDB warehouse file")
    publish_dir: Path | None = Field(default=None, description="Where published files go")
    as_of: date = Field(default_factory=_today_utc, description="Reporting date (UTC)")
    timezone: str = Field(default="UTC", description="Timezone of the schedules")
    duckdb_memory_limit: str = Field(default="4GB", description="DuckDB memory_limit")
    duckdb_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    dbt_threads: int | None = Field(
        default=None,
        ge=1,
        description="dbt threads, models built at once (default: duckdb_threads, the cores). On 2"
        " cores at tier L a dbt build took 239 s with 1 against 298 s with 2: DuckDB already"
        " uses both cores per query, and two heavy queries split the memory limit and spill"
        " (docs/performance.md)",
    )

    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="The engine dbt builds the models on: duckdb (in the warehouse file) or"
        " spark (Spark in local mode reading the raw layer's Parquet beside the warehouse file;"
        ' needs Java 17 and `pip install -e ".[spark]"`; docs/engines.md)',
    )
    spark_driver_memory: str = Field(
        default="4g", description="Memory of the local Spark driver when engine is spark"
    )

    max_quarantine_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of a file's or a table's rows that may be quarantined before `csw"
        " ingest`/`csw run` fail (0.05 = 5%); a refused file always fails",
    )
    publish_max_shrink: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A mart or list that would lose more than this share of its published rows"
        " (or come out empty) is held back, and the previous publication stays",
    )
    force_publish: bool = Field(
        default=False, description="Publish even when a mart or list would shrink or empty"
    )
    run_lock_wait_s: float = Field(
        default=0.0,
        ge=0.0,
        description="Seconds a run waits for another run writing the same warehouse (0: exit at"
        " once)",
    )
    dbt_target_keep: int = Field(
        default=10, ge=1, description="dbt call target folders kept; older ones are pruned"
    )
    extract_freshness_days: int = Field(
        default=3,
        ge=1,
        description="An extract table with no new file for this many days fails its freshness"
        " check",
    )
    alert_webhook: str = Field(
        default="", description="URL a failed run is POSTed to as JSON (empty: none)"
    )
    alert_command: str = Field(
        default="",
        description="Shell command run on a failed run, the run's JSON on standard input"
        " (empty: none)",
    )
    dagster_url: str = Field(
        default="",
        description="Base URL of the Dagster UI (http://127.0.0.1:3000); failure alerts link to"
        " the run there (empty: no link)",
    )
    health_model: Path | None = Field(
        default=None,
        description="The health-model YAML this deployment scores with (a relative path resolves"
        " against the working directory); unset: the shipped metrics/config/health_model.yaml",
    )
    max_unmapped_event_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of all events whose name the health model does not know above which"
        " the dbt build fails (unmapped_event_share_within_limit); below it they only warn",
    )
    adapters: Path | None = Field(
        default=None,
        description="YAML listing the source-system adapters the pipeline runs before ingestion"
        ' (system, source folder, mapping file; docs/adapters.md, "Running adapters"); a'
        " relative path resolves against the working directory; unset: no adapter assets",
    )
    churn_horizon_days: int = Field(
        default=90,
        ge=1,
        le=730,
        description="Days after a scored date in which an account whose MRR goes to 0 counts as"
        " churned: the outcome the backtest measures scores against and the learned churn"
        " model predicts",
    )

    @model_validator(mode="after")
    def _fill_dbt_threads(self) -> Settings:
        if self.dbt_threads is None:
            self.dbt_threads = self.duckdb_threads
        return self

    @model_validator(mode="after")
    def _absolute_health_model(self) -> Settings:
        """A relative path means relative to where the command runs, fixed here: Dagster runs
        and dbt calls may start elsewhere."""
        if self.health_model is not None and not self.health_model.is_absolute():
            self.health_model = Path.cwd() / self.health_model
        return self

    @model_validator(mode="after")
    def _absolute_adapters(self) -> Settings:
        """As the health model: a relative CSW_ADAPTERS is from where the command runs."""
        if self.adapters is not None and not self.adapters.is_absolute():
            self.adapters = Path.cwd() / self.adapters
        return self

    @model_validator(mode="after")
    def _fill_locations(self) -> Settings:
        if self.landing_dir is None:
            self.landing_dir = self.home / "landing"
        if self.warehouse_path is None:
            self.warehouse_path = self.home / "warehouse.duckdb"
        if self.publish_dir is None:
            self.publish_dir = self.home / "published"
        return self

    @property
    def landing(self) -> Path:
        assert self.landing_dir is not None
        return self.landing_dir

    @property
    def warehouse(self) -> Path:
        assert self.warehouse_path is not None
        return self.warehouse_path

    @property
    def publish(self) -> Path:
        assert self.publish_dir is not None
        return self.publish_dir

    @property
    def serving_copy(self) -> Path:
        """The read-only copy of the warehouse that readers and BI tools open."""
        return self.publish / "warehouse.duckdb"


ENV_PREFIX = "CSW_"
#: The flags whose names are not the field's name with dashes.
FLAG_NAMES = {
    "warehouse_path": "--warehouse",
    "publish_dir": "--publish",
    "landing_dir": "--landing",
}


class SettingsError(ValueError):
    """A setting's value is unusable; the message names the flag or CSW_* variable it came from."""


def _where(field: str, value: object, overrides: dict[str, Any]) -> str:
    if field in overrides:
        return f"{FLAG_NAMES.get(field, '--' + field.replace('_', '-'))} {str(value)!r}"
    return f"{ENV_PREFIX}{field.upper()}={str(value)!r}"


def _expected(error: dict[str, Any]) -> str:
    """What the value should be, in words, for the errors a setting can have."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind.startswith("date"):
        return "is not a date: write it as YYYY-MM-DD, e.g. 2025-06-30"
    if kind.startswith("int"):
        return "is not a whole number"
    if kind.startswith("float"):
        return "is not a number (a share is written 0.05 for 5%)"
    if kind.startswith("bool"):
        return "is not true or false"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    return str(error["msg"]).removeprefix("Value error, ")


def _problems(exc: ValidationError, overrides: dict[str, Any]) -> list[str]:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if field not in Settings.model_fields:
            lines.append(f"{field}: {_expected(error)}")
            continue
        lines.append(f"{_where(field, error.get('input'), overrides)} {_expected(error)}")
    return lines


def _unknown_variables() -> list[str]:
    """CSW_* variables that are no setting: a typo would otherwise be ignored silently."""
    known = [ENV_PREFIX + name.upper() for name in Settings.model_fields]
    lines = []
    for name in sorted(n for n in os.environ if n.upper().startswith(ENV_PREFIX)):
        if name.upper() in known:
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name} is not a setting (README, Settings){hint}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the non-None ``overrides`` (the CLI's flags) on top.

    Raises :class:`SettingsError` naming every unusable flag or ``CSW_*`` variable (and every
    ``CSW_*`` variable that is no setting) with what is expected instead."""
    given = {k: v for k, v in overrides.items() if v is not None}
    problems = _unknown_variables()
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        problems += _problems(exc, given)
    if problems:
        raise SettingsError("\n".join(problems))
    return settings
