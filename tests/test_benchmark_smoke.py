"""CI smoke test of the benchmark harness: tier S (the demo sample) end to end, no timing
assertions (issue 7: CI runs the S benchmark only as a smoke test). It takes about 2.5 minutes,
so it is its own tier: `make test-bench`, which `.ci/run` calls after `make test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app

MEASUREMENTS = ["floor", "full", "ingest", "dbt", "publish", "incremental"]


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
