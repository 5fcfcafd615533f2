"""Binance's selection rules over a market at a given "now": windows, limits, resampling.

Resampling is Binance's own: first open, max high, min low, last close, sums of volumes,
trades and taker flow, buckets aligned to the epoch (weeks to Monday, months to the 1st).
A bucket with no underlying bar is never served. The bar holding "now" is served still open:
its close_time lies in the future and its values cover only the elapsed part of it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from replay.clock import (
    MONTH,
    US_PER_DAY,
    US_PER_MINUTE,
    bucket_floor,
    bucket_next,
    ceil_scalar,
    floor_scalar,
    interval_us,
)
from replay.fixed import ONE
from replay.market import FORMATS, Bars, Funding, Kind, KlineFormat, MarketData, OpenInterest


def window(
    times: np.ndarray,
    *,
    start_us: int | None,
    end_us: int | None,
    limit: int,
    now_us: int,
    floor_us: int | None = None,
) -> tuple[int, int]:
    """Index range Binance returns: [start, end] inclusive, capped at now; with a start the
    first `limit` rows, otherwise the last `limit` rows up to end (or now)."""
    hi = int(np.searchsorted(times, now_us, side="right"))
    lo = 0 if floor_us is None else int(np.searchsorted(times, floor_us, side="left"))
    if end_us is not None:
        hi = min(hi, int(np.searchsorted(times, end_us, side="right")))
    if start_us is not None:
        lo = max(lo, int(np.searchsorted(times, start_us, side="left")))
        hi = min(hi, lo + limit)
    else:
        lo = max(lo, hi - limit)
    return lo, max(lo, hi)


class MarketView:
    """Queries over one market with Binance semantics; thread-safe, caches derived series."""

    def __init__(self, market: MarketData) -> None:
        self.market = market
        self._oi_cache: dict[tuple[str, str], OpenInterest] = {}
        self._lock = threading.Lock()

    def kline_base(self, kind: Kind, symbol: str, interval: str) -> Bars | None:
        """The native series an interval is served from, or None if it cannot be."""
        natives = self.market.native_klines(kind, symbol)
        if interval in natives:
            return natives[interval]
        base = natives.get("1m")
        if base is None or interval == "1s":
            return None
        if interval == MONTH or interval_us(interval) % US_PER_MINUTE == 0:
            return base
        return None

    def klines(
        self,
        kind: Kind,
        symbol: str,
        interval: str,
        *,
        start_us: int | None,
        end_us: int | None,
        limit: int,
        now_us: int,
    ) -> Bars:
        """Bars at `interval` with open time in [start, end] as /api/v3/klines selects them."""
        base = self.kline_base(kind, symbol, interval)
        if base is None or not len(base):
            return Bars.empty(interval)
        times = base.open_time
        hi = int(np.searchsorted(times, now_us, side="right"))
        lo = 0
        if end_us is not None:
            after_end = bucket_next(floor_scalar(end_us, interval), interval)
            hi = min(hi, int(np.searchsorted(times, after_end, side="left")))
        # `limit` buckets hold at most this many base bars (gaps only make it fewer), so the
        # bucketing below never has to look at more of the series than that.
        span = limit * _bars_per_bucket(interval, base.interval)
        if start_us is not None:
            lo = int(np.searchsorted(times, ceil_scalar(start_us, interval), side="left"))
            hi = min(hi, lo + span)
        else:
            lo = max(0, hi - span)
        if hi <= lo:
            return Bars.empty(interval)
        return _aggregate(
            base.slice(lo, hi), interval, limit, start_us is not None, now_us, FORMATS[kind]
        )

    def klines_between(
        self, kind: Kind, symbol: str, interval: str, start_us: int, stop_us: int, now_us: int
    ) -> Bars:
        """Every bar with start_us <= open time < stop_us (a day or month of an archive file)."""
        count = (stop_us - start_us) // interval_us(interval) + 1
        return self.klines(
            kind,
            symbol,
            interval,
            start_us=start_us,
            end_us=stop_us - 1,
            limit=count,
            now_us=now_us,
        )

    def funding_window(
        self, funding: Funding, start_us: int | None, end_us: int | None, limit: int, now_us: int
    ) -> tuple[int, int]:
        return window(funding.time, start_us=start_us, end_us=end_us, limit=limit, now_us=now_us)

    def open_interest(self, symbol: str, period: str) -> OpenInterest:
        """Snapshots at `period`: the native series merged with 5m rows on the period's grid."""
        key = (symbol, period)
        with self._lock:
            cached = self._oi_cache.get(key)
        if cached is not None:
            return cached
        natives = self.market.open_interest(symbol)
        parts: list[OpenInterest] = []
        if period in natives:
            parts.append(natives[period])
        five = natives.get("5m")
        if five is not None and period != "5m":
            step = interval_us(period)
            on_grid = five.time % step == 0
            parts.append(
                OpenInterest(
                    five.time[on_grid],
                    five.sum_open_interest[on_grid],
                    five.sum_open_interest_value[on_grid],
                )
            )
        merged = _merge_open_interest(parts)
        with self._lock:
            self._oi_cache[key] = merged
        return merged


def _bars_per_bucket(interval: str, base_interval: str) -> int:
    length = 31 * US_PER_DAY if interval == MONTH else interval_us(interval)
    return max(1, length // interval_us(base_interval))


def open_interest_floor(now_us: int) -> int:
    """Oldest timestamp openInterestHist serves: 30 days before today's UTC midnight."""
    return now_us // US_PER_DAY * US_PER_DAY - 30 * US_PER_DAY


def _merge_open_interest(parts: Sequence[OpenInterest]) -> OpenInterest:
    if not parts:
        return OpenInterest.empty()
    if len(parts) == 1:
        return parts[0]
    time = np.concatenate([p.time for p in parts])
    oi = np.concatenate([p.sum_open_interest for p in parts])
    value = np.concatenate([p.sum_open_interest_value for p in parts])
    order = np.argsort(time, kind="stable")  # the native series comes first and wins ties
    time, oi, value = time[order], oi[order], value[order]
    keep = np.r_[True, time[1:] != time[:-1]]
    return OpenInterest(time[keep], oi[keep], value[keep])


def _aggregate(
    bars: Bars, interval: str, limit: int, from_start: bool, now_us: int, fmt: KlineFormat
) -> Bars:
    columns = {name: np.array(col, copy=True) for name, col in bars.columns().items()}
    base_len = interval_us(bars.interval)
    last_open = int(columns["open_time"][-1])
    if last_open + base_len > now_us:
        _make_partial(columns, now_us - last_open, base_len, fmt)
    bucket = bucket_floor(columns["open_time"], interval)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    if from_start:
        starts, ends = starts[:limit], ends[:limit]
    else:
        starts, ends = starts[-limit:], ends[-limit:]
    first, stop = int(starts[0]), int(ends[-1])
    offsets = starts - first

    def segment(name: str) -> np.ndarray:
        return columns[name][first:stop]

    opens = bucket[starts]
    if interval == bars.interval:
        close_times = columns["close_time"][starts]
    elif interval == MONTH:
        close_times = np.array(
            [bucket_next(int(t), MONTH) - 1 for t in opens.tolist()], dtype=np.int64
        )
    else:
        close_times = opens + (interval_us(interval) - 1)
    return Bars(
        interval,
        open_time=opens,
        close_time=close_times,
        open=columns["open"][starts],
        high=np.maximum.reduceat(segment("high"), offsets),
        low=np.minimum.reduceat(segment("low"), offsets),
        close=columns["close"][ends - 1],
        volume=_exact_sums(segment("volume"), offsets),
        quote_volume=_exact_sums(segment("quote_volume"), offsets),
        trades=np.add.reduceat(segment("trades"), offsets),
        taker_base=_exact_sums(segment("taker_base"), offsets),
        taker_quote=_exact_sums(segment("taker_quote"), offsets),
        missing_taker=bars.missing_taker,
    )


def _exact_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Exact segment sums: int64 when they fit, else Python ints (a month of quote volume)."""
    whole = np.add.reduceat(values // ONE, offsets)
    frac = np.add.reduceat(values % ONE, offsets)
    if not len(whole) or int(np.abs(whole).max()) < 9 * 10**10:
        return whole * ONE + frac
    return np.array(
        [w * ONE + f for w, f in zip(whole.tolist(), frac.tolist(), strict=True)], dtype=object
    )


def _scaled(value: int, elapsed: int, length: int, step: int) -> int:
    """value x elapsed/length, toward zero, on a multiple of step (0 if the field is unused)."""
    if step <= 0:
        return value * elapsed // length
    magnitude = abs(value) * elapsed // length // step * step
    return magnitude if value >= 0 else -magnitude


def _make_partial(
    columns: dict[str, np.ndarray], elapsed: int, length: int, fmt: KlineFormat
) -> None:
    """Replace the last bar by what it looked like `elapsed` µs after it opened."""
    get = {name: int(col[-1]) for name, col in columns.items()}
    price_step, volume_step, quote_step = fmt.price_step, fmt.volume_step, fmt.quote_step
    open_ = get["open"]
    close = open_ + _scaled(get["close"] - open_, elapsed, length, price_step)
    high = max(open_ + _scaled(get["high"] - open_, elapsed, length, price_step), open_, close)
    low = min(open_ + _scaled(get["low"] - open_, elapsed, length, price_step), open_, close)
    volume = _scaled(get["volume"], elapsed, length, volume_step)
    taker_base = min(_scaled(get["taker_base"], elapsed, length, volume_step), volume)
    if get["volume"] > 0 and quote_step > 0:
        vwap = min(max(get["quote_volume"] * ONE // get["volume"], low), high)
        quote = volume * vwap // ONE // quote_step * quote_step
        taker_quote = min(taker_base * vwap // ONE // quote_step * quote_step, quote)
    else:
        quote = taker_quote = 0
    partial = {
        "close": close,
        "high": high,
        "low": low,
        "volume": volume,
        "quote_volume": quote,
        "trades": get["trades"] * elapsed // length,
        "taker_base": taker_base,
        "taker_quote": taker_quote,
    }
    for name, value in partial.items():
        columns[name][-1] = value
