"""The replay server's notion of "now" (real, frozen or fast) and the UTC time arithmetic."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np

US_PER_MS = 1_000
US_PER_S = 1_000_000
US_PER_MINUTE = 60 * US_PER_S
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_INTERVAL_RE = re.compile(r"^([1-9][0-9]{0,2})([smhdw])$")

# Binance's kline intervals, case-sensitive (1m is a minute, 1M a calendar month).
KLINE_INTERVALS = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h",
    "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
)  # fmt: skip
MONTH = "1M"
# Weekly klines open on Monday 00:00 UTC; the epoch was a Thursday.
_OFFSET_US = {"1w": 4 * US_PER_DAY}


def interval_us(interval: str) -> int:
    """Length of a fixed interval in µs (ValueError for `1M` or junk)."""
    match = _INTERVAL_RE.match(interval)
    if not match:
        raise ValueError(f"not a fixed interval: {interval!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)] * US_PER_S


def bucket_floor(times_us: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the `interval` bucket holding each time (µs in, µs out)."""
    times = np.asarray(times_us, dtype=np.int64)
    if interval == MONTH:
        months = times.astype("datetime64[us]").astype("datetime64[M]")
        return months.astype("datetime64[us]").astype(np.int64)
    length = interval_us(interval)
    offset = _OFFSET_US.get(interval, 0)
    return (times - offset) // length * length + offset


def bucket_next(open_us: int, interval: str) -> int:
    """Open time of the bucket after the one opening at `open_us`."""
    if interval == MONTH:
        moment = us_to_datetime(open_us)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return datetime_to_us(datetime(year, month, 1, tzinfo=UTC))
    return open_us + interval_us(interval)


def bucket_shift(open_us: int, interval: str, count: int) -> int:
    """Open time `count` buckets after (or before, if negative) the one opening at `open_us`."""
    if interval == MONTH:
        moment = us_to_datetime(open_us)
        index = moment.year * 12 + moment.month - 1 + count
        return datetime_to_us(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))
    return open_us + count * interval_us(interval)


def floor_scalar(time_us: int, interval: str) -> int:
    return int(bucket_floor(np.array([time_us]), interval)[0])


def ceil_scalar(time_us: int, interval: str) -> int:
    floor = floor_scalar(time_us, interval)
    return floor if floor == time_us else bucket_next(floor, interval)


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def datetime_to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def day_of(us: int) -> date:
    return us_to_datetime(us).date()


def day_start_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * US_PER_DAY


def parse_moment(text: str) -> int:
    """`2024-05-09`, `2024-05-09T12:00`, `2024-05-09T12:00:00Z` or with an offset -> µs (UTC).

    A value without a zone is read as UTC (btcfs is UTC-only).
    """
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise ValueError(
            f"invalid time {text!r}: expected ISO 8601 like 2024-05-09 or 2024-05-09T12:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_us(moment.astimezone(UTC))


def real_now_us() -> int:
    return time.time_ns() // 1_000


def check_speed(speed: float) -> float:
    """A clock speed as a float: 0 (frozen) or finite and positive; ValueError otherwise."""
    value = float(speed)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"speed must be a finite number >= 0 (0 = frozen), not {speed!r}")
    return value


def running_horizon_us(speed: float) -> int:
    """How far past the clock's start a synthetic market extends when the clock runs.

    A wall day's worth of market time at `speed`, at least 7 days (the real clock) and at most
    90 days (a year of 1m bars per symbol costs about 250 MB): past it no new bar appears.
    """
    return int(min(90 * US_PER_DAY, max(7 * US_PER_DAY, speed * US_PER_DAY)))


class Clock:
    """Market time: the real UTC clock, frozen at a moment, or running `speed` x the wall clock.

    `Clock()` is the real clock; `Clock(t)` is frozen at t (µs); `Clock(t, speed=60)` starts at
    t and advances 60 s per wall second; `Clock(speed=60)` starts at the real now. Elapsed wall
    time is measured on the monotonic clock, so a wall-clock step does not move market time.
    """

    def __init__(
        self,
        frozen_us: int | None = None,
        *,
        speed: float | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._monotonic_ns = monotonic_ns
        if speed is None:  # backward compatible: a start moment alone freezes the clock
            speed = 0.0 if frozen_us is not None else 1.0
        self.speed = check_speed(speed)
        self._real = frozen_us is None and self.speed == 1.0
        self._start_us = real_now_us() if frozen_us is None else int(frozen_us)
        self._anchor_ns = monotonic_ns()

    @property
    def is_frozen(self) -> bool:
        return self.speed == 0.0

    @property
    def frozen_us(self) -> int | None:
        """The frozen moment (None while the clock runs); setting it freezes the clock there."""
        return self._start_us if self.is_frozen else None

    @frozen_us.setter
    def frozen_us(self, value: int | None) -> None:
        if value is None:
            self.speed, self._real = 1.0, True
            return
        self.speed, self._real, self._start_us = 0.0, False, int(value)

    def monotonic_at(self, moment_us: int) -> float:
        """When (time.monotonic() seconds) this clock reads `moment_us`; a running clock only."""
        if self.speed == 0.0:
            raise ValueError("a frozen clock never reaches another moment")
        if self._real:
            return time.monotonic() + (moment_us - real_now_us()) / US_PER_S
        return (self._anchor_ns + (moment_us - self._start_us) * 1_000 / self.speed) / 1e9

    def now_us(self) -> int:
        if self._real:
            return real_now_us()
        if self.speed == 0.0:
            return self._start_us
        elapsed_ns = self._monotonic_ns() - self._anchor_ns
        return self._start_us + int(elapsed_ns * self.speed) // 1_000
