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


class HealthConfig(_Strict):
    version: int
    events: dict[str, EventSpec]
    tier_features: dict[str, tuple[str, ...]]
    onboarding: Onboarding

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
