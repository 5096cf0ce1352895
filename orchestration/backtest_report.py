"""``csw backtest``: how well each scorer separated the accounts that churned, and the what-if.

The report reads the backtest marts (``marts.fct_health_backtest`` and its bands, deciles and
calibration) for one health-model version and churn horizon; every figure is a column of a mart
(the AUCs, rates and lifts are computed in dbt). The what-if scores candidate health models on
the same history without touching the warehouse: it copies the warehouse into a temporary
directory, builds the backtest marts and their parents there with each candidate's vars (dbt
in-process), and reads the candidates' rows back from the copy.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from metrics.dbt_vars import ModelVersion, model_version
from metrics.formatting import is_ratio, percent
from metrics.health_config import HealthConfig, HealthConfigError, load_health_config
from orchestration.settings import Settings

#: Scorers in the order the report shows them; the baseline last.
BASELINE = "baseline_activity_30d"
SCORERS: tuple[str, ...] = ("health_score", "churn_risk", "churn_probability", BASELINE)
#: What a scorer is called in a sentence.
SCORER_NAMES: dict[str, str] = {
    "health_score": "configured health score",
    "churn_risk": "configured churn risk",
    "churn_probability": "fitted churn probability",
    BASELINE: "30-day activity baseline",
}
#: Bands from the least to the most risky (health bands, then churn-risk bands).
BAND_ORDER: tuple[str, ...] = ("green", "yellow", "red", "low", "medium", "high")
ALL = "all"

#: The overall marts; each has a ``_by_segment`` twin with the same columns and a segment column.
OVERALL_MARTS: tuple[str, ...] = (
    "fct_health_backtest",
    "fct_health_backtest_bands",
    "fct_health_backtest_deciles",
    "fct_health_backtest_calibration",
)
BACKTEST_MARTS: tuple[str, ...] = (
    *OVERALL_MARTS,
    *(f"{mart}_by_segment" for mart in OVERALL_MARTS),
)
#: What the what-if builds in its copy: the eight backtest marts and every model they read, with
#: the tests of those models only (``cautious``: dbt's default would add every test touching one
#: of them, e.g. a test that also reads dim_accounts, which the selection does not rebuild).
BACKTEST_SELECTION: tuple[str, ...] = (
    "--select",
    *(f"+{mart}" for mart in BACKTEST_MARTS),
    "--indirect-selection",
    "cautious",
)

#: Exit codes (as for every csw command): nothing to evaluate or a build failed; bad usage or
#: configuration; the warehouse is being written by another process.
EXIT_NOTHING, EXIT_USAGE, EXIT_BUSY = 1, 2, 3


class BacktestError(RuntimeError):
    """No report can be printed; the message says why and what to do, ``exit_code`` how to exit."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- the warehouse ------------------------------------------------------------------------------


def open_read_only(warehouse: Path, serving_copy: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection; a missing file exits 2, a file another process writes exits 3
    and says to wait or to use a copy of the working file. Not the published serving copy: it has
    neither the raw layer nor the ``ml`` schema the backtest rebuilds from."""
    from orchestration.pipeline_run import is_duckdb_lock_error

    if not warehouse.is_file():
        raise BacktestError(
            f"No warehouse at {warehouse}. Pass --warehouse or set CSW_WAREHOUSE_PATH, or build"
            " one with `csw run` (or `csw demo`).",
            EXIT_USAGE,
        )
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        if not is_duckdb_lock_error(str(exc)):
            raise
        raise BacktestError(
            f"The warehouse {warehouse} is open for writing in another process (a running job,"
            " a notebook). Wait for it to finish and run this again; or, to keep working while"
            " runs go on, back up a copy of the working file between runs (`cp"
            f" {warehouse} /tmp/csw-copy.duckdb` when no run writes it) and pass"
            " `--warehouse /tmp/csw-copy.duckdb`. The published serving copy"
            f" ({serving_copy}) will not do: it has no raw layer and no `ml` schema, which the"
            " backtest rebuilds from.",
            EXIT_BUSY,
        ) from None


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
    return con.sql(sql, params=list(params)).pl()


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        _scalar(
            con,
            "select count(*) from information_schema.tables"
            " where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> Any:
    rows = con.execute(sql, list(params)).fetchall()  # fetched in full: DuckDB 2 wants it so
    return rows[0][0] if rows else None


# --- one version's backtest ---------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    """The backtest marts' rows of one health-model version and horizon (every segment)."""

    version: str
    name: str | None
    horizon_days: int
    evaluated_as_of_date: date
    summary: pl.DataFrame
    bands: pl.DataFrame
    deciles: pl.DataFrame
    calibration: pl.DataFrame

    @property
    def label(self) -> str:
        return f"{self.version} ({self.name})" if self.name else self.version

    def segments(self) -> list[str]:
        return sorted(set(self.summary["segment"].to_list()) - {ALL})


_KEY = "where health_model_version = ? and horizon_days = ?"


def _both_shapes(mart: str, columns: str, where: str = "") -> str:
    """The rows of overall ``mart`` under segment ``all`` and those of ``mart``_by_segment, one
    version and horizon (the key's two parameters, given twice); the report keeps ``all`` as a
    label for the overall rows, the marts themselves never hold it."""
    return f"""
        select '{ALL}' as segment, {columns} from marts.{mart} {_KEY} {where}
        union all
        select segment, {columns} from marts.{mart}_by_segment {_KEY} {where}
    """


def read_backtest(con: duckdb.DuckDBPyConnection, version: str, horizon: int) -> Backtest | None:
    """The rows of ``version`` at ``horizon``; None when the warehouse has none."""
    if not all(_exists(con, "marts", mart) for mart in BACKTEST_MARTS):
        return None
    key = [version, horizon, version, horizon]
    summary = _frame(
        con,
        _both_shapes(
            "fct_health_backtest",
            """scorer, cast(evaluated_as_of_date as date) as evaluated_as_of_date,
               health_model_name, churn_model_version, first_scored_date, last_scored_date,
               scored_dates, scored_rows, accounts, churned_rows,
               cast(churn_rate as double) as churn_rate, cast(auc as double) as auc,
               cast(baseline_auc as double) as baseline_auc,
               cast(auc_minus_baseline as double) as auc_minus_baseline, is_worse_than_baseline,
               cast(brier_score as double) as brier_score""",
        ),
        key,
    )
    if summary.is_empty():
        return None
    top = _frame(
        con,
        _both_shapes(
            "fct_health_backtest_deciles",
            """scorer, cast(lift as double) as top_decile_lift,
               cast(churn_rate as double) as top_decile_churn_rate""",
            "and decile = 1",
        ),
        key,
    )
    return Backtest(
        version=version,
        name=summary["health_model_name"].drop_nulls().first(),  # type: ignore[arg-type]
        horizon_days=horizon,
        evaluated_as_of_date=summary["evaluated_as_of_date"].max(),  # type: ignore[arg-type]
        summary=_ordered(summary.join(top, on=["scorer", "segment"], how="left")),
        bands=_frame(
            con,
            _both_shapes(
                "fct_health_backtest_bands",
                "scorer, band, scored_rows, churned_rows, cast(churn_rate as double) as churn_rate",
            ),
            key,
        ),
        deciles=_frame(
            con,
            _both_shapes(
                "fct_health_backtest_deciles",
                """scorer, decile, scored_rows, churned_rows,
                   cast(churn_rate as double) as churn_rate, cast(lift as double) as lift""",
            )
            + " order by scorer, segment, decile",
            key,
        ),
        calibration=_frame(
            con,
            _both_shapes(
                "fct_health_backtest_calibration",
                """scorer, probability_bin, scored_rows,
                   cast(mean_probability as double) as mean_probability,
                   cast(churn_rate as double) as churn_rate""",
            )
            + " order by scorer, segment, probability_bin",
            key,
        ),
    )


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """Scorers in SCORERS order (unknown ones after), segment ``all`` first."""
    rank = {s: i for i, s in enumerate(SCORERS)}
    return frame.sort(
        pl.col("segment") != ALL,
        "segment",
        pl.col("scorer").replace_strict(rank, default=len(rank), return_dtype=pl.Int32),
        "scorer",
    )


def reporting_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The warehouse's reporting date: the as_of it was last built for (the rows of
    marts.fct_account_health marked ``is_reporting_date``); None when it has none."""
    if not _exists(con, "marts", "fct_account_health"):
        return None
    return _scalar(
        con, "select max(as_of_date) from marts.fct_account_health where is_reporting_date"
    )


def nothing_to_evaluate(
    con: duckdb.DuckDBPyConnection, version: ModelVersion, horizon: int
) -> BacktestError:
    """Why the warehouse has no backtest rows for ``version`` at ``horizon``, and what to do."""
    label = f"{version.version} ({version.name})" if version.name else version.version
    if not all(_exists(con, "marts", mart) for mart in BACKTEST_MARTS):
        return BacktestError(
            "The warehouse has no backtest marts (marts.fct_health_backtest and the others): it"
            " was built before them. Run `csw run` to build them, then `csw backtest` again.",
            EXIT_NOTHING,
        )
    others = _frame(
        con,
        """
        select health_model_version, max(health_model_name) as name, horizon_days,
               max(evaluated_as_of_date) as evaluated_as_of_date
        from marts.fct_health_backtest group by all order by evaluated_as_of_date desc
        """,
    )
    same_version = others.filter(pl.col("health_model_version") == version.version)
    if not same_version.is_empty():
        horizons = ", ".join(str(h) for h in same_version["horizon_days"].to_list())
        return BacktestError(
            f"The backtest of health model {label} was computed for a horizon of {horizons}"
            f" days, not {horizon} (CSW_CHURN_HORIZON_DAYS). Run `csw run` with the horizon you"
            " want, or set CSW_CHURN_HORIZON_DAYS to one of those.",
            EXIT_NOTHING,
        )
    history = _history(con)
    if history is None:
        return BacktestError(
            "The warehouse has no scored health history (marts.fct_account_health is empty or"
            " missing). Run `csw run` first.",
            EXIT_NOTHING,
        )
    first, last = history
    if first + timedelta(days=horizon) > last:
        return BacktestError(_no_complete_window(first, last, horizon), EXIT_NOTHING)
    listed = "; ".join(
        f"{r['health_model_version']}"
        + (f" ({r['name']})" if r["name"] else "")
        + f", horizon {r['horizon_days']} days, as of {r['evaluated_as_of_date']}"
        for r in others.iter_rows(named=True)
    )
    return BacktestError(
        f"The warehouse has no backtest rows for the configured health model {label} at a"
        f" horizon of {horizon} days"
        + (f"; it has rows for: {listed}" if listed else "")
        + ". Run `csw run` to score the warehouse with the configured model, or compare it"
        " without switching: `csw backtest --candidate <its YAML>`.",
        EXIT_NOTHING,
    )


def require_complete_window(
    con: duckdb.DuckDBPyConnection, horizon: int, as_of: date | None
) -> date:
    """``as_of`` (else the warehouse's reporting date) when some scored date has a complete
    outcome window by then; otherwise the error saying which dates would be needed."""
    history = _history(con)
    if history is None:
        raise BacktestError(
            "The warehouse has no scored health history (marts.fct_account_health is empty or"
            " missing). Run `csw run` first.",
            EXIT_NOTHING,
        )
    first, last = history
    target = as_of or last
    if first + timedelta(days=horizon) > target:
        raise BacktestError(_no_complete_window(first, target, horizon), EXIT_NOTHING)
    return target


def _history(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """The first and last date of the scored history."""
    if not _exists(con, "marts", "fct_account_health"):
        return None
    rows = con.execute(
        "select min(as_of_date), max(as_of_date) from marts.fct_account_health"
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows and rows[0][0] is not None else None


def _no_complete_window(first: date, last: date, horizon: int) -> str:
    needed = first + timedelta(days=horizon)
    shorter = (last - first).days
    return (
        f"Nothing to evaluate: no scored date has a complete {horizon}-day outcome window. The"
        f" history runs from {first} to {last} (the reporting date); a date's outcome is known"
        f" {horizon} days after it, so the first scored date, {first}, needs a reporting date"
        f" of {needed} or later (only dates up to {last - timedelta(days=horizon)} would be"
        f" evaluated as of {last}, and there are none). Run with a later --as-of"
        f" (`csw run --as-of {needed}` or later, once the extracts reach it)"
        + (
            f", or shorten the horizon with CSW_CHURN_HORIZON_DAYS (at most {shorter} days"
            " here) and run again."
            if shorter >= 1
            else "."
        )
    )


# --- the fitted churn model -----------------------------------------------------------------------


_FIT_COLUMNS = "select * exclude (artifact) from ml.churn_model_fits"


def churn_model_fit(
    con: duckdb.DuckDBPyConnection, version: str, horizon: int
) -> dict[str, Any] | None:
    """The latest fit of ``ml.churn_model_fits``, one for this health-model version and horizon
    first; None when no model was fitted."""
    if not _exists(con, "ml", "churn_model_fits"):
        return None
    fits = _frame(
        con,
        f"{_FIT_COLUMNS} order by health_model_version = ? and horizon_days = ? desc,"
        " fitted_at desc limit 1",
        [version, horizon],
    )
    if fits.is_empty():
        return None
    fit = fits.to_dicts()[0]
    fit["for_current_model"] = fit["health_model_version"] == version and (
        fit["horizon_days"] == horizon
    )
    return fit


def churn_model_in_use(
    con: duckdb.DuckDBPyConnection, version: str, horizon: int, as_of: date | None
) -> dict[str, Any] | None:
    """The fit whose churn_probability the warehouse publishes as of ``as_of``: the latest
    ACCEPTED fit for this health-model version and horizon fitted as of ``as_of`` or earlier,
    chosen as int_churn_predictions chooses it; None when there is none."""
    if not _exists(con, "ml", "churn_model_fits"):
        return None
    fits = _frame(
        con,
        f"""
        {_FIT_COLUMNS}
        where accepted and health_model_version = ? and horizon_days = ?
          and (cast(? as date) is null or as_of <= cast(? as date))
        order by as_of desc, fitted_at desc, churn_model_version limit 1
        """,
        [version, horizon, as_of, as_of],
    )
    if fits.is_empty():
        return None
    return {**fits.to_dicts()[0], "for_current_model": True}


def churn_model_fits(
    con: duckdb.DuckDBPyConnection, version: str, horizon: int, as_of: date | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The latest fit and the fit in use (see churn_model_fit and churn_model_in_use)."""
    return churn_model_fit(con, version, horizon), churn_model_in_use(con, version, horizon, as_of)


def fit_status(fit: dict[str, Any]) -> str:
    """ACCEPTED, or NOT USED with the reason of the fit's verdict (metrics/churn_model.py
    accepts a fit that beats the configured score AND the 30-day baseline AND chance, out of
    time), read from the fit's own figures."""
    if fit["accepted"]:
        return "ACCEPTED: its churn_probability is published"
    return f"NOT USED: {_not_used_reason(fit)}"


def _not_used_reason(fit: dict[str, Any]) -> str:
    if fit["validation_from"] is None:
        return "too little history to validate it out of time"
    model = fit["auc_model"]
    if model is None:
        return (
            "its AUC is undefined out of time (the validation rows hold no churner or no"
            " non-churner)"
        )
    configured = {
        name: fit[f"auc_{name}"]
        for name in ("health_score", "churn_risk")
        if fit[f"auc_{name}"] is not None
    }
    if not configured:
        return "there was no configured score to compare it with"
    best = max(configured, key=lambda n: (configured[n], n))
    if model <= configured[best]:
        return (
            f"it did not beat the configured score out of time (AUC {model:.3f}, the"
            f" {best.replace('_', ' ')} {configured[best]:.3f})"
        )
    baseline = fit["auc_baseline"]
    if baseline is not None and model <= baseline:
        return (
            "it did not beat the 30-day activity baseline out of time (AUC"
            f" {model:.3f}, the baseline {baseline:.3f})"
        )
    return (
        f"it was not above chance out of time (AUC {model:.3f} with"
        f" {fit['validation_churned']:,} churned of {fit['validation_rows']:,} validation rows"
        " is within what a score without signal reaches)"
    )


def churn_model_lines(
    fit: dict[str, Any] | None, in_use: dict[str, Any] | None = None
) -> list[str]:
    """The fit in use and, when another one, the latest fit, each with its verdict."""
    if fit is None and in_use is None:
        return [
            "No churn model fitted yet (ml.churn_model_fits): `csw fit-churn-model` fits one on"
            " this warehouse's history."
        ]
    if in_use is None:
        lines = [
            "No fitted churn model is in use: no fit for this health model and horizon was"
            " accepted, so churn_probability is empty."
        ]
    else:
        lines = _fit_lines("Churn model in use:", in_use)
    if fit is not None and (
        in_use is None or fit["churn_model_version"] != in_use["churn_model_version"]
    ):
        lines += _fit_lines("Latest fit", fit)
    return lines


def _fit_lines(title: str, fit: dict[str, Any]) -> list[str]:
    lines = [
        f"{title} {fit['churn_model_version']} (fitted {fit['fitted_at']:%Y-%m-%d %H:%M}, as"
        f" of {fit['as_of']}, horizon {fit['horizon_days']} days, health model"
        f" {fit['health_model_version']}): {fit_status(fit)}.",
        f"  Verdict: {fit['verdict']}",
    ]
    if fit["validation_from"] is not None:  # no split: too little history, the verdict says
        lines.append(
            f"  Validation dates {fit['validation_from']} to {fit['validation_to']}"
            f" ({fit['validation_rows']:,} rows, {fit['validation_churned']:,} churned): AUC"
            f" model {_num(fit['auc_model'])}, health score {_num(fit['auc_health_score'])},"
            f" churn risk {_num(fit['auc_churn_risk'])}, baseline {_num(fit['auc_baseline'])};"
            f" Brier {_num(fit['brier_score'])}."
        )
    if not fit["for_current_model"]:
        lines.append(
            "  It was fitted for another health-model version or horizon, so it scores nothing"
            " now: `csw fit-churn-model` fits one for the current model."
        )
    return lines


# --- what the report says ----------------------------------------------------------------------


def _num(value: object, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two AUCs with 2 decimals, or 3 when 2 would show them equal."""
    digits = 2 if round(a, 2) != round(b, 2) else 3
    return f"{a:.{digits}f}", f"{b:.{digits}f}"


def verdicts(summary: pl.DataFrame) -> list[tuple[bool, str]]:
    """One sentence per scorer of ``summary`` (one segment's rows) against the baseline; True
    marks the scorers the mart says do worse than it (``is_worse_than_baseline``) and those that
    rank churners backwards (AUC below 0.5: the accounts they call riskiest churned least)."""
    said: list[tuple[bool, str]] = []
    for row in summary.filter(pl.col("scorer") != BASELINE).iter_rows(named=True):
        name = SCORER_NAMES.get(row["scorer"], row["scorer"])
        auc, base = row["auc"], row["baseline_auc"]
        if auc is None or base is None:
            said.append(
                (
                    False,
                    f"The {name} has no AUC here: its rows hold no churner or no non-churner,"
                    " so nothing separates.",
                )
            )
            continue
        shown, base_shown = _pair(auc, base)
        if auc < CHANCE:
            said.append(
                (
                    True,
                    f"The {name} ranks churners backwards (AUC {_auc_text(auc)}): the accounts it"
                    " calls riskiest churned least, worse than chance (0.5); the 30-day"
                    f" activity baseline has AUC {base_shown}.",
                )
            )
            continue
        if row["is_worse_than_baseline"]:
            how = "worse than"
        elif auc > base:
            how = "better than"
        else:
            how = "no better than"
        backwards = ", which itself ranks churners backwards" if base < CHANCE else ""
        said.append(
            (
                bool(row["is_worse_than_baseline"]),
                f"The {name} (AUC {shown}) separates churners {how} the 30-day activity"
                f" baseline (AUC {base_shown}){backwards}.",
            )
        )
    return said


#: The AUC of a score without signal; below it a score ranks churners backwards.
CHANCE = 0.5


def _auc_text(value: float) -> str:
    """An AUC with 2 decimals, or 3 when 2 would show it as chance."""
    return f"{value:.3f}" if round(value, 2) == CHANCE else f"{value:.2f}"


WHAT_TO_DO = (
    "A score worse than the baseline (or one ranking churners backwards) ranks accounts by"
    " risk less well than counting their activity in the last 30 days. Tune the health model"
    " and compare before switching: `csw backtest --candidate tuned.yaml` (docs/health-model.md,"
    " 'Tune, backtest, compare, switch'), or fit the churn model: `csw fit-churn-model`."
)


def segment_rows(backtest: Backtest, segment: str) -> pl.DataFrame:
    return backtest.summary.filter(pl.col("segment") == segment)


def require_segment(backtest: Backtest, segment: str) -> None:
    if segment != ALL and segment not in backtest.segments():
        raise BacktestError(
            f"No segment {segment!r} in the backtest of {backtest.label}; its segments:"
            f" {', '.join(backtest.segments()) or 'none'} (or leave --segment out for all).",
            EXIT_USAGE,
        )


def scorer_table(backtest: Backtest, segment: str) -> pl.DataFrame:
    """Per scorer: AUC against the baseline, lift of the top decile, churn, rows and accounts
    (and the Brier score when a scorer has a probability)."""
    table = segment_rows(backtest, segment).select(
        "scorer",
        "auc",
        pl.col("baseline_auc").alias("baseline"),
        pl.col("auc_minus_baseline").alias("vs_baseline"),
        pl.col("top_decile_lift").alias("top_10%_lift"),
        "churn_rate",
        pl.col("churned_rows").alias("churned"),
        pl.col("scored_rows").alias("rows"),
        "accounts",
        pl.col("brier_score").alias("brier"),
    )
    return table if table["brier"].drop_nulls().len() else table.drop("brier")


def rich_table(frame: pl.DataFrame, title: str) -> Any:
    """A terminal table: numbers right-aligned; ratios (churn rates, probabilities: named by
    metrics/formatting.py's rules, a comparison's ``churn_rate <label>`` too) as percentages with
    one decimal; AUCs and Brier scores with 3 decimals, lifts with 2."""
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    for name, dtype in frame.schema.items():
        view.add_column(name, justify="right" if dtype.is_numeric() else "left")
    digits = {name: 2 if "lift" in name else 3 for name in frame.columns}
    ratios = {name: is_ratio(name.split(" ")[0]) for name in frame.columns}
    for row in frame.iter_rows(named=True):
        view.add_row(*(_cell(value, digits[name], ratios[name]) for name, value in row.items()))
    return view


def _cell(value: object, digits: int, ratio: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return percent(value) if ratio else f"{value:.{digits}f}"
    return str(value)


def segment_table(backtest: Backtest) -> pl.DataFrame:
    """Per segment: rows, churn rate and each scorer's AUC, and which do worse than the
    baseline."""
    rows = backtest.summary.filter(pl.col("segment") != ALL)
    if rows.is_empty():
        return pl.DataFrame()
    scorers = [s for s in SCORERS if s in set(rows["scorer"].to_list())]
    wide = rows.pivot(on="scorer", index="segment", values="auc").select(
        "segment",
        *(pl.col(s).alias("auc_baseline" if s == BASELINE else f"auc_{s}") for s in scorers),
    )
    sizes = rows.filter(pl.col("scorer") == BASELINE).select("segment", "scored_rows", "churn_rate")
    worse = rows.group_by("segment").agg(
        pl.col("scorer")
        .filter(pl.col("is_worse_than_baseline"))
        .sort()
        .str.join(", ")
        .alias("worse")
    )
    return (
        sizes.join(wide, on="segment", how="right")
        .join(worse, on="segment", how="left")
        .select(
            "segment",
            "scored_rows",
            "churn_rate",
            pl.exclude("segment", "scored_rows", "churn_rate"),
        )
        .sort("segment")
        .rename({"worse": "is_worse_than_baseline"})
    )


def bands_table(backtest: Backtest, segment: str) -> pl.DataFrame:
    rank = {b: i for i, b in enumerate(BAND_ORDER)}
    return (
        backtest.bands.filter(pl.col("segment") == segment)
        .sort(
            "scorer",
            pl.col("band").replace_strict(rank, default=len(rank), return_dtype=pl.Int32),
            "band",
        )
        .select("scorer", "band", "scored_rows", "churned_rows", "churn_rate")
    )


def calibration_table(backtest: Backtest, segment: str) -> pl.DataFrame:
    return backtest.calibration.filter(pl.col("segment") == segment).select(
        "scorer",
        "probability_bin",
        "scored_rows",
        "mean_probability",
        "churn_rate",
    )


def report_json(
    backtest: Backtest,
    segment: str | None,
    fit: dict[str, Any] | None,
    in_use: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as one JSON-ready object (the same figures as the table form)."""
    shown = segment or ALL
    rows = segment_rows(backtest, shown)
    return {
        "health_model_version": backtest.version,
        "health_model_name": backtest.name,
        "horizon_days": backtest.horizon_days,
        "evaluated_as_of_date": backtest.evaluated_as_of_date,
        "segment": shown,
        "is_worse_than_baseline": [r for r in rows.filter("is_worse_than_baseline")["scorer"]],
        "verdicts": [sentence for _, sentence in verdicts(rows)],
        "scorers": rows.drop("segment").to_dicts(),
        "bands": bands_table(backtest, shown).to_dicts(),
        "deciles": backtest.deciles.filter(pl.col("segment") == shown).drop("segment").to_dicts(),
        "calibration": calibration_table(backtest, shown).to_dicts(),
        "segments": segment_table(backtest).to_dicts() if segment is None else [],
        "churn_model": fit,
        "churn_model_in_use": in_use,
    }


def comparison_table(
    current: Backtest, candidates: Sequence[Backtest], segment: str
) -> pl.DataFrame:
    """Per scorer: the current model's AUC, each candidate's and its change, side by side."""
    base = f"auc {current.label}"
    table = _ordered(segment_rows(current, segment)).select("scorer", pl.col("auc").alias(base))
    for n, candidate in enumerate(candidates, start=1):
        other = segment_rows(candidate, segment).select("scorer", pl.col("auc").alias("_auc"))
        table = (
            table.join(other, on="scorer", how="left")
            .with_columns(
                pl.col("_auc").alias(f"auc {candidate.label}"),
                (pl.col("_auc") - pl.col(base)).alias(f"change {n}"),
            )
            .drop("_auc")
        )
    return table


def comparison_bands(
    current: Backtest, candidates: Sequence[Backtest], segment: str
) -> pl.DataFrame:
    """Per scorer and band: each model's rows and churn rate side by side (a tuned band edge
    moves rows between bands without changing an AUC)."""
    table = None
    for n, backtest in enumerate((current, *candidates)):
        name = "current" if n == 0 else f"candidate {n}"
        rows = bands_table(backtest, segment).select(
            "scorer",
            "band",
            pl.col("scored_rows").alias(f"rows {name}"),
            pl.col("churn_rate").alias(f"churn_rate {name}"),
        )
        table = (
            rows
            if table is None
            else table.join(rows, on=["scorer", "band"], how="full", coalesce=True)
        )
    assert table is not None
    rank = {b: i for i, b in enumerate(BAND_ORDER)}
    return table.sort(
        "scorer", pl.col("band").replace_strict(rank, default=len(rank), return_dtype=pl.Int32)
    )


def same_history(current: Backtest, candidate: Backtest) -> bool:
    """Whether both were evaluated on the same rows: the baseline's scored and churned rows
    over all segments do not depend on the health model."""

    def size(backtest: Backtest) -> list[tuple[Any, ...]]:
        return (
            backtest.summary.filter(pl.col("scorer") == BASELINE, pl.col("segment") == ALL)
            .select("scored_rows", "churned_rows", "first_scored_date", "last_scored_date")
            .rows()
        )

    return size(current) == size(candidate)


def comparison_json(
    current: Backtest, candidates: Sequence[tuple[str, Backtest]], segment: str
) -> dict[str, Any]:
    models = [("current", current), *candidates]
    return {
        "evaluated_as_of_date": current.evaluated_as_of_date,
        "horizon_days": current.horizon_days,
        "segment": segment,
        "models": [
            {
                "role": "current" if source == "current" else "candidate",
                "file": None if source == "current" else source,
                "health_model_version": backtest.version,
                "health_model_name": backtest.name,
                "evaluated_as_of_date": backtest.evaluated_as_of_date,
                "is_worse_than_baseline": [
                    r
                    for r in segment_rows(backtest, segment).filter("is_worse_than_baseline")[
                        "scorer"
                    ]
                ],
                "verdicts": [s for _, s in verdicts(segment_rows(backtest, segment))],
                "scorers": segment_rows(backtest, segment).drop("segment").to_dicts(),
                "bands": bands_table(backtest, segment).to_dicts(),
            }
            for source, backtest in models
        ],
    }


def dumps(obj: object) -> str:
    return json.dumps(obj, default=str, indent=2)


# --- candidates and the what-if ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    path: Path
    config: HealthConfig
    version: ModelVersion = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", model_version(self.config))


def load_candidates(paths: Sequence[Path]) -> list[Candidate]:
    """Every candidate YAML validated; all problems of all files at once (exit 2)."""
    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(Candidate(path, load_health_config(path)))
        except HealthConfigError as exc:
            problems.append(f"Candidate {path}: {exc}")
    if problems:
        raise BacktestError(
            "\n".join(problems)
            + "\nFix the candidate file(s) and run again; nothing was evaluated.",
            EXIT_USAGE,
        )
    return loaded


@contextmanager
def warehouse_copy(warehouse: Path, serving_copy: Path) -> Iterator[Path]:
    """A copy of ``warehouse`` in a temporary directory, named warehouse.duckdb (dbt-duckdb
    names the database after the file's stem), removed afterwards. The source is held open
    read-only while it is copied, so no writer changes it half-way."""
    with tempfile.TemporaryDirectory(prefix="csw-backtest-") as tmp:
        target = Path(tmp) / "warehouse.duckdb"
        source = open_read_only(warehouse, serving_copy)
        try:
            shutil.copyfile(warehouse, target)
            wal = warehouse.with_name(warehouse.name + ".wal")
            if wal.is_file():
                shutil.copyfile(wal, target.with_name(target.name + ".wal"))
        finally:
            source.close()
        yield target


def score_candidates(
    settings: Settings,
    configs: Sequence[HealthConfig],
    as_of: date,
    say: Callable[[str], None],
) -> list[Backtest]:
    """Build the backtest marts with each of ``configs`` on a copy of the settings' warehouse
    as of ``as_of``, and read each one's rows back; the warehouse itself is only read."""
    from orchestration.defs.dbt.assets import production_build_args
    from orchestration.defs.settings_resource import SettingsResource

    with warehouse_copy(settings.warehouse, settings.serving_copy) as copy:
        work = copy.parent
        resource = SettingsResource.from_settings(
            settings.model_copy(update={"warehouse_path": copy})
        )
        with resource.dbt_environment_applied():
            runner = _DbtRunner(work)
            for n, config in enumerate(configs, start=1):
                version = model_version(config)
                say(
                    f"Scoring {version.version}"
                    + (f" ({version.name})" if version.name else "")
                    + f" on a copy of the warehouse as of {as_of} ({n} of {len(configs)})..."
                )
                args = production_build_args(
                    as_of, config, settings.max_unmapped_event_share, settings.churn_horizon_days
                )
                runner.build(args, version.version)
        # Read-write, as dbt-duckdb opened it in this process (DuckDB refuses a second
        # connection to one file with another configuration); it is the temporary copy.
        con = duckdb.connect(str(copy))
        try:
            results = []
            for config in configs:
                version = model_version(config)
                backtest = read_backtest(con, version.version, settings.churn_horizon_days)
                if backtest is None:
                    raise nothing_to_evaluate(con, version, settings.churn_horizon_days)
                results.append(backtest)
            return results
        finally:
            con.close()


class _DbtRunner:
    """dbt in this process (dbt's own runner), parsed once, its target and logs in ``work``."""

    def __init__(self, work: Path) -> None:
        from dbt.cli.main import dbtRunner

        from orchestration.defs.dbt.project import DBT_PROJECT_DIR

        self.log = work / "dbt.log"
        self.common = [
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
            "--log-level",
            "none",
        ]
        result = self._invoke(dbtRunner(), ["parse", *self.common])
        if not result.success:
            raise BacktestError(f"dbt could not parse the project: {result.exception}", 1)
        self.manifest = result.result

    def _invoke(self, runner: Any, args: list[str]) -> Any:
        with (
            self.log.open("a", encoding="utf-8") as sink,
            redirect_stdout(sink),
            redirect_stderr(sink),
        ):
            return runner.invoke(args)

    def build(self, build_args: list[str], label: str) -> None:
        from dbt.cli.main import dbtRunner

        args = [*build_args, *BACKTEST_SELECTION, *self.common]
        result = self._invoke(dbtRunner(manifest=self.manifest), args)
        if result.success:
            return
        if result.result is None:
            problems = [repr(result.exception)]
        else:
            problems = [
                f"{r.node.unique_id}: {r.status}: {r.message}"
                for r in result.result.results
                if str(r.status) in {"error", "fail", "runtime error"}
            ]
        raise BacktestError(
            f"The build of health model {label} on the copy failed (the warehouse is"
            " untouched):\n  "
            + "\n  ".join(problems)
            + "\nA model that fails the build (e.g. its vocabulary check) would fail `csw run`"
            " too; fix it and run again.",
            1,
        )
