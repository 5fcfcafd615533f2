"""CryptoQuant's BTC exchange-flow endpoints on the replay server (daily window).

`/v1/btc/exchange-flows/netflow` (netflow_total), `/v1/btc/exchange-flows/reserve`
(reserve, reserve_usd) and `/v1/btc/flow-indicator/exchange-whale-ratio`
(exchange_whale_ratio), in CryptoQuant's envelope, newest first, `limit` counting back from
`to`. The reserve is the running sum of the netflow (the two agree); its USD value is at the
BTCUSDT close of the server's own market that day (a synthetic price outside the market's
range); about 2 % of days have null values, as the vendor sends them. The day
still running at the replay clock's `now` is served as its partial value so far.

Revisions: `revision` (0 by default; `revise()`, or `GET /v1/btc/__replay/revise` on a
running server, adds one) re-clusters the past as
CryptoQuant does weekly: at each revision some days older than two days get a new netflow
and whale ratio, so a loader that re-fetches sees a new vintage while old values stay what
they were when first served.

Errors: no bearer token or one starting with `bad-` -> HTTP 401; a bad parameter -> 400; an
unknown path -> 404; an injected 429/5xx -> that status; all in the status envelope. The
`vendor` fault is an HTTP 200 whose envelope says 503.
"""

from __future__ import annotations

import functools
import math
import threading
from datetime import date, timedelta
from typing import Any

import numpy as np

from replay.clock import US_PER_DAY, day_start_us, us_to_datetime
from replay.fixed import ONE
from replay.rest import Reply
from replay.vendors import VendorRequest, VendorRoutes, json_reply
from replay.vendors.fred import ANCHOR, REJECTED_KEY_PREFIX, daily_normals, unit_hash

CQ_ANCHOR = date(2018, 1, 1)
EXCHANGES = frozenset(
    {"all_exchange", "spot_exchange", "derivative_exchange", "binance", "coinbase_advanced",
     "kraken", "bitfinex", "okx", "bybit"}
)  # fmt: skip
PATHS = {
    "/v1/btc/exchange-flows/netflow": ("netflow_total",),
    "/v1/btc/exchange-flows/reserve": ("reserve", "reserve_usd"),
    "/v1/btc/flow-indicator/exchange-whale-ratio": ("exchange_whale_ratio",),
}
REVISE_PATH = "/v1/btc/__replay/revise"
NULL_SHARE = 0.02
REVISED_SHARE = 0.25
_MAX_LIMIT = 100_000


@functools.lru_cache(maxsize=16)
def _history(seed: int, exchange: str, last: date) -> dict[str, np.ndarray]:
    """Final daily values from CQ_ANCHOR to `last` (revision 0)."""
    salt = sum(map(ord, exchange)) % 97
    flows = daily_normals(seed, 40 + salt, CQ_ANCHOR, last)
    whale = daily_normals(seed, 41 + salt, CQ_ANCHOR, last)
    price_shocks = daily_normals(seed, 42, ANCHOR, last)[(CQ_ANCHOR - ANCHOR).days :]
    netflow = np.round(2_500.0 * flows, 8)
    reserve = np.round(2_400_000.0 + np.cumsum(netflow), 8)
    price = 14_000.0 * np.exp(np.cumsum(0.035 * price_shocks + 0.0008))
    level, ratio = 0.0, []
    for shock in whale.tolist():
        level = 0.9 * level + 0.35 * shock
        ratio.append(0.3 + 0.5 / (1.0 + math.exp(-level)))
    return {
        "netflow_total": netflow,
        "reserve": reserve,
        "reserve_usd": np.round(reserve * price, 2),
        "exchange_whale_ratio": np.round(np.array(ratio), 6),
    }


class CryptoQuantRoutes(VendorRoutes):
    name = "cryptoquant"
    prefixes = ("/v1/btc/",)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._lock = threading.Lock()
        self.revision = 0

    def revise(self) -> int:
        """Re-cluster the past once more; returns the new revision number."""
        with self._lock:
            self.revision += 1
            return self.revision

    def handle(self, request: VendorRequest) -> Reply:
        if request.path == REVISE_PATH:  # a replay control, not a CryptoQuant path
            return json_reply(200, {"revision": self.revise()})
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _status(401, "Unauthorized: an Authorization: Bearer <token> header is required")
        if token.strip().startswith(REJECTED_KEY_PREFIX):
            return _status(401, "Unauthorized: the access token is invalid or expired")
        fields = PATHS.get(request.path)
        if fields is None:
            return _status(404, "Not Found: no such endpoint")
        params = request.params
        exchange = params.get("exchange", "")
        if exchange not in EXCHANGES:
            return _status(400, "Bad Request: exchange is required and must be supported")
        if params.get("window", "day") != "day":
            return _status(400, "Bad Request: the replay serves window=day only")
        today = us_to_datetime(request.now_us).date()
        try:
            first = _day(params.get("from"), CQ_ANCHOR)
            last = min(_day(params.get("to"), today), today)
            limit = _limit(params.get("limit"))
        except ValueError as exc:
            return _status(400, f"Bad Request: {exc}")
        history = _history(self.ctx.seed, exchange, today)
        revision = self.revision
        rows: list[dict[str, Any]] = []
        day = last
        while day >= max(first, CQ_ANCHOR) and len(rows) < limit:
            rows.append(self._row(history, exchange, day, fields, revision, request.now_us))
            day -= timedelta(days=1)
        return json_reply(200, {"status": {"code": 200, "message": "success"},
                                "result": {"window": "day", "data": rows}})  # fmt: skip

    def _row(
        self,
        history: dict[str, np.ndarray],
        exchange: str,
        day: date,
        fields: tuple[str, ...],
        revision: int,
        now_us: int,
    ) -> dict[str, Any]:
        index = (day - CQ_ANCHOR).days
        seed = self.ctx.seed
        # The day still running: its flows so far.
        share = min(1.0, (now_us - day_start_us(day)) / US_PER_DAY)
        row: dict[str, Any] = {"date": day.isoformat()}
        for name in fields:
            value = float(history[name][index])
            if name == "netflow_total":
                value *= share
            elif name == "reserve_usd":
                # At the BTC price this server's own market had at the day's end (or now).
                price = self._market_close(day, now_us)
                if price is not None:
                    value = round(float(history["reserve"][index]) * price, 2)
            for r in range(1, revision + 1):
                if name in ("netflow_total", "exchange_whale_ratio") and _revised(
                    seed, exchange, day, r, now_us
                ):
                    step = (unit_hash(seed, exchange, day, r, name) - 0.5) * 0.1
                    value = value * (1.0 + step)
            is_null = unit_hash(seed, exchange, day, "null", name) < NULL_SHARE
            row[name] = None if is_null else round(value, 8)
        return row

    def _market_close(self, day: date, now_us: int) -> float | None:
        """BTCUSDT's last 1m spot close of `day` known at `now`, when the market has one."""
        market = self.ctx.market
        if market is None or "BTCUSDT" not in getattr(market, "symbols", ()):
            return None
        bars = market.native_klines("spot", "BTCUSDT").get("1m")
        if bars is None or not len(bars):
            return None
        cutoff = min(day_start_us(day) + US_PER_DAY, now_us)
        index = int(np.searchsorted(bars.close_time, cutoff, side="left")) - 1
        if index < 0 or bars.open_time[index] < day_start_us(day):
            return None
        return float(bars.close[index]) / ONE

    def fault_reply(self, status: int) -> Reply:
        message = "Too Many Requests" if status == 429 else "Internal Server Error"
        return _status(status, message)

    def vendor_fault(self, request: VendorRequest) -> Reply:
        return json_reply(200, {"status": {"code": 503, "message": "Service Unavailable"}})

    def stats(self) -> dict[str, Any]:
        return {"revision": self.revision}


def _revised(seed: int, exchange: str, day: date, revision: int, now_us: int) -> bool:
    today = us_to_datetime(now_us).date()
    return (
        day <= today - timedelta(days=2)
        and unit_hash(seed, exchange, day, revision) < REVISED_SHARE
    )


def _day(text: str | None, default: date) -> date:
    if text is None or text == "":
        return default
    stamp = text[:8]
    if not stamp.isascii() or not stamp.isdigit() or len(text) not in (8, 15):
        raise ValueError("from/to must be YYYYMMDD or YYYYMMDDTHHMMSS")
    try:
        return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
    except ValueError:
        raise ValueError("from/to must be YYYYMMDD or YYYYMMDDTHHMMSS") from None


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise ValueError(f"limit must be an integer between 1 and {_MAX_LIMIT}")
    return int(text)


def _status(code: int, message: str) -> Reply:
    return json_reply(code, {"status": {"code": code, "message": message}})
