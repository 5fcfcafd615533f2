"""Alpha Vantage's `query?function=TIME_SERIES_DAILY` on the replay server.

Synthetic daily bars for SPY (S&P 500 proxy) and UUP (dollar-index proxy) on US trading days
(weekdays that are not federal holidays) from 2015, newest first, 4-decimal strings as Alpha
Vantage sends them. A day still in session at the replay clock's `now` is served as the
partial bar it would be (its close so far), a day not yet open is not served.

Alpha Vantage's failure modes, all in an HTTP 200 as it sends them: `Error Message` for a
missing key, an unknown function or symbol; `Information` for more than `burst_per_second`
requests in one second of the wall clock or more than `daily_quota` a day (the quota text
names the key, as the real one does; so does the answer to a rejected key: one starting with
`bad-`); an injected 429 is the `Information` burst message, the `vendor` fault the older
`Note` wording. `outputsize=full` answers the free tier's premium-feature `Information`
unless `full_is_premium` is switched off (a premium key).
"""

from __future__ import annotations

import functools
import math
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from replay.calendars import NEW_YORK, is_us_business_day
from replay.clock import us_to_datetime
from replay.rest import Reply
from replay.vendors import VendorRequest, VendorRoutes, json_reply
from replay.vendors.fred import ANCHOR, REJECTED_KEY_PREFIX, daily_normals

COMPACT_ROWS = 100
Bar = tuple[date, float, float, float, float, int]  # date, open, high, low, close, volume
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)
BURST_MESSAGE = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests "
    "more sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per "
    "day), raise the per-second burst limit, and instantly unlock all premium endpoints"
)
NOTE_MESSAGE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would "
    "like to target a higher API call frequency."
)
PREMIUM_FULL_MESSAGE = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium "
    "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans "
    "at https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)
MISSING_KEY_MESSAGE = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)


def quota_message(key: str) -> str:
    return (
        f"We have detected your API key as {key} and our standard API rate limit is 25 "
        "requests per day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
    )


def invalid_call(function: str) -> str:
    return (
        "Invalid API call. Please retry or visit the documentation "
        f"(https://www.alphavantage.co/documentation/) for {function[:40]}."
    )


@dataclass(frozen=True)
class _Profile:
    symbol: str
    stream: int
    start_price: float
    daily_vol: float
    drift: float
    volume: float


PROFILES = {
    p.symbol: p
    for p in (
        _Profile("SPY", 11, 205.0, 0.010, 0.0004, 75e6),
        _Profile("UUP", 12, 24.5, 0.004, 0.00002, 1.8e6),
    )
}


def trading_day(day: date) -> bool:
    return is_us_business_day(day)


@functools.lru_cache(maxsize=32)
def _bars(
    seed: int, symbol: str, last: date
) -> tuple[tuple[date, float, float, float, float, int], ...]:
    """Every final bar from ANCHOR to `last` (inclusive): (date, o, h, l, c, volume)."""
    p = PROFILES[symbol]
    shocks = daily_normals(seed, p.stream, ANCHOR, last)
    gaps = daily_normals(seed, p.stream + 100, ANCHOR, last)
    wicks = np.abs(daily_normals(seed, p.stream + 200, ANCHOR, last))
    vols = daily_normals(seed, p.stream + 300, ANCHOR, last)
    out = []
    close = p.start_price
    for i in range((last - ANCHOR).days + 1):
        day = ANCHOR + timedelta(days=i)
        if not trading_day(day):
            continue
        open_ = close * math.exp(0.2 * p.daily_vol * gaps[i])
        close = open_ * math.exp(p.drift + p.daily_vol * shocks[i])
        high = max(open_, close) * (1 + 0.4 * p.daily_vol * wicks[i])
        low = min(open_, close) * (1 - 0.4 * p.daily_vol * wicks[(i + 1) % len(wicks)])
        volume = int(p.volume * math.exp(0.3 * vols[i]))
        out.append((day, open_, high, low, close, volume))
    return tuple(out)


def series(
    seed: int, symbol: str, now_us: int
) -> list[tuple[date, float, float, float, float, int]]:
    """Bars up to `now`, oldest first; today's is partial while the session runs."""
    now_ny = us_to_datetime(now_us).astimezone(NEW_YORK)
    today = now_ny.date()
    bars = list(_bars(seed, symbol, today))
    if bars and bars[-1][0] == today:
        opened = datetime.combine(today, OPEN_TIME, tzinfo=NEW_YORK)
        closes = datetime.combine(today, CLOSE_TIME, tzinfo=NEW_YORK)
        if now_ny < opened:
            bars.pop()
        elif now_ny < closes:
            # The session so far: close moves from the open toward the day's final close.
            day, open_, high, low, close, volume = bars.pop()
            share = (now_ny - opened) / (closes - opened)
            partial = open_ + (close - open_) * share
            bars.append(
                (
                    day,
                    open_,
                    max(open_, partial) + (high - max(open_, close)) * share,
                    min(open_, partial) - (min(open_, close) - low) * share,
                    partial,
                    int(volume * share),
                )
            )
    return bars


class AlphaVantageRoutes(VendorRoutes):
    name = "alphavantage"
    prefixes = ("/query",)
    #: Limits of the free tier are 1/s and 25/day; the replay is looser unless told otherwise.
    burst_per_second = 5
    daily_quota = 500
    #: A free key's answer to outputsize=full (set False to act as a premium key).
    full_is_premium = True

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._second: dict[str, tuple[int, int]] = {}
        self._day: Counter[tuple[str, str]] = Counter()
        self.throttled = 0

    def matches(self, path: str) -> bool:
        return path == "/query"

    def handle(self, request: VendorRequest) -> Reply:
        params = request.params
        key = params.get("apikey", "")
        if not key:
            return json_reply(200, {"Error Message": MISSING_KEY_MESSAGE})
        if key.startswith(REJECTED_KEY_PREFIX):
            return json_reply(200, {"Information": quota_message(key)})
        limited = self._spend(key, request.now_us)
        if limited is not None:
            return json_reply(200, {"Information": limited})
        function = params.get("function", "")
        symbol = params.get("symbol", "").upper()
        if function != "TIME_SERIES_DAILY" or symbol not in PROFILES:
            return json_reply(200, {"Error Message": invalid_call(function or "the function")})
        size = params.get("outputsize", "compact")
        if size not in ("compact", "full") or params.get("datatype", "json") != "json":
            return json_reply(200, {"Error Message": invalid_call(function)})
        if size == "full" and self.full_is_premium:
            return json_reply(200, {"Information": PREMIUM_FULL_MESSAGE})
        bars = series(self.ctx.seed, symbol, request.now_us)
        if size == "compact":
            bars = bars[-COMPACT_ROWS:]
        rows = {
            day.isoformat(): {
                "1. open": f"{o:.4f}",
                "2. high": f"{h:.4f}",
                "3. low": f"{lo:.4f}",
                "4. close": f"{c:.4f}",
                "5. volume": str(v),
            }
            for day, o, h, lo, c, v in reversed(bars)
        }
        payload = {
            "Meta Data": {
                "1. Information": "Daily Prices (open, high, low, close) and Volumes",
                "2. Symbol": symbol,
                "3. Last Refreshed": bars[-1][0].isoformat() if bars else "",
                "4. Output Size": "Compact" if size == "compact" else "Full size",
                "5. Time Zone": "US/Eastern",
            },
            "Time Series (Daily)": rows,
        }
        return json_reply(200, payload)

    def _spend(self, key: str, now_us: int) -> str | None:
        """Count a request against the key's per-second burst and per-day quota."""
        second = int(self.ctx.wall_clock())
        day = us_to_datetime(now_us).astimezone(UTC).date().isoformat()
        with self._lock:
            at, count = self._second.get(key, (second, 0))
            count = count + 1 if at == second else 1
            self._second[key] = (second, count)
            self._day[(key, day)] += 1
            if self._day[(key, day)] > self.daily_quota:
                self.throttled += 1
                return quota_message(key)
            if count > self.burst_per_second:
                self.throttled += 1
                return BURST_MESSAGE
        return None

    def fault_reply(self, status: int) -> Reply:
        if status == 429:  # Alpha Vantage throttles inside an HTTP 200
            return json_reply(200, {"Information": BURST_MESSAGE})
        body = f"<html><body><h1>{status} Server Error</h1></body></html>".encode()
        return Reply(status, body, "text/html")

    def vendor_fault(self, request: VendorRequest) -> Reply:
        return json_reply(200, {"Note": NOTE_MESSAGE})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"throttled": self.throttled, "requests_today": sum(self._day.values())}
