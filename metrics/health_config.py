"""The health-model configuration (``metrics/config/health_model.yaml``), validated on load.

The YAML is the one place the event vocabulary, onboarding milestones and scoring defaults live:
the synthetic generator emits its event names, and dbt receives it as vars.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

DEFAULT_CONFIG_PATH = Path(__file__).parent / "config" / "health_model.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSpec(_Strict):
    feature: str | None = None
    core: bool = False


class OnboardingStage(_Strict):
    stage: int
    name: str
    #: The event that marks the stage, and which occurrence of it (1 = first).
    event: str | None = None
    occurrence: int = 1
    #: Or: the stage is reached when the account's Nth user is provisioned.
    user_provisioned: int | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> OnboardingStage:
        if (self.event is None) == (self.user_provisioned is None):
            raise ValueError(
                f"stage {self.stage} needs exactly one of 'event' or 'user_provisioned'"
            )
        return self


class Onboarding(_Strict):
    stages: tuple[OnboardingStage, ...]
    first_value_stage: int

    @model_validator(mode="after")
    def _ordered(self) -> Onboarding:
        numbers = [s.stage for s in self.stages]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"onboarding stages must be numbered 1..n in order, got {numbers}")
        if self.first_value_stage not in numbers:
            raise ValueError(f"first_value_stage {self.first_value_stage} is not one of the stages")
        return self


class Step(_Strict):
    """One threshold: ``value`` compared with the measure, ``points`` given when it matches."""

    value: float
    points: int


class Penalty(_Strict):
    above: int
    points: int


def _descending(steps: tuple[Step, ...], name: str) -> tuple[Step, ...]:
    values = [s.value for s in steps]
    if values != sorted(values, reverse=True):
        raise ValueError(
            f"{name} thresholds must be listed from the highest value down, got {values}"
        )
    return steps


class RatioRule(_Strict):
    window_days: int
    above: tuple[Step, ...]
    otherwise: int

    @model_validator(mode="after")
    def _ordered(self) -> RatioRule:
        _descending(self.above, "above")
        return self


class TrendRule(RatioRule):
    no_baseline_with_activity: int
    no_baseline_without_activity: int


class CountRule(_Strict):
    window_days: int
    at_least: tuple[Step, ...]
    otherwise: int

    @model_validator(mode="after")
    def _ordered(self) -> CountRule:
        _descending(self.at_least, "at_least")
        return self


class UsageComponents(_Strict):
    max_points: int
    active_ratio: RatioRule
    weekly_trend: TrendRule
    breadth: CountRule


class SupportComponents(_Strict):
    max_points: int
    start_points: int
    tickets_window_days: int
    ticket_volume_penalties: tuple[Penalty, ...]
    open_critical_ticket_penalty: int


class PaymentsRule(_Strict):
    window_days: int
    points_by_failures: tuple[int, ...]
    otherwise: int


class SeatsRule(_Strict):
    window_days: int
    no_seats: int
    above: tuple[Step, ...]
    below: tuple[Step, ...]
    otherwise: int


class FinancialComponents(_Strict):
    max_points: int
    payments: PaymentsRule
    seats: SeatsRule


class RoleRule(_Strict):
    role: str
    points: int


class ActivityRule(_Strict):
    activity_types: tuple[str, ...]
    window_days: int
    points: int


class EngagementComponents(_Strict):
    max_points: int
    executive_sponsor: RoleRule
    business_review: ActivityRule
    nps: CountRule
    training: ActivityRule


class Bands(_Strict):
    green: int
    yellow: int


class HealthScore(_Strict):
    usage: UsageComponents
    support: SupportComponents
    financial: FinancialComponents
    engagement: EngagementComponents
    bands: Bands
    change_days: int
    drivers: int

    @model_validator(mode="after")
    def _adds_up(self) -> HealthScore:
        total = (
            self.usage.max_points
            + self.support.max_points
            + self.financial.max_points
            + self.engagement.max_points
        )
        if total != 100:
            raise ValueError(f"the four groups' max_points must add up to 100, got {total}")
        if not 0 < self.bands.yellow < self.bands.green <= 100:
            raise ValueError("bands need 0 < yellow < green <= 100")
        return self


class DeclineRule(_Strict):
    window_days: int
    below: tuple[Step, ...]


class SpikeRule(_Strict):
    window_days: int
    baseline_days: int
    min_tickets: int
    multiple_of_baseline: float
    points: int


class LowNpsRule(_Strict):
    below: int
    points: int
    neutral_score: int
    neutral_points: int


class ChampionRule(_Strict):
    role: str
    window_days: int
    points: int


class FailuresRule(_Strict):
    min_failures: int
    points: int


class RenewalRule(_Strict):
    within_days: int
    health_below: int
    points: int


class RiskBands(_Strict):
    low: int
    medium: int


class ChurnRisk(_Strict):
    usage_decline: DeclineRule
    ticket_spike: SpikeRule
    low_nps: LowNpsRule
    champion_left: ChampionRule
    payment_failures: FailuresRule
    renewal_near_health_low: RenewalRule
    max_points: int
    bands: RiskBands


class RiskList(_Strict):
    health_bands: tuple[str, ...]
    min_churn_risk: int
    renewal_within_days: int
    renewal_health_below: int


class TeamGrowth(_Strict):
    window_days: int
    growth_above: float


class SustainedHealth(_Strict):
    band: str
    previous_mondays: int


class ExpansionList(_Strict):
    seat_limit_utilisation: float
    team_growth: TeamGrowth
    sustained_health: SustainedHealth
    seat_opportunity_share: float


class DaysRange(_Strict):
    min_days: int
    max_days: int


class DecliningRule(_Strict):
    window_days: int
    previous_windows: int
    below_share: float


class HealthDropRule(_Strict):
    days: int
    at_most_share: float


class AdoptionAlerts(_Strict):
    user_not_activated: DaysRange
    no_activity_days: int
    activity_declining: DecliningRule
    feature_unused_window_days: int
    health_drop: HealthDropRule


class Lists(_Strict):
    risk: RiskList
    expansion: ExpansionList
    adoption_alerts: AdoptionAlerts


class StageDays(_Strict):
    onboarding: int
    adoption: int
    value_realisation: int


class EngagementModelArr(_Strict):
    high_touch: float
    scaled: float


class Lifecycle(_Strict):
    renewal_window_days: int
    stage_days: StageDays
    engagement_model_arr: EngagementModelArr


class HealthConfig(_Strict):
    version: int
    events: dict[str, EventSpec]
    tier_features: dict[str, tuple[str, ...]]
    onboarding: Onboarding
    health_score: HealthScore
    churn_risk: ChurnRisk
    lists: Lists
    lifecycle: Lifecycle

    @model_validator(mode="after")
    def _consistent(self) -> HealthConfig:
        features = {e.feature for e in self.events.values() if e.feature}
        for tier, included in self.tier_features.items():
            unknown = sorted(set(included) - features)
            if unknown:
                raise ValueError(f"tier_features.{tier} names features no event maps to: {unknown}")
        for stage in self.onboarding.stages:
            if stage.event is not None and stage.event not in self.events:
                raise ValueError(
                    f"onboarding stage {stage.stage} uses unknown event {stage.event!r}"
                )
        return self

    @property
    def core_features(self) -> tuple[str, ...]:
        return tuple(sorted({e.feature for e in self.events.values() if e.core and e.feature}))


class HealthConfigError(ValueError):
    """The configuration file is missing or invalid; the message says where and what."""


def load_health_config(path: Path | None = None) -> HealthConfig:
    """Read and validate a health-model YAML (the packaged default when ``path`` is None)."""
    source = path or DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HealthConfigError(f"{source}: no such health-model configuration file") from None
    except yaml.YAMLError as exc:
        raise HealthConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        return HealthConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise HealthConfigError(
            f"{source}: invalid health-model configuration: {problems}"
        ) from None


@cache
def default_health_config() -> HealthConfig:
    return load_health_config()
