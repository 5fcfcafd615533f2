"""GET /v1/model and GET /v1/models: the pinned model's card and the registry's versions."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import QueryParameter

from api.errors import Unavailable, error_responses
from api.schemas import ModelOut, ModelOverview, ModelsOut
from api.services import Horizon, ServicesDep

_HEADLINE = ("rank_ic", "rank_ic_tstat", "rmse_skill_vs_zero", "directional_accuracy",
             "coverage", "log_loss_skill_vs_prior", "accuracy", "n")  # fmt: skip


def _metadata(services: ServicesDep, model: str, version: str) -> dict[str, Any]:
    from ml.errors import MLError
    from ml.registry import Registry

    try:
        return Registry(services.settings.registry_root).get(model, version).metadata
    except MLError as exc:
        raise Unavailable(f"model {model} {version} is not in the registry: {exc}") from exc


@get(
    "/v1/model",
    operation_id="getModel",
    summary="The serving model's card",
    tags=["models"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_model(
    services: ServicesDep,
    horizon: Horizon = None,
    symbol: Annotated[
        str | None,
        QueryParameter(
            description="Only a model trained on this symbol (default: the primary model)"
        ),
    ] = None,
) -> ModelOut:
    """The model serving `horizon` (default: the primary one) for `symbol` (default: any;
    models are per symbol, a symbol no model was trained on is a 404 naming the models):
    version, stage, symbols, features, training window, out-of-sample metrics, gates,
    backtest after costs, importance."""
    with services.db.reader() as reader:
        pinned = services.predictor.pick(reader.generation, horizon, symbol)
        symbols = services.predictor.symbols_of(pinned)
    meta = _metadata(services, pinned.model, pinned.version)
    return ModelOut(
        model=pinned.model,
        version=pinned.version,
        stage=pinned.stage,
        target=pinned.target,
        horizon=pinned.horizon,
        symbols=list(symbols),
        created_at=meta.get("created_at"),
        features=list(pinned.features),
        training_window=meta.get("training_window") or {},
        metrics=(meta.get("metrics") or {}).get("overall") or {},
        gates=meta.get("gates") or {},
        backtest=meta.get("backtest") or {},
        feature_importance={
            str(k): float(v) for k, v in (meta.get("feature_importance") or {}).items()
        },
    )


@get(
    "/v1/models",
    operation_id="listModels",
    summary="Every registered model version",
    tags=["models"],
    sync_to_thread=True,
)
def list_models(services: ServicesDep) -> ModelsOut:
    """Every registered version with its stage now, whether the published warehouse pins
    it, and its headline out-of-sample scores."""
    from ml.registry import Registry

    pinned: set[tuple[str, str]] = set()
    if services.db.file_exists():
        try:
            with services.db.reader() as reader:
                pinned = {(m.model, m.version) for m in reader.generation.info.models}
        except Unavailable:
            pinned = set()
    registry = Registry(services.settings.registry_root)
    out = []
    for name in registry.models():
        for info in registry.versions(name):
            overall = (info.metadata.get("metrics") or {}).get("overall") or {}
            out.append(
                ModelOverview(
                    model=info.model,
                    version=info.version,
                    stage=info.stage,
                    target=info.metadata.get("target"),
                    horizon=info.metadata.get("horizon"),
                    created_at=info.created_at or None,
                    pinned=(info.model, info.version) in pinned,
                    metrics={k: overall[k] for k in _HEADLINE if k in overall},
                )
            )
    return ModelsOut(models=out)


ROUTES = [get_model, list_models]
