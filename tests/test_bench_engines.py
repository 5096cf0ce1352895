"""`csw bench --engine spark`: which measurements it asks for, and that each has its step."""

from __future__ import annotations

import pytest

from benchmarks import harness
from benchmarks.steps import STEPS
from orchestration.cli import _bench_measures


def test_the_default_measures_leave_spark_out() -> None:
    assert "engines" in harness.MEASURE_GROUPS
    assert "engines" not in harness.DEFAULT_MEASURES
    assert _bench_measures([], "duckdb", harness.DEFAULT_MEASURES) == harness.DEFAULT_MEASURES


def test_engine_spark_asks_for_the_engines_group() -> None:
    assert _bench_measures([], "spark", harness.DEFAULT_MEASURES) == ("engines",)
    assert _bench_measures(["full", "engines"], "spark", harness.DEFAULT_MEASURES) == (
        "full",
        "engines",
    )
    with pytest.raises(ValueError, match="duckdb or spark"):
        _bench_measures([], "trino", harness.DEFAULT_MEASURES)


def test_every_engine_measurement_has_a_step_and_a_method() -> None:
    names = [name for name, _ in harness.ENGINE_STEPS]
    assert tuple(names) == harness.MEASURE_GROUPS["engines"]
    for name, step in harness.ENGINE_STEPS:
        assert step in STEPS and name in harness.METHODS
