"""CoinAPI on the replay server: `/v1/ohlcv/{symbol_id}/history` and `/v1/metrics/symbol/history`.

Times are ISO 8601 with 7 fractional digits (`2024-01-01T00:00:00.0000000Z`), numbers are JSON
numbers, errors are `{"message": ...}` with 400 (bad parameter), 401 (no key), 429 (rate
limit), 550 (no data for that symbol). The key is the `X-CoinAPI-Key` header (or `apikey`).

OHLCV rows are the synthetic market's Binance bars (spot for BINANCE_SPOT_*, the perpetual
for BINANCEFTS_PERP_*); the period holding "now" is served still open, as the live API does.
DERIVATIVES_FUNDING_RATE_CURRENT is served per period (first/last/min/max of the settled
funding rate in force, as a fraction), only for periods that are over.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from replay.clock import US_PER_S, datetime_to_us
from replay.fixed import ONE
from replay.query import window
from replay.rest import Reply
from replay.vendors import ReplayContext, VendorRequest, VendorRoutes, json_reply
from replay.vendors._common import noise, rate_in_force

KEY_HEADER = "x-coinapi-key"
PERIODS = {
    "1MIN": "1m", "5MIN": "5m", "15MIN": "15m", "30MIN": "30m",
    "1HRS": "1h", "2HRS": "2h", "4HRS": "4h", "8HRS": "8h", "12HRS": "12h", "1DAY": "1d",
}  # fmt: skip
PERIOD_SECONDS = {
    "1MIN": 60, "5MIN": 300, "15MIN": 900, "30MIN": 1800,
    "1HRS": 3600, "2HRS": 7200, "4HRS": 14400, "8HRS": 28800, "12HRS": 43200, "1DAY": 86400,
}  # fmt: skip
FUNDING_METRIC = "DERIVATIVES_FUNDING_RATE_CURRENT"
DEFAULT_LIMIT, MAX_LIMIT = 100, 100_000
_SYMBOL_ID = re.compile(
    r"^BINANCE(?P<venue>FTS_PERP|_SPOT)_(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)$"
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?)?Z?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_DATA = "You requested specific single item that we don't have at this moment."


class CoinApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def iso7(time_us: int) -> str:
    """µs since the epoch -> CoinAPI's `yyyy-MM-ddTHH:mm:ss.fffffffZ` (7th digit always 0)."""
    moment = _EPOCH + timedelta(microseconds=int(time_us))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class CoinApiRoutes(VendorRoutes):
    name = "coinapi"
    prefixes = ("/v1/ohlcv/", "/v1/metrics/")

    def __init__(self, ctx: ReplayContext) -> None:
        super().__init__(ctx)

    def handle(self, request: VendorRequest) -> Reply:
        key = request.headers.get(KEY_HEADER, "").strip() or request.params.get("apikey", "")
        if not key:
            return _error(401, "Unauthorized - You need to provide an API key.")
        try:
            if request.path.startswith("/v1/ohlcv/") and request.path.endswith("/history"):
                symbol_id = request.path[len("/v1/ohlcv/") : -len("/history")]
                return json_reply(200, self.ohlcv(symbol_id, request))
            if request.path == "/v1/metrics/symbol/history":
                return json_reply(200, self.metric(request))
        except CoinApiError as error:
            return _error(error.status, error.message)
        return _error(404, "Not found.")

    def fault_reply(self, status: int) -> Reply:
        if status == 429:
            return _error(429, "Too many requests - You have exceeded your API key rate limits.")
        if status == 405:
            return _error(405, "Method not allowed.")
        return _error(status, "Internal server error.")

    def vendor_fault(self, request: VendorRequest) -> Reply:
        return _error(550, NO_DATA)

    # -- parameters -----------------------------------------------------------------------

    def _symbol(self, symbol_id: str) -> tuple[str, str]:
        """symbol_id -> (kind, Binance symbol), 550 when the market does not have it."""
        match = _SYMBOL_ID.match(symbol_id)
        if match is None:
            raise CoinApiError(550, NO_DATA)
        symbol = f"{match['base']}{match['quote']}"
        if symbol not in self.ctx.market.symbols:
            raise CoinApiError(550, NO_DATA)
        return ("perp" if match["venue"] == "FTS_PERP" else "spot"), symbol

    @staticmethod
    def _period(params: Any) -> str:
        period = params.get("period_id", "")
        if period not in PERIODS:
            raise CoinApiError(400, f"Invalid period_id: '{period[:20]}'.")
        return str(period)

    @staticmethod
    def _time(params: Any, name: str, *, required: bool) -> int | None:
        text = params.get(name)
        if text is None:
            if required:
                raise CoinApiError(400, f"Missing required parameter: '{name}'.")
            return None
        if not _ISO.match(text):
            raise CoinApiError(400, f"Invalid {name}: expected ISO 8601.")
        digits = text.rstrip("Z")
        if "." in digits:
            whole, fraction = digits.split(".")
            digits = f"{whole}.{fraction[:6].ljust(6, '0')}"
        try:
            moment = datetime.fromisoformat(digits).replace(tzinfo=UTC)
        except ValueError:
            raise CoinApiError(400, f"Invalid {name}: expected ISO 8601.") from None
        return datetime_to_us(moment)

    @staticmethod
    def _limit(params: Any) -> int:
        text = params.get("limit")
        if text is None:
            return DEFAULT_LIMIT
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
            raise CoinApiError(400, f"Invalid limit: must be between 1 and {MAX_LIMIT}.")
        return int(text)

    # -- endpoints ------------------------------------------------------------------------

    def ohlcv(self, symbol_id: str, request: VendorRequest) -> list[dict[str, Any]]:
        kind, symbol = self._symbol(symbol_id)
        params = request.params
        period = self._period(params)
        start = self._time(params, "time_start", required=True)
        end = self._time(params, "time_end", required=False)
        limit = self._limit(params)
        assert start is not None
        bars = self.ctx.view.klines(
            kind,  # type: ignore[arg-type]
            symbol,
            PERIODS[period],
            start_us=start,
            end_us=None if end is None else end - 1,  # time_end is exclusive
            limit=limit,
            now_us=request.now_us,
        )
        step = PERIOD_SECONDS[period] * US_PER_S
        # First and last trade inside the period: a few seconds in from each edge.
        edge = min(step // 10, 5 * US_PER_S)
        first_in = (noise(self.ctx.seed, 50, bars.open_time) * edge).astype(np.int64)
        last_in = (noise(self.ctx.seed, 51, bars.open_time) * edge).astype(np.int64)
        return [
            {
                "time_period_start": iso7(t),
                "time_period_end": iso7(t + step),
                "time_open": iso7(t + a),
                "time_close": iso7(min(t + step - 1 - b, request.now_us)),
                "price_open": o / ONE,
                "price_high": h / ONE,
                "price_low": lo / ONE,
                "price_close": c / ONE,
                "volume_traded": v / ONE,
                "trades_count": n,
            }
            for t, a, b, o, h, lo, c, v, n in zip(
                bars.open_time.tolist(),
                first_in.tolist(),
                last_in.tolist(),
                bars.open.tolist(),
                bars.high.tolist(),
                bars.low.tolist(),
                bars.close.tolist(),
                bars.volume.tolist(),
                bars.trades.tolist(),
                strict=True,
            )
        ]

    def metric(self, request: VendorRequest) -> list[dict[str, Any]]:
        params = request.params
        metric = params.get("metric_id", "")
        if metric != FUNDING_METRIC:
            raise CoinApiError(400, f"Invalid metric_id: '{metric[:40]}'.")
        kind, symbol = self._symbol(params.get("symbol_id", ""))
        if kind != "perp":
            raise CoinApiError(550, NO_DATA)
        period = params.get("period_id", "1HRS")
        if period not in PERIODS:
            raise CoinApiError(400, f"Invalid period_id: '{period[:20]}'.")
        start = self._time(params, "time_start", required=True)
        end = self._time(params, "time_end", required=False)
        limit = self._limit(params)
        assert start is not None
        step = PERIOD_SECONDS[period] * US_PER_S
        funding = self.ctx.market.funding(symbol)
        if not len(funding):
            return []
        first = max(start, int(funding.time[0]) // step * step)
        first = -(-first // step) * step
        last_open = (request.now_us - step) // step * step  # periods that are over
        stop = last_open if end is None else min(last_open, end - step)
        times = np.arange(first, stop + 1, step, dtype=np.int64)
        lo, hi = window(times, start_us=start, end_us=None, limit=limit, now_us=request.now_us)
        times = times[lo:hi]
        # Rates in force at the period's edges (a settlement inside it changes the rate once).
        opens = rate_in_force(funding, times) / ONE
        closes = rate_in_force(funding, times + step - 1) / ONE
        samples = max(1, step // (60 * US_PER_S))
        return [
            {
                "time_period_start": iso7(t),
                "time_period_end": iso7(t + step),
                "time_open": iso7(t),
                "time_close": iso7(t + step - US_PER_S),
                "first": o,
                "last": c,
                "min": min(o, c),
                "max": max(o, c),
                "count": samples,
                "sum": round(o * samples, 10),
            }
            for t, o, c in zip(times.tolist(), opens.tolist(), closes.tolist(), strict=True)
            if t + step <= request.now_us
        ]


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"message": message})
