"""Trainer benchmarks: a year of 5m rows through the whole training recipe, 2 threads.

Figures: purged walk-forward CV (5 folds, point + MultiQuantile models), the final fit, SHAP
importance, and prediction latency per row from a loaded registry version (one row at a time,
as the API calls it, and in a batch). The table has every feature features_5m documents
(random values: timing does not depend on skill).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench._report import quick, report
from ml import dataset, predict, registry, train
from ml.config import TrainConfig

ROWS = 365 * 288  # one year of 5-minute bars
TARGET_SECONDS = 120.0


def year_of_rows(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    open_time = pd.date_range("2024-01-01", periods=rows, freq="5min", tz="UTC")
    frame = pd.DataFrame({"symbol": "BTCUSDT", "open_time": open_time})
    frame["available_at"] = frame["open_time"] + pd.Timedelta(minutes=5)
    for name in dataset.documented_columns("features_5m"):
        if name in dataset.KEY_COLUMNS:
            continue
        if name.startswith("is_"):
            frame[name] = rng.random(rows) < 0.01
        else:
            frame[name] = rng.normal(size=rows)
    log_close = np.log(60_000.0) + np.cumsum(rng.normal(0, 0.0015, rows))
    frame["close"] = np.exp(log_close)
    for column, bars in {"fwd_ret_5m": 1, "fwd_ret_1h": 12, "fwd_ret_4h": 48}.items():
        ahead = np.full(rows, np.nan)
        ahead[:-bars] = log_close[bars:] - log_close[:-bars]
        frame[column] = ahead
    return frame


def main() -> None:
    config = TrainConfig()  # the shipped recipe: 5 folds, 2 threads, horizon 1h
    assert config.cv.n_folds == 5 and config.thread_count == 2
    frame = year_of_rows(30 * 288 if quick() else ROWS)
    began = time.perf_counter()
    data = dataset.prepare(frame, config)
    prepared = time.perf_counter()
    result = train.cross_validate(data, config)
    validated = time.perf_counter()
    models = train.fit_final(data, config)
    fitted = time.perf_counter()
    importance = train.shap_importance(models.point, data.x.tail(config.report.shap_rows))
    done = time.perf_counter()
    print(f"rows {len(data.frame):,}, features {len(data.features)}, folds {len(result.folds)}")
    report("prepare (checks, persistence baseline)", prepared - began, "s")
    report("walk-forward CV, 5 folds (point + quantiles)", validated - prepared, "s")
    report("final fit (point + quantiles)", fitted - validated, "s")
    report(f"SHAP importance ({len(importance)} features)", done - fitted, "s")
    span = "30 days" if quick() else "one year"
    report(f"training total ({span} of 5m rows)", done - began, "s", TARGET_SECONDS, "below")

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)

        def write(target: Path) -> None:
            models.point.save_model(str(target / registry.MODEL_FILE))
            assert models.quantiles is not None
            models.quantiles.save_model(str(target / registry.QUANTILE_FILE))

        metadata = {
            "target": "fwd_ret",
            "horizon": config.horizon,
            "features": data.features,
            "quantile_alphas": list(config.quantiles.alphas),
            "gates": {"passed": True},
        }
        info = registry.Registry(root).register("bench", metadata, write)
        started = time.perf_counter()
        loaded = predict.load_model("bench", info.version, root=root)
        report("load a registry version", (time.perf_counter() - started) * 1e3, "ms")
        rows = data.frame.tail(500).to_dict("records")
        loaded.predict(rows[0])  # warm-up
        latencies = []
        for row in rows:
            started = time.perf_counter()
            loaded.predict(row)
            latencies.append((time.perf_counter() - started) * 1e6)
        latencies.sort()
        report("predict one row (point + quantiles), median", statistics.median(latencies), "µs")
        report("predict one row, p99", latencies[int(0.99 * len(latencies)) - 1], "µs")
        batch = data.x.tail(10_000)
        started = time.perf_counter()
        loaded.predict_frame(batch)
        per_row = (time.perf_counter() - started) / len(batch) * 1e6
        report("predict in a batch of 10,000, per row", per_row, "µs")


if __name__ == "__main__":
    main()
