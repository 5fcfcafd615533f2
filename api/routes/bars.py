"""GET /v1/bars: OHLCV bars of one symbol and interval from the published bars marts."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from api.errors import error_responses
from api.schemas import Bar, BarsOut
from api.services import (
    BAR_INTERVALS,
    FORMATS,
    BarInterval,
    Cursor,
    Format,
    Limit,
    RangeQuery,
    ServicesDep,
    Symbol,
    Timestamp,
    check_choice,
    tabular,
    window_page,
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
    format: Format = "json",
    cursor: Cursor = None,
) -> BarsOut | Response[Any]:  # OpenAPI: the JSON body is BarsOut
    """Bars keyed by open time (`available_at` = open + interval), from the published
    bars_<interval> mart. Times are RFC 3339 (no offset means UTC). With `start`, the first
    `limit` bars from it; otherwise the newest `limit` bars up to `end`; always oldest
    first. `format=csv` or `format=arrow` (an Arrow IPC file) answer the same rows as a
    table. More rows than `limit`: the `next` link (`next_cursor` in JSON, a `Link` header
    in every format) asks for the next page, after these with `start`, before them
    without; the last page has none."""
    check_choice("interval", interval, BAR_INTERVALS)
    check_choice("format", format, FORMATS)
    query = RangeQuery("/v1/bars", symbol, interval, start, end, limit, format, cursor)
    page = window_page(services, query, BAR_COLUMNS, _TABLES[interval])
    if format != "json":
        return tabular(page.rows, format, f"bars_{interval}_{symbol}", page.headers())
    bars = [Bar(**row) for row in page.rows]
    body = BarsOut(symbol=symbol, interval=interval, count=len(bars), bars=bars,
                   next_cursor=page.next_cursor, next=page.next)  # fmt: skip
    return Response(body, headers=page.headers())


ROUTES = [get_bars]
