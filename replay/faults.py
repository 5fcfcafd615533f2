"""Deterministic fault injection: which request gets a 429, a 5xx, a cut body, a stall or a drop.

The decision for a request is a hash of (seed, method, path, sorted query, how many times this
exact request was seen before), so one sequence of requests meets the same faults whatever
order concurrent threads happen to run in.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# `vendor`: a vendor route's own failure (e.g. CoinGlass's HTTP 200 with code "50001");
# Binance paths have none and ignore it.
FAULT_KINDS = ("429", "5xx", "truncate", "slow", "drop", "vendor")
SERVER_ERROR_STATUSES = (500, 502, 503)


class FaultSpecError(ValueError):
    """A --faults value that cannot be understood."""


@dataclass(frozen=True)
class FaultSpec:
    """Probability of each fault kind per request; they are exclusive and sum to at most 1."""

    rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """`429=0.1,5xx=0.05,truncate=0.02,slow=0.01,drop=0.01,vendor=0.01` (any subset)."""
        if text is None or not text.strip():
            return cls({})
        rates: dict[str, float] = {}
        for item in text.split(","):
            name, sep, value = item.strip().partition("=")
            name = name.strip().lower()
            if not sep or not name:
                raise FaultSpecError(
                    f"fault {item.strip()!r} is not NAME=RATE (e.g. 429=0.1,5xx=0.05)"
                )
            if name not in FAULT_KINDS:
                raise FaultSpecError(f"unknown fault {name!r}; known: {', '.join(FAULT_KINDS)}")
            if name in rates:
                raise FaultSpecError(f"fault {name!r} is given twice")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(f"rate of {name!r} is not a number: {value!r}") from None
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError(f"rate of {name!r} must be within [0, 1], got {value}")
            rates[name] = rate
        total = sum(rates.values())
        if total > 1.0 + 1e-12:
            raise FaultSpecError(f"fault rates add up to {total:g}, more than 1")
        return cls(rates)

    def __str__(self) -> str:
        return ",".join(
            f"{name}={self.rates[name]:g}" for name in FAULT_KINDS if name in self.rates
        )

    @property
    def active(self) -> bool:
        return any(rate > 0 for rate in self.rates.values())


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 0  # for 5xx: 500, 502 or 503


class FaultInjector:
    """Decides faults for requests; thread-safe, counts what it injected."""

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self._seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def decide(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        *,
        vendor_route: bool = False,
    ) -> Fault | None:
        key = f"{method} {path}?" + "&".join(f"{k}={v}" for k, v in sorted(query))
        with self._lock:
            nth = self._seen[key]
            self._seen[key] += 1
        if not self.spec.active:
            return None
        digest = hashlib.blake2b(f"{self.seed}|{key}|{nth}".encode(), digest_size=16).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += self.spec.rates.get(kind, 0.0)
            if draw < threshold:
                if kind == "vendor" and not vendor_route:
                    return None
                status = SERVER_ERROR_STATUSES[digest[8] % len(SERVER_ERROR_STATUSES)]
                with self._lock:
                    self.injected[kind] += 1
                return Fault(kind, status if kind == "5xx" else 0)
        return None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {kind: self.injected[kind] for kind in FAULT_KINDS}
