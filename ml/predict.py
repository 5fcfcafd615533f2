"""Load a registered model and predict from feature rows: what the API imports.

    from ml.predict import load_production
    model = load_production("btcusdt_5m")       # the production version (RegistryError if none)
    model.predict(row)                           # row: a mapping with every feature column

A row is what features_5m / latest_features publish; extra keys are ignored, a missing
feature is a DatasetError. Loaded versions are cached by folder, so calling
`load_production` per request costs one small JSON read until production changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoost, CatBoostClassifier, CatBoostRegressor

from ml.errors import DatasetError, RegistryError
from ml.registry import MODEL_FILE, QUANTILE_FILE, Registry, VersionInfo, trained_symbols

DEFAULT_MODEL = "btcusdt_5m"
CLASSES = (-1, 0, 1)


@dataclass(frozen=True)
class Prediction:
    """One row's forecast. Regression fills expected_return (+ quantiles); MultiClass fills
    probabilities; `signal` is what the backtest trades (return, or P(up) - P(down))."""

    model: str
    version: str
    target: str
    horizon: str
    signal: float
    expected_return: float | None = None
    quantiles: dict[str, float] | None = None
    probabilities: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "horizon": self.horizon,
            "signal": self.signal,
            "expected_return": self.expected_return,
            "quantiles": self.quantiles,
            "probabilities": self.probabilities,
        }


class LoadedModel:
    """A registry version in memory: its CatBoost models and the feature order it needs."""

    def __init__(self, info: VersionInfo) -> None:
        self.info = info
        self.metadata = info.metadata
        self.features: list[str] = list(info.metadata["features"])
        # The feature sets of its inputs (empty for versions older than feature sets: no check).
        self.feature_sets: tuple[str, ...] = tuple(info.metadata.get("feature_sets") or ())
        self.symbols: tuple[str, ...] = tuple(trained_symbols(info.metadata))
        self.target: str = info.metadata["target"]
        self.horizon: str = info.metadata.get("horizon", "")
        point: CatBoost = CatBoostRegressor() if self.target == "fwd_ret" else CatBoostClassifier()
        point.load_model(str(info.path / MODEL_FILE))
        self.point = point
        self.quantile_model: CatBoostRegressor | None = None
        self.alphas: list[float] = list(info.metadata.get("quantile_alphas") or [])
        if (info.path / QUANTILE_FILE).is_file():
            self.quantile_model = CatBoostRegressor()
            self.quantile_model.load_model(str(info.path / QUANTILE_FILE))
        self.prior = np.asarray(info.metadata.get("class_prior") or [1 / 3] * 3, dtype=float)
        self.prior_mix = float(info.metadata.get("prior_mix") or 0.0)

    @property
    def name(self) -> str:
        return self.info.model

    @property
    def version(self) -> str:
        return self.info.version

    def predict_frame(self, x: pd.DataFrame) -> pd.DataFrame:
        """Forecasts for a frame of inputs (columns: the model's features)."""
        values = x[self.features].to_numpy(dtype=np.float64)
        return pd.DataFrame(self._predict_array(values), index=x.index)

    def _predict_array(self, values: np.ndarray) -> dict[str, np.ndarray]:
        # numpy in the trained column order: no DataFrame on the per-request path.
        out: dict[str, np.ndarray] = {}
        if self.target == "fwd_ret":
            out["expected_return"] = np.asarray(self.point.predict(values), dtype=float)
            out["signal"] = out["expected_return"]
            if self.quantile_model is not None:
                quantiles = np.atleast_2d(np.asarray(self.quantile_model.predict(values)))
                quantiles = np.sort(quantiles, axis=1)
                for index, alpha in enumerate(self.alphas):
                    out[f"q{round(alpha * 100):02d}"] = quantiles[:, index]
            return out
        assert isinstance(self.point, CatBoostClassifier)
        raw = self.point.predict_proba(values)
        proba = np.zeros((len(values), len(CLASSES)))
        for column, label in enumerate(self.point.classes_):
            proba[:, CLASSES.index(int(label))] = raw[:, column]
        proba = (1 - self.prior_mix) * proba + self.prior_mix * self.prior[None, :]
        for index, label in enumerate(CLASSES):
            out[f"p_{label}"] = proba[:, index]
        out["signal"] = out["p_1"] - out["p_-1"]
        return out

    def predict_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[Prediction]:
        records = list(rows)
        missing = sorted({name for row in records for name in self.features if name not in row})
        if missing:
            raise DatasetError(f"feature row lacks: {', '.join(missing)}")
        values = np.array(
            [[np.nan if row[name] is None else float(row[name]) for name in self.features]
             for row in records],
            dtype=np.float64,
        ).reshape(len(records), len(self.features))  # fmt: skip
        out = self._predict_array(values)
        return [self._prediction({k: v[i] for k, v in out.items()}) for i in range(len(records))]

    def predict(self, row: Mapping[str, Any]) -> Prediction:
        """The forecast for one feature row (a dict of column -> value)."""
        return self.predict_rows([row])[0]

    def _prediction(self, record: Mapping[str, Any]) -> Prediction:
        if self.target == "fwd_ret":
            quantiles = {k: float(v) for k, v in record.items() if k.startswith("q")}
            return Prediction(
                self.name,
                self.version,
                self.target,
                self.horizon,
                float(record["signal"]),
                expected_return=float(record["expected_return"]),
                quantiles=quantiles or None,
            )
        probabilities = {str(label): float(record[f"p_{label}"]) for label in CLASSES}
        return Prediction(
            self.name,
            self.version,
            self.target,
            self.horizon,
            float(record["signal"]),
            probabilities=probabilities,
        )


@lru_cache(maxsize=8)
def _load(path: str, created_at: str) -> LoadedModel:
    # created_at is part of the key so a re-created folder at the same path is reloaded.
    folder = Path(path)
    registry = Registry(folder.parent.parent)
    return LoadedModel(registry.get(folder.parent.name, folder.name))


def load_model(
    model: str = DEFAULT_MODEL, version: str | None = None, root: Path | None = None
) -> LoadedModel:
    """A version (default: production, else the newest candidate, else the newest)."""
    info = Registry(root).get(model, version)
    return _load(str(info.path), info.created_at)


def load_production(model: str = DEFAULT_MODEL, root: Path | None = None) -> LoadedModel:
    """The production version of `model`; RegistryError when none has been promoted."""
    registry = Registry(root)
    version = registry.production(model)
    if version is None:
        raise RegistryError(
            f"{model} has no production version: `btcfs models promote {model} <version>`"
        )
    info = registry.get(model, version)
    return _load(str(info.path), info.created_at)


def predict_row(
    row: Mapping[str, Any], model: str = DEFAULT_MODEL, root: Path | None = None
) -> Prediction:
    """One-call convenience: the production model's forecast for one feature row."""
    return load_production(model, root).predict(row)
