"""Helpers shared by the vendor routes: seeded per-time noise, rates in force, minute quotas."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from replay.market import Funding

_MASK64 = (1 << 64) - 1


def noise(seed: int, stream: int, times_us: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) values, one per time, a pure function of (seed, stream, time).

    A splitmix64 finaliser over the time: the same bar gets the same value whatever window
    it is requested in, so overlapping pages agree and reruns are byte-identical.
    """
    with np.errstate(over="ignore"):
        x = np.asarray(times_us, dtype=np.uint64) + np.uint64(
            (seed * 0x9E3779B97F4A7C15 + stream * 0xBF58476D1CE4E5B9) & _MASK64
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def rate_in_force(funding: Funding, times_us: np.ndarray) -> np.ndarray:
    """The last settled funding rate (fixed 1e-8 units) at or before each time; the first
    settlement's rate before it (the market has no earlier one)."""
    if not len(funding):
        return np.zeros(len(times_us), dtype=np.int64)
    index = np.searchsorted(funding.time, np.asarray(times_us, dtype=np.int64), side="right") - 1
    return funding.rate[np.clip(index, 0, len(funding) - 1)]


class MinuteQuota:
    """Requests per key per wall-clock minute, as CoinGlass counts them (API-KEY-USE-LIMIT)."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._used: dict[str, int] = {}
        self.rejected = 0

    def spend(self, key: str) -> tuple[int, int | None]:
        """(used this minute, Retry-After seconds when over the limit)."""
        with self._lock:
            now = self.clock()
            minute = int(now // 60)
            if minute != self._minute:
                self._minute, self._used = minute, {}
            used = self._used.get(key, 0) + 1
            self._used[key] = used
            if used <= self.limit:
                return used, None
            self.rejected += 1
            return used, max(1, math.ceil((minute + 1) * 60 - now))
