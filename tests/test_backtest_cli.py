"""Issue 13 point 4: ``csw backtest`` reports the backtest marts, says plainly when the configured
score does worse than the 30-day activity baseline, and compares candidate health models on the
same history without touching the warehouse.

Most tests write the marts' rows by hand into a tmp warehouse (the report only reads marts, so a
hand-made ``marts`` schema is a cheap and exact fixture); the last ones build a small generated
warehouse once for the module and run the report and a what-if on it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from dbt_harness import Dbt, failures, query
from pinned_model import PINNED_HEALTH_MODEL, pinned_health_config
from test_point_in_time import _ingest
from typer.testing import CliRunner

from ingestion.synthetic import GeneratorConfig, generate_extracts
from metrics.dbt_vars import model_version
from metrics.health_config import load_health_config
from orchestration.backtest_report import BACKTEST_SELECTION
from orchestration.cli import app

VERSION = model_version(pinned_health_config()).version
HORIZON = 90
EVALUATED = date(2025, 6, 30)
FIRST = date(2024, 1, 8)
WORSE = (
    "The configured health score (AUC 0.58) separates churners worse than the 30-day activity"
    " baseline (AUC 0.64)."
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CSW_HEALTH_MODEL", "CSW_CHURN_HORIZON_DAYS", "CSW_AS_OF", "CSW_HOME"):
        monkeypatch.delenv(name, raising=False)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["backtest", *args], terminal_width=200)
    return result.exit_code, result.output


def _pinned(warehouse: Path, *args: str) -> tuple[int, str]:
    return _invoke("--warehouse", str(warehouse), "--health-model", str(PINNED_HEALTH_MODEL), *args)


# --- hand-made marts ------------------------------------------------------------------------------


def _summary_row(scorer: str, segment: str, auc: float | None, baseline: float) -> dict[str, Any]:
    return {
        "evaluated_as_of_date": EVALUATED,
        "horizon_days": HORIZON,
        "health_model_version": VERSION,
        "health_model_name": "default",
        "churn_model_version": None,
        "scorer": scorer,
        "segment": segment,
        "first_scored_date": FIRST,
        "last_scored_date": EVALUATED - timedelta(days=HORIZON),
        "scored_dates": 60,
        "scored_rows": 1200,
        "accounts": 90,
        "churned_rows": 84,
        "churn_rate": 0.07,
        "auc": auc,
        "baseline_auc": baseline,
        "auc_minus_baseline": None if auc is None else auc - baseline,
        "is_worse_than_baseline": auc is not None and auc < baseline,
        "brier_score": None,
    }


def _marts(
    path: Path,
    health: dict[str, float],
    baseline: float = 0.64,
    history: tuple[date, date] = (FIRST, EVALUATED),
    with_rows: bool = True,
    probability: float | None = None,
) -> Path:
    """A warehouse with the eight backtest marts (health_score AUC per segment from ``health``,
    the key ``all`` the overall marts, the others the ``_by_segment`` ones;
    churn risk 0.70, the baseline ``baseline``, with ``probability`` a churn_probability of that
    AUC, Brier score and calibration) and a scored history from ``history``."""
    scorers = [("churn_probability", probability)] if probability is not None else []
    rows = [
        _summary_row(scorer, segment, auc, baseline)
        for segment, health_auc in health.items()
        for scorer, auc in (
            ("health_score", health_auc),
            ("churn_risk", 0.70),
            *scorers,
            ("baseline_activity_30d", baseline),
        )
    ]
    for row in rows:
        if row["scorer"] == "churn_probability":
            row["brier_score"] = 0.0612
    keys = {
        "evaluated_as_of_date": EVALUATED,
        "horizon_days": HORIZON,
        "health_model_version": VERSION,
    }
    bands = [
        {
            **keys,
            "scorer": "health_score",
            "segment": s,
            "band": band,
            "scored_rows": n,
            "churned_rows": c,
            "churn_rate": c / n,
        }
        for s in health
        for band, n, c in (("red", 200, 40), ("green", 700, 14), ("yellow", 300, 30))
    ]
    deciles = [
        {
            **keys,
            "scorer": scorer,
            "segment": s,
            "decile": d,
            "scored_rows": 120,
            "churned_rows": 30 if d == 1 else 6,
            "churn_rate": (30 if d == 1 else 6) / 120,
            "lift": (30 / 120) / 0.07 if d == 1 else (6 / 120) / 0.07,
        }
        for s in health
        for scorer in ("health_score", "churn_risk", "baseline_activity_30d")
        for d in range(1, 11)
    ]
    calibration = {
        **keys,
        "scorer": "churn_probability",
        "segment": "all",
        "probability_bin": 3,
        "scored_rows": 40,
        "mean_probability": 0.3472,
        "churn_rate": 0.275,
    }
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        for name, data in (
            ("fct_health_backtest", rows),
            ("fct_health_backtest_bands", bands),
            ("fct_health_backtest_deciles", deciles),
            ("fct_health_backtest_calibration", [calibration]),
        ):
            frame = pl.DataFrame(data, infer_schema_length=None)
            con.register("frame", frame)
            con.execute(
                f"create table marts.{name} as"
                " select * exclude (segment) from frame where segment = 'all'"
            )
            con.execute(
                f"create table marts.{name}_by_segment as select * from frame where segment <> 'all'"
            )
            con.unregister("frame")
            if not with_rows or (name.endswith("calibration") and probability is None):
                con.execute(f"delete from marts.{name}")
                con.execute(f"delete from marts.{name}_by_segment")
        con.execute(
            "create table marts.fct_account_health"
            " (account_id varchar, as_of_date date, is_reporting_date boolean)"
        )
        con.execute(
            "insert into marts.fct_account_health values ('a1', ?, false), ('a1', ?, true)",
            history,
        )
    finally:
        con.close()
    return path


def test_the_report_says_plainly_when_the_health_score_does_worse_than_the_baseline(
    tmp_path: Path,
) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.58, "smb": 0.55})
    code, out = _pinned(warehouse)
    assert code == 0, out
    assert WORSE in " ".join(out.split())
    assert "csw backtest --candidate" in out  # what to do next
    # The churn risk beat the baseline on the same rows: said, and not as worse.
    assert "The configured churn risk (AUC 0.70) separates churners better than" in out


def test_no_worse_sentence_when_the_mart_says_the_score_beats_the_baseline(
    tmp_path: Path,
) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.71, "smb": 0.69})
    code, out = _pinned(warehouse)
    assert code == 0, out
    assert "worse than" not in out
    assert "The configured health score (AUC 0.71) separates churners better than" in out


def test_the_report_shows_each_scorer_the_bands_the_top_decile_and_each_segment(
    tmp_path: Path,
) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.71, "smb": 0.55, "mid": 0.8})
    code, out = _pinned(warehouse)
    assert code == 0, out
    lines = out.splitlines()
    scorer_line = next(line for line in lines if "│ health_score" in line)
    assert "0.71" in scorer_line and "0.64" in scorer_line  # AUC and baseline AUC
    assert "3.57" in scorer_line  # lift of the riskiest tenth: 0.25 / 0.07
    bands = [line.split("│")[2].strip() for line in lines if "│ health_score │" in line]
    assert bands[-3:] == ["green", "yellow", "red"]  # least to most risky
    # Overall better, but one segment worse: the per-segment table names it.
    smb = next(line for line in lines if line.startswith("│ smb"))
    assert "health_score" in smb and "0.55" in smb
    mid = next(line for line in lines if line.startswith("│ mid"))
    assert "health_score" not in mid


def test_segment_reports_that_segment_and_its_verdict(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.71, "smb": 0.58})
    code, out = _pinned(warehouse, "--segment", "smb")
    assert code == 0, out
    assert "segment smb" in out
    assert WORSE in " ".join(out.split())
    code, out = _pinned(warehouse, "--segment", "enterprise")
    assert code == 2
    assert "smb" in out  # the segments there are


def test_json_carries_the_same_figures(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.58, "smb": 0.75})
    code, out = _pinned(warehouse, "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["health_model_version"] == VERSION
    assert report["is_worse_than_baseline"] == ["health_score"]
    by_scorer = {s["scorer"]: s for s in report["scorers"]}
    assert by_scorer["health_score"]["auc"] == pytest.approx(0.58)
    assert by_scorer["baseline_activity_30d"]["auc"] == pytest.approx(0.64)
    assert by_scorer["health_score"]["top_decile_lift"] == pytest.approx(0.25 / 0.07)
    assert report["segments"][0]["segment"] == "smb"
    assert report["segments"][0]["is_worse_than_baseline"] in (None, "")
    assert report["churn_model"] is None


def test_nothing_to_evaluate_exits_1_and_names_the_dates_needed(tmp_path: Path) -> None:
    warehouse = _marts(
        tmp_path / "warehouse.duckdb",
        {"all": 0.6},
        history=(date(2025, 5, 5), date(2025, 6, 30)),
        with_rows=False,
    )
    code, out = _pinned(warehouse)
    assert code == 1, out
    said = " ".join(out.split())
    assert "Nothing to evaluate" in said
    assert "2025-08-03" in said  # 2025-05-05 + 90 days: the first reporting date that would do
    assert "--as-of" in said and "CSW_CHURN_HORIZON_DAYS" in said
    assert "at most 56 days" in said  # 2025-05-05 .. 2025-06-30


def test_rows_of_another_version_only_are_named_with_what_to_do(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    con = duckdb.connect(str(warehouse))
    con.execute("update marts.fct_health_backtest set health_model_version = 'abcdef012345'")
    con.close()
    code, out = _pinned(warehouse)
    assert code == 1
    said = " ".join(out.split())
    assert "abcdef012345" in said and VERSION in said and "--candidate" in said


def test_a_missing_warehouse_or_an_invalid_model_exits_2(tmp_path: Path) -> None:
    code, out = _pinned(tmp_path / "nowhere" / "warehouse.duckdb")
    assert code == 2
    assert "No warehouse at" in out
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    broken = tmp_path / "broken.yaml"
    broken.write_text(PINNED_HEALTH_MODEL.read_text().replace("green: 80", "green: 180"))
    code, out = _invoke("--warehouse", str(warehouse), "--health-model", str(broken))
    assert code == 2
    assert "broken.yaml" in out


def test_an_invalid_candidate_exits_2_naming_the_file_and_line(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    before = _digest(warehouse)
    text = PINNED_HEALTH_MODEL.read_text()
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "green: 80" in row)
    candidate = tmp_path / "tuned.yaml"
    candidate.write_text(text.replace("green: 80", "green: 180"))
    code, out = _pinned(warehouse, "--candidate", str(candidate))
    assert code == 2, out
    assert f"tuned.yaml:{line}" in " ".join(out.split())
    assert _digest(warehouse) == before


def test_a_warehouse_locked_by_a_job_points_at_the_serving_copy(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    with _locked(warehouse):
        code, out = _invoke(
            "--warehouse", str(warehouse), "--health-model", str(PINNED_HEALTH_MODEL)
        )
    assert code == 3, out
    said = " ".join(out.split())
    assert "open for writing in another process" in said
    assert "--warehouse" in said and "published/warehouse.duckdb" in said


def _locked(warehouse: Path) -> Any:
    """A process holding ``warehouse`` open for writing, as a running job does."""
    from contextlib import contextmanager

    @contextmanager
    def held() -> Iterator[None]:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True);"
                " sys.stdin.read()",
                str(warehouse),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            yield
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)

    return held()


def _fit(version: str, **changes: Any) -> dict[str, Any]:
    """A row of ml.churn_model_fits: a fit as of EVALUATED, not accepted, with a split."""
    return {
        "churn_model_version": version,
        "fitted_at": datetime(2025, 7, 1, 6, 0),
        "as_of": EVALUATED,
        "horizon_days": HORIZON,
        "health_model_version": VERSION,
        "train_from": FIRST,
        "train_to": date(2024, 12, 30),
        "validation_from": date(2025, 1, 6),
        "validation_to": date(2025, 4, 1),
        "train_rows": 800,
        "train_churned": 50,
        "validation_rows": 300,
        "validation_churned": 20,
        "auc_model": 0.61,
        "auc_health_score": 0.66,
        "auc_churn_risk": 0.63,
        "auc_baseline": 0.64,
        "brier_score": 0.06,
        "accepted": False,
        "verdict": "AUC 0.61 out of time, below the health score's 0.66: not used",
        "intercept": -2.0,
        "calibration_slope": 1.0,
        "calibration_intercept": 0.0,
        "artifact": "{}",
        **changes,
    }


#: What metrics/churn_model.py records when no scored date has a complete outcome window.
NO_SPLIT = {
    **{
        name: None
        for name in (
            "train_from", "train_to", "validation_from", "validation_to", "train_rows",
            "train_churned", "validation_rows", "validation_churned", "auc_model",
            "auc_health_score", "auc_churn_risk", "auc_baseline", "brier_score", "intercept",
            "calibration_slope", "calibration_intercept",
        )
    },
    "verdict": "not used: too little history: no scored date has a complete 90-day outcome"
    " window as of 2025-06-30",
}  # fmt: skip


def _with_fits(warehouse: Path, *fits: dict[str, Any]) -> Path:
    """``fits`` written into ml.churn_model_fits, typed as metrics/churn_model.py creates it."""
    from metrics.churn_model import FITS_COLUMNS

    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema ml")
        spec = ", ".join(f"{name} {sql_type}" for name, sql_type in FITS_COLUMNS)
        con.execute(f"create table ml.churn_model_fits ({spec})")
        columns = [name for name, _ in FITS_COLUMNS]
        marks = ", ".join("?" for _ in columns)
        for fit in fits:
            con.execute(
                f"insert into ml.churn_model_fits ({', '.join(columns)}) values ({marks})",
                [fit[name] for name in columns],
            )
    finally:
        con.close()
    return warehouse


def test_the_fitted_churn_model_is_reported_with_its_verdict(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6}, probability=0.61)
    _with_fits(warehouse, _fit("cm0123456789"))
    code, out = _pinned(warehouse)
    assert code == 0, out
    said = " ".join(out.split())
    assert "cm0123456789" in said and "NOT USED" in said
    assert "below the health score's 0.66: not used" in said
    assert "AUC model 0.610" in said and "baseline 0.640" in said
    # The probability's own line, with its Brier score, and its calibration.
    probability = next(line for line in out.splitlines() if "│ churn_probability" in line)
    assert "0.610" in probability and "0.061" in probability
    assert "Calibration" in out
    calibration = [line for line in out.splitlines() if "34.7%" in line]
    assert len(calibration) == 1 and "27.5%" in calibration[0]
    code, out = _pinned(warehouse, "--format", "json")
    assert json.loads(out)["churn_model"]["accepted"] is False


def test_a_fit_with_too_little_history_is_reported_by_its_verdict(tmp_path: Path) -> None:
    """No split, no metrics (too little history): the verdict, no out-of-time figures."""
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    _with_fits(warehouse, _fit("cmshorthist01", **NO_SPLIT))
    code, out = _pinned(warehouse)
    assert code == 0, out
    said = " ".join(out.split())
    assert "cmshorthist01" in said and "NOT USED: too little history" in said
    assert NO_SPLIT["verdict"] in said
    assert "Validation dates" not in said and "did not beat" not in said


def test_the_report_shows_the_fit_in_use_and_the_latest_with_its_real_reason(
    tmp_path: Path,
) -> None:
    """An older accepted fit is in use (int_churn_predictions takes the latest ACCEPTED one);
    the latest fit beat the configured score but not the baseline, and the report says that."""
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6}, probability=0.7)
    used = _fit(
        "cmaccepted001",
        accepted=True,
        as_of=date(2025, 3, 31),
        fitted_at=datetime(2025, 4, 1, 6, 0),
        auc_model=0.72,
        verdict="used: AUC 0.720 > health score 0.660",
    )
    latest = _fit(
        "cmlatest00001",
        auc_model=0.66,
        auc_health_score=0.60,
        auc_churn_risk=0.63,
        auc_baseline=0.70,
        verdict="not used: AUC 0.660 <= 30-day activity baseline 0.700, although above churn"
        " risk 0.630",
    )
    _with_fits(warehouse, used, latest)
    code, out = _pinned(warehouse)
    assert code == 0, out
    said = " ".join(out.split())
    assert "Churn model in use: cmaccepted001" in said
    assert "Latest fit cmlatest00001" in said
    assert "NOT USED: it did not beat the 30-day activity baseline out of time" in said
    assert "configured score" not in said.split("Latest fit cmlatest00001")[1]
    code, out = _pinned(warehouse, "--format", "json")
    report = json.loads(out)
    assert report["churn_model_in_use"]["churn_model_version"] == "cmaccepted001"
    assert report["churn_model"]["churn_model_version"] == "cmlatest00001"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"auc_model": 0.62}, "it did not beat the configured score"),
        ({"auc_model": 0.65, "auc_baseline": 0.70}, "it did not beat the 30-day activity baseline"),
        (
            {"auc_model": 0.68, "validation_churned": 3, "validation_rows": 20},
            "it was not above chance",
        ),
        (NO_SPLIT, "too little history"),
        ({"auc_model": 0.70, "accepted": True}, None),
    ],
)
def test_the_status_of_a_fit_gives_its_real_reason(
    changes: dict[str, Any], reason: str | None
) -> None:
    from orchestration.backtest_report import fit_status

    status = fit_status(_fit("cm", **{"auc_health_score": 0.64, "auc_churn_risk": 0.60, **changes}))
    if reason is None:
        assert status.startswith("ACCEPTED")
    else:
        assert status.startswith(f"NOT USED: {reason}"), status


def test_a_score_below_chance_is_said_to_rank_churners_backwards(tmp_path: Path) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.28}, baseline=0.64)
    code, out = _pinned(warehouse)
    assert code == 0, out
    said = " ".join(out.split())
    assert "The configured health score ranks churners backwards (AUC 0.28)" in said
    assert "(AUC 0.28) separates churners" not in said
    assert "csw backtest --candidate" in said  # what to do next


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_as_of_too_early_for_any_outcome_exits_1_before_building_anything(
    tmp_path: Path,
) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    code, out = _pinned(warehouse, "--as-of", "2024-03-01")
    assert code == 1, out
    said = " ".join(out.split())
    assert "Nothing to evaluate" in said
    assert "2024-04-07" in said  # 2024-01-08, the first scored date, + 90 days
    code, out = _pinned(warehouse, "--as-of", "2024-13-01")
    assert code == 2
    assert "YYYY-MM-DD" in out


# --- a built warehouse ---------------------------------------------------------------------------

#: Small: 30 accounts over 8 months, so a few months of scored dates have a complete 90-day
#: outcome as of the last day, and some accounts churned in them.
SAMPLE = GeneratorConfig(accounts=30, months=8, seed=3, start=date(2024, 1, 1))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse generated, ingested and built (the backtest marts and their parents) once."""
    root = tmp_path_factory.mktemp("backtest")
    generate_extracts(root / "landing", SAMPLE)
    warehouse = _ingest(root / "landing", root)
    dbt = Dbt(tmp_path_factory.mktemp("dbt"), as_of=SAMPLE.last_day.isoformat())
    result = dbt.build(
        warehouse,
        *BACKTEST_SELECTION,
        "--exclude-resource-type",
        "unit_test",
    )
    assert result.success, failures(result)
    # dbt-duckdb keeps its connection to the file open in this process, and DuckDB refuses a
    # read-only one beside it (csw opens warehouses read-only): checkpoint, then report on a copy.
    con = duckdb.connect(str(warehouse))
    con.execute("checkpoint")
    con.close()
    copy = root / "copy" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(warehouse, copy)
    return copy


def _mart(warehouse: Path) -> dict[str, tuple[float | None, bool]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = query(
            con,
            "select scorer, auc, is_worse_than_baseline from marts.fct_health_backtest"
            f" where health_model_version = '{VERSION}'",
        )
    finally:
        con.close()
    return {scorer: (auc, worse) for scorer, auc, worse in rows}


def test_the_report_on_a_built_warehouse_shows_its_marts_figures(built: Path) -> None:
    mart = _mart(built)
    assert {"health_score", "churn_risk", "baseline_activity_30d"} <= set(mart)
    assert all(auc is not None for auc, _ in mart.values())  # some churned, some did not
    code, out = _pinned(built, "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["evaluated_as_of_date"] == SAMPLE.last_day.isoformat()
    assert {s["scorer"]: s["auc"] for s in report["scorers"]} == pytest.approx(
        {scorer: auc for scorer, (auc, _) in mart.items()}
    )
    assert report["is_worse_than_baseline"] == [s for s, (_, worse) in mart.items() if worse]
    code, out = _pinned(built)
    assert code == 0, out
    said = " ".join(out.split())
    for scorer, name in (("health_score", "health score"), ("churn_risk", "churn risk")):
        how = re.search(
            rf"The configured {name} \(AUC [0-9.]+\) separates churners (.+?) the", said
        )
        assert how is not None, said
        assert (how.group(1) == "worse than") == mart[scorer][1], (scorer, how.group(1))


def test_a_what_if_leaves_the_warehouse_byte_identical_and_shows_both_versions(
    built: Path, tmp_path: Path
) -> None:
    text = PINNED_HEALTH_MODEL.read_text()
    assert text.count("green: 80") == 1
    candidate = tmp_path / "tuned.yaml"
    candidate.write_text("name: tuned\n" + text.replace("green: 80", "green: 70"))
    tuned = model_version(load_health_config(candidate)).version
    assert tuned != VERSION
    before = _digest(built)
    code, out = _pinned(built, "--candidate", str(candidate))
    assert code == 0, out
    assert _digest(built) == before
    said = " ".join(out.split())
    assert f"current {VERSION} " in said and f"candidate {tuned} (tuned)" in said
    assert f"auc {VERSION} " in said and f"auc {tuned} (tuned)" in said
    assert "not the same history" not in said
    # The bands moved: the tuned green band starts lower, so it holds more rows.
    green = next(line for line in out.splitlines() if "│ green" in line).split("│")
    assert int(green[5]) > int(green[3])


# --- the other commands of issue 13 ---------------------------------------------------------------


def _csw(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result.exit_code, result.output


def test_generate_writes_the_consumer_scenario_and_names_its_health_model(tmp_path: Path) -> None:
    from ingestion.synthetic.consumer import CONSUMER_HEALTH_MODEL

    consumer_events = set(load_health_config(CONSUMER_HEALTH_MODEL).events)
    b2b_events = set(pinned_health_config().events)
    landing = tmp_path / "landing"
    code, out = _csw(
        "generate", "--scenario", "consumer", "--out", str(landing), "--accounts", "4",
        "--months", "2", "--seed", "1",
    )  # fmt: skip
    assert code == 0, out
    assert str(CONSUMER_HEALTH_MODEL) in " ".join(out.split())
    con = duckdb.connect()
    names = {
        row[0]
        for row in query(
            con,
            f"select distinct event_name from read_parquet('{landing}/product/events/*')",
        )
    }
    assert names and names <= consumer_events  # the consumer product's vocabulary
    assert not names & (b2b_events - consumer_events)
    code, out = _csw("generate", "--scenario", "retail", "--out", str(tmp_path / "x"))
    assert code == 2 and "b2b or consumer" in out
    code, out = _csw(
        "generate", "--scenario", "consumer", "--out", str(tmp_path / "y"),
        "--events-per-user-day", "0.5",
    )  # fmt: skip
    assert code == 2 and "events_per_active_day" in out


def test_fit_churn_model_without_a_warehouse_exits_2_and_demo_fits_before_the_lists(
    tmp_path: Path,
) -> None:
    from orchestration import cli
    from orchestration.defs.jobs import CHURN_MODEL_JOB

    code, out = _csw("fit-churn-model", "--warehouse", str(tmp_path / "none" / "warehouse.duckdb"))
    assert code == 2, out
    assert "No warehouse at" in out and not (tmp_path / "none").exists()
    order = list(cli.DEMO_JOBS)
    assert order.index(CHURN_MODEL_JOB) == order.index("pipeline") + 1
    assert order.index(CHURN_MODEL_JOB) < order.index("weekly_lists")


@pytest.fixture
def fit_job(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """The churn_model job replaced by one that records the date it was run as of and
    succeeds (the fit itself is tests/test_churn_model.py's): what csw fit-churn-model asks."""
    from orchestration import pipeline_run
    from orchestration.defs.jobs import CHURN_MODEL_JOB

    dates: list[date] = []

    def run_job(settings: Any, job_name: str, **_: Any) -> pipeline_run.RunOutcome:
        assert job_name == CHURN_MODEL_JOB
        dates.append(settings.as_of)
        return pipeline_run.RunOutcome(True, "fitrun00", (), (), (), job=job_name)

    monkeypatch.setattr(pipeline_run, "run_job", run_job)
    return dates


def test_fit_churn_model_fits_as_of_the_warehouses_reporting_date(
    tmp_path: Path, fit_job: list[date]
) -> None:
    """Not today: the fit and the models it rebuilds are as of the date the warehouse was
    built for, so the risk list stays as it was and the next `csw run --as-of` uses the fit."""
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    code, out = _csw("fit-churn-model", "--warehouse", str(warehouse))
    assert code == 0, out
    assert fit_job == [EVALUATED]
    said = " ".join(out.split())
    assert f"as of {EVALUATED}, the warehouse's reporting date" in said
    code, out = _csw("fit-churn-model", "--warehouse", str(warehouse), "--as-of", str(EVALUATED))
    assert code == 0, out
    assert fit_job == [EVALUATED, EVALUATED]


def test_fit_churn_model_refuses_another_as_of_than_the_warehouses(
    tmp_path: Path, fit_job: list[date], monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = _marts(tmp_path / "warehouse.duckdb", {"all": 0.6})
    code, out = _csw("fit-churn-model", "--warehouse", str(warehouse), "--as-of", "2025-07-15")
    assert code == 2, out
    said = " ".join(out.split())
    assert f"built as of {EVALUATED}" in said and "2025-07-15" in said
    assert "csw run --as-of 2025-07-15" in said  # what to do
    monkeypatch.setenv("CSW_AS_OF", "2025-07-15")
    code, out = _csw("fit-churn-model", "--warehouse", str(warehouse))
    assert code == 2 and "CSW_AS_OF" in out, out
    assert fit_job == []
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    code, out = _csw("fit-churn-model", "--warehouse", str(empty))
    assert code == 2 and "Build it with `csw run`" in " ".join(out.split()), out


def test_a_job_of_unknown_dbt_size_prints_no_line_per_dbt_node() -> None:
    """csw fit-churn-model's job rebuilds dbt models whose count the progress does not know:
    its nodes show on the heartbeat, not one line each (it printed hundreds of lines)."""
    from types import SimpleNamespace

    from orchestration.progress import RunState

    def node(n: int) -> Any:
        data = SimpleNamespace(metadata={"unique_id": f"model.cs_warehouse.m{n}"})
        return SimpleNamespace(event_specific_data=data, asset_key=None)

    unknown, known = RunState(dbt_total=0), RunState(dbt_total=10)
    assert [unknown._dbt_node(node(n)) for n in range(5)] == [False] * 5
    assert [known._dbt_node(node(n)) for n in range(3)] == [True] * 3  # a tenth each
