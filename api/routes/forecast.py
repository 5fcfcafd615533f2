"""GET /v1/forecast: a multi-step path with a widening interval band."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import FromQuery, QueryParameter

from api.errors import error_responses
from api.schemas import ForecastOut
from api.services import Horizon, ServicesDep, check_symbol

MAX_STEPS = 96


@get(
    "/v1/forecast",
    operation_id="getForecast",
    tags=["predictions"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_forecast(
    services: ServicesDep,
    symbol: FromQuery[str] = "BTCUSDT",
    horizon: Horizon = None,
    steps: Annotated[int, QueryParameter(ge=1, le=MAX_STEPS)] = 12,
) -> ForecastOut:
    """The price path `steps` horizons ahead of the newest bar ("N steps ahead"), with a
    p10-p90 band. Step 1 is the model's forecast; later steps add no drift and widen the
    band by the square root of the step (`method` says so in the response)."""
    with services.db.reader() as reader:
        check_symbol(reader, symbol)
        return services.predictor.forecast(reader, symbol, horizon, steps)


ROUTES = [get_forecast]
