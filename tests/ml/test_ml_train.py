"""Training on small in-memory tables: determinism, folds, quantiles, classes, SHAP."""

from __future__ import annotations

import numpy as np
import pytest

from ml import dataset, train
from tests.ml.mlframes import fast_config, training_frame


@pytest.fixture(scope="module")
def planted() -> dataset.TrainingSet:
    return dataset.prepare(training_frame(2400, effect=0.5, seed=1), fast_config(horizon="5m"))


def test_cross_validation_finds_a_strong_planted_effect(planted: dataset.TrainingSet) -> None:
    result = train.cross_validate(planted, fast_config(horizon="5m"))
    assert len(result.folds) == 3
    assert result.overall["rank_ic"] > 0.2
    assert result.overall["rmse_skill_vs_zero"] > 0
    assert result.embargo.total_seconds() == 3600
    predictions = result.predictions
    assert predictions["open_time"].is_monotonic_increasing
    assert set(predictions["fold"]) == {1, 2, 3}
    q = predictions[["q10", "q50", "q90"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()  # quantiles never cross
    for fold in result.folds:
        assert fold.train_end < fold.test_start


def test_same_seed_same_model(planted: dataset.TrainingSet) -> None:
    config = fast_config(horizon="5m")
    a = train.fit_point(planted.x, planted.y, config).predict(planted.x)
    b = train.fit_point(planted.x, planted.y, config).predict(planted.x)
    np.testing.assert_array_equal(a, b)
    other = fast_config(horizon="5m", seed=7)
    c = train.fit_point(planted.x, planted.y, other).predict(planted.x)
    assert not np.array_equal(a, c)


def test_final_model_and_shap(planted: dataset.TrainingSet) -> None:
    models = train.fit_final(planted, fast_config(horizon="5m"))
    assert models.quantiles is not None and models.prior is None
    importance = train.shap_importance(models.point, planted.x.tail(300))
    assert list(importance.index[:1]) == ["taker_imbalance"]
    assert len(importance) == len(planted.features)


def test_classifier_with_a_class_missing_from_training() -> None:
    frame = training_frame(1500, seed=2)
    early = frame.index < len(frame) - 200
    # Class 0 only in the last rows: the first folds never see it.
    frame.loc[early & (frame["barrier_label"] == 0), "barrier_label"] = 1
    config = fast_config(target="tb_label")
    data = dataset.prepare(frame, config)
    result = train.cross_validate(data, config)
    proba = result.predictions[["p_-1", "p_0", "p_1"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1)
    assert (proba > 0).all()  # the prior mix keeps an unseen class possible
    assert np.isfinite(result.overall["log_loss"])
    models = train.fit_final(data, config)
    assert models.prior is not None and models.quantiles is None
    assert len(train.shap_importance(models.point, data.x.tail(200))) == len(data.features)


def test_a_single_class_is_refused() -> None:
    frame = training_frame(600).assign(barrier_label=1)
    config = fast_config(target="tb_label")
    data = dataset.prepare(frame, config)
    with pytest.raises(train.DatasetError, match="single barrier class"):
        train.fit_final(data, config)
