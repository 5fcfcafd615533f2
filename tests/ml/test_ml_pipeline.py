"""Data and behaviour tests through the real pipeline: replay server -> loaders -> dbt -> trainer.

Behaviour: on a pure random walk the out-of-sample skill is indistinguishable from zero (if
it scores, something sees the future); on a market whose next 5m return loads on the
previous bar's taker imbalance, the model finds that effect and passes its gates.
Data: the mart's labels are the forward returns of its own closes, the features exclude
every label and key, and no feature is a near-copy of a label.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import dataset, train
from ml.config import TrainConfig, load_config
from ml.training import train_and_register
from tests.ml.mlframes import fast_config, isolate
from tests.ml.mlpipeline import BuiltWarehouse, synthetic_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def random_walk_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    return synthetic_warehouse(tmp_path_factory.mktemp("random_walk"), "random_walk")


@pytest.fixture(scope="module")
def planted_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    return synthetic_warehouse(tmp_path_factory.mktemp("planted"), "planted")


def shipped(**changes: object) -> TrainConfig:
    """The shipped recipe (config/train.yml) with a few keys changed."""
    return dataclasses.replace(load_config(REPO / "config" / "train.yml"), **changes)


def frame_of(warehouse: BuiltWarehouse) -> pd.DataFrame:
    return dataset.read_duckdb(warehouse.database, "training_set_5m", "BTCUSDT").to_pandas()


# -------------------------------------------------------------------------------- data


def test_mart_has_every_documented_feature_and_label(planted_warehouse: BuiltWarehouse) -> None:
    frame = frame_of(planted_warehouse)
    assert len(frame) > 7000
    features = dataset.feature_columns(frame.columns)
    documented = dataset.documented_columns("features_5m")
    assert set(features) <= set(documented)
    labels = set(dataset.documented_columns("labels_5m"))
    assert {"fwd_ret_5m", "fwd_ret_1h", "fwd_ret_4h", "fwd_ret_1d", "barrier_label", "t1"} <= labels
    assert labels - {"symbol", "open_time", "available_at", "close"} <= set(frame.columns)
    assert not set(features) & labels


def test_labels_are_the_forward_returns_of_the_marts_own_closes(
    planted_warehouse: BuiltWarehouse,
) -> None:
    frame = frame_of(planted_warehouse).set_index("open_time")
    close = frame["close"]
    for column, minutes in (("fwd_ret_5m", 5), ("fwd_ret_1h", 60), ("fwd_ret_4h", 240)):
        later = close.reindex(close.index + pd.Timedelta(minutes=minutes)).to_numpy()
        expected = np.log(later / close.to_numpy())
        known = np.isfinite(expected) & frame[column].notna().to_numpy()
        assert known.sum() > 1000
        np.testing.assert_allclose(frame[column].to_numpy()[known], expected[known], atol=1e-12)
    assert (frame["available_at"] == frame.index + pd.Timedelta(minutes=5)).all()
    assert (frame["t1"] > frame["available_at"]).all()


def test_no_feature_is_a_near_copy_of_a_label(planted_warehouse: BuiltWarehouse) -> None:
    data = dataset.prepare(frame_of(planted_warehouse), TrainConfig(horizon="5m"))
    for label in ("fwd_ret_5m", "fwd_ret_1h", "fwd_ret_4h"):
        correlations = data.x.corrwith(data.frame[label]).abs()
        assert correlations.max() < 0.4, correlations.sort_values().tail(3)


# --------------------------------------------------------------------------- behaviour


def test_random_walk_has_no_out_of_sample_skill(random_walk_warehouse: BuiltWarehouse) -> None:
    for horizon in ("5m", "1h"):
        config = shipped(horizon=horizon)
        data = dataset.load(config, random_walk_warehouse.database)
        result = train.cross_validate(data, config)
        overall = result.overall
        # A leak detector: any real skill here means a feature sees the future.
        assert abs(overall["rank_ic_tstat"]) < 3, overall
        assert overall["rmse_skill_vs_zero"] < 0.005, overall
        assert overall["dm_vs_zero"] > -3, overall
        assert not result.gates.passed
    classified = shipped(target="tb_label")
    data = dataset.load(classified, random_walk_warehouse.database)
    result = train.cross_validate(data, classified)
    assert result.overall["log_loss_skill_vs_prior"] < 0.005
    assert not result.gates.passed


def test_planted_effect_is_found_and_passes_the_gates(
    planted_warehouse: BuiltWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fingerprint reads the lake and dbt's run results the build left.
    isolate(monkeypatch, planted_warehouse.root, planted_warehouse.target)
    config = shipped(horizon="5m")
    outcome = train_and_register(
        config,
        warehouse=planted_warehouse.database,
        registry_root=tmp_path / "registry",
        reports_dir=tmp_path / "reports",
        promote=True,
    )
    overall = outcome.cv.overall
    assert overall["rank_ic"] > 0.06 and overall["rank_ic_tstat"] > 4, overall
    assert overall["rmse_skill_vs_zero"] > 0 and overall["dm_vs_zero"] < -2, overall
    assert outcome.cv.gates.passed, outcome.cv.gates.failures()
    assert outcome.promoted and outcome.info.stage == "production"
    importance = outcome.info.metadata["feature_importance"]
    assert max(importance, key=importance.__getitem__) == "taker_imbalance", importance
    fingerprint = outcome.info.metadata["data_fingerprint"]
    assert fingerprint["lake"]["partitions"] > 100  # 50 days x 4 datasets
    assert fingerprint["dbt"]["invocation_id"] and fingerprint["dbt"]["command"] == "build"


def test_small_models_also_see_the_planted_effect(planted_warehouse: BuiltWarehouse) -> None:
    """The same effect through the code tests' small config: the plumbing is not the recipe."""
    config = fast_config(horizon="5m")
    data = dataset.load(config, planted_warehouse.database)
    assert train.cross_validate(data, config).overall["rank_ic"] > 0.05
