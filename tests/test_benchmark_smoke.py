"""CI smoke test of the benchmark harness: tier S (the demo sample) end to end, no timing
assertions (issue 7: CI runs the S benchmark only as a smoke test). It takes about 2.5 minutes,
so it is its own tier: `make test-bench`, which `.ci/run` calls after `make test`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks import report as bench_report
from benchmarks.harness import ratios_to_full
from orchestration.cli import app
from orchestration.defs.dbt.project import mart_names

MEASUREMENTS = ["floor", "full", "rerun", "fixed", "ingest", "dbt", "publish", "incremental"]


@pytest.mark.slow
@pytest.mark.bench
def test_bench_runs_every_measurement_on_tier_s(tmp_path: Path) -> None:
    data, results = tmp_path / "data", tmp_path / "results"
    outcome = CliRunner().invoke(
        app, ["bench", "--tier", "S", "--data-dir", str(data), "--results-dir", str(results)]
    )
    assert outcome.exit_code == 0, outcome.output

    report = json.loads((results / "S.json").read_text())
    assert list(report["measurements"]) == MEASUREMENTS
    for name, m in report["measurements"].items():
        assert m["exit_status"] == 0, (name, m["error"])
        assert m["wall_s"] > 0 and m["peak_rss_mb"] > 0, name
    assert set(report["ratios_to_floor"]) == set(MEASUREMENTS) - {"floor"}
    assert set(report["ratios_to_full"]) == {"rerun", "fixed", "incremental"}

    # The rerun (same landing, same as-of date, csw run's path) finds nothing new: it skips,
    # saying why, and runs no dbt node and publishes no mart. (The fingerprint hashes the code:
    # a file of the work tree edited while the benchmark runs makes the rerun run, and says so.)
    rerun = report["measurements"]["rerun"]["detail"]
    assert rerun["skipped"] is True, rerun
    assert "nothing changed" in rerun["reason"]
    assert (rerun["dbt_nodes_run"], rerun["marts_published"]) == (0, 0)
    # The forced run (csw run --force, nothing new) runs every step and finds nothing to do:
    # every dbt model's inputs are those it was built from, and no mart changed.
    fixed = report["measurements"]["fixed"]["detail"]
    assert fixed["skipped"] is False, fixed
    assert (fixed["dbt_nodes_run"], fixed["marts_published"]) == (0, 0), fixed
    full = report["measurements"]["full"]["detail"]
    assert full["skipped"] is False and full["dbt_nodes_run"] > 0
    assert full["marts_published"] == len(mart_names()), "a first publication writes every mart"

    dataset, machine = report["dataset"], report["machine"]
    assert (dataset["accounts"], dataset["months"]) == (200, 18)
    assert dataset["events"] > 0 and dataset["files"] > 0 and dataset["bytes"] > 0
    assert machine["cores"] >= 1 and machine["versions"]["duckdb"]
    floor = report["measurements"]["floor"]["detail"]
    assert floor["total_rows"] == sum(dataset["rows"].values())

    # The incremental run ingested exactly the next day's files, as of that day.
    delta = report["delta"]
    assert f"product/events/{delta['day']}.parquet" in delta["files"]
    incremental = report["measurements"]["incremental"]
    assert incremental["as_of"] == delta["day"]
    assert incremental["detail"]["files_decided"] == len(delta["files"])
    assert incremental["detail"]["skipped"] is False
    assert incremental["detail"]["dbt_nodes_run"] > 0
    assert incremental["detail"]["marts_published"] is not None

    # A second run reuses the cached dataset.
    again = CliRunner().invoke(
        app,
        [
            "bench",
            "--tier",
            "S",
            "--measure",
            "floor",
            "--data-dir",
            str(data),
            "--results-dir",
            str(results),
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads((results / "S.json").read_text())["dataset"]["generation"]["cached"]


def _tier(
    name: str, full_s: float, rerun_s: float, incremental_s: float, fixed_s: float = 1.0
) -> dict[str, Any]:
    """A tier's results with only what the targets read."""

    def run(wall: float) -> dict[str, Any]:
        return {"ok": True, "wall_s": wall, "peak_rss_mb": 1000.0}

    return {
        "tier": name,
        "dataset": {"accounts": 1, "months": 1, "events": 1, "mb": 1.0},
        "measurements": {
            "full": run(full_s),
            "rerun": run(rerun_s),
            "fixed": run(fixed_s),
            "incremental": run(incremental_s),
        },
        "ratios_to_floor": {"full": {"wall": 9.0}},
    }


def test_the_report_marks_each_target_on_the_tiers_it_applies_to() -> None:
    """Issue 16's targets are marks in the summary: the rerun's 5% at M only, the new day's 10%
    at M and L, the S forced run's 15 s; a tier a target is not about gets no mark."""
    full = 100.0
    m_met = _tier("M", full, rerun_s=full * 0.05, incremental_s=full * 0.10)
    m_missed = _tier("M", full, rerun_s=full * 0.06, incremental_s=full * 0.11)
    other = _tier("5000x24", full, rerun_s=full * 0.5, incremental_s=full * 0.5)
    s_tier = _tier("S", 60.0, rerun_s=1.0, incremental_s=60.0, fixed_s=14.9)
    s_slow = _tier("S", 60.0, rerun_s=1.0, incremental_s=60.0, fixed_s=15.0)

    assert ratios_to_full(m_met["measurements"]) == {
        "rerun": 0.05,
        "fixed": 0.01,
        "incremental": 0.1,
    }
    met, missed, unmarked, small, slow = (
        bench_report.summary([r]).splitlines()[-1].split(" | ")
        for r in (m_met, m_missed, other, s_tier, s_slow)
    )
    # the columns "rerun / full", "fixed s", "incremental / full"
    rerun_share, fixed, incremental_share = 9, 10, 12
    assert met[rerun_share].endswith(bench_report.MET)
    assert met[incremental_share].endswith(bench_report.MET)
    assert missed[rerun_share].endswith(bench_report.MISSED)
    assert missed[incremental_share].endswith(bench_report.MISSED)
    assert bench_report.MET not in "".join(unmarked) and bench_report.MISSED not in "".join(
        unmarked
    )
    assert small[fixed].endswith(bench_report.MET), "the S forced run under 15 s"
    assert slow[fixed].endswith(bench_report.MISSED)
    assert not small[5].endswith((bench_report.MET, bench_report.MISSED)), "no target on full s"
    assert small[incremental_share] == "100%", "the 10% is a target at M and L, not at S"
    table = bench_report.targets([m_missed])
    assert "| rerun with nothing new at most 5% of the full run at M | M | 6.0% | ✗ |" in table
