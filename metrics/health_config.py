"""The health-model configuration (``metrics/config/health_model.yaml``), validated on load.

The YAML is the one place the event vocabulary, onboarding milestones and scoring defaults live:
the synthetic generator emits its event names, and dbt receives it as vars.

Validation happens in three layers, and every problem found is reported at once, one line each,
``<file>:<line>: <field as written in the YAML> = <value as written>: <rule>``:

1. the YAML itself: a key written twice in one mapping (YAML would silently keep the last);
2. the shape and each field's own domain (pydantic): unknown or missing keys, types (strict: a
   window of ``7.5`` or ``"7"`` is refused, not rounded or parsed), windows > 0, days >= 0,
   shares within 0..1, NPS scores within 0..10, health scores within 0..100, points >= 0;
3. the rules between fields (:func:`_cross_field_problems`): points within their group's
   maximum and each group's best case equal to it, the four groups adding up to 100, bands and
   ranges ordered, threshold lists in the order the SQL tries them with points that never reward
   a worse measure, and every event or feature referenced defined. These run only once the shape
   is right, since they read the typed model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Strict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

DEFAULT_CONFIG_PATH = Path(__file__).parent / "config" / "health_model.yaml"

#: A field's place in the YAML: keys and list indexes from the top.
FieldPath = tuple[str | int, ...]

GROUPS = ("usage", "support", "financial", "engagement")


# --- field domains (layer 2) ---------------------------------------------------------------------


#: The pydantic error type of a field rule, and the validation context key that turns them off
#: (to get a typed model for the rules between fields when only field rules failed).
_FIELD_RULE = "health_model_rule"
_SKIP_FIELD_RULES = "skip_field_rules"


def _rule(holds: Callable[[Any], bool], rule: str) -> AfterValidator:
    """A field-level check whose failure reads as ``rule`` (no pydantic prefix or URL)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(_SKIP_FIELD_RULES) and not holds(value):
            raise PydanticCustomError(_FIELD_RULE, rule)
        return value

    return AfterValidator(check)


def _between(low: float, high: float, meaning: str) -> AfterValidator:
    return _rule(lambda v: low <= v <= high, f"must be between {low} and {high}: {meaning}")


Int = Annotated[int, Strict()]
Number = Annotated[float, Strict(), _rule(math.isfinite, "must be a finite number")]
#: A threshold compared in SQL as DECIMAL(18, 6) (macro cs_threshold).
Threshold = Annotated[
    Number,
    _rule(lambda v: round(v, 6) == v, "has more than 6 decimals; thresholds keep 6, round it"),
]
WindowDays = Annotated[
    Int, _rule(lambda v: v > 0, "must be > 0: a window is a whole number of days, at least 1")
]
Days = Annotated[Int, _rule(lambda v: v >= 0, "must be >= 0: a number of days cannot be negative")]
Points = Annotated[
    Int,
    _rule(
        lambda v: v >= 0,
        "must be >= 0: points are whole numbers >= 0 (a deduction is written as a positive number)",
    ),
]
Count = Annotated[Int, _rule(lambda v: v >= 0, "must be >= 0: a count")]
AtLeastOne = Annotated[Int, _rule(lambda v: v >= 1, "must be >= 1")]
Share = Annotated[Number, _between(0, 1, "a share (0.8 = 80%)")]
Ratio = Annotated[Number, _rule(lambda v: v >= 0, "must be >= 0: a ratio of counts")]
Usd = Annotated[Number, _rule(lambda v: v >= 0, "must be >= 0: an amount in USD")]
ScoreValue = Annotated[Int, _between(0, 100, "a health score is 0..100")]
NpsScore = Annotated[Int, _between(0, 10, "an NPS response score is 0..10")]
Drivers = Annotated[Int, _between(1, 4, "how many of the four groups `drivers` names")]
ChurnMax = Annotated[Int, _between(1, 100, "churn risk is a score out of 100")]
Name = Annotated[
    str,
    Strict(),
    _rule(lambda v: v != "" and v == v.strip(), "must be a non-empty name without outer spaces"),
]
Band = Literal["green", "yellow", "red"]
RankBy = Literal["arr", "expected_arr_lost"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSpec(_Strict):
    feature: Name | None = None
    core: Annotated[bool, Strict()] = False
    #: False: the event is known but is not activity (an ad view, a dislike): it makes no user
    #: active and counts in no activity measure; it may still map to a feature or mark a stage.
    counts_as_activity: Annotated[bool, Strict()] = True


class OnboardingStage(_Strict):
    stage: Int
    name: Name
    #: The event that marks the stage, and which occurrence of it (1 = first).
    event: Name | None = None
    occurrence: AtLeastOne = 1
    #: Or: the stage is reached when the account's Nth user is provisioned.
    user_provisioned: AtLeastOne | None = None


class Onboarding(_Strict):
    stages: tuple[OnboardingStage, ...]
    first_value_stage: Int


class Step(_Strict):
    """One threshold: ``value`` compared with the measure, ``points`` given when it matches."""

    value: Threshold
    points: Points


class Penalty(_Strict):
    above: Count
    points: Points


class RatioRule(_Strict):
    window_days: WindowDays
    above: tuple[Step, ...]
    otherwise: Points


class TrendRule(RatioRule):
    no_baseline_with_activity: Points
    no_baseline_without_activity: Points


class CountRule(_Strict):
    window_days: WindowDays
    at_least: tuple[Step, ...]
    otherwise: Points


class UsageComponents(_Strict):
    max_points: Points
    active_ratio: RatioRule
    weekly_trend: TrendRule
    breadth: CountRule


class SupportComponents(_Strict):
    max_points: Points
    start_points: Points
    tickets_window_days: WindowDays
    ticket_volume_penalties: tuple[Penalty, ...]
    open_critical_ticket_penalty: Points


class PaymentsRule(_Strict):
    window_days: WindowDays
    points_by_failures: tuple[Points, ...]
    otherwise: Points


class SeatsRule(_Strict):
    window_days: WindowDays
    no_seats: Points
    above: tuple[Step, ...]
    below: tuple[Step, ...]
    otherwise: Points


class FinancialComponents(_Strict):
    max_points: Points
    payments: PaymentsRule
    seats: SeatsRule


class RoleRule(_Strict):
    role: Name
    points: Points


class ActivityRule(_Strict):
    activity_types: tuple[Name, ...]
    window_days: WindowDays
    points: Points


class EngagementComponents(_Strict):
    max_points: Points
    executive_sponsor: RoleRule
    business_review: ActivityRule
    nps: CountRule
    training: ActivityRule


class Bands(_Strict):
    green: ScoreValue
    yellow: ScoreValue


class HealthScore(_Strict):
    usage: UsageComponents
    support: SupportComponents
    financial: FinancialComponents
    engagement: EngagementComponents
    bands: Bands
    change_days: WindowDays
    drivers: Drivers


class DeclineRule(_Strict):
    window_days: WindowDays
    below: tuple[Step, ...]


class SpikeRule(_Strict):
    window_days: WindowDays
    baseline_days: WindowDays
    min_tickets: Count
    multiple_of_baseline: Annotated[Ratio, _rule(lambda v: round(v, 6) == v, "keeps 6 decimals")]
    points: Points


class LowNpsRule(_Strict):
    below: NpsScore
    points: Points
    neutral_score: NpsScore
    neutral_points: Points


class ChampionRule(_Strict):
    role: Name
    window_days: WindowDays
    points: Points


class FailuresRule(_Strict):
    min_failures: AtLeastOne
    points: Points


class RenewalRule(_Strict):
    within_days: Days
    health_below: ScoreValue
    points: Points


class RiskBands(_Strict):
    low: Count
    medium: Count


class ChurnRisk(_Strict):
    usage_decline: DeclineRule
    ticket_spike: SpikeRule
    low_nps: LowNpsRule
    champion_left: ChampionRule
    payment_failures: FailuresRule
    renewal_near_health_low: RenewalRule
    max_points: ChurnMax
    bands: RiskBands


class RiskList(_Strict):
    health_bands: tuple[Band, ...]
    min_churn_risk: Count
    renewal_within_days: Days
    renewal_health_below: ScoreValue
    #: The order of the risk list: ``arr`` (ARR at risk, largest first) or ``expected_arr_lost``
    #: (the learned churn model's probability x ARR, largest first, when an accepted fit scores
    #: the date; else ARR, with the reason in the list's ranked_by column). docs/churn-model.md.
    rank_by: RankBy = "arr"


class TeamGrowth(_Strict):
    window_days: WindowDays
    growth_above: Ratio


class SustainedHealth(_Strict):
    band: Band
    previous_mondays: Count


class ExpansionList(_Strict):
    seat_limit_utilisation: Ratio
    team_growth: TeamGrowth
    sustained_health: SustainedHealth
    seat_opportunity_share: Share


class DaysRange(_Strict):
    min_days: Days
    max_days: Days


class DecliningRule(_Strict):
    window_days: WindowDays
    previous_windows: AtLeastOne
    below_share: Share


class HealthDropRule(_Strict):
    days: WindowDays
    at_most_share: Share


class AdoptionAlerts(_Strict):
    user_not_activated: DaysRange
    no_activity_days: WindowDays
    activity_declining: DecliningRule
    feature_unused_window_days: WindowDays
    health_drop: HealthDropRule


class Lists(_Strict):
    risk: RiskList
    expansion: ExpansionList
    adoption_alerts: AdoptionAlerts


class StageDays(_Strict):
    onboarding: WindowDays
    adoption: WindowDays
    value_realisation: WindowDays


class EngagementModelArr(_Strict):
    high_touch: Usd
    scaled: Usd


class Lifecycle(_Strict):
    renewal_window_days: Days
    stage_days: StageDays
    engagement_model_arr: EngagementModelArr


class HealthConfig(_Strict):
    version: Literal[1]
    #: An optional human name of this model (``default``, ``tuned-2026-11``); the content hash
    #: (metrics/dbt_vars.py ``model_version``) identifies it, the name helps people read it.
    name: Name | None = None
    events: dict[Name, EventSpec]
    tier_features: dict[Name, tuple[Name, ...]]
    onboarding: Onboarding
    health_score: HealthScore
    churn_risk: ChurnRisk
    lists: Lists
    lifecycle: Lifecycle

    @property
    def core_features(self) -> tuple[str, ...]:
        return tuple(sorted({e.feature for e in self.events.values() if e.core and e.feature}))


# --- rules between fields (layer 3) --------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One mistake: where (``path``), what is wrong (``rule``) and, when the value is not simply
    the field's own text in the file, the value to show (``shown``)."""

    path: FieldPath
    rule: str
    shown: str | None = None


def _flow(value: Any) -> str:
    """A value in YAML flow style, as a user would write it (``[0.7, 0.4]``, ``45``)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "null" if value is None else str(value)


@dataclass(frozen=True)
class _Steps:
    """A threshold list as the SQL reads it: tried in order, the first match gives the points."""

    path: FieldPath
    values: tuple[float, ...]
    points: tuple[int, ...]
    #: the value key of a step (``value``, or ``above`` for penalties; None for a plain list)
    key: str | None
    #: True: listed from the highest value down (``above``, ``at_least``); False: lowest up.
    descending: bool
    #: True: the points fall along the list (each later step is a weaker measure).
    points_fall: bool = True


def _steps(path: FieldPath, steps: Iterable[Step], descending: bool, points_fall: bool = True):
    steps = tuple(steps)
    return _Steps(
        path,
        tuple(s.value for s in steps),
        tuple(s.points for s in steps),
        "value",
        descending,
        points_fall,
    )


def _step_order_problems(steps: _Steps) -> Iterator[Problem]:
    values = list(steps.values)
    ordered = sorted(set(values), reverse=steps.descending)
    if values != ordered:
        way = "highest value down" if steps.descending else "lowest value up"
        yield Problem(
            steps.path,
            f"thresholds must be listed from the {way}, each once (the first that matches gives "
            "the points)",
            _flow(values),
        )
        return
    for i in range(1, len(steps.points)):
        before, now = steps.points[i - 1], steps.points[i]
        worse = now > before if steps.points_fall else now < before
        if worse:
            where = (*steps.path, i, "points") if steps.key else (*steps.path, i)
            limit = "<=" if steps.points_fall else ">="
            yield Problem(
                where,
                f"must be {limit} {before}, the points of the step before it: a weaker measure "
                "never gives more points",
            )


def _otherwise_problem(path: FieldPath, otherwise: int, steps: _Steps) -> Iterator[Problem]:
    """``otherwise`` continues its list: no more points than the weakest step (falling lists)."""
    if not steps.points:
        return
    last = steps.points[-1]
    if (otherwise > last) if steps.points_fall else (otherwise < last):
        limit = "<=" if steps.points_fall else ">="
        yield Problem(
            path,
            f"must be {limit} {last}, the points of the last step of {_dotted(steps.path)}: "
            "a measure no step matches never gives more points",
        )


def _value_problems(steps: _Steps, check: Callable[[float], str | None]) -> Iterator[Problem]:
    for i, value in enumerate(steps.values):
        rule = check(value)
        if rule:
            yield Problem((*steps.path, i, steps.key or "value"), rule)


def _range(low: float | None, high: float | None, meaning: str) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        if low is not None and high is not None and not low <= value <= high:
            return f"must be between {low} and {high}: {meaning}"
        if low is not None and high is None and value < low:
            return f"must be >= {low}: {meaning}"
        return None

    return check


def _event_problems(c: HealthConfig) -> Iterator[Problem]:
    if not c.events:
        yield Problem(("events",), "must define at least one event", "{}")
    for name, spec in c.events.items():
        if spec.core and spec.feature is None:
            yield Problem(
                ("events", name, "core"),
                "needs a feature: only an event mapped to a feature can be core",
            )
    features = sorted({e.feature for e in c.events.values() if e.feature})
    for tier, included in c.tier_features.items():
        seen: set[str] = set()
        for i, feature in enumerate(included):
            if feature not in features:
                yield Problem(
                    ("tier_features", tier, i),
                    f"no event maps to feature {feature!r}: map an event to it under events, or "
                    f"use one of {', '.join(features)}",
                )
            elif feature in seen:
                yield Problem(("tier_features", tier, i), f"listed twice in tier {tier}")
            seen.add(feature)


def _onboarding_problems(c: HealthConfig) -> Iterator[Problem]:
    stages = c.onboarding.stages
    if not stages:
        yield Problem(("onboarding", "stages"), "must list at least one stage", "[]")
    names: set[str] = set()
    for i, stage in enumerate(stages):
        path: FieldPath = ("onboarding", "stages", i)
        if stage.stage != i + 1:
            yield Problem(
                (*path, "stage"), f"must be {i + 1}: stages are numbered 1..n in the order listed"
            )
        if (stage.event is None) == (stage.user_provisioned is None):
            yield Problem(
                path,
                "needs exactly one of 'event' or 'user_provisioned'",
                f"stage {stage.stage}",
            )
        if stage.event is not None and stage.event not in c.events:
            yield Problem((*path, "event"), "not one of the events defined under events (a typo?)")
        if stage.name in names:
            yield Problem((*path, "name"), "names another stage too: each stage's name once")
        names.add(stage.name)
    if c.onboarding.first_value_stage not in range(1, len(stages) + 1):
        yield Problem(
            ("onboarding", "first_value_stage"),
            f"is not one of the stages (1..{len(stages)})",
        )


def _group_rules(hs: HealthScore) -> dict[str, dict[str, list[tuple[FieldPath, int]]]]:
    """Per group, per rule: every points value the rule can give, with its field path. A group's
    best case is the sum over its rules of each rule's largest value."""
    u, s, f, e = hs.usage, hs.support, hs.financial, hs.engagement

    def steps(path: FieldPath, items: tuple[Step, ...]) -> list[tuple[FieldPath, int]]:
        return [((*path, i, "points"), step.points) for i, step in enumerate(items)]

    base: FieldPath = ("health_score",)
    us, su, fi, en = (
        (*base, "usage"),
        (*base, "support"),
        (*base, "financial"),
        (*base, "engagement"),
    )
    return {
        "usage": {
            "active_ratio": [
                *steps((*us, "active_ratio", "above"), u.active_ratio.above),
                ((*us, "active_ratio", "otherwise"), u.active_ratio.otherwise),
            ],
            "weekly_trend": [
                *steps((*us, "weekly_trend", "above"), u.weekly_trend.above),
                ((*us, "weekly_trend", "otherwise"), u.weekly_trend.otherwise),
                (
                    (*us, "weekly_trend", "no_baseline_with_activity"),
                    u.weekly_trend.no_baseline_with_activity,
                ),
                (
                    (*us, "weekly_trend", "no_baseline_without_activity"),
                    u.weekly_trend.no_baseline_without_activity,
                ),
            ],
            "breadth": [
                *steps((*us, "breadth", "at_least"), u.breadth.at_least),
                ((*us, "breadth", "otherwise"), u.breadth.otherwise),
            ],
        },
        "support": {"start_points": [((*su, "start_points"), s.start_points)]},
        "financial": {
            "payments": [
                *(
                    ((*fi, "payments", "points_by_failures", i), p)
                    for i, p in enumerate(f.payments.points_by_failures)
                ),
                ((*fi, "payments", "otherwise"), f.payments.otherwise),
            ],
            "seats": [
                ((*fi, "seats", "no_seats"), f.seats.no_seats),
                *steps((*fi, "seats", "above"), f.seats.above),
                *steps((*fi, "seats", "below"), f.seats.below),
                ((*fi, "seats", "otherwise"), f.seats.otherwise),
            ],
        },
        "engagement": {
            "executive_sponsor": [
                ((*en, "executive_sponsor", "points"), e.executive_sponsor.points)
            ],
            "business_review": [((*en, "business_review", "points"), e.business_review.points)],
            "nps": [
                *steps((*en, "nps", "at_least"), e.nps.at_least),
                ((*en, "nps", "otherwise"), e.nps.otherwise),
            ],
            "training": [((*en, "training", "points"), e.training.points)],
        },
    }


def _group_problems(hs: HealthScore) -> Iterator[Problem]:
    maxima = {g: getattr(hs, g).max_points for g in GROUPS}
    total = sum(maxima.values())
    if total != 100:
        yield Problem(
            ("health_score",),
            "the four groups' max_points (usage, support, financial, engagement) must add up "
            "to 100",
            "max_points " + " + ".join(str(m) for m in maxima.values()) + f" = {total}",
        )
    deductions = [
        *(
            (("health_score", "support", "ticket_volume_penalties", i, "points"), p.points)
            for i, p in enumerate(hs.support.ticket_volume_penalties)
        ),
        (
            ("health_score", "support", "open_critical_ticket_penalty"),
            hs.support.open_critical_ticket_penalty,
        ),
    ]
    for group, rules in _group_rules(hs).items():
        most = maxima[group]
        points = [pv for values in rules.values() for pv in values]
        if group == "support":
            points += deductions
        for path, value in points:
            if value > most:
                yield Problem(path, f"must be <= {most}, the maximum of group {group}")
        best = {rule: max(v for _, v in values) for rule, values in rules.items()}
        if sum(best.values()) != most:
            parts = " + ".join(f"{rule} {v}" for rule, v in best.items())
            short = sum(best.values()) < most
            effect = "no account can reach it" if short else "the group can pass its maximum"
            yield Problem(
                ("health_score", group, "max_points"),
                f"the best case of the group's rules gives {sum(best.values())} ({parts}); it "
                f"must equal max_points, otherwise {effect}",
            )


def _health_score_problems(c: HealthConfig) -> Iterator[Problem]:
    hs = c.health_score
    u, s, f, e = hs.usage, hs.support, hs.financial, hs.engagement
    yield from _group_problems(hs)
    cores = len(c.core_features)
    base: FieldPath = ("health_score",)
    share = _range(0, 1, "the share of provisioned users active on a day")
    change = _range(-1, None, "a change (a - b) / b is never below -1")
    utilisation = _range(0, None, "a utilisation, active users / seats")
    nps = _range(0, 10, "an NPS response score is 0..10")

    def breadth(value: float) -> str | None:
        if value < 0:
            return "must be >= 0: a number of core features"
        if value > cores:
            return f"must be <= {cores}, the number of core features (events with core: true)"
        return None

    lists = [
        (_steps((*base, "usage", "active_ratio", "above"), u.active_ratio.above, True), share,
         u.active_ratio.otherwise),
        (_steps((*base, "usage", "weekly_trend", "above"), u.weekly_trend.above, True), change,
         u.weekly_trend.otherwise),
        (_steps((*base, "usage", "breadth", "at_least"), u.breadth.at_least, True), breadth,
         u.breadth.otherwise),
        (_steps((*base, "financial", "seats", "above"), f.seats.above, True), utilisation,
         f.seats.otherwise),
        (_steps((*base, "financial", "seats", "below"), f.seats.below, False, points_fall=False),
         utilisation, f.seats.otherwise),
        (_steps((*base, "engagement", "nps", "at_least"), e.nps.at_least, True), nps,
         e.nps.otherwise),
    ]  # fmt: skip
    for steps, check, otherwise in lists:
        yield from _value_problems(steps, check)
        yield from _step_order_problems(steps)
        yield from _otherwise_problem((*steps.path[:-1], "otherwise"), otherwise, steps)
    penalties = _Steps(
        (*base, "support", "ticket_volume_penalties"),
        tuple(p.above for p in s.ticket_volume_penalties),
        tuple(p.points for p in s.ticket_volume_penalties),
        "above",
        descending=True,
    )
    yield from _step_order_problems(penalties)
    payments = _Steps(
        (*base, "financial", "payments", "points_by_failures"),
        tuple(range(len(f.payments.points_by_failures))),
        f.payments.points_by_failures,
        None,
        descending=False,
    )
    yield from _step_order_problems(payments)
    yield from _otherwise_problem(
        (*base, "financial", "payments", "otherwise"), f.payments.otherwise, payments
    )
    for rule in ("business_review", "training"):
        types = getattr(e, rule).activity_types
        if not types or len(set(types)) != len(types):
            yield Problem(
                (*base, "engagement", rule, "activity_types"),
                "must list at least one activity type, each once",
                _flow(types),
            )
    if hs.bands.yellow >= hs.bands.green:
        yield Problem(
            (*base, "bands", "yellow"),
            f"must be < green ({hs.bands.green}): bands go red < yellow < green",
        )
    if hs.bands.yellow <= 0:
        yield Problem((*base, "bands", "yellow"), "must be > 0, or no account is ever red")


def _churn_problems(cr: ChurnRisk) -> Iterator[Problem]:
    base: FieldPath = ("churn_risk",)
    most = cr.max_points
    decline = _steps((*base, "usage_decline", "below"), cr.usage_decline.below, False)
    never = "must be > -1: a change (e1 - e0) / e0 is never below -1, so the step never fires"
    yield from _value_problems(decline, lambda v: None if v > -1 else never)
    yield from _step_order_problems(decline)
    signals: list[tuple[FieldPath, int]] = [
        ((*decline.path, i, "points"), p) for i, p in enumerate(decline.points)
    ]
    signals += [
        ((*base, "ticket_spike", "points"), cr.ticket_spike.points),
        ((*base, "low_nps", "points"), cr.low_nps.points),
        ((*base, "low_nps", "neutral_points"), cr.low_nps.neutral_points),
        ((*base, "champion_left", "points"), cr.champion_left.points),
        ((*base, "payment_failures", "points"), cr.payment_failures.points),
        ((*base, "renewal_near_health_low", "points"), cr.renewal_near_health_low.points),
    ]
    for path, points in signals:
        if points > most:
            yield Problem(path, f"must be <= {most}, churn_risk.max_points")
    if cr.low_nps.neutral_score < cr.low_nps.below:
        yield Problem(
            (*base, "low_nps", "neutral_score"),
            f"must be >= below ({cr.low_nps.below}): a score under `below` already counts as "
            "low NPS, so the neutral points would never be given",
        )
    if cr.bands.medium <= cr.bands.low:
        yield Problem(
            (*base, "bands", "medium"),
            f"must be > low ({cr.bands.low}): bands go low < medium < high",
        )
    elif cr.bands.medium >= most:
        yield Problem(
            (*base, "bands", "medium"),
            f"must be < max_points ({most}), or no account is ever high risk",
        )


def _list_problems(lists: Lists, cr: ChurnRisk) -> Iterator[Problem]:
    bands = lists.risk.health_bands
    if not bands or len(set(bands)) != len(bands):
        yield Problem(
            ("lists", "risk", "health_bands"),
            "must list at least one of green, yellow, red, each once",
            _flow(bands),
        )
    if lists.risk.min_churn_risk > cr.max_points:
        yield Problem(
            ("lists", "risk", "min_churn_risk"),
            f"must be <= {cr.max_points}, churn_risk.max_points; above it no account qualifies",
        )
    na = lists.adoption_alerts.user_not_activated
    if na.max_days < na.min_days:
        yield Problem(
            ("lists", "adoption_alerts", "user_not_activated", "max_days"),
            f"must be >= min_days ({na.min_days})",
        )


def _lifecycle_problems(lc: Lifecycle) -> Iterator[Problem]:
    days = lc.stage_days
    order = [
        ("onboarding", days.onboarding),
        ("adoption", days.adoption),
        ("value_realisation", days.value_realisation),
    ]
    for (before, low), (name, value) in pairwise(order):
        if value <= low:
            yield Problem(
                ("lifecycle", "stage_days", name),
                f"must be > {before} ({low}): the stages follow each other",
            )
    arr = lc.engagement_model_arr
    if arr.scaled >= arr.high_touch:
        yield Problem(
            ("lifecycle", "engagement_model_arr", "scaled"),
            f"must be < high_touch ({_flow(arr.high_touch)}): tech_touch < scaled < high_touch",
        )


def _cross_field_problems(c: HealthConfig) -> list[Problem]:
    return [
        *_event_problems(c),
        *_onboarding_problems(c),
        *_health_score_problems(c),
        *_churn_problems(c.churn_risk),
        *_list_problems(c.lists, c.churn_risk),
        *_lifecycle_problems(c.lifecycle),
    ]


# --- the YAML as written (layer 1, and where each field is) --------------------------------------


@dataclass(frozen=True)
class _Written:
    """Where a field is in the file and its text there."""

    line: int
    text: str


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _node_text(source: str, node: yaml.Node) -> str:
    text = " ".join(source[node.start_mark.index : node.end_mark.index].split())
    return text if len(text) <= 80 else text[:77] + "..."


def _walk(
    source: str, node: yaml.Node, path: FieldPath, where: dict[FieldPath, _Written]
) -> Iterator[Problem]:
    """Record each field's line and text; report keys written twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            where[(*path, key)] = _Written(line, _node_text(source, value_node))
            if key in first_line:
                yield Problem(
                    (*path, key),
                    f"defined twice (lines {first_line[key]} and {line}): YAML keeps only the "
                    "last, so remove or rename one",
                )
            first_line.setdefault(key, line)
            yield from _walk(source, value_node, (*path, key), where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            where[(*path, i)] = _Written(item.start_mark.line + 1, _node_text(source, item))
            yield from _walk(source, item, (*path, i), where)


def _read_yaml(source: Path) -> tuple[Any, dict[FieldPath, _Written], list[Problem]]:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HealthConfigError(
            f"{source}: no such health-model configuration file; copy "
            f"{DEFAULT_CONFIG_PATH} and edit it"
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        where: dict[FieldPath, _Written] = {}
        duplicates = [] if node is None else list(_walk(text, node, (), where))
        raw = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise HealthConfigError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return raw, where, duplicates


def _shape_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if loc and loc[-1] == "[key]":
            problems.append(Problem(loc[:-1], "as a key: " + _pydantic_rule(err)))
        elif err["type"] == "missing":
            problems.append(
                Problem(loc, f"missing: add it (see {DEFAULT_CONFIG_PATH.name})", "(missing)")
            )
        elif err["type"] == "extra_forbidden":
            problems.append(Problem(loc, "unknown key: not part of the health model (a typo?)"))
        else:
            problems.append(Problem(loc, _pydantic_rule(err), None))
    return problems


def _pydantic_rule(err: Any) -> str:
    return str(err["msg"]).replace("Input should be", "must be")


def _line(path: FieldPath, where: dict[FieldPath, _Written]) -> int:
    for end in range(len(path), 0, -1):
        if path[:end] in where:
            return where[path[:end]].line
    return 1


def _report(
    source: Path, problems: list[Problem], where: dict[FieldPath, _Written], shape_ok: bool = True
) -> str:
    lines = []
    for p in sorted(problems, key=lambda p: _line(p.path, where)):
        shown = p.shown
        if shown is None:
            shown = where[p.path].text if p.path in where else "(missing)"
        lines.append(f"{source}:{_line(p.path, where)}: {_dotted(p.path)} = {shown}: {p.rule}")
    n = len(problems)
    head = (
        f"{source}: invalid health-model configuration, {n} problem{'s' if n != 1 else ''}; "
        "fix each field below (docs/health-model.md says what each means), then run again"
        + ("" if shape_ok else " (the rules between fields are checked once these are fixed)")
        + ":"
    )
    return "\n".join([head, *lines])


class HealthConfigError(ValueError):
    """The configuration file is missing or invalid; the message says where and what."""


def load_health_config(path: Path | None = None) -> HealthConfig:
    """Read and validate a health-model YAML (the packaged default when ``path`` is None).

    Raises :class:`HealthConfigError` listing every problem found, one line each.
    """
    source = path or DEFAULT_CONFIG_PATH
    raw, where, problems = _read_yaml(source)
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                (),
                "must be a mapping of the sections version, name (optional), events, "
                "tier_features, onboarding, health_score, churn_risk, lists, lifecycle",
                _flow(raw) if not isinstance(raw, str) else raw,
            )
        )
        raise HealthConfigError(_report(source, problems, where))
    try:
        return _checked(HealthConfig.model_validate(raw), source, problems, where)
    except ValidationError as exc:
        problems += _shape_problems(exc)
        if any(err["type"] != _FIELD_RULE for err in exc.errors()):
            raise HealthConfigError(_report(source, problems, where, shape_ok=False)) from None
    # Only single-field rules failed: the shape is right, so the rules between fields can run
    # on the model validated without them, and every problem is reported in one go.
    unchecked = HealthConfig.model_validate(raw, context={_SKIP_FIELD_RULES: True})
    return _checked(unchecked, source, problems, where)


def _checked(
    config: HealthConfig, source: Path, problems: list[Problem], where: dict[FieldPath, _Written]
) -> HealthConfig:
    """``config`` when neither ``problems`` nor the rules between fields found anything."""
    problems = problems + _cross_field_problems(config)
    if problems:
        raise HealthConfigError(_report(source, problems, where))
    return config


@cache
def default_health_config() -> HealthConfig:
    return load_health_config()
