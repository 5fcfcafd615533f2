"""Metrics against hand-computed values, baselines, and the gates' verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml import evaluate
from ml.config import ClassificationGates, RegressionGates

CLASSES = (-1, 0, 1)


def test_regression_metrics_by_hand() -> None:
    y = np.array([0.01, -0.02, 0.03, -0.01])
    pred = np.array([0.02, -0.01, -0.01, 0.0])
    m = evaluate.regression_metrics(y, pred, {"zero": np.zeros(4)})
    assert m["mae"] == pytest.approx((0.01 + 0.01 + 0.04 + 0.01) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((1e-4 + 1e-4 + 16e-4 + 1e-4) / 4))
    assert m["zero_mae"] == pytest.approx(0.0175)
    assert m["mae_skill_vs_zero"] == pytest.approx(1 - m["mae"] / 0.0175)
    # signs: right, right, wrong, zero forecast = half a hit
    assert m["directional_accuracy"] == pytest.approx(2.5 / 4)
    assert m["zero_directional_accuracy"] == 0.5


def test_rank_ic_and_its_tstat() -> None:
    y = np.arange(100.0)
    assert evaluate.rank_ic(y, y**3) == pytest.approx(1.0)
    assert evaluate.rank_ic(y, -y) == pytest.approx(-1.0)
    assert evaluate.rank_ic(y, np.zeros(100)) == 0.0
    t1 = evaluate.ic_tstat(0.1, 10_000, 1)
    t12 = evaluate.ic_tstat(0.1, 10_000, 12)
    assert t1 == pytest.approx(0.1 * math.sqrt(9998) / math.sqrt(0.99))
    assert t12 == pytest.approx(t1 / math.sqrt(12), rel=0.01)  # overlapping labels count less


def test_diebold_mariano_sign() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=2000)
    good = y + rng.normal(scale=0.5, size=2000)
    assert evaluate.diebold_mariano(y - good * 0.5, y, 1) < -5  # shrunk forecast beats zero
    assert evaluate.diebold_mariano(y - rng.normal(size=2000), y, 1) > 5  # noise loses


def test_newey_west_grows_with_positive_autocorrelation() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(size=5000)
    smooth = np.convolve(noise, np.ones(12), mode="same")
    assert evaluate.newey_west_variance(smooth, 11) > 3 * evaluate.newey_west_variance(smooth, 0)


def test_interval_coverage() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    quantiles = np.column_stack([np.full(5, 0.5), np.full(5, 1.0), np.full(5, 3.0)])
    m = evaluate.interval_metrics(y, quantiles, (0.1, 0.5, 0.9))
    assert m["coverage"] == pytest.approx(3 / 5)
    assert m["coverage_nominal"] == pytest.approx(0.8)
    assert m["coverage_abs_error"] == pytest.approx(0.2)
    assert m["interval_width_mean"] == pytest.approx(2.5)
    assert m["pinball_q50"] == pytest.approx(evaluate.pinball_loss(y, np.ones(5), 0.5))


def test_classification_metrics_by_hand() -> None:
    y = np.array([1, -1, 1, 0])
    proba = np.array([[0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0.3, 0.3, 0.4], [0.2, 0.6, 0.2]])
    prior = np.array([0.25, 0.25, 0.5])
    m = evaluate.classification_metrics(y, proba, prior, CLASSES)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.6, 0.4, 0.6])))
    brier = np.mean(
        [0.01 + 0.01 + 0.04, 0.16 + 0.04 + 0.04, 0.09 + 0.09 + 0.36, 0.04 + 0.16 + 0.04]
    )
    assert m["brier"] == pytest.approx(brier)
    assert m["accuracy"] == 1.0
    assert m["prior_accuracy"] == 0.5  # the prior's mode (1) is right twice
    assert m["prior_log_loss"] == pytest.approx(-np.mean(np.log([0.5, 0.25, 0.5, 0.25])))
    assert m["log_loss_skill_vs_prior"] > 0 and m["accuracy_vs_prior"] == 0.5


def test_prior_is_smoothed_and_log_loss_finite() -> None:
    prior = evaluate.class_prior(np.array([1, 1, -1]), CLASSES)
    assert prior[1] > 0 and prior.sum() == pytest.approx(1)
    assert math.isfinite(evaluate.log_loss(np.array([0]), np.array([[0.5, 0.0, 0.5]]), CLASSES))


def test_reliability_bins() -> None:
    y = np.array([1, 1, -1, -1])
    proba = np.array([[0.05, 0, 0.95], [0.05, 0, 0.95], [0.95, 0, 0.05], [0.95, 0, 0.05]])
    table = evaluate.reliability(y, proba, CLASSES)
    assert table["1"] == [
        {"predicted": 0.05, "observed": 0.0, "count": 2.0},
        {"predicted": 0.95, "observed": 1.0, "count": 2.0},
    ]


def _regression_overall(**changes: float) -> dict[str, float]:
    base = {
        "rmse_skill_vs_zero": 0.01,
        "mae_skill_vs_zero": 0.01,
        "rmse_skill_vs_persistence": 0.2,
        "rank_ic": 0.1,
        "rank_ic_tstat": 8.0,
        "directional_accuracy": 0.55,
        "coverage_abs_error": 0.02,
    }
    return {**base, **changes}


def test_regression_gates() -> None:
    folds = [{"rank_ic": 0.1}] * 5
    assert evaluate.regression_gates(_regression_overall(), folds, RegressionGates()).passed
    failing = evaluate.regression_gates(
        _regression_overall(rmse_skill_vs_zero=-0.001, coverage_abs_error=0.3),
        folds,
        RegressionGates(),
    )
    assert not failing.passed
    assert [f.split(" ")[0] for f in failing.failures()] == [
        "rmse_skill_vs_zero",
        "coverage_abs_error",
    ]
    mixed = [{"rank_ic": 0.1}, {"rank_ic": -0.1}, {"rank_ic": -0.1}]
    report = evaluate.regression_gates(_regression_overall(), mixed, RegressionGates())
    assert report.failures() == ["positive_folds = 0.3333 (< 0.5)"]
    nan = evaluate.regression_gates(
        _regression_overall(rank_ic=float("nan")), folds, RegressionGates()
    )
    assert not nan.passed  # a missing score never passes


def test_classification_gates() -> None:
    overall = {
        "log_loss_skill_vs_prior": 0.01,
        "brier_skill_vs_prior": 0.01,
        "accuracy_vs_prior": 0.02,
    }
    folds = [{"log_loss_skill_vs_prior": 0.01}] * 3
    assert evaluate.classification_gates(overall, folds, ClassificationGates()).passed
    worse = {**overall, "log_loss_skill_vs_prior": -0.01}
    report = evaluate.classification_gates(worse, folds, ClassificationGates())
    assert not report.passed and report.as_dict()["passed"] is False
