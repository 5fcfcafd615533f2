"""Binance's request-weight budgets, Retry-After bookkeeping and IP bans, per server.

Weight is counted in fixed wall-clock minutes, one budget for the spot paths (6000) and one
for the futures paths (2400). A 429 tells the client when it may come back (Retry-After); a
client that returns earlier is banned (HTTP 418) for `ban_seconds`, as Binance does. Clients
are told apart by IP; requests already in flight when the 429 left (`retry_grace` seconds)
do not count as ignoring it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_LIMITS = {"spot": 6000, "fapi": 2400}


@dataclass
class _Window:
    minute: int = -1
    used: int = 0


class Limits:
    """Thread-safe weight counters and ban registry."""

    def __init__(
        self,
        *,
        weight_limits: dict[str, int] | None = None,
        ban_seconds: float = 120.0,
        banned_for: float = 0.0,
        retry_grace: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.weight_limits = dict(DEFAULT_LIMITS if weight_limits is None else weight_limits)
        self.ban_seconds = ban_seconds
        self.retry_grace = retry_grace
        self.clock = clock
        self._lock = threading.Lock()
        self._windows = {budget: _Window() for budget in self.weight_limits}
        self._not_before: dict[str, tuple[float, float]] = {}
        self._ban_until: dict[str, float] = {}
        self._global_ban_until = clock() + banned_for if banned_for > 0 else 0.0
        self.rate_limited = 0
        self.retry_after_violations = 0
        self.bans = 1 if banned_for > 0 else 0
        self.banned_requests = 0

    def ban_remaining(self, client: str) -> float | None:
        """Seconds of ban left for this client (starting one if it ignored a Retry-After)."""
        with self._lock:
            now = self.clock()
            until = max(self._ban_until.get(client, 0.0), self._global_ban_until)
            if now < until:
                self.banned_requests += 1
                return until - now
            not_before, issued = self._not_before.get(client, (0.0, 0.0))
            if issued + self.retry_grace < now < not_before:
                self.retry_after_violations += 1
                self.bans += 1
                self.banned_requests += 1
                self._ban_until[client] = now + self.ban_seconds
                del self._not_before[client]
                return self.ban_seconds
            return None

    def told_to_wait(self, client: str, seconds: float) -> None:
        """Record that a response told this client to stay away for `seconds`."""
        with self._lock:
            now = self.clock()
            not_before, _ = self._not_before.get(client, (0.0, 0.0))
            self._not_before[client] = (max(not_before, now + seconds), now)

    def spend(self, budget: str, weight: int) -> tuple[int, int | None]:
        """Add weight to this minute's budget: (used, Retry-After seconds if over the limit)."""
        with self._lock:
            now = self.clock()
            window = self._windows[budget]
            minute = int(now // 60)
            if window.minute != minute:
                window.minute, window.used = minute, 0
            window.used += weight
            if window.used <= self.weight_limits[budget]:
                return window.used, None
            self.rate_limited += 1
            return window.used, max(1, math.ceil((minute + 1) * 60 - now))

    def used(self, budget: str) -> int:
        with self._lock:
            window = self._windows[budget]
            return window.used if window.minute == int(self.clock() // 60) else 0
