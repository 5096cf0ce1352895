"""The learned churn model: fitted on the warehouse's own history, validated out of time.

Reads ``intermediate.int_account_churn_features`` (long: account, date, feature, value) and
``intermediate.int_account_churn_outcomes`` (churned within the horizon; only rows whose outcome
window is complete), fits a regularised logistic regression (scikit-learn), calibrates it and
validates it on the latest complete dates, and writes what SQL needs to apply it
(``ml.churn_model_fits``, ``ml.churn_model_coefficients``; ``int_churn_predictions`` applies the
latest accepted fit) and a versioned artifact ``<publish_dir>/models/churn/<version>.json``.
docs/churn-model.md describes the method; this module is its one implementation.

* Rows: (account, date) pairs with a complete outcome window (``outcome_complete``) whose date
  is at least a week into the warehouse's event history (``activity_history_complete``): before
  that, activity and usage are not known, only unrecorded (billing history is often
  older than the event log).
* Split (out of time): validation = the latest ``validation_share`` of those dates (at least
  one); training = the dates whose outcome window ends on or before the first validation date,
  so no training label saw a day of the validation period. With fewer than ``min_churned``
  churned training rows that way, training falls back to every date before the first
  validation date (a plain date split, whose training outcome windows overlap validation), and
  the verdict says so instead of "out of time".
* Features: every measure, and the ``max_event_features`` event names (``event_30d:*``) with
  the most events in the training rows (ties by name). Missing values: the training median,
  except event counts: an absent count is 0 events, so their fill is 0 (here and in SQL).
* Model: ``log1p`` of counts (``is_count``), standardised, L2 logistic regression fitted on ALL
  training rows; sigmoid (Platt) calibration on cross-validated predictions over the training
  rows (CalibratedClassifierCV(method="sigmoid", ensemble=False), folds grouped by account so
  no account's rows calibrate a model that saw its other dates), whose slope and intercept SQL
  applies to the model's linear score. A non-positive slope would reverse the ranking: then no
  recalibration (slope 1, intercept 0), said in the verdict and the artifact.
* Accepted when its AUC on the validation rows beats the configured score out of time (the
  better of the health score, as -health_score, and churn risk) and is above chance by more than
  ``chance_margin_se`` standard errors. Otherwise it is recorded with a verdict saying why, and
  SQL does not use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

FEATURES_TABLE = "intermediate.int_account_churn_features"
OUTCOMES_TABLE = "intermediate.int_account_churn_outcomes"
SCORES_TABLE = "intermediate.int_account_health_scores"
FITS_TABLE = "ml.churn_model_fits"
COEFFICIENTS_TABLE = "ml.churn_model_coefficients"
#: Where the artifacts go under the publish directory.
ARTIFACT_DIR = Path("models") / "churn"
#: Hex digits of the content hash that names a fitted version.
VERSION_DIGITS = 12

#: The scores the model is compared with, as features of the features table, oriented so that
#: higher = riskier (interface13.md): the configured scores and the stated baseline.
HEALTH_SCORE, CHURN_RISK, BASELINE = "health_score", "churn_risk", "activity_events_30d"
#: Usage per event name: an absent value is 0 events (fill 0, never a median).
EVENT_PREFIX = "event_30d:"
SCORER_LABELS = {
    "health_score": "health score",
    "churn_risk": "churn risk",
    "baseline_activity_30d": "30-day activity baseline",
}

FITS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("churn_model_version", "varchar"),
    ("fitted_at", "timestamp"),
    ("as_of", "date"),
    ("horizon_days", "integer"),
    ("health_model_version", "varchar"),
    ("train_from", "date"),
    ("train_to", "date"),
    ("validation_from", "date"),
    ("validation_to", "date"),
    ("train_rows", "bigint"),
    ("train_churned", "bigint"),
    ("validation_rows", "bigint"),
    ("validation_churned", "bigint"),
    ("auc_model", "double"),
    ("auc_health_score", "double"),
    ("auc_churn_risk", "double"),
    ("auc_baseline", "double"),
    ("brier_score", "double"),
    ("accepted", "boolean"),
    ("verdict", "varchar"),
    ("intercept", "double"),
    ("calibration_slope", "double"),
    ("calibration_intercept", "double"),
    ("artifact", "varchar"),
)
COEFFICIENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("churn_model_version", "varchar"),
    ("feature", "varchar"),
    ("transform", "varchar"),
    ("fill_value", "double"),
    ("center", "double"),
    ("scale", "double"),
    ("coefficient", "double"),
)


class ChurnModelError(RuntimeError):
    """The warehouse cannot be fitted on as it is (not built, another horizon, a later date)."""


@dataclass(frozen=True)
class ChurnModelSettings:
    """How a fit splits and regularises; part of the version (a change is a new version)."""

    #: Share of the complete dates (the latest) held out for validation; at least one date.
    validation_share: float = 0.25
    #: Folds of the cross-validation whose out-of-fold predictions calibrate the model (grouped
    #: by account; fewer when fewer churned or retained accounts).
    calibration_folds: int = 5
    #: Event-name features the fit keeps: the names with the most events in the training rows.
    max_event_features: int = 40
    #: Churned training rows below which the out-of-time split falls back to a date split.
    min_churned: int = 10
    #: Inverse L2 strength of the logistic regression (scikit-learn's C).
    regularisation_c: float = 0.1
    max_iter: int = 2000
    random_state: int = 0
    #: The model must also separate churners better than chance: its validation AUC above 0.5
    #: by more than this many standard errors of the AUC of a score without signal
    #: (sqrt((n0 + n1 + 1) / (12 n0 n1)), Mann-Whitney), so noise that happens to edge past the
    #: configured score is not used.
    chance_margin_se: float = 2.0


@dataclass(frozen=True)
class Split:
    """Which dates trained and validated the model (the calibration cross-validates over the
    training rows)."""

    #: "out_of_time" (training windows end by the first validation date) or "date_split"
    #: (training outcome windows overlap validation).
    kind: str
    train_from: date
    train_to: date
    validation_from: date
    validation_to: date
    train_rows: int
    train_churned: int
    validation_rows: int
    validation_churned: int
    #: Folds of the calibration's cross-validation (0: too few accounts, no recalibration).
    calibration_folds: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coefficient:
    feature: str
    transform: str  # 'log1p' | 'identity'
    fill_value: float
    center: float
    scale: float
    coefficient: float


@dataclass(frozen=True)
class ChurnModelFit:
    """One fit: its version, split, metrics, verdict and what SQL needs to apply it."""

    version: str
    fitted_at: datetime
    as_of: date
    horizon_days: int
    health_model_version: str | None
    accepted: bool
    verdict: str
    split: Split | None = None
    #: auc_model, auc_health_score, auc_churn_risk, auc_baseline, brier_score (None: undefined).
    metrics: dict[str, float | None] = field(default_factory=dict)
    coefficients: tuple[Coefficient, ...] = ()
    intercept: float | None = None
    calibration_slope: float | None = None
    calibration_intercept: float | None = None
    #: Validation reliability: probability_bin (0..9), rows, mean_probability, churn_rate.
    calibration_table: tuple[dict[str, Any], ...] = ()
    settings: ChurnModelSettings = field(default_factory=ChurnModelSettings)
    artifact_path: Path | None = None
    #: The fitted scikit-learn model (calibrated, or the plain pipeline when the calibration was
    #: not applied), for tests and callers that score in Python; None when nothing was fitted.
    estimator: CalibratedClassifierCV | Pipeline | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.feature for c in self.coefficients)

    def artifact(self) -> dict[str, Any]:
        """The versioned artifact: everything needed to audit or re-apply the fit."""
        return {
            "churn_model_version": self.version,
            "fitted_at": self.fitted_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "health_model_version": self.health_model_version,
            "accepted": self.accepted,
            "verdict": self.verdict,
            "settings": asdict(self.settings),
            "split": _jsonable(asdict(self.split)) if self.split else None,
            "metrics": self.metrics,
            "intercept": self.intercept,
            "calibration": {
                "method": "sigmoid on cross-validated training predictions (folds by account)",
                "folds": self.split.calibration_folds if self.split else None,
                "applied": bool(self.split and self.split.calibration_folds),
                "slope": self.calibration_slope,
                "intercept": self.calibration_intercept,
                "validation_table": list(self.calibration_table),
            },
            "coefficients": [asdict(c) for c in self.coefficients],
        }


# --- reading the warehouse ------------------------------------------------------------------


def _require_tables(con: duckdb.DuckDBPyConnection) -> None:
    present = {
        f"{s}.{t}"
        for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    missing = [t for t in (FEATURES_TABLE, OUTCOMES_TABLE, SCORES_TABLE) if t not in present]
    if missing:
        raise ChurnModelError(
            f"the warehouse has no {', '.join(missing)}: build it first (csw run), then fit the "
            "churn model"
        )


def _warehouse_state(
    con: duckdb.DuckDBPyConnection, as_of: date, horizon_days: int
) -> tuple[date | None, str | None]:
    """The warehouse's latest scored date and health-model version, checked against the fit."""
    horizons = [
        h for (h,) in con.execute(f"select distinct horizon_days from {OUTCOMES_TABLE}").fetchall()
    ]
    if horizons and horizons != [horizon_days]:
        raise ChurnModelError(
            f"{OUTCOMES_TABLE} was built with a churn horizon of {horizons} days, the fit asks "
            f"for {horizon_days}: run the pipeline with CSW_CHURN_HORIZON_DAYS={horizon_days} "
            "first (or fit with the warehouse's horizon)"
        )
    (latest,) = con.execute(f"select max(as_of_date) from {OUTCOMES_TABLE}").fetchone() or (None,)
    if latest is not None and latest > as_of:
        raise ChurnModelError(
            f"the warehouse is built as of {latest}, after the fit's date {as_of}: a fit as of "
            f"{as_of} would learn from later data. Fit as of {latest} or rebuild as of {as_of}"
        )
    versions = [
        v
        for (v,) in con.execute(
            f"select distinct health_model_version from {SCORES_TABLE}"
        ).fetchall()
    ]
    if len(versions) > 1:
        raise ChurnModelError(
            f"{SCORES_TABLE} holds scores of several health models {sorted(map(str, versions))}:"
            " rebuild the warehouse with one (csw run), then fit"
        )
    return latest, (versions[0] if versions else None)


def _load_rows(
    con: duckdb.DuckDBPyConnection, as_of: date, horizon_days: int
) -> tuple[pl.DataFrame, dict[str, bool]]:
    """One row per (account, date) with a complete outcome and a week of event history: churned
    and every feature (wide), and which features are counts."""
    kinds = dict(
        con.execute(
            f"select feature, bool_and(is_count) from {FEATURES_TABLE} group by feature"
        ).fetchall()
    )
    complete = (
        f"select account_id, as_of_date, churned_within_horizon as churned"
        f" from {OUTCOMES_TABLE}"
        f" where outcome_complete and activity_history_complete"
        f" and as_of_date + {int(horizon_days)} <= date '{as_of}'"
    )
    if not kinds:
        return con.sql(complete).pl().with_columns(pl.col("churned").cast(pl.Boolean)), kinds
    labelled = con.sql(complete).pl().with_columns(pl.col("churned").cast(pl.Boolean))
    long = con.sql(
        f"""
        with labelled as ({complete})
        select f.account_id, f.as_of_date, f.feature, f.value
        from {FEATURES_TABLE} as f
        inner join labelled using (account_id, as_of_date)
        """
    ).pl()
    pivoted = long.pivot(
        on="feature", index=["account_id", "as_of_date"], values="value", aggregate_function=None
    )
    wide = labelled.join(pivoted, on=["account_id", "as_of_date"], how="inner").sort(
        "as_of_date", "account_id"
    )
    return wide, kinds


# --- the split ------------------------------------------------------------------------------


def _take_latest(dates: Sequence[date], share: float) -> int:
    return max(1, math.ceil(len(dates) * share))


def _churned(rows: pl.DataFrame) -> int:
    return int(rows["churned"].sum()) if rows.height else 0


def _split(
    rows: pl.DataFrame, horizon_days: int, settings: ChurnModelSettings
) -> tuple[Split, pl.DataFrame, pl.DataFrame] | str:
    """The split, and the training and validation rows; or why there is none."""
    dates = sorted(rows["as_of_date"].unique().to_list())
    if not dates:
        return (
            f"too little history: no scored date has a complete {horizon_days}-day outcome "
            "window and a week of event history before it yet (the first one completes "
            f"{horizon_days} days after the first such date)"
        )
    if _churned(rows) == 0:
        return (
            f"too little history: no account churned within {horizon_days} days of any of the "
            f"{len(dates)} scored dates with a complete outcome window"
        )
    validation_dates = dates[-_take_latest(dates, settings.validation_share) :]
    first_validation = validation_dates[0]
    notes: list[str] = []
    kind = "out_of_time"
    training_dates = [d for d in dates if d + timedelta(days=horizon_days) <= first_validation]
    training = rows.filter(pl.col("as_of_date").is_in(training_dates))
    if _churned(training) < settings.min_churned:
        kind = "date_split"
        notes.append(
            f"out-of-time training (outcome windows ending by {first_validation}) had "
            f"{_churned(training)} churned rows (< {settings.min_churned}): trained on every "
            f"complete date before {first_validation} instead, whose outcome windows overlap the "
            "validation period"
        )
        training_dates = [d for d in dates if d < first_validation]
        training = rows.filter(pl.col("as_of_date").is_in(training_dates))
    if not training_dates or _churned(training) == 0 or _churned(training) == training.height:
        return (
            f"too little history: the {len(training_dates)} training dates before "
            f"{first_validation} have {_churned(training)} churned rows of {training.height}; "
            "a model needs both churned and retained accounts to learn from"
        )
    validation = rows.filter(pl.col("as_of_date").is_in(validation_dates))
    split = Split(
        kind=kind,
        train_from=training_dates[0],
        train_to=training_dates[-1],
        validation_from=first_validation,
        validation_to=validation_dates[-1],
        train_rows=training.height,
        train_churned=_churned(training),
        validation_rows=validation.height,
        validation_churned=_churned(validation),
        notes=tuple(notes),
    )
    return split, training, validation


# --- the model ------------------------------------------------------------------------------


def _log1p_columns(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """log1p of the marked columns (counts), the others unchanged; SQL: ln(1 + x)."""
    out = np.array(x, dtype=np.float64, copy=True)
    out[:, columns] = np.log1p(out[:, columns])
    return out


def _matrix(rows: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    return rows.select(pl.col(f).cast(pl.Float64) for f in features).to_numpy()


def _select_features(
    training: pl.DataFrame, kinds: dict[str, bool], settings: ChurnModelSettings
) -> tuple[list[str], list[str]]:
    """The measures (sorted) and the event-name features the fit keeps: the
    ``max_event_features`` names with the most events in the training rows, ties by name."""
    measures = sorted(f for f in kinds if not f.startswith(EVENT_PREFIX))
    names = [f for f in kinds if f.startswith(EVENT_PREFIX)]
    if not names:
        return measures, []
    totals = training.select(pl.col(f).cast(pl.Float64).fill_null(0).sum() for f in names).row(0)
    ranked = sorted(zip(names, totals, strict=True), key=lambda nt: (-nt[1], nt[0]))
    return measures, sorted(name for name, _ in ranked[: settings.max_event_features])


def _fill(measures: int, events: int) -> ColumnTransformer:
    """Nulls of the measures -> the training median; of the event counts -> 0 (no events).
    The output keeps the input's column order (measures first, then events)."""
    return ColumnTransformer(
        [
            (
                "median",
                SimpleImputer(strategy="median", keep_empty_features=True),
                list(range(measures)),
            ),
            (
                "zero",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
                list(range(measures, measures + events)),
            ),
        ]
    )


def _fill_values(fill: ColumnTransformer, measures: int, events: int) -> np.ndarray:
    median = fill.named_transformers_["median"].statistics_ if measures else np.empty(0)
    return np.concatenate([median, np.zeros(events)])


def _pipeline(
    log1p: np.ndarray, measures: int, events: int, settings: ChurnModelSettings
) -> Pipeline:
    return Pipeline(
        [
            ("fill", _fill(measures, events)),
            ("log1p", FunctionTransformer(_log1p_columns, kw_args={"columns": log1p})),
            ("scale", StandardScaler()),
            (
                "model",
                LogisticRegression(
                    C=settings.regularisation_c,
                    max_iter=settings.max_iter,
                    random_state=settings.random_state,
                ),
            ),
        ]
    )


def _log1p_mask(
    fit_rows: pl.DataFrame, features: Sequence[str], kinds: dict[str, bool]
) -> np.ndarray:
    """Counts (is_count) whose training values are all >= 0 get log1p; the rest identity."""
    minima = fit_rows.select(pl.col(f).cast(pl.Float64).min() for f in features).row(0)
    return np.array(
        [
            bool(kinds.get(f)) and (m is None or m >= 0)
            for f, m in zip(features, minima, strict=True)
        ]
    )


def _coefficients(
    pipeline: Pipeline, features: Sequence[str], log1p: np.ndarray, events: int
) -> tuple[Coefficient, ...]:
    fill = _fill_values(pipeline.named_steps["fill"], len(features) - events, events)
    scaler: StandardScaler = pipeline.named_steps["scale"]
    coef: np.ndarray = pipeline.named_steps["model"].coef_[0]
    return tuple(
        Coefficient(
            feature=name,
            transform="log1p" if log else "identity",
            fill_value=float(f),
            center=float(c),
            scale=float(s),
            coefficient=float(b),
        )
        for name, log, f, c, s, b in zip(
            features, log1p, fill, scaler.mean_, scaler.scale_, coef, strict=True
        )
    )


def _auc(churned: np.ndarray, risk: np.ndarray) -> float | None:
    """ROC AUC of a risk score (higher = riskier); None when undefined (one class, no score)."""
    keep = ~np.isnan(risk)
    if keep.sum() == 0 or len(np.unique(churned[keep])) < 2:
        return None
    return float(roc_auc_score(churned[keep], risk[keep]))


def _calibration_table(churned: np.ndarray, probability: np.ndarray) -> tuple[dict[str, Any], ...]:
    table = (
        pl.DataFrame({"p": probability, "churned": churned.astype(np.float64)})
        .with_columns(
            probability_bin=pl.min_horizontal((pl.col("p") * 10).floor(), 9).cast(pl.Int32)
        )
        .group_by("probability_bin")
        .agg(
            rows=pl.len(),
            mean_probability=pl.col("p").mean(),
            churn_rate=pl.col("churned").mean(),
        )
        .sort("probability_bin")
    )
    return tuple(table.to_dicts())


def _verdict(
    metrics: dict[str, float | None], split: Split, settings: ChurnModelSettings
) -> tuple[bool, str]:
    model = metrics["auc_model"]
    configured = {
        name: metrics[f"auc_{name}"]
        for name in ("health_score", "churn_risk")
        if metrics[f"auc_{name}"] is not None
    }
    how = (
        "out of time"
        if split.kind == "out_of_time"
        else "on a date split (training outcome windows overlap validation)"
    )
    where = (
        f"{how} on {split.validation_rows} rows from {split.validation_from} to "
        f"{split.validation_to}"
    )
    notes = "".join(f"; {n}" for n in split.notes)
    if model is None:
        return False, (
            f"not used: AUC undefined, the validation rows ({split.validation_from} to "
            f"{split.validation_to}) have {split.validation_churned} churned of "
            f"{split.validation_rows}{notes}"
        )
    if not configured:
        return False, f"not used: no configured score to compare with{notes}"
    best = max(configured, key=lambda n: (configured[n], n))
    label, value = SCORER_LABELS[best], configured[best]
    if model <= value:
        return False, f"not used: AUC {model:.3f} <= {label} {value:.3f} {where}{notes}"
    baseline = metrics.get("auc_baseline")
    if baseline is not None and model <= baseline:
        return False, (
            f"not used: AUC {model:.3f} <= {SCORER_LABELS['baseline_activity_30d']}"
            f" {baseline:.3f}, although above {label} {value:.3f} {where}{notes}"
        )
    chance = _chance_level(split, settings)
    if model <= chance:
        return False, (
            f"not used: AUC {model:.3f} is within chance (needs > {chance:.3f}, 0.5 +"
            f" {_fmt(settings.chance_margin_se)} standard errors with"
            f" {split.validation_churned} churned of {split.validation_rows} rows), although"
            f" above {label} {value:.3f} {where}{notes}"
        )
    return True, f"used: AUC {model:.3f} > {label} {value:.3f} {where}{notes}"


def _chance_level(split: Split, settings: ChurnModelSettings) -> float:
    """The AUC a score without signal stays under (0.5 + chance_margin_se standard errors)."""
    churned = split.validation_churned
    retained = split.validation_rows - churned
    se = math.sqrt((churned + retained + 1) / (12 * churned * retained))
    return 0.5 + settings.chance_margin_se * se


def _fmt(value: float) -> str:
    return f"{value:g}"


def _version(payload: dict[str, Any]) -> str:
    canonical = json.dumps(_jsonable(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_DIGITS]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _calibration_folds(
    training: pl.DataFrame, settings: ChurnModelSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over the training rows grouped by account (an account's dates are near copies of
    one another: calibrating on a model that saw the same account's other dates would make it
    look surer than it is), stratified by churn; none when too few accounts of either kind."""
    by_account = training.group_by("account_id").agg(pl.col("churned").any())
    churned_accounts = int(by_account["churned"].sum())
    folds = min(settings.calibration_folds, churned_accounts, by_account.height - churned_accounts)
    if folds < 2:
        return []
    splitter = StratifiedGroupKFold(n_splits=folds)
    y = training["churned"].to_numpy()
    return list(splitter.split(np.zeros(len(y)), y, groups=training["account_id"].to_numpy()))


def _calibrate(
    pipeline: Pipeline, x: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[CalibratedClassifierCV | Pipeline, float, float, str | None]:
    """The model fitted on every training row, calibrated on its cross-validated predictions:
    (estimator, slope, intercept, note). A non-positive slope would reverse (or flatten) the
    ranking: then the plain model, slope 1 and intercept 0, and a note saying so."""
    if not folds or any(len(np.unique(y[train])) < 2 for train, _ in folds):
        pipeline.fit(x, y)
        return (
            pipeline,
            1.0,
            0.0,
            (
                "too few churned or retained training accounts to cross-validate a calibration: "
                "no recalibration (slope 1, intercept 0)"
            ),
        )
    calibrated = CalibratedClassifierCV(pipeline, method="sigmoid", ensemble=False, cv=folds)
    calibrated.fit(x, y)
    [pair] = calibrated.calibrated_classifiers_
    [calibrator] = pair.calibrators
    # sklearn's sigmoid calibrator gives expit(-(a * f + b)): slope -a, intercept -b
    slope, intercept = float(-calibrator.a_), float(-calibrator.b_)
    if slope > 0:
        return calibrated, slope, intercept, None
    return (
        pair.estimator,
        1.0,
        0.0,
        (
            f"the cross-validated calibration slope {slope:.3f} is not positive (it would reverse "
            "the ranking): no recalibration (slope 1, intercept 0)"
        ),
    )


def _fit_and_evaluate(
    split: Split,
    training: pl.DataFrame,
    validation: pl.DataFrame,
    kinds: dict[str, bool],
    settings: ChurnModelSettings,
) -> tuple[CalibratedClassifierCV | Pipeline, Split, tuple[Coefficient, ...], dict[str, Any]]:
    measures, events = _select_features(training, kinds, settings)
    features = measures + events
    log1p = _log1p_mask(training, features, kinds)
    pipeline = _pipeline(log1p, len(measures), len(events), settings)
    folds = _calibration_folds(training, settings)
    estimator, slope, intercept, note = _calibrate(
        pipeline, _matrix(training, features), training["churned"].to_numpy(), folds
    )
    split = dataclasses.replace(
        split,
        calibration_folds=len(folds) if note is None else 0,
        notes=split.notes + ((note,) if note else ()),
    )
    fitted: Pipeline = (
        estimator.calibrated_classifiers_[0].estimator
        if isinstance(estimator, CalibratedClassifierCV)
        else estimator
    )
    churned = validation["churned"].to_numpy().astype(bool)
    probability = estimator.predict_proba(_matrix(validation, features))[:, 1]

    def column(name: str) -> np.ndarray:
        return validation[name].cast(pl.Float64).fill_null(np.nan).to_numpy()

    metrics: dict[str, float | None] = {
        "auc_model": _auc(churned, probability),
        "auc_health_score": _auc(churned, -column(HEALTH_SCORE)),
        "auc_churn_risk": _auc(churned, column(CHURN_RISK)),
        "auc_baseline": _auc(churned, -column(BASELINE)),
        "brier_score": float(brier_score_loss(churned, probability)),
    }
    extra = {
        "intercept": float(fitted.named_steps["model"].intercept_[0]),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "metrics": metrics,
        "calibration_table": _calibration_table(churned, probability),
    }
    return estimator, split, _coefficients(fitted, features, log1p, len(events)), extra


# --- the fit --------------------------------------------------------------------------------


def fit_churn_model(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    horizon_days: int,
    publish_dir: Path | None = None,
    settings: ChurnModelSettings | None = None,
    write: bool = True,
    fitted_at: datetime | None = None,
) -> ChurnModelFit:
    """Fit, validate and (``write``) record a churn model on the warehouse as of ``as_of``.

    Too little history is a fit with a verdict saying so (not accepted), not an error; a
    warehouse not built, built for another horizon or after ``as_of`` raises ChurnModelError.
    Written: a row of ml.churn_model_fits, the coefficients, and (``publish_dir``) the artifact.
    """
    settings = settings or ChurnModelSettings()
    fitted_at = fitted_at or datetime.now(UTC).replace(tzinfo=None)
    _require_tables(con)
    _, health_model_version = _warehouse_state(con, as_of, horizon_days)
    rows, kinds = _load_rows(con, as_of, horizon_days)
    common = {
        "as_of": as_of,
        "horizon_days": horizon_days,
        "health_model_version": health_model_version,
        "settings": asdict(settings),
    }
    outcome = (
        _split(rows, horizon_days, settings)
        if kinds
        else "the features table is empty: nothing to fit on"
    )
    if isinstance(outcome, str):
        result = ChurnModelFit(
            version=_version({**common, "verdict": outcome}),
            fitted_at=fitted_at,
            as_of=as_of,
            horizon_days=horizon_days,
            health_model_version=health_model_version,
            accepted=False,
            verdict=f"not used: {outcome}",
            settings=settings,
        )
    else:
        split, training, validation = outcome
        estimator, split, coefficients, extra = _fit_and_evaluate(
            split, training, validation, kinds, settings
        )
        accepted, verdict = _verdict(extra["metrics"], split, settings)
        version = _version(
            {
                **common,
                "split": asdict(split),
                "coefficients": [asdict(c) for c in coefficients],
                "intercept": extra["intercept"],
                "calibration": [extra["calibration_slope"], extra["calibration_intercept"]],
            }
        )
        result = ChurnModelFit(
            version=version,
            fitted_at=fitted_at,
            as_of=as_of,
            horizon_days=horizon_days,
            health_model_version=health_model_version,
            accepted=accepted,
            verdict=verdict,
            split=split,
            metrics=extra["metrics"],
            coefficients=coefficients,
            intercept=extra["intercept"],
            calibration_slope=extra["calibration_slope"],
            calibration_intercept=extra["calibration_intercept"],
            calibration_table=extra["calibration_table"],
            settings=settings,
            estimator=estimator,
        )
    if write:
        if publish_dir is not None:
            result = _with_artifact(result, publish_dir)
        write_fit(con, result)
    return result


def _with_artifact(fit: ChurnModelFit, publish_dir: Path) -> ChurnModelFit:
    """Write the artifact JSON (atomically: a reader never sees half a file)."""
    path = Path(publish_dir) / ARTIFACT_DIR / f"{fit.version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(_jsonable(fit.artifact()), indent=2) + "\n", encoding="utf-8")
    staged.replace(path)
    return ChurnModelFit(**{**_fields(fit), "artifact_path": path})


def _fields(fit: ChurnModelFit) -> dict[str, Any]:
    return {name: getattr(fit, name) for name in fit.__dataclass_fields__}


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ml")
    for table, columns in ((FITS_TABLE, FITS_COLUMNS), (COEFFICIENTS_TABLE, COEFFICIENT_COLUMNS)):
        spec = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
        con.execute(f"create table if not exists {table} ({spec})")


def write_fit(con: duckdb.DuckDBPyConnection, fit: ChurnModelFit) -> None:
    """Record ``fit`` in ml.churn_model_fits / ml.churn_model_coefficients (a version fitted
    again replaces its rows), in one transaction."""
    split = fit.split
    fit_row = {
        "churn_model_version": fit.version,
        "fitted_at": fit.fitted_at,
        "as_of": fit.as_of,
        "horizon_days": fit.horizon_days,
        "health_model_version": fit.health_model_version,
        "train_from": split.train_from if split else None,
        "train_to": split.train_to if split else None,
        "validation_from": split.validation_from if split else None,
        "validation_to": split.validation_to if split else None,
        "train_rows": split.train_rows if split else None,
        "train_churned": split.train_churned if split else None,
        "validation_rows": split.validation_rows if split else None,
        "validation_churned": split.validation_churned if split else None,
        **{k: fit.metrics.get(k) for k in ("auc_model", "auc_health_score", "auc_churn_risk")},
        "auc_baseline": fit.metrics.get("auc_baseline"),
        "brier_score": fit.metrics.get("brier_score"),
        "accepted": fit.accepted,
        "verdict": fit.verdict,
        "intercept": fit.intercept,
        "calibration_slope": fit.calibration_slope,
        "calibration_intercept": fit.calibration_intercept,
        "artifact": json.dumps(_jsonable(fit.artifact()), sort_keys=True),
    }
    fits = pl.DataFrame(
        [fit_row], schema={name: _POLARS_TYPES[t] for name, t in FITS_COLUMNS}, orient="row"
    )
    coefficients = pl.DataFrame(
        [{"churn_model_version": fit.version, **asdict(c)} for c in fit.coefficients],
        schema={name: _POLARS_TYPES[t] for name, t in COEFFICIENT_COLUMNS},
        orient="row",
    )
    _create_tables(con)
    con.execute("begin transaction")
    try:
        for table, frame in ((FITS_TABLE, fits), (COEFFICIENTS_TABLE, coefficients)):
            con.execute(f"delete from {table} where churn_model_version = ?", [fit.version])
            con.register("_churn_model_rows", frame)
            columns = ", ".join(frame.columns)
            con.execute(f"insert into {table} ({columns}) select {columns} from _churn_model_rows")
            con.unregister("_churn_model_rows")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


_POLARS_TYPES: dict[str, pl.DataType] = {
    "varchar": pl.String(),
    "timestamp": pl.Datetime("us"),
    "date": pl.Date(),
    "integer": pl.Int32(),
    "bigint": pl.Int64(),
    "double": pl.Float64(),
    "boolean": pl.Boolean(),
}
