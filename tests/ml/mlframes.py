"""Helpers for the trainer's tests: small tables shaped like training_set_5m, a fast config,
and environment isolation."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.config import TrainConfig, from_mapping
from ml.dataset import KEY_COLUMNS, documented_columns

LABEL_BARS = {"fwd_ret_5m": 1, "fwd_ret_1h": 12, "fwd_ret_4h": 48, "fwd_ret_1d": 288}


def training_frame(
    rows: int = 3000,
    *,
    effect: float = 0.0,
    seed: int = 0,
    start: str = "2025-01-01",
    symbol: str = "BTCUSDT",
) -> pd.DataFrame:
    """Every column features_5m documents, plus labels; `effect` plants next-bar skill.

    The 5m log return of bar t+1 is `effect * sd * taker_imbalance_t + noise`; the other
    features are noise. Forward returns and barrier labels are computed from the path.
    """
    rng = np.random.default_rng(seed)
    wanted, rows = rows, rows + 288  # a day more, so every forward label is known
    open_time = pd.date_range(start, periods=rows, freq="5min", tz="UTC")
    frame = pd.DataFrame({"symbol": symbol, "open_time": open_time})
    frame["available_at"] = frame["open_time"] + pd.Timedelta(minutes=5)
    for name in documented_columns("features_5m"):
        if name in KEY_COLUMNS or name == "close":
            continue
        if name.startswith(("is_", "has_")):
            frame[name] = rng.random(rows) < 0.02
        elif name == "liq60_z":
            frame[name] = np.nan
        else:
            frame[name] = rng.normal(size=rows)
    imbalance = np.clip(rng.normal(0, 0.15, rows), -1, 1)
    frame["taker_imbalance"] = imbalance
    sd = 0.0015
    returns = rng.normal(0, sd, rows)
    returns[1:] += effect * sd * imbalance[:-1] / 0.15
    log_close = np.log(60_000.0) + np.cumsum(returns)
    frame["close"] = np.exp(log_close)
    frame["ret_5m"] = np.concatenate([[0.0], np.diff(log_close)])
    for column, bars in LABEL_BARS.items():
        ahead = np.full(rows, np.nan)
        ahead[: rows - bars] = log_close[bars:] - log_close[: rows - bars]
        frame[column] = ahead
    up = frame["fwd_ret_1h"] > 0.001
    down = frame["fwd_ret_1h"] < -0.001
    frame["barrier_label"] = np.where(up, 1, np.where(down, -1, 0)).astype("int32")
    frame["t1"] = frame["available_at"] + pd.to_timedelta(rng.integers(1, 37, rows) * 5, "min")
    return frame.iloc[:wanted].reset_index(drop=True)


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


def isolate(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    target: Path | None = None,
    *,
    parsed: Path | None = None,
) -> None:
    """Point BTCFS_DATA_DIR (and dbt's target) at a test folder; no MLflow server. With
    `parsed` (the session's `parsed_target`), the test's own target folder starts as a copy of
    it, so reading the feature list costs no `dbt parse` of its own (~10 s a test)."""
    monkeypatch.setenv("BTCFS_DATA_DIR", str(data_dir))
    target = target or data_dir / "target"
    if parsed is not None:
        shutil.copytree(parsed, target, ignore=shutil.ignore_patterns("partial_parse.msgpack"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def write_mart(path: Path, frame: pd.DataFrame) -> None:
    """A DuckDB file whose training_set_5m is `frame` (a warehouse without dbt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.register("frame", frame)
    con.execute("create or replace table training_set_5m as select * from frame")
    con.close()
