"""Every mistake in the health-model YAML stops the load with a line naming the file, the field as
written in the YAML, the bad value and the rule (issue 12 point 6). Each test edits its own copy of
the shipped file in tmp_path; the shipped file itself is never touched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pinned_model import PINNED_HEALTH_MODEL

from metrics.health_config import DEFAULT_CONFIG_PATH, HealthConfigError, load_health_config


@dataclass(frozen=True)
class Mistake:
    id: str
    edits: tuple[tuple[str, str], ...]
    path: str
    value: str
    rule: str


def _edited_copy(tmp_path: Path, edits: tuple[tuple[str, str], ...]) -> Path:
    text = PINNED_HEALTH_MODEL.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, (
            f"the edit {old!r} must match the tests' copy of the model exactly once"
        )
        text = text.replace(old, new)
    path = tmp_path / "health_model.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problem_lines(path: Path) -> list[str]:
    with pytest.raises(HealthConfigError) as caught:
        load_health_config(path)
    return str(caught.value).splitlines()


MISTAKES = [
    # windows and days
    Mistake(
        "negative window",
        (
            (
                "window_days: 7\n      above: [{value: 0.7",
                "window_days: -7\n      above: [{value: 0.7",
            ),
        ),
        "health_score.usage.active_ratio.window_days",
        "-7",
        "must be > 0",
    ),
    Mistake(
        "zero window",
        (("tickets_window_days: 30", "tickets_window_days: 0"),),
        "health_score.support.tickets_window_days",
        "0",
        "must be > 0",
    ),
    Mistake(
        "negative days",
        (("renewal_window_days: 90", "renewal_window_days: -1"),),
        "lifecycle.renewal_window_days",
        "-1",
        "must be >= 0",
    ),
    Mistake(
        "zero occurrence",
        (("event: data_imported, occurrence: 1", "event: data_imported, occurrence: 0"),),
        "onboarding.stages[1].occurrence",
        "0",
        "must be >= 1",
    ),
    Mistake(
        "alert day range inverted",
        (("{min_days: 14, max_days: 90}", "{min_days: 90, max_days: 14}"),),
        "lists.adoption_alerts.user_not_activated.max_days",
        "14",
        "must be >= min_days (90)",
    ),
    Mistake(
        "lifecycle stages out of order",
        (("{onboarding: 30, adoption: 90,", "{onboarding: 30, adoption: 20,"),),
        "lifecycle.stage_days.adoption",
        "20",
        "must be > onboarding (30)",
    ),
    # bands
    Mistake(
        "health bands inverted",
        (("bands: {green: 80, yellow: 50}", "bands: {green: 50, yellow: 80}"),),
        "health_score.bands.yellow",
        "80",
        "must be < green (50)",
    ),
    Mistake(
        "risk bands inverted",
        (("bands: {low: 30, medium: 60}", "bands: {low: 60, medium: 30}"),),
        "churn_risk.bands.medium",
        "30",
        "must be > low (60)",
    ),
    Mistake(
        "engagement model bands inverted",
        (("{high_touch: 100000, scaled: 20000}", "{high_touch: 20000, scaled: 100000}"),),
        "lifecycle.engagement_model_arr.scaled",
        "100000",
        "must be < high_touch (20000)",
    ),
    Mistake(
        "unknown health band in the risk list",
        (("health_bands: [red]", "health_bands: [crimson]"),),
        "lists.risk.health_bands[0]",
        "crimson",
        "'green', 'yellow' or 'red'",
    ),
    # points and their groups
    Mistake(
        "component points above the group maximum",
        (("{value: 0.7, points: 20}", "{value: 0.7, points: 45}"),),
        "health_score.usage.active_ratio.above[0].points",
        "45",
        "must be <= 40, the maximum of group usage",
    ),
    Mistake(
        "single-rule points above the group maximum",
        (("{role: executive_sponsor, points: 7}", "{role: executive_sponsor, points: 25}"),),
        "health_score.engagement.executive_sponsor.points",
        "25",
        "must be <= 20, the maximum of group engagement",
    ),
    Mistake(
        "group rules do not reach the group maximum",
        (
            (
                "{activity_types: [training], window_days: 90, points: 3}",
                "{activity_types: [training], window_days: 90, points: 1}",
            ),
        ),
        "health_score.engagement.max_points",
        "20",
        "the best case of the group's rules gives 18",
    ),
    Mistake(
        "groups do not add up to 100",
        (("max_points: 40", "max_points: 45"),),
        "health_score",
        "max_points 45 + 20 + 20 + 20 = 105",
        "add up to 100",
    ),
    Mistake(
        "more points for a worse measure",
        (
            (
                "{value: 0.7, points: 20}, {value: 0.4, points: 15}",
                "{value: 0.7, points: 15}, {value: 0.4, points: 20}",
            ),
        ),
        "health_score.usage.active_ratio.above[1].points",
        "20",
        "must be <= 15",
    ),
    Mistake(
        "payment points grow with failures",
        (("points_by_failures: [10, 5]", "points_by_failures: [5, 10]"),),
        "health_score.financial.payments.points_by_failures[1]",
        "10",
        "must be <= 5",
    ),
    Mistake(
        "churn signal above the churn maximum",
        (
            (
                "{role: champion, window_days: 90, points: 30}",
                "{role: champion, window_days: 90, points: 130}",
            ),
        ),
        "churn_risk.champion_left.points",
        "130",
        "must be <= 100, churn_risk.max_points",
    ),
    Mistake(
        "list threshold above the churn maximum",
        (("min_churn_risk: 61", "min_churn_risk: 150"),),
        "lists.risk.min_churn_risk",
        "150",
        "must be <= 100, churn_risk.max_points",
    ),
    Mistake(
        "drivers out of range",
        (("drivers: 2", "drivers: 0"),),
        "health_score.drivers",
        "0",
        "between 1 and 4",
    ),
    # thresholds
    Mistake(
        "share above 1",
        (("seat_opportunity_share: 0.2", "seat_opportunity_share: 1.5"),),
        "lists.expansion.seat_opportunity_share",
        "1.5",
        "between 0 and 1",
    ),
    Mistake(
        "negative share",
        (("below_share: 0.8", "below_share: -0.8"),),
        "lists.adoption_alerts.activity_declining.below_share",
        "-0.8",
        "between 0 and 1",
    ),
    Mistake(
        "active ratio threshold above 1",
        (("{value: 0.7, points: 20}", "{value: 1.7, points: 20}"),),
        "health_score.usage.active_ratio.above[0].value",
        "1.7",
        "between 0 and 1",
    ),
    Mistake(
        "trend threshold below -1",
        (("{value: -0.1, points: 4}", "{value: -1.5, points: 4}"),),
        "health_score.usage.weekly_trend.above[2].value",
        "-1.5",
        "must be >= -1",
    ),
    Mistake(
        "NPS threshold above 10",
        (("{value: 9, points: 5}", "{value: 11, points: 5}"),),
        "health_score.engagement.nps.at_least[0].value",
        "11",
        "between 0 and 10",
    ),
    Mistake(
        "low NPS score above 10",
        (("low_nps: {below: 6,", "low_nps: {below: 12,"),),
        "churn_risk.low_nps.below",
        "12",
        "between 0 and 10",
    ),
    Mistake(
        "neutral NPS below the low NPS threshold",
        (("neutral_score: 6,", "neutral_score: 3,"),),
        "churn_risk.low_nps.neutral_score",
        "3",
        "must be >= below (6)",
    ),
    Mistake(
        "health threshold above 100",
        (("health_below: 70, points: 20}", "health_below: 170, points: 20}"),),
        "churn_risk.renewal_near_health_low.health_below",
        "170",
        "between 0 and 100",
    ),
    Mistake(
        "breadth threshold above the number of core features",
        (("{value: 5, points: 10}", "{value: 9, points: 10}"),),
        "health_score.usage.breadth.at_least[0].value",
        "9",
        "must be <= 7, the number of core features",
    ),
    Mistake(
        "negative multiple",
        (("multiple_of_baseline: 2", "multiple_of_baseline: -2"),),
        "churn_risk.ticket_spike.multiple_of_baseline",
        "-2",
        "must be >= 0",
    ),
    Mistake(
        "zero minimum of failures",
        (("min_failures: 1", "min_failures: 0"),),
        "churn_risk.payment_failures.min_failures",
        "0",
        "must be >= 1",
    ),
    Mistake(
        "ascending list in the wrong order",
        (
            (
                "{value: -0.5, points: 30}, {value: -0.25, points: 20}",
                "{value: -0.25, points: 30}, {value: -0.5, points: 20}",
            ),
        ),
        "churn_risk.usage_decline.below",
        "[-0.25, -0.5, 0]",
        "lowest value up",
    ),
    Mistake(
        "penalties in the wrong order",
        (
            (
                "[{above: 10, points: 10}, {above: 5, points: 5}]",
                "[{above: 5, points: 5}, {above: 10, points: 10}]",
            ),
        ),
        "health_score.support.ticket_volume_penalties",
        "[5, 10]",
        "highest value down",
    ),
    # names and references
    Mistake(
        "duplicate event name",
        (
            (
                "  settings_updated: {feature: settings, core: false}\n",
                "  settings_updated: {feature: settings, core: false}\n"
                "  login: {feature: dashboards, core: true}\n",
            ),
        ),
        "events.login",
        "{feature: dashboards, core: true}",
        "defined twice",
    ),
    Mistake(
        "feature in a tier that no event maps to",
        (("starter: [dashboards,", "starter: [holograms,"),),
        "tier_features.starter[0]",
        "holograms",
        "no event maps to feature 'holograms'",
    ),
    Mistake(
        "onboarding stage on an undefined event",
        (("event: data_imported, occurrence: 1", "event: data_uploaded, occurrence: 1"),),
        "onboarding.stages[1].event",
        "data_uploaded",
        "not one of the events",
    ),
    Mistake(
        "core event without a feature",
        (("login: {feature: null, core: false}", "login: {feature: null, core: true}"),),
        "events.login.core",
        "true",
        "needs a feature",
    ),
    # shape
    Mistake(
        "unsupported version",
        (("version: 1", "version: 2"),),
        "version",
        "2",
        "must be 1",
    ),
    Mistake(
        "misspelt key",
        (("change_days: 30", "change_dayz: 30"),),
        "health_score.change_dayz",
        "30",
        "unknown key",
    ),
    Mistake(
        "text for a number",
        (("bands: {green: 80, yellow: 50}", "bands: {green: 80, yellow: lots}"),),
        "health_score.bands.yellow",
        "lots",
        "must be a valid integer",
    ),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_each_kind_of_mistake_is_named_with_field_value_and_rule(
    tmp_path: Path, mistake: Mistake
) -> None:
    path = _edited_copy(tmp_path, mistake.edits)
    lines = _problem_lines(path)
    expected = f" {mistake.path} = {mistake.value}: "
    matching = [line for line in lines if expected in line]
    assert matching, f"no line names {expected!r}:\n" + "\n".join(lines)
    assert any(mistake.rule in line for line in matching), "\n".join(lines)
    assert all(line.startswith(f"{path}:") for line in matching)


def test_the_shipped_file_passes() -> None:
    assert load_health_config(DEFAULT_CONFIG_PATH).events  # values are the deployment's


def test_the_tests_copy_of_the_default_passes() -> None:
    config = load_health_config(PINNED_HEALTH_MODEL)
    assert config.health_score.bands.green == 80
    assert len(config.events) == 12


def test_all_problems_are_reported_at_once_one_line_each(tmp_path: Path) -> None:
    path = _edited_copy(
        tmp_path,
        (
            ("tickets_window_days: 30", "tickets_window_days: -30"),
            ("bands: {green: 80, yellow: 50}", "bands: {green: 80, yellow: lots}"),
            ("below_share: 0.8", "below_share: 8"),
            (
                "  settings_updated: {feature: settings, core: false}\n",
                "  settings_updated: {feature: settings, core: false}\n"
                "  settings_updated: {feature: settings, core: false}\n",
            ),
        ),
    )
    lines = _problem_lines(path)
    problems = [line for line in lines if re.match(rf"{re.escape(str(path))}:\d+: ", line)]
    named = {re.search(r": (\S+) = ", line).group(1) for line in problems}  # type: ignore[union-attr]
    assert named == {
        "health_score.support.tickets_window_days",
        "health_score.bands.yellow",
        "lists.adoption_alerts.activity_declining.below_share",
        "events.settings_updated",
    }
    text = "\n".join(lines)
    assert "errors.pydantic.dev" not in text and "Value error" not in text
    assert "4 problems" in lines[0]


def test_field_and_cross_field_rules_report_every_problem_together(tmp_path: Path) -> None:
    path = _edited_copy(
        tmp_path,
        (
            ("tickets_window_days: 30", "tickets_window_days: 0"),
            ("bands: {low: 30, medium: 60}", "bands: {low: 60, medium: 30}"),
            ("{role: executive_sponsor, points: 7}", "{role: executive_sponsor, points: 25}"),
            ("starter: [dashboards,", "starter: [holograms,"),
        ),
    )
    text = "\n".join(_problem_lines(path))
    for field in (
        "health_score.support.tickets_window_days",
        "churn_risk.bands.medium",
        "health_score.engagement.executive_sponsor.points",
        "tier_features.starter[0]",
    ):
        assert f" {field} = " in text


def test_a_problem_line_points_at_its_line_in_the_file(tmp_path: Path) -> None:
    path = _edited_copy(tmp_path, (("drivers: 2", "drivers: 9"),))
    line_number = 1 + path.read_text().splitlines().index(
        next(line for line in path.read_text().splitlines() if "drivers: 9" in line)
    )
    lines = _problem_lines(path)
    assert any(line.startswith(f"{path}:{line_number}: health_score.drivers = 9") for line in lines)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    lines = _problem_lines(path)
    assert str(path) in lines[0]
    assert any("a mapping" in line for line in lines)
