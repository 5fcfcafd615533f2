"""GET /v1/forecast: a multi-step path with a widening interval band. POST /v1/forecast: the
same from a body, or (`retrain: true`, admin token) a job that retrains first."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter

from api.errors import InvalidInput, error_responses
from api.routes.admin import require_admin
from api.routes.jobs import (
    EXCEPTION_HANDLERS,
    MAX_JOB_BODY,
    JobsDep,
    checked_train,
    job_responses,
    start,
    strictly,
)
from api.schemas import ForecastIn, ForecastOut, JobOut, TrainParams
from api.services import Horizon, Services, ServicesDep, Symbol, check_symbol
from core.symbols import symbol_problem

MAX_STEPS = 96


@get(
    "/v1/forecast",
    operation_id="getForecast",
    summary="A forecast path",
    tags=["predictions"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_forecast(
    services: ServicesDep,
    symbol: Symbol = "BTCUSDT",
    horizon: Horizon = None,
    steps: Annotated[
        int, QueryParameter(ge=1, le=MAX_STEPS, description=f"Horizons ahead, 1-{MAX_STEPS}")
    ] = 12,
) -> ForecastOut:
    """The price path `steps` horizons ahead of the newest bar ("N steps ahead"), with a
    p10-p90 band. Step 1 is the model's forecast; later steps add no drift and widen the
    band by the square root of the step (`method` says so in the response)."""
    with services.db.reader() as reader:
        check_symbol(reader, symbol)
        return services.predictor.forecast(reader, symbol, horizon, steps)


def _forecast(services: Services, data: ForecastIn) -> ForecastOut:
    with services.db.reader() as reader:
        check_symbol(reader, data.symbol)
        return services.predictor.forecast(reader, data.symbol, data.horizon, data.steps)


@post(
    "/v1/forecast",
    operation_id="postForecast",
    summary="A forecast path, after a retrain when asked",
    tags=["predictions"],
    status_code=200,
    security=[{}, {"bearer": []}],
    request_max_body_size=MAX_JOB_BODY,
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    responses={
        202: ResponseSpec(
            data_container=JobOut,
            description="`retrain: true`: the job that trains, gates, promotes, publishes and "
            "predicts (its `result.forecast` when it succeeded)",
            generate_examples=False,
        ),
        **job_responses(401, 404, 409, 413, 422, 503),
    },
)
async def post_forecast(
    request: Request[Any, Any, Any],
    services: ServicesDep,
    jobs: JobsDep,
    data: JSONBody[ForecastIn],
) -> Response[ForecastOut]:
    """Without `retrain`: the forecast path at once from the served model (as GET). With
    `retrain: true` (admin token): 202 and a job that checks the last build's QA gates,
    trains a `fwd_ret` model at this horizon (`train` as in POST /v1/jobs), promotes it only
    if every promotion gate passes, publishes (pinning it) and predicts; the path is in the
    job's `result.forecast`. A failed gate leaves production and the served warehouse as
    they were."""
    data = await strictly(request, ForecastIn)
    if not data.retrain:
        # (async with an explicit thread: see api.routes.jobs.start_job)
        return Response(await anyio.to_thread.run_sync(_forecast, services, data))
    require_admin(request, request.route_handler)
    given = checked_train(data.train or TrainParams(), "train", jobs.data_dir)
    if given.symbol not in (None, data.symbol):
        raise InvalidInput(
            f"train.symbol {given.symbol} differs from the forecast's symbol {data.symbol}: "
            "a forecast retrains the model of its own symbol",
            key="train.symbol",
        )
    if (problem := symbol_problem(data.symbol)) is not None:
        raise InvalidInput(f"symbol {problem}", key="symbol")
    # A forecast needs a forward-return model of its symbol at the asked horizon, promoted
    # when it passes.
    trainer = msgspec.structs.replace(
        given,
        target="fwd_ret",
        horizon=data.horizon or given.horizon,
        symbol=data.symbol,
        promote=True,
    )
    job = msgspec.structs.replace(data, horizon=trainer.horizon, train=trainer)
    started = await anyio.to_thread.run_sync(start, jobs, "forecast", msgspec.to_builtins(job))
    return started  # type: ignore[return-value]


ROUTES = [get_forecast, post_forecast]
