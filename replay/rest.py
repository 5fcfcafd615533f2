"""Binance's REST endpoints over a market view: parameters, errors, weights and JSON rows.

Spot (`/api/v3/...`) and USD-M futures (`/fapi/v1/...`, `/futures/data/...`) paths are served
side by side, so both base URLs can point at one replay server. Everything here is pure:
the HTTP server adds faults, weight budgets and bans around it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from replay.clock import KLINE_INTERVALS, US_PER_MS, Clock
from replay.fixed import format_fixed
from replay.market import FORMATS, OI_PERIODS, Bars, Kind
from replay.query import MarketView, open_interest_floor, window

JSON = "application/json;charset=UTF-8"
_NUMBER = re.compile(r"^[0-9]{1,20}$")
_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_INT64_MAX = 2**63 - 1
_MICROS_THRESHOLD = 10**14
# Times past this (year 9000) are clamped: no market reaches them and calendar maths stays valid.
_MAX_US = 221_845_392_000_000_000
_UTC_ZONES = {"0", "+0", "-0", "00:00", "+00:00", "-00:00", "+0:00", "-0:00"}


class BinanceError(Exception):
    """An error Binance answers with `{"code": …, "msg": …}`."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(error: BinanceError) -> Reply:
    return Reply(error.status, orjson.dumps({"code": error.code, "msg": error.msg}))


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_valid(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for paramter '{name}' is not valid.")


@dataclass(frozen=True)
class Request:
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    now_us: int


@dataclass(frozen=True)
class Route:
    budget: str  # "spot" or "fapi"
    weight: Callable[[Mapping[str, str]], int]
    handler: Callable[[Request], Any]


def budget_of(path: str) -> str:
    return "spot" if path.startswith("/api/") else "fapi"


def _limit_weight(params: Mapping[str, str], default: int = 500) -> int:
    """USD-M klines weigh by LIMIT: [1,100) 1, [100,500) 2, [500,1000] 5, above 10."""
    text = params.get("limit", "")
    limit = int(text) if _NUMBER.match(text) else default
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


def _fixed(weight: int) -> Callable[[Mapping[str, str]], int]:
    return lambda _params: weight


class BinanceApi:
    """Routes and handlers; one instance per server."""

    def __init__(self, view: MarketView, clock: Clock) -> None:
        self.view = view
        self.market = view.market
        self.clock = clock
        self.routes: dict[str, Route] = {
            "/api/v3/ping": Route("spot", _fixed(1), lambda _r: {}),
            "/api/v3/time": Route("spot", _fixed(1), self.spot_time),
            "/api/v3/exchangeInfo": Route("spot", _fixed(20), self.spot_exchange_info),
            "/api/v3/klines": Route("spot", _fixed(2), self.spot_klines),
            "/fapi/v1/ping": Route("fapi", _fixed(1), lambda _r: {}),
            "/fapi/v1/time": Route("fapi", _fixed(1), lambda r: {"serverTime": r.now_us // 1000}),
            "/fapi/v1/exchangeInfo": Route("fapi", _fixed(1), self.futures_exchange_info),
            "/fapi/v1/klines": Route("fapi", _limit_weight, self.futures_klines("perp")),
            "/fapi/v1/continuousKlines": Route("fapi", _limit_weight, self.continuous_klines),
            "/fapi/v1/markPriceKlines": Route("fapi", _limit_weight, self.futures_klines("mark")),
            "/fapi/v1/premiumIndexKlines": Route(
                "fapi", _limit_weight, self.futures_klines("premium")
            ),
            "/fapi/v1/fundingRate": Route("fapi", _fixed(1), self.funding_rate),
            "/futures/data/openInterestHist": Route("fapi", _fixed(0), self.open_interest_hist),
        }

    def handle(self, route: Route, request: Request) -> Reply:
        try:
            payload = route.handler(request)
        except BinanceError as error:
            return error_reply(error)
        return Reply(200, orjson.dumps(payload))

    # -- parameters ---------------------------------------------------------------------

    def _symbol(self, params: Mapping[str, str], name: str = "symbol") -> str:
        value = params.get(name, "")
        if not value:
            raise mandatory(name)
        if not _SYMBOL.match(value):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        if value not in self.market.symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        return value

    @staticmethod
    def _number(params: Mapping[str, str], name: str) -> int | None:
        if name not in params:
            return None
        text = params[name]
        if not _NUMBER.match(text):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        value = int(text)
        if value > _INT64_MAX:
            raise not_valid(name)
        return value

    def _limit(self, params: Mapping[str, str], default: int, maximum: int) -> int:
        limit = self._number(params, "limit")
        if limit is None:
            return default
        if not 1 <= limit <= maximum:
            raise not_valid("limit")
        return limit

    def _times(
        self, params: Mapping[str, str], *, micros_ok: bool
    ) -> tuple[int | None, int | None]:
        """startTime/endTime in µs; spot accepts ms or µs, futures ms only."""
        start = self._number(params, "startTime")
        end = self._number(params, "endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")

        def to_us(value: int | None) -> int | None:
            if value is None:
                return None
            if micros_ok and value >= _MICROS_THRESHOLD:
                return min(value, _MAX_US)
            return min(value * US_PER_MS, _MAX_US)

        return to_us(start), to_us(end)

    @staticmethod
    def _interval(params: Mapping[str, str]) -> str:
        interval = params.get("interval", "")
        if not interval:
            raise mandatory("interval")
        if interval not in KLINE_INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        return interval

    @staticmethod
    def _time_divisor(request: Request) -> int:
        unit = request.headers.get("x-mbx-time-unit")
        if unit is None or unit.upper() == "MILLISECOND":
            return US_PER_MS
        if unit.upper() == "MICROSECOND":
            return 1
        raise BinanceError(-1100, "Invalid X-MBX-TIME-UNIT; use MILLISECOND or MICROSECOND.")

    # -- spot ---------------------------------------------------------------------------

    def spot_time(self, request: Request) -> Any:
        return {"serverTime": request.now_us // self._time_divisor(request)}

    def spot_klines(self, request: Request) -> Any:
        params = request.params
        divisor = self._time_divisor(request)
        symbol = self._symbol(params)
        interval = self._interval(params)
        start, end = self._times(params, micros_ok=True)
        limit = self._limit(params, 500, 1000)
        zone = params.get("timeZone")
        if zone is not None and zone not in _UTC_ZONES:
            raise not_valid("timeZone")
        return self._klines("spot", symbol, interval, start, end, limit, request.now_us, divisor)

    def spot_exchange_info(self, request: Request) -> Any:
        return self._exchange_info(request, "spot")

    # -- futures ------------------------------------------------------------------------

    def futures_klines(self, kind: Kind) -> Callable[[Request], Any]:
        def handler(request: Request) -> Any:
            params = request.params
            symbol = self._symbol(params)
            interval = self._interval(params)
            start, end = self._times(params, micros_ok=False)
            limit = self._limit(params, 500, 1500)
            return self._klines(
                kind, symbol, interval, start, end, limit, request.now_us, US_PER_MS
            )

        return handler

    def continuous_klines(self, request: Request) -> Any:
        params = request.params
        pair = self._symbol(params, "pair")
        contract = params.get("contractType", "")
        if not contract:
            raise mandatory("contractType")
        if contract != "PERPETUAL":
            # Only the perpetual is replayed; delivery contracts are not part of the market.
            raise not_valid("contractType")
        interval = self._interval(params)
        start, end = self._times(params, micros_ok=False)
        limit = self._limit(params, 500, 1500)
        return self._klines("perp", pair, interval, start, end, limit, request.now_us, US_PER_MS)

    def futures_exchange_info(self, request: Request) -> Any:
        return self._exchange_info(request, "fapi")

    def funding_rate(self, request: Request) -> Any:
        params = request.params
        symbols = [self._symbol(params)] if "symbol" in params else list(self.market.symbols)
        start, end = self._times(params, micros_ok=False)
        limit = self._limit(params, 100, 1000)
        rows: list[tuple[int, dict[str, Any]]] = []
        for symbol in symbols:
            funding = self.market.funding(symbol)
            lo, hi = window(
                funding.time, start_us=start, end_us=end, limit=limit, now_us=request.now_us
            )
            for i in range(lo, hi):
                mark = (
                    format_fixed(int(funding.mark_price[i]), 8) if funding.has_mark_price[i] else ""
                )
                time_ms = int(funding.time[i]) // US_PER_MS
                rows.append(
                    (
                        time_ms,
                        {
                            "symbol": symbol,
                            "fundingTime": time_ms,
                            "fundingRate": format_fixed(int(funding.rate[i]), 8),
                            "markPrice": mark,
                        },
                    )
                )
        rows.sort(key=lambda item: item[0])
        chosen = rows[:limit] if start is not None else rows[-limit:]
        return [row for _, row in chosen]

    def open_interest_hist(self, request: Request) -> Any:
        params = request.params
        symbol = self._symbol(params)
        period = params.get("period", "")
        if not period:
            raise mandatory("period")
        if period not in OI_PERIODS:
            raise not_valid("period")
        limit = self._limit(params, 30, 500)
        start, end = self._times(params, micros_ok=False)
        oldest = open_interest_floor(request.now_us)
        if start is not None and start < oldest:
            # Measured on fapi.binance.com: only the latest ~30 days are served.
            raise BinanceError(-1130, "parameter 'startTime' is invalid.")
        series = self.view.open_interest(symbol, period)
        lo, hi = window(
            series.time,
            start_us=start,
            end_us=end,
            limit=limit,
            now_us=request.now_us,
            floor_us=oldest,
        )
        return [
            {
                "symbol": symbol,
                "sumOpenInterest": format_fixed(oi, 8),
                "sumOpenInterestValue": format_fixed(value, 8),
                "timestamp": time_us // US_PER_MS,
            }
            for time_us, oi, value in zip(
                series.time[lo:hi].tolist(),
                series.sum_open_interest[lo:hi].tolist(),
                series.sum_open_interest_value[lo:hi].tolist(),
                strict=True,
            )
        ]

    # -- shared -------------------------------------------------------------------------

    def _klines(
        self,
        kind: Kind,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now_us: int,
        divisor: int,
    ) -> list[list[Any]]:
        bars = self.view.klines(
            kind, symbol, interval, start_us=start, end_us=end, limit=limit, now_us=now_us
        )
        return kline_rows(bars, kind, divisor)

    def _exchange_info(self, request: Request, budget: str) -> Any:
        limit = 6000 if budget == "spot" else 2400
        return {
            "timezone": "UTC",
            "serverTime": request.now_us // US_PER_MS,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": limit,
                }
            ],
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": symbol,
                    "status": "TRADING",
                    "baseAsset": symbol.removesuffix("USDT"),
                    "quoteAsset": "USDT",
                    **({"contractType": "PERPETUAL", "pair": symbol} if budget == "fapi" else {}),
                }
                for symbol in self.market.symbols
            ],
        }


def kline_rows(bars: Bars, kind: Kind, divisor: int) -> list[list[Any]]:
    """Bars -> Binance's 12-element JSON rows (times in ms, or µs when divisor is 1)."""
    fmt = FORMATS[kind]

    def text(values: np.ndarray, decimals: int | None) -> list[str]:
        if decimals is None:
            return ["0"] * len(values)
        return [format_fixed(value, decimals) for value in values.tolist()]

    taker_volume = None if bars.missing_taker else fmt.volume_decimals
    taker_quote = None if bars.missing_taker else fmt.quote_decimals
    columns = zip(
        (bars.open_time // divisor).tolist(),
        text(bars.open, fmt.price_decimals),
        text(bars.high, fmt.price_decimals),
        text(bars.low, fmt.price_decimals),
        text(bars.close, fmt.price_decimals),
        text(bars.volume, fmt.volume_decimals),
        (bars.close_time // divisor).tolist(),
        text(bars.quote_volume, fmt.quote_decimals),
        bars.trades.tolist(),
        text(bars.taker_base, taker_volume),
        text(bars.taker_quote, taker_quote),
        strict=True,
    )
    return [[*row, "0"] for row in columns]
