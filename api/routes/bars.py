"""GET /v1/bars: OHLCV bars of one symbol and interval from the published bars marts."""

from __future__ import annotations

from datetime import datetime

from litestar import get
from litestar.params import FromQuery

from api.errors import error_responses
from api.schemas import Bar, BarsOut
from api.services import (
    BAR_INTERVALS,
    BarInterval,
    Limit,
    ServicesDep,
    Timestamp,
    check_choice,
    check_range,
    check_symbol,
    parse_time,
)

_TABLES = {interval: f"bars_{interval}" for interval in BAR_INTERVALS}
_SELECT = """
    select open_time, available_at, cast(open as double) as open, cast(high as double) as high,
        cast(low as double) as low, cast(close as double) as close,
        cast(volume as double) as volume, cast(quote_volume as double) as quote_volume,
        trade_count, cast(taker_buy_base_volume as double) as taker_buy_base_volume,
        imputed_minutes, is_imputed
    from serve.{table}
    where symbol = ? and open_time >= ? and open_time <= ?
    order by open_time {direction}
    limit ?"""
EARLIEST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("9999-12-31T00:00:00+00:00")


def window_query(template: str, table: str, start: datetime | None) -> str:
    """With `start`: the first `limit` rows from it; without: the newest `limit` rows."""
    return template.format(table=table, direction="asc" if start else "desc")


@get(
    "/v1/bars",
    operation_id="getBars",
    tags=["bars"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_bars(
    services: ServicesDep,
    symbol: FromQuery[str] = "BTCUSDT",
    interval: BarInterval = "5m",
    start: Timestamp = None,
    end: Timestamp = None,
    limit: Limit = 500,
) -> BarsOut:
    """Bars keyed by open time (`available_at` = open + interval). Times are RFC 3339 (no
    offset means UTC). With `start`, the first `limit` bars from it; otherwise the newest
    `limit` bars up to `end`; always returned oldest first."""
    check_choice("interval", interval, BAR_INTERVALS)
    since, until = parse_time("start", start), parse_time("end", end)
    check_range(since, until)
    with services.db.reader() as reader:
        check_symbol(reader, symbol)
        rows = reader.rows(
            window_query(_SELECT, _TABLES[interval], since),
            [symbol, since or EARLIEST, until or LATEST, limit],
        )
    if not since:
        rows.reverse()
    bars = [Bar(**row) for row in rows]
    return BarsOut(symbol=symbol, interval=interval, count=len(bars), bars=bars)


ROUTES = [get_bars]
