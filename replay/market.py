"""The market a replay server serves: columnar series and the interface both sources implement.

Every time is an int64 count of µs since the epoch (UTC); every price, volume, rate and open
interest is an int64 count of 1e-8 (see `fixed.py`). Series are ascending and unique by time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Literal

import numpy as np

from replay.fixed import grid

Kind = Literal["spot", "perp", "mark", "premium"]
KINDS: tuple[Kind, ...] = ("spot", "perp", "mark", "premium")

OI_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


@dataclass(frozen=True)
class KlineFormat:
    """How Binance prints one kind of kline; `None` decimals mean the field is always "0"."""

    price_decimals: int
    volume_decimals: int | None
    quote_decimals: int | None
    #: grid (fixed units) for prices made up for a still-open bar: the 0.01 USDT tick for
    #: spot and perpetual prices, 1e-8 for mark prices and premiums.
    price_step: int = 1

    @property
    def volume_step(self) -> int:
        return grid(self.volume_decimals) if self.volume_decimals is not None else 0

    @property
    def quote_step(self) -> int:
        return grid(self.quote_decimals) if self.quote_decimals is not None else 0


# Spot prints 8 decimals everywhere; USD-M futures print the contract's precisions (BTCUSDT:
# price 2, quantity 3, quote 5, as in the recorded /fapi/v1/klines rows); mark-price and
# premium-index klines print 8-decimal prices and "0" for every volume field.
FORMATS: dict[Kind, KlineFormat] = {
    "spot": KlineFormat(8, 8, 8, price_step=10**6),
    "perp": KlineFormat(2, 3, 5, price_step=10**6),
    "mark": KlineFormat(8, None, None),
    "premium": KlineFormat(8, None, None),
}


_NOT_COLUMNS = frozenset({"interval", "missing_taker"})


@dataclass(frozen=True)
class Bars:
    """Klines of one (kind, symbol) at one native interval, ascending by open time."""

    interval: str
    open_time: np.ndarray
    close_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray
    #: True when the recording has no taker columns (REST then prints them as "0").
    missing_taker: bool = False

    def __len__(self) -> int:
        return len(self.open_time)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_COLUMNS}

    def slice(self, lo: int, hi: int) -> Bars:
        columns = {name: col[lo:hi] for name, col in self.columns().items()}
        return Bars(self.interval, missing_taker=self.missing_taker, **columns)

    def between(self, start_us: int, end_us: int) -> Bars:
        """Bars with start_us <= open_time < end_us."""
        lo, hi = np.searchsorted(self.open_time, [start_us, end_us], side="left")
        return self.slice(int(lo), int(hi))

    @classmethod
    def empty(cls, interval: str) -> Bars:
        zero = np.zeros(0, dtype=np.int64)
        return cls(interval, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero)


@dataclass(frozen=True)
class Funding:
    """Funding events: time (µs, Binance's ms jitter kept), rate, mark price at funding."""

    time: np.ndarray
    rate: np.ndarray
    mark_price: np.ndarray
    has_mark_price: np.ndarray
    interval_hours: np.ndarray
    # The archive's own spelling of each rate where it was recorded (it sometimes prints
    # `-2.5E-7`); None means print the rate with 8 decimals.
    rate_text: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls) -> Funding:
        zero = np.zeros(0, dtype=np.int64)
        return cls(zero, zero, zero, np.zeros(0, dtype=bool), zero)


@dataclass(frozen=True)
class OpenInterest:
    """Open-interest snapshots at one period: time (µs), contracts, notional in USDT."""

    time: np.ndarray
    sum_open_interest: np.ndarray
    sum_open_interest_value: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls) -> OpenInterest:
        zero = np.zeros(0, dtype=np.int64)
        return cls(zero, zero, zero)


@dataclass(frozen=True)
class Metrics:
    """The archive's 5-minute `metrics` rows; a ratio column is None when never recorded."""

    open_interest: OpenInterest
    count_toptrader_long_short_ratio: np.ndarray | None = None
    sum_toptrader_long_short_ratio: np.ndarray | None = None
    count_long_short_ratio: np.ndarray | None = None
    sum_taker_long_short_vol_ratio: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.open_interest)


class MarketData(ABC):
    """A source of Binance market data for the replay server (real recordings or synthetic)."""

    #: symbols this market knows; anything else is Binance's -1121 Invalid symbol.
    symbols: tuple[str, ...]
    #: the kline kinds the data.binance.vision archive may be built from.
    archived_kinds: frozenset[Kind] = frozenset(KINDS)
    #: a seed for anything random (faults) when the caller gives none.
    seed: int = 0
    #: what the server says in its `X-Btcfs-Replay` header: "recorded" or "synthetic".
    replay_kind: str = "recorded"

    @abstractmethod
    def describe(self) -> str:
        """One line saying what this market is (for logs and the stats endpoint)."""

    @abstractmethod
    def native_klines(self, kind: Kind, symbol: str) -> Mapping[str, Bars]:
        """The recorded or generated klines by native interval (resampling happens later)."""

    @abstractmethod
    def funding(self, symbol: str) -> Funding:
        """Funding events of a perpetual."""

    @abstractmethod
    def open_interest(self, symbol: str) -> Mapping[str, OpenInterest]:
        """Open-interest snapshots by native period (others are sampled from `5m`)."""

    @abstractmethod
    def metrics(self, symbol: str) -> Metrics:
        """The 5-minute rows of the archive's daily `metrics` files."""

    def raw_spot_day(self, symbol: str, day: date) -> bytes | None:
        """The recorded spot 1m archive CSV of a day, byte for byte, if there is one."""
        return None
