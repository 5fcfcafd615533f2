"""CatBoost models on the training set: the walk-forward evaluation and the final fit.

fwd_ret: a CatBoostRegressor (point forecast) and one MultiQuantile model (interval);
tb_label: a MultiClass CatBoostClassifier over barrier_label in {-1, 0, 1}. Seeded and
thread-limited from the config, so the same data and config give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoost, CatBoostClassifier, CatBoostRegressor, Pool

from ml import cv, evaluate
from ml.config import TrainConfig
from ml.dataset import TrainingSet
from ml.errors import DatasetError

CLASSES = (-1, 0, 1)


# ------------------------------------------------------------------------------- fitting


def _common(config: TrainConfig) -> dict[str, Any]:
    return {
        "random_seed": config.seed,
        "thread_count": config.thread_count,
        "verbose": False,
        "allow_writing_files": False,
    }


def quantile_loss(alphas: tuple[float, ...]) -> str:
    return "MultiQuantile:alpha=" + ",".join(f"{a:g}" for a in alphas)


def fit_point(x: pd.DataFrame, y: np.ndarray, config: TrainConfig) -> CatBoostRegressor:
    params = config.regressor
    model = CatBoostRegressor(
        loss_function=params.loss_function,
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        l2_leaf_reg=params.l2_leaf_reg,
        min_data_in_leaf=params.min_data_in_leaf,
        **_common(config),
    )
    model.fit(x, y)
    return model


def fit_quantiles(x: pd.DataFrame, y: np.ndarray, config: TrainConfig) -> CatBoostRegressor:
    params = config.quantiles
    model = CatBoostRegressor(
        loss_function=quantile_loss(params.alphas),
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        l2_leaf_reg=params.l2_leaf_reg,
        **_common(config),
    )
    model.fit(x, y)
    return model


def fit_classifier(x: pd.DataFrame, y: np.ndarray, config: TrainConfig) -> CatBoostClassifier:
    """MultiClass over the classes the rows hold (a class absent from a fold is not invented)."""
    params = config.classifier
    seen = [c for c in CLASSES if (y == c).any()]
    if len(seen) < 2:
        raise DatasetError(f"training rows hold a single barrier class {seen}: nothing to learn")
    model = CatBoostClassifier(
        loss_function="MultiClass",
        class_names=seen,
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        l2_leaf_reg=params.l2_leaf_reg,
        **_common(config),
    )
    model.fit(x, y)
    return model


def class_probabilities(
    model: CatBoostClassifier, x: pd.DataFrame, prior: np.ndarray, mix: float
) -> np.ndarray:
    """Probabilities over all of CLASSES, mixed with the prior so none is exactly zero."""
    raw = model.predict_proba(x)
    out = np.zeros((len(x), len(CLASSES)))
    for column, label in enumerate(model.classes_):
        out[:, CLASSES.index(int(label))] = raw[:, column]
    return (1 - mix) * out + mix * np.asarray(prior)[None, :]


def sorted_quantiles(model: CatBoostRegressor, x: pd.DataFrame) -> np.ndarray:
    """MultiQuantile predictions as (rows, levels), sorted per row so they never cross."""
    values = np.asarray(model.predict(x), dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    return np.sort(values, axis=1)


# ---------------------------------------------------------------------------- evaluation


@dataclass
class FoldResult:
    number: int
    train_rows: int
    test_rows: int
    purged: int
    embargoed: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    metrics: dict[str, float]


@dataclass
class CVResult:
    """Out-of-sample predictions of every fold, their scores, and the gate verdict."""

    predictions: pd.DataFrame
    folds: list[FoldResult]
    overall: dict[str, float]
    gates: evaluate.GateReport
    embargo: timedelta
    calibration: dict[str, Any] = field(default_factory=dict)


def effective_embargo(data: TrainingSet, config: TrainConfig) -> timedelta:
    """The configured embargo, never shorter than the longest label."""
    return max(config.cv.embargo_delta, data.label_span)


def make_folds(data: TrainingSet, config: TrainConfig) -> list[cv.Fold]:
    return cv.walk_forward(
        data.label_start,
        data.label_end,
        config.cv.n_folds,
        effective_embargo(data, config),
        min_train_rows=config.cv.min_train_rows,
    )


def cross_validate(data: TrainingSet, config: TrainConfig) -> CVResult:
    """Fit on each fold's purged training rows, predict its test rows, score them all."""
    folds = make_folds(data, config)
    frame, x, y = data.frame, data.x, data.y
    times = frame["open_time"]
    pieces: list[pd.DataFrame] = []
    results: list[FoldResult] = []
    alphas = config.quantiles.alphas
    for fold in folds:
        x_train, y_train = x.iloc[fold.train], y[fold.train]
        x_test, y_test = x.iloc[fold.test], y[fold.test]
        piece = pd.DataFrame(
            {
                "open_time": times.iloc[fold.test].to_numpy(),
                "available_at": frame["available_at"].iloc[fold.test].to_numpy(),
                "fold": fold.number,
                "y": y_test,
            }
        )
        if "fwd_ret_5m" in frame.columns:
            piece["fwd_ret_5m"] = frame["fwd_ret_5m"].iloc[fold.test].to_numpy()
        if data.target == "fwd_ret":
            point = fit_point(x_train, y_train, config)
            quantile_model = fit_quantiles(x_train, y_train, config)
            piece["pred"] = point.predict(x_test)
            quantiles = sorted_quantiles(quantile_model, x_test)
            for index, alpha in enumerate(alphas):
                piece[f"q{round(alpha * 100):02d}"] = quantiles[:, index]
            piece["zero"] = 0.0
            piece["persistence"] = frame["persistence"].iloc[fold.test].to_numpy()
            metrics = evaluate.regression_metrics(
                y_test,
                piece["pred"].to_numpy(),
                {"zero": piece["zero"].to_numpy(), "persistence": piece["persistence"].to_numpy()},
                horizon_bars=data.horizon_bars,
                quantiles=quantiles,
                alphas=alphas,
            )
        else:
            prior = evaluate.class_prior(y_train, CLASSES)
            classifier = fit_classifier(x_train, y_train, config)
            proba = class_probabilities(classifier, x_test, prior, config.classifier.prior_mix)
            for index, label in enumerate(CLASSES):
                piece[f"p_{label}"] = proba[:, index]
                piece[f"prior_{label}"] = prior[index]
            piece["pred"] = proba[:, CLASSES.index(1)] - proba[:, CLASSES.index(-1)]
            metrics = evaluate.classification_metrics(y_test, proba, prior, CLASSES)
        pieces.append(piece)
        results.append(
            FoldResult(
                number=fold.number,
                train_rows=len(fold.train),
                test_rows=len(fold.test),
                purged=fold.purged,
                embargoed=fold.embargoed,
                train_start=times.iloc[fold.train[0]].isoformat(),
                train_end=times.iloc[fold.train[-1]].isoformat(),
                test_start=times.iloc[fold.test[0]].isoformat(),
                test_end=times.iloc[fold.test[-1]].isoformat(),
                metrics=metrics,
            )
        )
    predictions = pd.concat(pieces, ignore_index=True)
    overall, gates, calibration = score(predictions, data, config, [r.metrics for r in results])
    return CVResult(
        predictions, results, overall, gates, effective_embargo(data, config), calibration
    )


def score(
    predictions: pd.DataFrame,
    data: TrainingSet,
    config: TrainConfig,
    fold_metrics: list[dict[str, float]],
) -> tuple[dict[str, float], evaluate.GateReport, dict[str, Any]]:
    """Pooled out-of-sample metrics, the gate verdict and calibration tables."""
    y = predictions["y"].to_numpy()
    if data.target == "fwd_ret":
        alphas = config.quantiles.alphas
        quantiles = predictions[[f"q{round(a * 100):02d}" for a in alphas]].to_numpy()
        overall = evaluate.regression_metrics(
            y,
            predictions["pred"].to_numpy(),
            {
                "zero": predictions["zero"].to_numpy(),
                "persistence": predictions["persistence"].to_numpy(),
            },
            horizon_bars=data.horizon_bars,
            quantiles=quantiles,
            alphas=alphas,
        )
        gates = evaluate.regression_gates(overall, fold_metrics, config.gates.regression)
        calibration: dict[str, Any] = {
            "deciles": evaluate.regression_calibration(y, predictions["pred"].to_numpy())
        }
    else:
        proba = predictions[[f"p_{c}" for c in CLASSES]].to_numpy()
        prior_rows = predictions[[f"prior_{c}" for c in CLASSES]].to_numpy()
        overall = evaluate.classification_metrics(y, proba, prior_rows.mean(axis=0), CLASSES)
        # The pooled prior baseline uses each fold's own training prior, row by row.
        overall["prior_log_loss"] = evaluate.log_loss(y, prior_rows, CLASSES)
        overall["prior_brier"] = evaluate.brier(y, prior_rows, CLASSES)
        overall["log_loss_skill_vs_prior"] = 1 - overall["log_loss"] / overall["prior_log_loss"]
        overall["brier_skill_vs_prior"] = 1 - overall["brier"] / overall["prior_brier"]
        gates = evaluate.classification_gates(overall, fold_metrics, config.gates.classification)
        calibration = {"reliability": evaluate.reliability(y, proba, CLASSES)}
    overall["folds"] = float(len(fold_metrics))
    return overall, gates, calibration


# --------------------------------------------------------------------------- final model


@dataclass
class TrainedModels:
    """What goes into the registry: the point model (regressor or classifier), the quantiles."""

    point: CatBoost
    quantiles: CatBoostRegressor | None
    features: list[str]
    prior: np.ndarray | None = None


def fit_final(data: TrainingSet, config: TrainConfig) -> TrainedModels:
    """The production model: the same recipe on every labelled row."""
    x, y = data.x, data.y
    if data.target == "fwd_ret":
        return TrainedModels(fit_point(x, y, config), fit_quantiles(x, y, config), data.features)
    prior = evaluate.class_prior(y, CLASSES)
    return TrainedModels(fit_classifier(x, y, config), None, data.features, prior)


def shap_importance(model: CatBoost, x: pd.DataFrame) -> pd.Series:
    """Mean |SHAP value| per feature (averaged over classes for MultiClass), largest first."""
    values = np.asarray(model.get_feature_importance(Pool(x), type="ShapValues"))
    if values.ndim == 3:  # (rows, classes, features + 1)
        magnitude = np.abs(values[:, :, :-1]).mean(axis=(0, 1))
    else:  # (rows, features + 1): the last column is the expected value
        magnitude = np.abs(values[:, :-1]).mean(axis=0)
    return pd.Series(magnitude, index=list(x.columns)).sort_values(ascending=False)
