"""GET /v1/features/latest and /v1/features: published feature rows (5m and 1h marts)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from api.errors import NotFound, error_responses
from api.live import Clock
from api.schemas import FeatureRow, FeaturesOut, LatestFeaturesOut
from api.services import (
    FEATURE_INTERVALS,
    FORMATS,
    Cursor,
    FeatureInterval,
    Format,
    Limit,
    RangeQuery,
    ServicesDep,
    Symbol,
    Timestamp,
    check_choice,
    check_symbol,
    clean,
    tabular,
    window_page,
)

_TABLES = {interval: f"features_{interval}" for interval in FEATURE_INTERVALS}
_KEYS = ("symbol", "bar_interval", "open_time", "available_at")


def _values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: clean(v) for k, v in row.items() if k not in _KEYS}


@get(
    "/v1/features/latest",
    operation_id="getLatestFeatures",
    summary="The newest feature row",
    tags=["features"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_latest_features(
    services: ServicesDep, symbol: Symbol = "BTCUSDT", interval: FeatureInterval = "5m"
) -> LatestFeaturesOut:
    """The newest complete feature row of a symbol (the `latest_features` mart): every
    feature past warm-up with every source present, and how old it is."""
    check_choice("interval", interval, FEATURE_INTERVALS)
    with services.db.reader() as reader:
        check_symbol(reader, symbol, "latest_features")
        # One query per publish: the newest row cannot change until the file does.
        key = ("latest_features", symbol, interval)
        rows = reader.generation.memo.get(key)
        if rows is None:
            rows = reader.rows(
                "select * from serve.latest_features where symbol = ? and bar_interval = ?",
                [symbol, interval],
            )
            reader.generation.memo[key] = rows
    if not rows:
        raise NotFound(f"no {interval} feature row for {symbol}", key="symbol")
    row = rows[0]
    # on the exchange's clock when `btcfs live` runs here (a replay may run ahead of the wall)
    age = (Clock.read(services.settings).now - row["available_at"]).total_seconds()
    return LatestFeaturesOut(
        symbol=symbol,
        interval=interval,
        open_time=row["open_time"],
        available_at=row["available_at"],
        age_seconds=age,
        values=_values(row),
    )


@get(
    "/v1/features",
    operation_id="getFeatures",
    summary="Feature rows in a time range",
    tags=["features"],
    sync_to_thread=True,
    responses=error_responses(404, 422, 503),
)
def get_features(
    services: ServicesDep,
    symbol: Symbol = "BTCUSDT",
    interval: FeatureInterval = "5m",
    start: Timestamp = None,
    end: Timestamp = None,
    limit: Limit = 500,
    format: Format = "json",
    cursor: Cursor = None,
) -> FeaturesOut | Response[Any]:  # OpenAPI: the JSON body is FeaturesOut
    """Feature rows of the published features_<interval> mart in a time range (RFC 3339; no
    offset means UTC): with `start`, the first `limit` rows from it, otherwise the newest
    `limit` rows up to `end`. `format=csv` or `format=arrow` (an Arrow IPC file) answer
    every column of the mart, typed, as a table. More rows than `limit`: the `next` link
    (`next_cursor` in JSON, a `Link` header in every format) asks for the next page, after
    these with `start`, before them without; the last page has none."""
    check_choice("interval", interval, FEATURE_INTERVALS)
    check_choice("format", format, FORMATS)
    query = RangeQuery("/v1/features", symbol, interval, start, end, limit, format, cursor)
    page = window_page(services, query, "*", _TABLES[interval])
    if format != "json":
        return tabular(page.rows, format, f"features_{interval}_{symbol}", page.headers())
    out = [
        FeatureRow(open_time=r["open_time"], available_at=r["available_at"], values=_values(r))
        for r in page.rows
    ]
    body = FeaturesOut(symbol=symbol, interval=interval, count=len(out), rows=out,
                       next_cursor=page.next_cursor, next=page.next)  # fmt: skip
    return Response(body, headers=page.headers())


ROUTES = [get_latest_features, get_features]
