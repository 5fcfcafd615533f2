"""CoinGlass v4 on the replay server: `/api/futures/...` and `/api/spot/...` history endpoints.

Envelope `{"code": "0", "msg": "success", "data": [...]}`: business errors come back as HTTP
200 with another code (unsupported symbol or interval: "40001"), a missing key as HTTP 401
with code "401", rate limits as HTTP 429 with code "429". Every reply carries the plan's
`API-KEY-MAX-LIMIT` and the minute's `API-KEY-USE-LIMIT`.

Numbers derive from the synthetic market's Binance bars (so they agree with what the same
server serves on /fapi and /api): price OHLC = the perpetual's klines; aggregated open
interest = Binance's OI value x a venue factor; funding OHLC = the settled rate in force, in
percent (vol-weighted a touch off the OI-weighted one); taker volumes = the bars' taker flow
(x venue factors for the aggregated ones); liquidations = a share of perp volume that grows
with the bar's adverse move. Price, OI, funding and pair taker values are strings, aggregated
taker and liquidation values JSON numbers, as in CoinGlass's documented examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from replay.clock import US_PER_MS, interval_us
from replay.fixed import ONE, format_fixed
from replay.market import Bars
from replay.query import window
from replay.rest import Reply
from replay.vendors import ReplayContext, VendorRequest, VendorRoutes, json_reply
from replay.vendors._common import MinuteQuota, noise, rate_in_force

KEY_HEADER = "cg-api-key"
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "4h", "6h", "8h", "12h", "1d")
DEFAULT_LIMIT, MAX_LIMIT = 1000, 1000
PLAN_LIMIT_PER_MINUTE = 600
#: Binance's share of each aggregate (open interest, taker flow) is about a third to a quarter.
OI_VENUE_FACTOR = 2.7
FUTURES_TAKER_FACTOR = 3.1
SPOT_TAKER_FACTOR = 4.0
EXCHANGES = ("Binance",)

Rows = list[dict[str, Any]]


class CoinGlassError(Exception):
    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class CoinGlassRoutes(VendorRoutes):
    name = "coinglass"
    prefixes = ("/api/futures/", "/api/spot/")

    def __init__(self, ctx: ReplayContext, plan_limit: int = PLAN_LIMIT_PER_MINUTE) -> None:
        super().__init__(ctx)
        self.quota = MinuteQuota(plan_limit, ctx.wall_clock)
        self.routes: dict[str, Callable[[VendorRequest], Rows]] = {
            "/api/futures/price/history": self.price,
            "/api/futures/open-interest/aggregated-history": self.open_interest,
            "/api/futures/funding-rate/oi-weight-history": self.funding("oi"),
            "/api/futures/funding-rate/vol-weight-history": self.funding("vol"),
            "/api/futures/taker-buy-sell-volume/history": self.taker_pair,
            "/api/futures/aggregated-taker-buy-sell-volume/history": self.taker_aggregated("perp"),
            "/api/spot/aggregated-taker-buy-sell-volume/history": self.taker_aggregated("spot"),
            "/api/futures/liquidation/aggregated-history": self.liquidations,
            "/api/futures/supported-coins": lambda _r: self._coins(),
        }

    # -- plumbing -------------------------------------------------------------------------

    def handle(self, request: VendorRequest) -> Reply:
        key = request.headers.get(KEY_HEADER, "").strip()
        if not key:
            return _envelope(401, "401", "API key missing or invalid")
        used, retry_after = self.quota.spend(key)
        headers = {
            "API-KEY-MAX-LIMIT": str(self.quota.limit),
            "API-KEY-USE-LIMIT": str(min(used, self.quota.limit)),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
            return _envelope(429, "429", "Too Many Requests", headers=headers)
        route = self.routes.get(request.path)
        if route is None:
            return _envelope(404, "404", "Not Found", headers=headers)
        try:
            data = route(request)
        except CoinGlassError as error:
            return _envelope(error.status, error.code, error.msg, headers=headers)
        return json_reply(200, {"code": "0", "msg": "success", "data": data}, headers)

    def fault_reply(self, status: int) -> Reply:
        messages = {429: "Too Many Requests", 405: "Method Not Allowed"}
        return _envelope(status, str(status), messages.get(status, "Internal Server Error"))

    def vendor_fault(self, request: VendorRequest) -> Reply:
        # A business failure inside a 200: only the code tells it from a success.
        return _envelope(200, "50001", "Server busy, please try again later")

    def stats(self) -> dict[str, Any]:
        return {"rate_limited": self.quota.rejected}

    # -- parameters -----------------------------------------------------------------------

    def _window(self, request: VendorRequest) -> tuple[str, int | None, int | None, int]:
        params = request.params
        interval = params.get("interval", "")
        if interval not in INTERVALS:
            raise CoinGlassError("40001", f"interval not supported: {interval[:20]!r}")
        limit = _int_param(params, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise CoinGlassError("40001", f"limit must be between 1 and {MAX_LIMIT}")
        start = _int_param(params, "start_time", None)
        end = _int_param(params, "end_time", None)
        if start is not None and end is not None and start > end:
            raise CoinGlassError("40001", "start_time must not be after end_time")
        to_us = lambda ms: None if ms is None else ms * US_PER_MS  # noqa: E731
        return interval, to_us(start), to_us(end), limit

    def _pair(self, request: VendorRequest) -> str:
        exchange = request.params.get("exchange", "")
        symbol = request.params.get("symbol", "")
        if exchange not in EXCHANGES:
            raise CoinGlassError("40001", f"exchange not supported: {exchange[:20]!r}")
        if symbol not in self.ctx.market.symbols:
            raise CoinGlassError("40001", f"symbol not supported: {symbol[:20]!r}")
        return symbol

    def _coin(self, request: VendorRequest) -> str:
        coin = request.params.get("symbol", "")
        pair = f"{coin}USDT"
        if not coin or pair not in self.ctx.market.symbols:
            raise CoinGlassError("40001", f"symbol not supported: {coin[:20]!r}")
        exchanges = request.params.get("exchange_list")
        if exchanges is not None and not exchanges.strip():
            raise CoinGlassError("40001", "exchange_list must not be empty")
        return pair

    def _coins(self) -> Rows:
        return [{"symbol": s.removesuffix("USDT")} for s in self.ctx.market.symbols]

    def _bars(self, kind: str, symbol: str, request: VendorRequest) -> tuple[Bars, str]:
        interval, start, end, limit = self._window(request)
        bars = self.ctx.view.klines(
            kind,  # type: ignore[arg-type]
            symbol,
            interval,
            start_us=start,
            end_us=end,
            limit=limit,
            now_us=request.now_us,
        )
        return bars, interval

    def _grid(self, request: VendorRequest) -> tuple[np.ndarray, int]:
        """Open times of complete bars in the window (the open bar's OI/funding is not over)."""
        interval, start, end, limit = self._window(request)
        step = interval_us(interval)
        first_oi = self.ctx.view.open_interest(self._coin(request), "5m").time
        if not len(first_oi):
            return np.zeros(0, dtype=np.int64), step
        lo = -(-int(first_oi[0]) // step) * step
        hi = (request.now_us - step) // step * step  # last bar whose interval is over
        times = np.arange(lo, hi + 1, step, dtype=np.int64)
        a, b = window(times, start_us=start, end_us=end, limit=limit, now_us=request.now_us)
        return times[a:b], step

    # -- endpoints ------------------------------------------------------------------------

    def price(self, request: VendorRequest) -> Rows:
        bars, _ = self._bars("perp", self._pair(request), request)
        return [
            {
                "time": t // US_PER_MS,
                "open": format_fixed(o, 2),
                "high": format_fixed(h, 2),
                "low": format_fixed(lo, 2),
                "close": format_fixed(c, 2),
                "volume_usd": format_fixed(q, 4),
            }
            for t, o, h, lo, c, q in zip(
                bars.open_time.tolist(),
                bars.open.tolist(),
                bars.high.tolist(),
                bars.low.tolist(),
                bars.close.tolist(),
                bars.quote_volume.tolist(),
                strict=True,
            )
        ]

    def open_interest(self, request: VendorRequest) -> Rows:
        symbol = self._coin(request)
        times, step = self._grid(request)
        series = self.ctx.view.open_interest(symbol, "5m")
        value = series.sum_open_interest_value.astype(np.float64) / ONE * OI_VENUE_FACTOR
        out: Rows = []
        for t in times.tolist():
            lo, hi = np.searchsorted(series.time, [t, t + step], side="left")
            hi = min(int(hi) + 1, len(series))  # the snapshot at the bar's close belongs to it
            chunk = value[int(lo) : hi]
            if not len(chunk):
                continue
            out.append(
                {
                    "time": t // US_PER_MS,
                    "open": _text(chunk[0], 2),
                    "high": _text(chunk.max(), 2),
                    "low": _text(chunk.min(), 2),
                    "close": _text(chunk[-1], 2),
                }
            )
        return out

    def funding(self, weighting: str) -> Callable[[VendorRequest], Rows]:
        def handler(request: VendorRequest) -> Rows:
            symbol = self._coin(request)
            times, step = self._grid(request)
            funding = self.ctx.market.funding(symbol)
            opens = rate_in_force(funding, times).astype(np.float64) / ONE * 100
            closes = rate_in_force(funding, times + step - 1).astype(np.float64) / ONE * 100
            if weighting == "vol":
                stream = 41
                opens = opens + (noise(self.ctx.seed, stream, times) - 0.5) * 0.002
                closes = closes + (noise(self.ctx.seed, stream, times + step) - 0.5) * 0.002
            wiggle = noise(self.ctx.seed, 40, times) * 0.0005
            return [
                {
                    "time": t // US_PER_MS,
                    "open": _text(o, 6),
                    "high": _text(max(o, c) + w, 6),
                    "low": _text(min(o, c) - w, 6),
                    "close": _text(c, 6),
                }
                for t, o, c, w in zip(
                    times.tolist(), opens.tolist(), closes.tolist(), wiggle.tolist(), strict=True
                )
            ]

        return handler

    def taker_pair(self, request: VendorRequest) -> Rows:
        bars, _ = self._bars("perp", self._pair(request), request)
        return [
            {
                "time": t // US_PER_MS,
                "taker_buy_volume_usd": format_fixed(buy, 4),
                "taker_sell_volume_usd": format_fixed(total - buy, 4),
            }
            for t, buy, total in zip(
                bars.open_time.tolist(),
                bars.taker_quote.tolist(),
                bars.quote_volume.tolist(),
                strict=True,
            )
        ]

    def taker_aggregated(self, kind: str) -> Callable[[VendorRequest], Rows]:
        factor = FUTURES_TAKER_FACTOR if kind == "perp" else SPOT_TAKER_FACTOR
        stream = 42 if kind == "perp" else 43

        def handler(request: VendorRequest) -> Rows:
            bars, _ = self._bars(kind, self._coin(request), request)
            scale = factor * (0.9 + 0.2 * noise(self.ctx.seed, stream, bars.open_time))
            buy = bars.taker_quote / ONE * scale
            sell = (bars.quote_volume - bars.taker_quote) / ONE * scale
            return [
                {
                    "time": t // US_PER_MS,
                    "aggregated_buy_volume_usd": round(b, 4),
                    "aggregated_sell_volume_usd": round(s, 4),
                }
                for t, b, s in zip(
                    bars.open_time.tolist(), buy.tolist(), sell.tolist(), strict=True
                )
            ]

        return handler

    def liquidations(self, request: VendorRequest) -> Rows:
        bars, _ = self._bars("perp", self._coin(request), request)
        if not len(bars):
            return []
        move = np.log(bars.close / np.maximum(bars.open, 1))
        base = bars.quote_volume / ONE * OI_VENUE_FACTOR * 0.002
        jitter = 0.5 + noise(self.ctx.seed, 44, bars.open_time)
        # Falling prices liquidate longs, rising ones shorts; a 1 % move multiplies by ~e^3.
        longs = base * jitter * np.exp(np.clip(-move, 0, 0.05) * 300)
        shorts = base * (1.5 - jitter) * np.exp(np.clip(move, 0, 0.05) * 300)
        return [
            {
                "time": t // US_PER_MS,
                "aggregated_long_liquidation_usd": round(lg, 5),
                "aggregated_short_liquidation_usd": round(sh, 5),
            }
            for t, lg, sh in zip(
                bars.open_time.tolist(), longs.tolist(), shorts.tolist(), strict=True
            )
        ]


def _envelope(status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"code": code, "msg": msg}, headers)


def _int_param(params: Any, name: str, default: int | None) -> Any:
    text = params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise CoinGlassError("40001", f"{name} must be an integer")
    return int(text)


def _text(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"
