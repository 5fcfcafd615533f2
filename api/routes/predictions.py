"""GET /v1/predictions/latest and POST /v1/predict: the pinned models through ml.predict."""

from __future__ import annotations

import math
from typing import Any

from litestar import get as get_route
from litestar import post
from litestar.params import JSONBody

from api.errors import InvalidInput, error_responses
from api.live import Clock
from api.schemas import InstancePrediction, PredictIn, PredictionOut, PredictOut, Quantiles
from api.services import Horizon, ServicesDep, Symbol, check_symbol


def _is_feature_value(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    return isinstance(value, int | float) and math.isfinite(value)


@get_route(
    "/v1/predictions/latest",
    operation_id="getLatestPrediction",
    summary="The latest prediction",
    tags=["predictions"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_latest_prediction(
    services: ServicesDep, symbol: Symbol = "BTCUSDT", horizon: Horizon = None
) -> PredictionOut:
    """The forecast from the newest published 5m feature row: predicted log return over
    the horizon (default: the primary model's) and its p10/p50/p90, the implied prices,
    triple-barrier probabilities (when a tb_label model is pinned), the model version and
    stage, as_of (the bar) and available_at, and the feature row's age (on the exchange's
    clock when `btcfs live` runs here, GET /v1/live)."""
    now = Clock.read(services.settings).now
    with services.db.reader() as reader:
        check_symbol(reader, symbol)
        return services.predictor.latest(reader, symbol, horizon, now)


@post(
    "/v1/predict",
    operation_id="predict",
    summary="Score feature rows",
    tags=["predictions"],
    sync_to_thread=True,
    status_code=200,
    responses=error_responses(404, 413, 422, 503),
)
def predict(services: ServicesDep, data: JSONBody[PredictIn]) -> PredictOut:
    """Score feature rows with the pinned model of `horizon` trained on `symbol` (default:
    the primary model; a symbol no model was trained on is a 404). Each instance must carry
    exactly the model's features (GET /v1/model lists them): a missing, extra or mistyped
    feature is a 422 naming it (`extra.key`, e.g. `instances[0].ret_5m`)."""
    limit = services.settings.max_instances
    if len(data.instances) > limit:
        raise InvalidInput(f"at most {limit} instances per request", key="instances")
    with services.db.reader() as reader:
        pinned = services.predictor.pick(reader.generation, data.horizon, data.symbol)
    wanted = set(pinned.features)
    for index, instance in enumerate(data.instances):
        missing = [name for name in pinned.features if name not in instance]
        extra = sorted(name for name in instance if name not in wanted)
        if missing or extra:
            name = (missing or extra)[0]
            what = "missing" if missing else "unknown"
            raise InvalidInput(
                f"instances[{index}]: {what} feature {name!r}",
                key=f"instances[{index}].{name}",
                missing=missing,
                unexpected=extra,
            )
        for name, value in instance.items():
            if not _is_feature_value(value):
                raise InvalidInput(
                    f"instances[{index}].{name}: expected a number, a boolean or null, "
                    f"got {type(value).__name__} {value!r:.40}",
                    key=f"instances[{index}].{name}",
                )
    predictions = services.predictor.predict_rows(pinned, list(data.instances))
    out = []
    for forecast in predictions:
        q = forecast.quantiles or {}
        quantiles = (
            Quantiles(p10=q["q10"], p50=q["q50"], p90=q["q90"])
            if {"q10", "q50", "q90"} <= set(q)
            else None
        )
        out.append(
            InstancePrediction(
                predicted_return=float(forecast.expected_return or 0.0),
                signal=forecast.signal,
                quantiles=quantiles,
            )
        )
    return PredictOut(
        model=pinned.model,
        model_version=pinned.version,
        model_stage=pinned.stage,
        horizon=pinned.horizon or "",
        predictions=out,
    )


ROUTES = [get_latest_prediction, predict]
