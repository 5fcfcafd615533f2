"""Vendor routes of the replay server: each non-Binance vendor's wire format, offline.

A vendor module (`replay/vendors/<vendor>.py`) defines a `VendorRoutes` subclass and
is listed once in `_registry()` below (one import, one entry). The server builds each with a
`ReplayContext` (the market, its Binance-semantics view, the replay clock, the seed, a wall
clock) and sends it
every request whose path starts with one of its `prefixes`, after bans and the fault
injector: an injected 429 or 5xx is answered with the vendor's own error body
(`fault_reply`), the `vendor` fault kind with a vendor-specific failure (`vendor_fault`), and
truncate/slow/drop act on the socket as for Binance.

Rules every vendor route keeps:
- never serve the future: only rows whose data is complete at `request.now_us`;
- numbers derive from the synthetic market (CoinGlass/CoinAPI prices are the Binance bars
  the same server serves), deterministically from the seed;
- a request without the vendor's key gets the vendor's auth error (any non-empty key works);
- every reply carries `X-Btcfs-Replay: synthetic` (the server adds it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from replay.clock import Clock
from replay.market import MarketData
from replay.query import MarketView
from replay.rest import JSON, Reply


@dataclass(frozen=True)
class ReplayContext:
    market: MarketData
    view: MarketView
    clock: Clock
    seed: int
    wall_clock: Callable[[], float]


@dataclass(frozen=True)
class VendorRequest:
    path: str
    params: Mapping[str, str]  # the last value wins for a repeated name
    headers: Mapping[str, str]  # lower-case names
    now_us: int


class VendorRoutes(ABC):
    """One vendor's paths on the replay server."""

    name: str = ""
    prefixes: tuple[str, ...] = ()

    def __init__(self, ctx: ReplayContext) -> None:
        self.ctx = ctx

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefixes)

    @abstractmethod
    def handle(self, request: VendorRequest) -> Reply:
        """Answer a GET/HEAD (auth, parameters, rows, errors) in the vendor's format."""

    @abstractmethod
    def fault_reply(self, status: int) -> Reply:
        """The vendor's body for an injected 429 or 5xx."""

    def vendor_fault(self, request: VendorRequest) -> Reply:
        """A vendor-specific failure for the `vendor` fault kind (default: a 503)."""
        return self.fault_reply(503)

    def stats(self) -> dict[str, Any]:
        return {}


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, orjson.dumps(payload), JSON, dict(headers or {}))


def _registry() -> dict[str, Callable[[ReplayContext], VendorRoutes]]:
    # One import and one entry per vendor.
    from replay.vendors.alphavantage import AlphaVantageRoutes
    from replay.vendors.coinapi import CoinApiRoutes
    from replay.vendors.coinglass import CoinGlassRoutes
    from replay.vendors.cryptoquant import CryptoQuantRoutes
    from replay.vendors.fred import FredRoutes

    return {
        "coinglass": CoinGlassRoutes,
        "coinapi": CoinApiRoutes,
        "fred": FredRoutes,
        "alphavantage": AlphaVantageRoutes,
        "cryptoquant": CryptoQuantRoutes,
    }


def build_routes(ctx: ReplayContext) -> list[VendorRoutes]:
    return [factory(ctx) for factory in _registry().values()]


__all__ = [
    "ReplayContext",
    "VendorRequest",
    "VendorRoutes",
    "build_routes",
    "json_reply",
]
