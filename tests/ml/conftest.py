"""Fixtures for the trainer's tests: fast configs, in-memory tables, and real dbt warehouses."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlpipeline as pipeline

from ml.config import TrainConfig, from_mapping


def fast_config(**overrides: object) -> TrainConfig:
    """The trainer's recipe with few iterations: the code tests check plumbing, not skill."""
    payload: dict[str, object] = {
        "regressor": {"iterations": 40, "depth": 3},
        "quantiles": {"iterations": 40, "depth": 3},
        "classifier": {"iterations": 40, "depth": 3},
        "cv": {"n_folds": 3, "embargo": "1h", "min_train_rows": 100},
        "report": {"shap_rows": 300},
    }
    payload.update(overrides)
    return from_mapping(payload)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing reaches the real data/ folder or an MLflow server from a test."""
    monkeypatch.setenv("BTCFS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    yield


@pytest.fixture(scope="session")
def random_walk_warehouse(tmp_path_factory: pytest.TempPathFactory) -> pipeline.BuiltWarehouse:
    return pipeline.synthetic_warehouse(tmp_path_factory.mktemp("random_walk"), "random_walk")


@pytest.fixture(scope="session")
def planted_warehouse(tmp_path_factory: pytest.TempPathFactory) -> pipeline.BuiltWarehouse:
    return pipeline.synthetic_warehouse(tmp_path_factory.mktemp("planted"), "planted")


@pytest.fixture(scope="session")
def real_warehouse(tmp_path_factory: pytest.TempPathFactory) -> pipeline.BuiltWarehouse:
    if not (pipeline.SHARED_DATA / "binance").is_dir():
        pytest.skip(pipeline.REAL_DATA_REASON)
    return pipeline.real_warehouse(tmp_path_factory.mktemp("real"))
