"""Train a small model and put it in a registry (for predict and report tests)."""

from __future__ import annotations

from pathlib import Path

from ml import dataset, registry, train
from ml.config import TrainConfig
from tests.ml.mlframes import training_frame


def register_trained(
    root: Path, config: TrainConfig, rows: int = 1200
) -> tuple[registry.VersionInfo, dataset.TrainingSet]:
    data = dataset.prepare(training_frame(rows, effect=0.5, seed=3), config)
    models = train.fit_final(data, config)
    metadata = {
        "target": config.target,
        "horizon": config.horizon if config.target == "fwd_ret" else None,
        "features": data.features,
        "quantile_alphas": list(config.quantiles.alphas) if config.target == "fwd_ret" else [],
        "class_prior": models.prior.tolist() if models.prior is not None else None,
        "prior_mix": config.classifier.prior_mix,
        "gates": {"passed": False, "failures": []},
        "training_window": {**data.window(), "rows": len(data.frame)},
    }

    def write(folder: Path) -> None:
        models.point.save_model(str(folder / registry.MODEL_FILE))
        if models.quantiles is not None:
            models.quantiles.save_model(str(folder / registry.QUANTILE_FILE))

    return registry.Registry(root).register(config.model_name, metadata, write), data
