"""ml.predict: what the API imports — load production, predict from a features row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml import dataset, predict, registry
from ml.errors import DatasetError, RegistryError
from tests.ml.mlframes import fast_config, isolate
from tests.ml.tests_ml_helpers import register_trained


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, parsed_target: Path) -> None:
    isolate(monkeypatch, tmp_path / "data", parsed=parsed_target)


def test_no_production_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no registered versions"):
        predict.load_model("btcusdt_5m", root=tmp_path)
    register_trained(tmp_path, fast_config(horizon="5m"))
    with pytest.raises(RegistryError, match="has no production version"):
        predict.load_production("btcusdt_5m", root=tmp_path)


def test_regression_prediction_matches_the_model(tmp_path: Path) -> None:
    info, data = register_trained(tmp_path, fast_config(horizon="5m"))
    registry.Registry(tmp_path).promote(info.model, info.version, force=True)
    model = predict.load_production("btcusdt_5m", root=tmp_path)
    assert model.version == "v0001" and model.features == data.features
    row = {**data.frame.iloc[-1].to_dict(), "not_a_feature": "ignored"}
    result = predict.predict_row(row, root=tmp_path)
    expected = model.point.predict(data.x.iloc[[-1]])[0]
    assert result.expected_return == pytest.approx(expected)
    assert result.signal == result.expected_return
    assert result.quantiles is not None and list(result.quantiles) == ["q10", "q50", "q90"]
    assert result.quantiles["q10"] <= result.quantiles["q50"] <= result.quantiles["q90"]
    assert result.as_dict()["horizon"] == "5m"
    batch = model.predict_rows([row, row])
    assert len(batch) == 2 and batch[0] == batch[1]
    with pytest.raises(DatasetError, match="feature row lacks: taker_imbalance"):
        model.predict({k: v for k, v in row.items() if k != "taker_imbalance"})
    # Cached: the same object until production changes.
    assert predict.load_production("btcusdt_5m", root=tmp_path) is model


def test_classifier_prediction(tmp_path: Path) -> None:
    info, data = register_trained(tmp_path, fast_config(target="tb_label"))
    model = predict.load_model(info.model, info.version, root=tmp_path)
    result = model.predict(data.frame.iloc[0].to_dict())
    assert result.expected_return is None and result.probabilities is not None
    assert set(result.probabilities) == {"-1", "0", "1"}
    assert sum(result.probabilities.values()) == pytest.approx(1)
    assert result.signal == pytest.approx(result.probabilities["1"] - result.probabilities["-1"])
    frame = model.predict_frame(data.x)
    assert np.allclose(frame[["p_-1", "p_0", "p_1"]].sum(axis=1), 1)


def test_frame_and_rows_agree(tmp_path: Path) -> None:
    info, data = register_trained(tmp_path, fast_config(horizon="5m"))
    model = predict.load_model(info.model, root=tmp_path)
    rows = data.frame.to_dict("records")
    frame = model.predict_frame(dataset.feature_row_frame(rows, model.features))
    assert np.allclose(frame["expected_return"], model.point.predict(data.x))
