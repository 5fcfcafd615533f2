"""The training pipeline: read the mart, cross-validate, backtest, fit, register, report.

`train_and_register` is what `btcfs train` and the jobs worker's train step run; the version's
metadata (what a registered model says about itself) is built here, in one place.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import DataPaths
from ml.config import TrainConfig

if TYPE_CHECKING:  # the heavy stack (CatBoost, pandas) loads only when training runs
    import pandas as pd

    from ml import backtest as bt
    from ml import dataset, registry, tracking, train


def _data_dir() -> Path:
    return DataPaths.from_env().root


@dataclass
class TrainOutcome:
    info: registry.VersionInfo
    cv: train.CVResult
    backtest: bt.BacktestResult
    report_path: Path | None
    promoted: bool
    mlflow: tracking.Tracked


def signal_threshold(config: TrainConfig) -> float:
    """The backtest's entry threshold in the signal's own unit (return or probability edge)."""
    if config.target == "fwd_ret":
        return config.backtest.entry_threshold
    return config.backtest.entry_edge


def run_backtest(
    predictions: pd.DataFrame,
    config: TrainConfig,
    horizon_bars: int,
    funding: pd.Series | None,
) -> bt.BacktestResult:
    from ml import backtest as bt

    frame = predictions.rename(columns={"pred": "signal"})
    return bt.run(frame, "signal", signal_threshold(config), config.backtest, horizon_bars, funding)


def build_metadata(
    config: TrainConfig,
    data: dataset.TrainingSet,
    result: train.CVResult,
    backtest: bt.BacktestResult,
    importance: pd.Series,
    models: train.TrainedModels,
    warehouse: Path,
) -> dict[str, Any]:
    """Everything a version must say about itself (JSON-safe)."""
    import catboost

    from ml import registry, train
    from warehouse import catalog

    gates = result.gates.as_dict()
    gates["failures"] = result.gates.failures()

    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stage": "candidate" if result.gates.passed else "rejected",
        "symbol": config.symbol,
        "target": config.target,
        "horizon": config.horizon if config.target == "fwd_ret" else None,
        "label": data.label,
        "features": list(data.features),
        # the choice (None: every set complete in the training window) and what it gave
        "feature_set": config.feature_set or "auto",
        "feature_sets": list(data.feature_sets),
        "symbols": [config.symbol],
        "dropped_features": data.dropped,
        "quantile_alphas": list(config.quantiles.alphas) if config.target == "fwd_ret" else [],
        "class_prior": models.prior.tolist() if models.prior is not None else None,
        "classes": list(train.CLASSES) if config.target == "tb_label" else None,
        "prior_mix": config.classifier.prior_mix if config.target == "tb_label" else None,
        "config": config.as_dict(),
        "training_window": {**data.window(), "rows": len(data.frame)},
        "cv": {
            "scheme": "purged walk-forward (expanding)",
            "folds": len(result.folds),
            "embargo": str(result.embargo),
        },
        "metrics": {
            "overall": _json_safe(result.overall),
            "folds": [_json_safe(asdict(f)) for f in result.folds],
        },
        "gates": gates,
        "calibration": _json_safe(result.calibration),
        "feature_importance": {k: float(v) for k, v in importance.items()},
        "backtest": _json_safe(backtest.as_dict()),
        "backtest_costs": {
            **asdict(config.backtest),
            "entry_threshold": signal_threshold(config),
        },
        "data_fingerprint": {
            "lake": registry.lake_fingerprint(_data_dir() / "lake"),
            "dbt": registry.dbt_fingerprint(registry.dbt_target_path(catalog.PROJECT_ROOT)),
            "warehouse": str(warehouse),
        },
        "git": registry.git_revision(catalog.PROJECT_ROOT),
        "software": {
            "catboost": catboost.__version__,
            "python": sys.version.split()[0],
        },
    }


def _json_safe(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def train_and_register(
    config: TrainConfig,
    *,
    warehouse: Path | None = None,
    registry_root: Path | None = None,
    reports_dir: Path | None = None,
    promote: bool = False,
) -> TrainOutcome:
    """Read the mart, cross-validate, backtest, fit the final model, register, report."""
    from ml import dataset, registry, report, tracking, train

    store = registry.Registry(registry_root)
    # Before minutes of training: a name another symbol's versions hold is refused now.
    store.check_symbols(config.model_name, [config.symbol])
    warehouse_path = warehouse or dataset.warehouse_path()
    data = dataset.load(config, warehouse_path)
    result = train.cross_validate(data, config)
    funding = dataset.read_funding(config, warehouse_path)
    backtest = run_backtest(result.predictions, config, data.horizon_bars, funding)
    models = train.fit_final(data, config)
    importance = train.shap_importance(models.point, data.x.tail(config.report.shap_rows))
    metadata = build_metadata(config, data, result, backtest, importance, models, warehouse_path)

    def write_files(folder: Path) -> None:
        models.point.save_model(str(folder / registry.MODEL_FILE))
        if models.quantiles is not None:
            models.quantiles.save_model(str(folder / registry.QUANTILE_FILE))
        result.predictions.to_parquet(folder / registry.PREDICTIONS_FILE, index=False)

    info = store.register(config.model_name, metadata, write_files)
    report_path = None
    if config.report.enabled:
        document = report.render(info.metadata, result.calibration, importance, backtest)
        folder = reports_dir or _data_dir() / "reports"
        report_path = report.write(folder / f"train-{info.model}-{info.version}.html", document)
    # Logged before a promote, so the promote finds the MLflow version to point its alias at.
    logged = tracking.log_version(info, report_path)
    promoted = False
    if promote and result.gates.passed:
        info = store.promote(config.model_name, info.version)
        promoted = True
    return TrainOutcome(info, result, backtest, report_path, promoted, logged)
