"""GET /v1/bars: OHLCV bars of one symbol and interval from the published bars marts."""

from __future__ import annotations

from litestar import get

from api.errors import error_responses
from api.schemas import Bar, BarsOut
from api.services import (
    BAR_INTERVALS,
    BarInterval,
    Limit,
    ServicesDep,
    Symbol,
    Timestamp,
    check_choice,
    window_rows,
)

_TABLES = {interval: f"bars_{interval}" for interval in BAR_INTERVALS}
#: What a bar is in every answer (the stream's new bars too).
BAR_COLUMNS = """open_time, available_at, cast(open as double) as open,
    cast(high as double) as high, cast(low as double) as low, cast(close as double) as close,
    cast(volume as double) as volume, cast(quote_volume as double) as quote_volume,
    trade_count, cast(taker_buy_base_volume as double) as taker_buy_base_volume,
    imputed_minutes, is_imputed"""


@get(
    "/v1/bars",
    operation_id="getBars",
    summary="Bars of a symbol",
    tags=["bars"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_bars(
    services: ServicesDep,
    symbol: Symbol = "BTCUSDT",
    interval: BarInterval = "5m",
    start: Timestamp = None,
    end: Timestamp = None,
    limit: Limit = 500,
) -> BarsOut:
    """Bars keyed by open time (`available_at` = open + interval). Times are RFC 3339 (no
    offset means UTC). With `start`, the first `limit` bars from it; otherwise the newest
    `limit` bars up to `end`; always returned oldest first."""
    check_choice("interval", interval, BAR_INTERVALS)
    rows = window_rows(services, symbol, BAR_COLUMNS, _TABLES[interval], start, end, limit)
    bars = [Bar(**row) for row in rows]
    return BarsOut(symbol=symbol, interval=interval, count=len(bars), bars=bars)


ROUTES = [get_bars]
