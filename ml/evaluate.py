"""Out-of-sample metrics against honest baselines, calibration tables, and the promotion gates.

Regression (forward returns): MAE/RMSE against the zero-return and persistence forecasts,
directional accuracy, rank IC with an overlap-adjusted t-statistic, a Diebold-Mariano test
against zero, and p10-p90 interval coverage. Classification (barrier labels): log-loss, Brier
and accuracy against the training class prior, and reliability tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from ml.config import ClassificationGates, RegressionGates

EPS = 1e-15


# --------------------------------------------------------------------------- regression


def directional_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of rows whose sign is called right; a zero forecast counts as a coin flip."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    moved = y != 0
    if not moved.any():
        return float("nan")
    hits = np.where(pred[moved] == 0, 0.5, (np.sign(pred[moved]) == np.sign(y[moved])) * 1.0)
    return float(hits.mean())


def rank_ic(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman correlation of forecast and outcome; 0 for a constant forecast."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    if len(y) < 3 or np.ptp(pred) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(pred, y).statistic)


def ic_tstat(ic: float, n: int, horizon_bars: int = 1) -> float:
    """t-statistic of a correlation over n rows whose labels overlap `horizon_bars` bars."""
    effective = n / max(horizon_bars, 1)
    if effective <= 3 or abs(ic) >= 1:
        return 0.0
    return float(ic * math.sqrt(effective - 2) / math.sqrt(1 - ic * ic))


def newey_west_variance(values: np.ndarray, lags: int) -> float:
    """Long-run variance of a series' mean (Bartlett weights), for overlapping labels."""
    x = np.asarray(values, float) - np.mean(values)
    n = len(x)
    variance = float(x @ x) / n
    for lag in range(1, min(lags, n - 1) + 1):
        weight = 1 - lag / (lags + 1)
        variance += 2 * weight * float(x[lag:] @ x[:-lag]) / n
    return max(variance, 0.0)


def diebold_mariano(errors_model: np.ndarray, errors_base: np.ndarray, horizon_bars: int) -> float:
    """DM statistic on squared errors: negative means the model's errors are smaller."""
    d = np.asarray(errors_model, float) ** 2 - np.asarray(errors_base, float) ** 2
    n = len(d)
    if n < 3:
        return 0.0
    variance = newey_west_variance(d, max(horizon_bars - 1, 0))
    if variance <= 0:
        return 0.0
    return float(d.mean() / math.sqrt(variance / n))


def _skill(model: float, base: float) -> float:
    return float(1 - model / base) if base > 0 else 0.0


def regression_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    *,
    horizon_bars: int = 1,
    quantiles: np.ndarray | None = None,
    alphas: Sequence[float] = (),
) -> dict[str, float]:
    """Model and baseline scores on one set of rows (a fold, or all folds pooled)."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    n = len(y)
    out: dict[str, float] = {"n": float(n)}
    if n == 0:
        return out
    out["mae"] = float(np.abs(y - pred).mean())
    out["rmse"] = float(np.sqrt(((y - pred) ** 2).mean()))
    out["directional_accuracy"] = directional_accuracy(y, pred)
    out["rank_ic"] = rank_ic(y, pred)
    out["rank_ic_tstat"] = ic_tstat(out["rank_ic"], n, horizon_bars)
    for name, forecast in baselines.items():
        forecast = np.asarray(forecast, float)
        out[f"{name}_mae"] = float(np.abs(y - forecast).mean())
        out[f"{name}_rmse"] = float(np.sqrt(((y - forecast) ** 2).mean()))
        out[f"{name}_directional_accuracy"] = directional_accuracy(y, forecast)
        out[f"{name}_rank_ic"] = rank_ic(y, forecast)
        out[f"mae_skill_vs_{name}"] = _skill(out["mae"], out[f"{name}_mae"])
        out[f"rmse_skill_vs_{name}"] = _skill(out["rmse"], out[f"{name}_rmse"])
        out[f"dm_vs_{name}"] = diebold_mariano(y - pred, y - forecast, horizon_bars)
    if quantiles is not None and len(alphas) >= 2:
        out.update(interval_metrics(y, quantiles, alphas))
    return out


def pinball_loss(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    diff = np.asarray(y, float) - np.asarray(q, float)
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


def interval_metrics(
    y: np.ndarray, quantiles: np.ndarray, alphas: Sequence[float]
) -> dict[str, float]:
    """Coverage of the outermost quantiles' interval against its nominal share, and widths."""
    quantiles = np.sort(np.asarray(quantiles, float), axis=1)  # never crossed, even if a fit is
    low, high = quantiles[:, 0], quantiles[:, -1]
    inside = (y >= low) & (y <= high)
    nominal = float(alphas[-1] - alphas[0])
    out = {
        "coverage": float(inside.mean()),
        "coverage_nominal": nominal,
        "coverage_abs_error": float(abs(inside.mean() - nominal)),
        "interval_width_mean": float((high - low).mean()),
    }
    for index, alpha in enumerate(alphas):
        out[f"pinball_q{round(alpha * 100):02d}"] = pinball_loss(y, quantiles[:, index], alpha)
    return out


def regression_calibration(
    y: np.ndarray, pred: np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Mean forecast vs mean outcome per forecast decile (a well-calibrated model is diagonal)."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    if len(y) < bins:
        return []
    order = np.argsort(pred, kind="stable")
    rows = []
    for chunk in np.array_split(order, bins):
        rows.append(
            {
                "predicted": float(pred[chunk].mean()),
                "observed": float(y[chunk].mean()),
                "count": float(len(chunk)),
            }
        )
    return rows


# ----------------------------------------------------------------------- classification


def one_hot(y: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(y), len(classes)))
    out[np.arange(len(y)), [index[int(v)] for v in y]] = 1.0
    return out


def log_loss(y: np.ndarray, proba: np.ndarray, classes: Sequence[int]) -> float:
    p = np.clip(np.asarray(proba, float), EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-(one_hot(y, classes) * np.log(p)).sum(axis=1).mean())


def brier(y: np.ndarray, proba: np.ndarray, classes: Sequence[int]) -> float:
    """Multi-class Brier score: mean over rows of the squared distance to the one-hot outcome."""
    return float(((np.asarray(proba, float) - one_hot(y, classes)) ** 2).sum(axis=1).mean())


def class_prior(y: np.ndarray, classes: Sequence[int], smoothing: float = 1.0) -> np.ndarray:
    """Laplace-smoothed class frequencies (a class never seen still gets a little mass)."""
    counts = np.array([(np.asarray(y) == c).sum() for c in classes], dtype=float) + smoothing
    return counts / counts.sum()


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, prior: np.ndarray, classes: Sequence[int]
) -> dict[str, float]:
    """Model vs the class-prior forecast (the training fold's class shares) on the same rows."""
    y = np.asarray(y).astype(int)
    n = len(y)
    out: dict[str, float] = {"n": float(n)}
    if n == 0:
        return out
    proba = np.asarray(proba, float)
    prior_proba = np.tile(np.asarray(prior, float), (n, 1))
    classes_array = np.asarray(classes)
    out["log_loss"] = log_loss(y, proba, classes)
    out["brier"] = brier(y, proba, classes)
    out["accuracy"] = float((classes_array[proba.argmax(axis=1)] == y).mean())
    out["prior_log_loss"] = log_loss(y, prior_proba, classes)
    out["prior_brier"] = brier(y, prior_proba, classes)
    out["prior_accuracy"] = float((classes_array[int(np.argmax(prior))] == y).mean())
    out["log_loss_skill_vs_prior"] = _skill(out["log_loss"], out["prior_log_loss"])
    out["brier_skill_vs_prior"] = _skill(out["brier"], out["prior_brier"])
    out["accuracy_vs_prior"] = out["accuracy"] - out["prior_accuracy"]
    for index, label in enumerate(classes):
        out[f"share_{label}"] = float((y == label).mean())
        out[f"mean_p_{label}"] = float(proba[:, index].mean())
    return out


def reliability(
    y: np.ndarray, proba: np.ndarray, classes: Sequence[int], bins: int = 10
) -> dict[str, list[dict[str, float]]]:
    """Per class: mean predicted probability vs observed frequency in equal-width bins."""
    y = np.asarray(y).astype(int)
    out: dict[str, list[dict[str, float]]] = {}
    edges = np.linspace(0, 1, bins + 1)
    for index, label in enumerate(classes):
        p = np.asarray(proba, float)[:, index]
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        rows = []
        for b in range(bins):
            mask = which == b
            if mask.any():
                rows.append(
                    {
                        "predicted": float(p[mask].mean()),
                        "observed": float((y[mask] == label).mean()),
                        "count": float(mask.sum()),
                    }
                )
        out[str(label)] = rows
    return out


# --------------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateCheck:
    name: str
    value: float
    threshold: float
    kind: str  # 'min' | 'max'
    passed: bool


@dataclass(frozen=True)
class GateReport:
    passed: bool
    checks: tuple[GateCheck, ...]

    def failures(self) -> list[str]:
        return [
            f"{c.name} = {c.value:.4g} ({'<' if c.kind == 'min' else '>'} {c.threshold:g})"
            for c in self.checks
            if not c.passed
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def _check(name: str, value: float, threshold: float, kind: str) -> GateCheck:
    ok = bool(np.isfinite(value)) and (value > threshold if kind == "min" else value <= threshold)
    return GateCheck(name, float(value), float(threshold), kind, ok)


def regression_gates(
    overall: Mapping[str, float],
    folds: Sequence[Mapping[str, float]],
    gates: RegressionGates,
) -> GateReport:
    """Every gate must pass for the version to become a production candidate."""
    positive = float(np.mean([f.get("rank_ic", 0.0) > 0 for f in folds])) if folds else 0.0
    checks = [
        _check(
            "rmse_skill_vs_zero", overall["rmse_skill_vs_zero"], gates.rmse_skill_vs_zero_min, "min"
        ),
        _check(
            "mae_skill_vs_zero", overall["mae_skill_vs_zero"], gates.mae_skill_vs_zero_min, "min"
        ),
        _check(
            "rmse_skill_vs_persistence",
            overall["rmse_skill_vs_persistence"],
            gates.rmse_skill_vs_persistence_min,
            "min",
        ),
        _check("rank_ic", overall["rank_ic"], gates.rank_ic_min, "min"),
        _check("rank_ic_tstat", overall["rank_ic_tstat"], gates.rank_ic_tstat_min, "min"),
        _check(
            "directional_accuracy",
            overall["directional_accuracy"],
            gates.directional_accuracy_min,
            "min",
        ),
        _check(
            "coverage_abs_error",
            overall.get("coverage_abs_error", float("nan")),
            gates.coverage_abs_error_max,
            "max",
        ),
        _check("positive_folds", positive, gates.positive_folds_min, "min"),
    ]
    return GateReport(all(c.passed for c in checks), tuple(checks))


def classification_gates(
    overall: Mapping[str, float],
    folds: Sequence[Mapping[str, float]],
    gates: ClassificationGates,
) -> GateReport:
    positive = (
        float(np.mean([f.get("log_loss_skill_vs_prior", 0.0) > 0 for f in folds])) if folds else 0.0
    )
    checks = [
        _check(
            "log_loss_skill_vs_prior",
            overall["log_loss_skill_vs_prior"],
            gates.log_loss_skill_vs_prior_min,
            "min",
        ),
        _check(
            "brier_skill_vs_prior",
            overall["brier_skill_vs_prior"],
            gates.brier_skill_vs_prior_min,
            "min",
        ),
        _check(
            "accuracy_vs_prior", overall["accuracy_vs_prior"], gates.accuracy_vs_prior_min, "min"
        ),
        _check("positive_folds", positive, gates.positive_folds_min, "min"),
    ]
    return GateReport(all(c.passed for c in checks), tuple(checks))
