"""The backtest (issue 13 point 4): intermediate.int_backtest_scores and the marts
fct_health_backtest, _bands, _deciles and _calibration (overall) and their ``_by_segment`` twins,
on a raw warehouse built by hand. The tests read each pair as one frame, the overall rows
labelled segment ``all``; the last test puts a warehouse back in the shape before the split
(issue 15) and checks the upgrade in place keeps every version's rows.

Eight accounts from 1 January 2024, scored every Monday; four churn (their only item ends in
March, so every date they are scored on is within 90 days of their churn) and four stay to the
end. Two segments, built so that the health score and the 30-day activity baseline disagree:

- smb, the health score backwards: the churners (sc1, sc2) have one user logging in once a day
  (few events) but an executive sponsor, a QBR, training and NPS 10 (high health); the stayers
  (ss1, ss2) have five busy users (many events) but open critical tickets and NPS 2 and nothing
  else (low health). The baseline ranks the churners riskier, the health score the stayers.
- enterprise, the right way round: the churners (ec1, ec2) have the tickets and the bad NPS, the
  stayers (es1, es2) the sponsor, QBR, training and NPS 10. ec2 has the most events of all, so
  the baseline misses it while the health score does not.

One module-scoped fixture builds the warehouse three times with dbt (only the backtest and what
it reads): as of EARLIER, then as of AS_OF, then as of AS_OF with a tuned copy of the tests'
health model (a second version) and --full-refresh, snapshotting after each build. The AUCs are checked against
scikit-learn's roc_auc_score computed here from int_backtest_scores.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from dbt_harness import Dbt, create_raw_warehouse, d, failures, ts
from pinned_model import pinned_health_config
from sklearn.metrics import roc_auc_score
from test_dbt_customer_success import (
    activity,
    contact,
    days,
    event,
    item,
    subscription,
    ticket,
    user,
)
from test_model_versions import _tuned_text

from metrics.dbt_vars import dbt_vars, model_version
from metrics.health_config import load_health_config

AS_OF = "2024-09-30"
#: Dates up to EARLIER - 90 days (5 March) have a complete outcome as of EARLIER; as of AS_OF
#: every date up to 2 July does.
EARLIER = "2024-06-03"
HORIZON = 90
SELECT = ("--select", "+int_backtest_scores+")
MARTS = (
    "fct_health_backtest",
    "fct_health_backtest_bands",
    "fct_health_backtest_deciles",
    "fct_health_backtest_calibration",
)
SCORERS = {"health_score", "churn_risk", "baseline_activity_30d"}
START = "2024-01-01"
#: account: (segment, churns on (its item ends) or None, users, events per user and day,
#: engaged: sponsor + QBR + training + NPS 10, else open critical tickets + NPS 2)
ACCOUNTS: dict[str, tuple[str, str | None, int, tuple[str, ...], bool]] = {
    "sc1": ("smb", "2024-03-15", 1, ("login",), True),
    "sc2": ("smb", "2024-03-29", 1, ("login",), True),
    "ss1": ("smb", None, 5, ("dashboard_viewed", "report_created"), False),
    "ss2": ("smb", None, 5, ("dashboard_viewed", "report_created"), False),
    "ec1": ("enterprise", "2024-03-15", 1, ("login",), False),
    "ec2": ("enterprise", "2024-03-29", 5, ("dashboard_viewed", "report_created", "login"), False),
    "es1": ("enterprise", None, 5, ("dashboard_viewed", "report_created"), True),
    "es2": ("enterprise", None, 5, ("dashboard_viewed", "report_created"), True),
}


def _account_rows(account: str) -> dict[str, list[dict[str, Any]]]:
    segment, churns_on, users, names, engaged = ACCOUNTS[account]
    last_day = (d(churns_on) - timedelta(days=1)).isoformat() if churns_on else AS_OF
    user_ids = [f"{account}_u{n}" for n in range(1, users + 1)]
    subscription_item = item(
        f"si_{account}", f"sub_{account}", "p_growth", 5, "20.0000", "month", f"{START} 00:00:00"
    )
    if churns_on:
        subscription_item["valid_to"] = ts(f"{churns_on} 00:00:00")
    rows: dict[str, list[dict[str, Any]]] = {
        "accounts": [
            {
                "account_id": account,
                "name": account.upper(),
                "segment": segment,
                "owner": "csm_ada",
                "industry": "software",
                "region": "emea",
                "created_at": ts("2023-01-01 00:00:00"),
            }
        ],
        "customers": [
            {"billing_customer_id": f"cus_{account}", "account_id": account, "currency": "USD"}
        ],
        "subscriptions": [subscription(f"sub_{account}", f"cus_{account}", f"{START} 00:00:00")],
        "subscription_items": [subscription_item],
        "users": [user(u, account, "2023-12-01 10:00:00") for u in user_ids],
        "events": [
            event(account, u, name, day)
            for u in user_ids
            for day in days(START, last_day)
            for name in names
        ],
        "nps_responses": [
            {
                "response_id": f"n_{account}",
                "account_id": account,
                "responded_at": ts("2023-12-20 10:00:00"),
                "score": 10 if engaged else 2,
            }
        ],
    }
    if engaged:
        rows["contacts"] = [contact(f"c_{account}", account, "executive_sponsor", "2023-06-01")]
        rows["activities"] = [
            activity(f"qbr_{account}", account, "qbr", "2023-12-15 14:00:00"),
            activity(f"tr_{account}", account, "training", "2023-12-10 14:00:00"),
        ]
    else:
        # a new critical ticket every week, never resolved
        rows["support_tickets"] = [
            ticket(f"t_{account}_{n}", account, f"{day.isoformat()} 09:00:00", "critical")
            for n, day in enumerate(days("2023-12-04", last_day)[::7])
        ]
    return rows


def build_raw() -> dict[str, list[dict[str, Any]]]:
    raw: dict[str, list[dict[str, Any]]] = {
        "plans": [
            {"plan_id": "p_growth", "name": "Growth", "tier": "growth", "billing_interval": "month"}
        ]
    }
    for account in ACCOUNTS:
        for table, rows in _account_rows(account).items():
            raw.setdefault(table, []).extend(rows)
    return raw


# --- the builds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What one build left: int_backtest_scores, the scored keys of fct_account_health and
    every backtest mart (all versions it holds)."""

    scores: pl.DataFrame
    health: pl.DataFrame
    marts: dict[str, pl.DataFrame]
    #: The first day with any product event (the event history's start).
    first_event: date


@dataclass(frozen=True)
class Builds:
    earlier: Snapshot
    as_of: Snapshot
    tuned: Snapshot
    pinned_version: str
    tuned_version: str
    dbt: Dbt
    warehouse: Path


def _both_shapes(mart: str) -> str:
    """The overall rows of ``mart`` labelled segment ``all`` and its ``_by_segment`` rows."""
    return (
        f"select 'all' as segment, * from marts.{mart}"
        f" union all by name select * from marts.{mart}_by_segment order by all"
    )


def _snapshot(warehouse: Path) -> Snapshot:
    con = duckdb.connect(str(warehouse))
    try:
        return Snapshot(
            scores=con.sql("select * from intermediate.int_backtest_scores").pl(),
            health=con.sql(
                "select account_id, as_of_date, health_model_version from marts.fct_account_health"
            ).pl(),
            marts={m: con.sql(_both_shapes(m)).pl() for m in MARTS},
            first_event=con.execute(
                "select min(activity_date) from intermediate.int_user_daily_events"
            ).fetchone()[0],  # type: ignore[index]
        )
    finally:
        con.close()


def _run(
    dbt: Dbt,
    warehouse: Path,
    as_of: str,
    *args: str,
    vars_override: dict[str, Any] | None = None,
) -> None:
    result = dbt.invoke(warehouse, "run", *SELECT, *args, as_of=as_of, vars_override=vars_override)
    assert result.success, failures(result)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    root = tmp_path_factory.mktemp("backtest")
    warehouse = root / "warehouse.duckdb"
    create_raw_warehouse(warehouse, build_raw())
    dbt = Dbt(tmp_path_factory.mktemp("dbt"), as_of=AS_OF)
    _run(dbt, warehouse, EARLIER)
    earlier = _snapshot(warehouse)
    _run(dbt, warehouse, AS_OF)
    # the data tests of the backtest models hold on this data (their unit tests run with every
    # `dbt build` of the project, e.g. test_dbt_customer_success)
    tested = dbt.invoke(
        warehouse,
        "test",
        "--select",
        "int_backtest_scores+",
        "--exclude-resource-type",
        "unit_test",
    )
    assert tested.success, failures(tested)
    as_of = _snapshot(warehouse)
    tuned_yaml = root / "tuned.yaml"
    tuned_yaml.write_text(_tuned_text(), encoding="utf-8")
    tuned_config = load_health_config(tuned_yaml)
    # with --full-refresh: the backtest marts keep the other versions' rows even then
    _run(dbt, warehouse, AS_OF, "--full-refresh", vars_override=dbt_vars(d(AS_OF), tuned_config))
    return Builds(
        earlier=earlier,
        as_of=as_of,
        tuned=_snapshot(warehouse),
        pinned_version=model_version(pinned_health_config()).version,
        tuned_version=model_version(tuned_config).version,
        dbt=dbt,
        warehouse=warehouse,
    )


def _summary(snapshot: Snapshot, version: str) -> pl.DataFrame:
    return snapshot.marts["fct_health_backtest"].filter(pl.col("health_model_version") == version)


def _row(frame: pl.DataFrame, **where: Any) -> dict[str, Any]:
    rows = frame.filter(*(pl.col(k) == v for k, v in where.items())).to_dicts()
    assert len(rows) == 1, (where, rows)
    return rows[0]


def _with_all_segment(scores: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([scores, scores.with_columns(segment=pl.lit("all"))])


# --- the tests ----------------------------------------------------------------------------------


def test_auc_is_scikit_learns_roc_auc_overall_and_by_segment(builds: Builds) -> None:
    scores, summary = builds.as_of.scores, _summary(builds.as_of, builds.pinned_version)
    expected = {}
    for (scorer, segment), group in _with_all_segment(scores).group_by(["scorer", "segment"]):
        churned = group["churned"].to_numpy()
        assert 0 < churned.sum() < len(churned), (scorer, segment)  # both classes: AUC defined
        expected[(scorer, segment)] = roc_auc_score(churned, group["risk_score"].to_numpy())
    got = {(r["scorer"], r["segment"]): r["auc"] for r in summary.to_dicts()}
    assert (
        set(got) == set(expected) == {(s, g) for s in SCORERS for g in ("all", "smb", "enterprise")}
    )
    assert got == pytest.approx(expected, abs=1e-12)
    # tied risks across the two classes (an engaged churner and an engaged stayer on the same
    # health score, churn_risk's few values), so the average-rank handling matters
    for scorer in ("health_score", "churn_risk"):
        classes = (
            scores.filter(pl.col("scorer") == scorer)
            .group_by("risk_score")
            .agg(pl.col("churned").n_unique().alias("classes"))
        )
        assert classes.filter(pl.col("classes") == 2).height > 0, scorer
    # the baseline's AUC is the baseline scorer's AUC on the same rows (here: every row)
    for r in summary.to_dicts():
        assert r["baseline_auc"] == pytest.approx(
            expected[("baseline_activity_30d", r["segment"])], abs=1e-12
        )
        assert r["auc_minus_baseline"] == pytest.approx(r["auc"] - r["baseline_auc"], abs=1e-12)


def test_the_baseline_is_the_events_of_the_30_days_to_the_date(builds: Builds) -> None:
    """baseline_activity_30d's score: the account's events on the date and the 29 days before
    (every event of the fixture counts as activity), counted here from the raw rows."""
    events = pl.DataFrame(build_raw()["events"]).select(
        "account_id", day=pl.col("occurred_at").dt.date()
    )
    baseline = builds.as_of.scores.filter(pl.col("scorer") == "baseline_activity_30d")
    counted = (
        baseline.select("account_id", "as_of_date")
        .join(events, on="account_id")
        .filter(
            (pl.col("day") <= pl.col("as_of_date"))
            & (pl.col("day") > pl.col("as_of_date") - pl.duration(days=30))
        )
        .group_by("account_id", "as_of_date")
        .agg(events=pl.len())
    )
    got = baseline.join(counted, on=["account_id", "as_of_date"], how="left").with_columns(
        pl.col("events").fill_null(0)
    )
    assert got.height == baseline.height > 0
    assert (got["score"] == got["events"].cast(pl.Float64)).all()
    assert (got["risk_score"] == -got["score"]).all()
    assert got["band"].null_count() == got.height


def test_the_backwards_health_score_is_worse_than_the_baseline_and_the_right_one_is_not(
    builds: Builds,
) -> None:
    summary = _summary(builds.as_of, builds.pinned_version)
    backwards = _row(summary, scorer="health_score", segment="smb")
    right = _row(summary, scorer="health_score", segment="enterprise")
    # smb: the score ranks the stayers riskier, the baseline the churners
    assert backwards["auc"] < 0.5 < backwards["baseline_auc"]
    assert backwards["is_worse_than_baseline"] is True
    # enterprise: the score separates perfectly, the baseline misses the busy churner ec2
    assert right["auc"] == 1.0
    assert right["baseline_auc"] < 1.0
    assert right["is_worse_than_baseline"] is False
    assert (
        _row(summary, scorer="baseline_activity_30d", segment="all")["is_worse_than_baseline"]
        is False
    )
    assert summary["brier_score"].null_count() == summary.height  # no probability scorer yet


def test_counts_dates_and_rates_of_the_summary(builds: Builds) -> None:
    scores, summary = builds.as_of.scores, _summary(builds.as_of, builds.pinned_version)
    expected = (
        _with_all_segment(scores)
        .group_by(["scorer", "segment"])
        .agg(
            first_scored_date=pl.col("as_of_date").min(),
            last_scored_date=pl.col("as_of_date").max(),
            scored_dates=pl.col("as_of_date").n_unique().cast(pl.Int64),
            scored_rows=pl.len().cast(pl.Int64),
            accounts=pl.col("account_id").n_unique().cast(pl.Int64),
            churned_rows=pl.col("churned").sum().cast(pl.Int64),
        )
        .with_columns(churn_rate=pl.col("churned_rows") / pl.col("scored_rows"))
    )
    got = summary.select(expected.columns).sort(["scorer", "segment"]).to_dicts()
    want = expected.sort(["scorer", "segment"]).to_dicts()
    assert [{**r, "churn_rate": pytest.approx(r["churn_rate"])} for r in want] == got
    assert set(summary["evaluated_as_of_date"]) == {d(AS_OF)}
    assert set(summary["horizon_days"]) == {HORIZON}
    # the churners' every date is churned, the stayers' none (see the module docstring)
    by_account = scores.group_by("account_id").agg(
        every=pl.col("churned").all(), some=pl.col("churned").any()
    )
    churners = {a for a, (_, churns_on, *_rest) in ACCOUNTS.items() if churns_on}
    assert {r["account_id"] for r in by_account.to_dicts() if r["every"]} == churners
    assert {r["account_id"] for r in by_account.to_dicts() if r["some"]} == churners


def test_bands_add_up_to_the_scored_rows(builds: Builds) -> None:
    summary = _summary(builds.as_of, builds.pinned_version)
    bands = builds.as_of.marts["fct_health_backtest_bands"]
    totals = bands.group_by(["scorer", "segment"]).agg(
        pl.col("scored_rows").sum(), pl.col("churned_rows").sum()
    )
    # only the scorers with bands have rows, and their bands add up to every scored row
    assert set(totals["scorer"]) == {"health_score", "churn_risk"}
    for r in totals.to_dicts():
        whole = _row(summary, scorer=r["scorer"], segment=r["segment"])
        assert (r["scored_rows"], r["churned_rows"]) == (
            whole["scored_rows"],
            whole["churned_rows"],
        )
    # each band's numbers are those of the rows with that band
    scores = _with_all_segment(builds.as_of.scores).filter(pl.col("band").is_not_null())
    expected = scores.group_by(["scorer", "segment", "band"]).agg(
        scored_rows=pl.len(), churned_rows=pl.col("churned").sum()
    )
    got = bands.select("scorer", "segment", "band", "scored_rows", "churned_rows")
    assert sorted(got.rows()) == sorted(expected.rows())
    for r in bands.to_dicts():
        assert r["churn_rate"] == pytest.approx(r["churned_rows"] / r["scored_rows"])


def _ntile_deciles(group: pl.DataFrame) -> pl.DataFrame:
    """Decile 1..10 of each row as SQL's ntile(10) by risk descending, account, date: the first
    n mod 10 deciles get one row more."""
    n = group.height
    size, extra = divmod(n, 10)
    labels = [k + 1 for k in range(10) for _ in range(size + (1 if k < extra else 0))]
    ordered = group.sort(
        ["risk_score", "account_id", "as_of_date"], descending=[True, False, False]
    )
    return ordered.with_columns(decile=pl.Series(labels))


def test_deciles_add_up_and_lift_is_the_decile_rate_over_the_segment_rate(
    builds: Builds,
) -> None:
    summary = _summary(builds.as_of, builds.pinned_version)
    deciles = builds.as_of.marts["fct_health_backtest_deciles"]
    for (scorer, segment), group in _with_all_segment(builds.as_of.scores).group_by(
        ["scorer", "segment"]
    ):
        mine = deciles.filter((pl.col("scorer") == scorer) & (pl.col("segment") == segment))
        whole = _row(summary, scorer=scorer, segment=segment)
        assert mine["scored_rows"].sum() == whole["scored_rows"]
        assert mine["churned_rows"].sum() == whole["churned_rows"]
        expected = (
            _ntile_deciles(group)
            .group_by("decile")
            .agg(scored_rows=pl.len(), churned_rows=pl.col("churned").sum())
        )
        got = mine.select("decile", "scored_rows", "churned_rows")
        assert sorted(got.rows()) == sorted(expected.rows()), (scorer, segment)
        for r in mine.to_dicts():
            assert r["lift"] == pytest.approx(r["churn_rate"] / whole["churn_rate"])
    # the right-way health score puts churners first: decile 1 of enterprise is all churners
    first = _row(deciles, scorer="health_score", segment="enterprise", decile=1)
    assert first["churned_rows"] == first["scored_rows"] and first["lift"] > 1


def test_calibration_is_empty_without_a_probability_scorer(builds: Builds) -> None:
    # (calibration of a probability is covered by the dbt unit test
    # backtest_calibration_bins_any_probability_scorer)
    assert builds.as_of.marts["fct_health_backtest_calibration"].height == 0
    assert builds.as_of.scores["probability"].null_count() == builds.as_of.scores.height


def _complete_keys(snapshot: Snapshot, as_of: str) -> set[tuple[str, date]]:
    """The scored (account, date) pairs whose 90 days after the date end on or before as_of,
    and whose 30 days to the date lie within the event history (activity_history_complete)."""
    last = d(as_of) - timedelta(days=HORIZON)
    first = snapshot.first_event + timedelta(days=6)
    return {
        (r["account_id"], r["as_of_date"])
        for r in snapshot.health.to_dicts()
        if first <= r["as_of_date"] <= last
    }


def test_only_dates_with_a_complete_outcome_are_evaluated(builds: Builds) -> None:
    for snapshot, as_of in ((builds.earlier, EARLIER), (builds.as_of, AS_OF)):
        complete = _complete_keys(snapshot, as_of)
        for scorer in SCORERS:
            rows = snapshot.scores.filter(pl.col("scorer") == scorer)
            assert set(zip(rows["account_id"], rows["as_of_date"], strict=True)) == complete
            assert rows.height == len(complete)
        before_events = snapshot.health.filter(
            pl.col("as_of_date") < snapshot.first_event + timedelta(days=6)
        )
        assert before_events.height > 0, "the fixture scores dates before 30 days of events"
    # as of EARLIER some scored dates wait for their outcome; moving as_of lets them in
    waiting = {k for k in _complete_keys(builds.as_of, AS_OF)} - _complete_keys(
        builds.earlier, EARLIER
    )
    assert waiting
    assert max(day for _, day in _complete_keys(builds.earlier, EARLIER)) <= d("2024-03-05")
    assert len(builds.earlier.health) > len(_complete_keys(builds.earlier, EARLIER))
    earlier = _row(
        _summary(builds.earlier, builds.pinned_version), scorer="health_score", segment="all"
    )
    later = _row(
        _summary(builds.as_of, builds.pinned_version), scorer="health_score", segment="all"
    )
    assert earlier["last_scored_date"] == d("2024-03-04")
    assert later["last_scored_date"] == d("2024-07-01")
    assert later["scored_rows"] > earlier["scored_rows"]


def test_an_evaluated_row_is_the_same_whatever_the_later_reporting_date(builds: Builds) -> None:
    """Point-in-time: the raw data runs to AS_OF, so the build as of EARLIER saw three more
    months of events, tickets and churn than it may use; each row it evaluated (score, risk,
    band, outcome) is exactly the row the build as of AS_OF has for that account and date."""
    keys = ["account_id", "as_of_date", "scorer"]
    earlier = builds.earlier.scores.sort(keys)
    later = builds.as_of.scores.join(earlier.select(keys), on=keys, how="semi").sort(keys)
    assert earlier.height > 0
    assert later.equals(earlier)


def test_a_rerun_of_the_same_version_replaces_its_rows(builds: Builds) -> None:
    for mart in MARTS:
        frame = builds.as_of.marts[mart]
        assert set(frame["health_model_version"]) <= {builds.pinned_version}, mart
        if frame.height:
            assert set(frame["evaluated_as_of_date"]) == {d(AS_OF)}, mart


def test_a_second_model_version_keeps_the_first_versions_rows(builds: Builds) -> None:
    """Built with --full-refresh too: the marts are never fully refreshed (full_refresh=false),
    as they are the only record of the earlier versions' backtests."""
    assert builds.tuned_version != builds.pinned_version
    assert set(builds.tuned.health["health_model_version"]) == {builds.tuned_version}
    for mart in MARTS:
        before, after = builds.as_of.marts[mart], builds.tuned.marts[mart]
        kept = after.filter(pl.col("health_model_version") == builds.pinned_version)
        assert kept.equals(before), mart
        added = after.filter(pl.col("health_model_version") == builds.tuned_version)
        assert added.height > 0 or before.height == 0, mart
    tuned = _summary(builds.tuned, builds.tuned_version)
    assert set(tuned["health_model_name"]) == {"tuned"}
    assert set(zip(tuned["scorer"], tuned["segment"], strict=True)) == {
        (s, g) for s in SCORERS for g in ("all", "smb", "enterprise")
    }


# --- upgrade in place of a warehouse built before the split of totals and segments ----------------

#: The columns renamed by the marts' naming convention (issue 15), new name -> old name.
OLD_NAMES = {
    "evaluated_as_of_date": "evaluated_as_of",
    "is_worse_than_baseline": "worse_than_baseline",
}


def _old_shape(con: duckdb.DuckDBPyConnection, mart: str) -> None:
    """``mart`` as the build before issue 15 left it: one table, overall rows under segment
    `all` next to the per-segment rows, the old column names, no ``_by_segment`` table."""
    columns = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = ? order by ordinal_position",
            [f"{mart}_by_segment"],
        ).fetchall()
    ]
    old = ", ".join(f"{c} as {OLD_NAMES.get(c, c)}" for c in columns)
    con.execute(f"create temp table old_shape as select {old} from ({_both_shapes(mart)})")
    con.execute(f"drop table marts.{mart}")
    con.execute(f"drop table marts.{mart}_by_segment")
    con.execute(f"create table marts.{mart} as select * from old_shape")
    con.execute("drop table old_shape")


def test_a_warehouse_of_the_old_shape_upgrades_in_place_keeping_every_versions_rows(
    builds: Builds, tmp_path: Path
) -> None:
    """The last build's warehouse (two health-model versions) put back in the old shape, then
    run again as of AS_OF with the pinned model: the upgrade (on-run-start) renames the columns,
    moves the per-segment rows to the `_by_segment` tables and drops `segment` from the overall
    ones, so the tuned version's rows, which this run does not recompute, are all still there,
    and every mart is what a build of the new shape gives. A second run changes nothing."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(builds.warehouse, warehouse)
    wal = builds.warehouse.with_name(builds.warehouse.name + ".wal")
    if wal.exists():  # dbt's connection may not have checkpointed its last writes
        shutil.copy(wal, warehouse.with_name(warehouse.name + ".wal"))
    con = duckdb.connect(str(warehouse))
    try:
        expected = {m: con.sql(_both_shapes(m)).pl() for m in MARTS}
        for mart in MARTS:
            _old_shape(con, mart)
        # an older version's row under the old column name (this fixture's runs do not build
        # dim_health_model_versions)
        con.execute(
            "create table marts.dim_health_model_versions as select"
            " '0123456789ab' as health_model_version, 'old' as health_model_name,"
            " 'x' as content_sha256, date '2024-01-01' as first_scored_as_of,"
            " timestamp '2024-01-02 03:04:05' as first_built_at, 'yaml' as yaml_text"
        )
        old = {m: con.execute(f"select count(*) from marts.{m}").fetchall()[0][0] for m in MARTS}
    finally:
        con.close()
    assert sum(old.values()) == sum(frame.height for frame in expected.values()) > 0
    for _ in range(2):
        _run(builds.dbt, warehouse, AS_OF, "--select", "dim_health_model_versions", *SELECT[1:])
        con = duckdb.connect(str(warehouse))
        try:
            got = {m: con.sql(_both_shapes(m)).pl() for m in MARTS}
            overall_columns = {
                m: {r[0] for r in con.execute(f"describe marts.{m}").fetchall()} for m in MARTS
            }
            now = con.sql("select * from marts.dim_health_model_versions order by all").pl()
        finally:
            con.close()
        for mart in MARTS:
            assert got[mart].equals(expected[mart]), mart
            assert "segment" not in overall_columns[mart], mart
        assert set(got["fct_health_backtest"]["health_model_version"]) == {
            builds.pinned_version,
            builds.tuned_version,
        }
        assert now.filter(pl.col("health_model_version") == "0123456789ab").to_dicts() == [
            {
                "health_model_version": "0123456789ab",
                "health_model_name": "old",
                "content_sha256": "x",
                "first_scored_as_of_date": date(2024, 1, 1),
                "first_built_at": datetime(2024, 1, 2, 3, 4, 5),
                "yaml_text": "yaml",
            }
        ]
        assert set(now["health_model_version"]) == {"0123456789ab", builds.pinned_version}
