import re
from pathlib import Path

import pytest
from pinned_model import PINNED_HEALTH_MODEL

from metrics.health_config import DEFAULT_CONFIG_PATH, HealthConfigError, load_health_config

SHARED_MODEL = Path(__file__).resolve().parents[2] / "shared" / "health-model.md"
#: The tests' own copy of the default model: a deployment may tune the shipped file.
DEFAULT = PINNED_HEALTH_MODEL


@pytest.fixture(scope="module")
def config():
    return load_health_config(PINNED_HEALTH_MODEL)


def test_the_shipped_file_is_valid() -> None:
    """Whatever a deployment changed in it, the shipped model must still load."""
    assert load_health_config(DEFAULT_CONFIG_PATH).events


@pytest.mark.skipif(not SHARED_MODEL.exists(), reason="shared/ is not beside the checkout")
def test_event_vocabulary_matches_the_shared_health_model(config) -> None:
    rows = [line for line in SHARED_MODEL.read_text().splitlines() if line.startswith("| `")]
    expected: dict[str, tuple[str | None, bool]] = {}
    for row in rows:
        names_cell, feature_cell, core_cell = (c.strip() for c in row.strip("|").split("|"))
        feature = None if feature_cell.startswith("-") else feature_cell
        for name in re.findall(r"`(\w+)`", names_cell):
            expected[name] = (feature, core_cell == "yes")
    assert {n: (e.feature, e.core) for n, e in config.events.items()} == expected


def test_defaults_reproduce_the_scoring_arithmetic(config) -> None:
    hs = config.health_score
    assert [(s.value, s.points) for s in hs.usage.active_ratio.above] == [
        (0.7, 20),
        (0.4, 15),
        (0.2, 10),
    ]
    assert hs.usage.active_ratio.otherwise == 5
    assert hs.usage.breadth.window_days == 30
    assert [(p.above, p.points) for p in hs.support.ticket_volume_penalties] == [(10, 10), (5, 5)]
    assert hs.financial.payments.points_by_failures == (10, 5)
    assert (hs.engagement.executive_sponsor.points, hs.engagement.business_review.points) == (7, 5)
    assert (hs.bands.green, hs.bands.yellow) == (80, 50)
    assert config.churn_risk.bands.low == 30 and config.churn_risk.bands.medium == 60
    assert config.lifecycle.engagement_model_arr.high_touch == 100_000
    assert config.onboarding.first_value_stage == 4
    assert config.core_features == (
        "api", "automation", "collaboration", "dashboards", "exports", "integrations", "reports",
    )  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return path


def test_invalid_value_is_reported_with_file_and_field(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace(
        "bands: {green: 80, yellow: 50}", "bands: {green: 80, yellow: lots}"
    )
    with pytest.raises(HealthConfigError, match=r"model\.yaml.*health_score\.bands\.yellow"):
        load_health_config(_write(tmp_path, text))


def test_points_that_do_not_add_up_to_100_are_refused(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace("max_points: 40", "max_points: 45")
    with pytest.raises(HealthConfigError, match="add up to 100"):
        load_health_config(_write(tmp_path, text))


def test_unordered_thresholds_are_refused(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace(
        "{value: 0.7, points: 20}, {value: 0.4", "{value: 0.3, points: 20}, {value: 0.4"
    )
    with pytest.raises(HealthConfigError, match="highest value down"):
        load_health_config(_write(tmp_path, text))


def test_unknown_feature_in_a_tier_is_refused(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace("starter: [dashboards,", "starter: [holograms,")
    with pytest.raises(HealthConfigError, match="holograms"):
        load_health_config(_write(tmp_path, text))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(HealthConfigError, match="no such"):
        load_health_config(tmp_path / "absent.yaml")
    with pytest.raises(HealthConfigError, match="not valid YAML"):
        load_health_config(_write(tmp_path, "events: [unclosed"))
