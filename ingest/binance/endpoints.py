"""Binance endpoints per lake dataset: path, parameters, page limit, request weight."""

from __future__ import annotations

from dataclasses import dataclass

from lake.schemas import DATASETS, Dataset

SPOT_BASE_URL = "https://data-api.binance.vision"
FUTURES_BASE_URL = "https://fapi.binance.com"
ARCHIVE_BASE_URL = "https://data.binance.vision"

# Per-IP request-weight budgets per minute (spot: rateLimits in exchangeInfo; USD-M: 2400).
SPOT_WEIGHT_BUDGET = 6000
FUTURES_WEIGHT_BUDGET = 2400

# Only the latest 30 days of openInterestHist exist on REST; older days come from the
# archive's daily `metrics` files.
OPEN_INTEREST_REST_DAYS = 30
OPEN_INTEREST_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


def futures_kline_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


@dataclass(frozen=True)
class Endpoint:
    dataset: Dataset
    path: str
    limit: int
    weight: int
    symbol_param: str = "symbol"
    extra: tuple[tuple[str, str], ...] = ()

    def params(
        self, symbol: str, interval: str | None, start_ms: int, end_ms: int
    ) -> dict[str, str]:
        params = {self.symbol_param: symbol, **dict(self.extra)}
        if interval is not None:
            params["period" if self.dataset.name == "open-interest" else "interval"] = interval
        params.update(startTime=str(start_ms), endTime=str(end_ms), limit=str(self.limit))
        return params


ENDPOINTS: dict[str, Endpoint] = {
    "spot-klines": Endpoint(DATASETS["spot-klines"], "/api/v3/klines", 1000, 2),
    "perp-klines": Endpoint(
        DATASETS["perp-klines"],
        "/fapi/v1/continuousKlines",
        1500,
        futures_kline_weight(1500),
        symbol_param="pair",
        extra=(("contractType", "PERPETUAL"),),
    ),
    "mark-klines": Endpoint(
        DATASETS["mark-klines"], "/fapi/v1/markPriceKlines", 1500, futures_kline_weight(1500)
    ),
    "premium-klines": Endpoint(
        DATASETS["premium-klines"], "/fapi/v1/premiumIndexKlines", 1500, futures_kline_weight(1500)
    ),
    # fundingRate shares a 500/5min/IP limit with fundingInfo; 1 per request of that budget.
    "funding": Endpoint(DATASETS["funding"], "/fapi/v1/fundingRate", 1000, 1),
    "open-interest": Endpoint(DATASETS["open-interest"], "/futures/data/openInterestHist", 500, 1),
}

# Archive layout: data/<market path>/<daily|monthly>/<kind>/SYMBOL/[INTERVAL/]SYMBOL-...zip
ARCHIVE_KINDS: dict[str, tuple[str, str]] = {
    "spot-klines": ("spot", "klines"),
    "perp-klines": ("futures/um", "klines"),
    "mark-klines": ("futures/um", "markPriceKlines"),
    "premium-klines": ("futures/um", "premiumIndexKlines"),
    "funding": ("futures/um", "fundingRate"),
    "open-interest": ("futures/um", "metrics"),
}
