"""GET /v1/features/latest and /v1/features: published feature rows (5m and 1h marts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import get

from api.errors import NotFound, error_responses
from api.schemas import FeatureRow, FeaturesOut, LatestFeaturesOut
from api.services import (
    FEATURE_INTERVALS,
    FeatureInterval,
    Limit,
    ServicesDep,
    Symbol,
    Timestamp,
    check_choice,
    check_symbol,
    clean,
    window_rows,
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
    age = (datetime.now(UTC) - row["available_at"]).total_seconds()
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
) -> FeaturesOut:
    """Feature rows in a time range (RFC 3339; no offset means UTC): with `start`, the
    first `limit` rows from it, otherwise the newest `limit` rows up to `end`."""
    check_choice("interval", interval, FEATURE_INTERVALS)
    rows = window_rows(services, symbol, "*", _TABLES[interval], start, end, limit)
    out = [
        FeatureRow(open_time=r["open_time"], available_at=r["available_at"], values=_values(r))
        for r in rows
    ]
    return FeaturesOut(symbol=symbol, interval=interval, count=len(out), rows=out)


ROUTES = [get_latest_features, get_features]
