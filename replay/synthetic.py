"""A seeded synthetic market that looks like BTC: the offline default for demos and tests.

1m spot returns follow GARCH(1,1) with Student-t innovations on top of a slow hourly
log-volatility regime and an intraday/weekly seasonality; volume, trade counts and taker flow
follow volatility and the calendar. The perpetual trades at spot x (1 + basis) with the basis
an AR(1) that moves with returns; it is also the premium index, the mark price tracks the
perpetual, funding settles every 8 h from the average premium, and open interest is a
mean-reverting random walk sampled every 5 minutes.

Random draws are keyed by (seed, symbol, stream, UTC day), so one seed gives the same bytes
on every run and a later end date only appends to the same history.

Regimes (for the trainer's behaviour tests; `default` is the market above):
- `random_walk`: i.i.d. Student-t 1m returns at a constant volatility, no reflection at the
  price band: nothing in the past predicts the next return. Volume, trade counts and taker
  flow keep their calendar and their link to the same minute's move, so they look real.
- `planted`: the random walk plus one known effect: the log return of every 5-minute bar
  has a mean of `PLANTED_LOADING` x (one 5m bar's volatility) x the spot taker imbalance of
  the bar before it (`(2 taker buys - volume) / volume`, the warehouse's `taker_imbalance`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from replay.clock import US_PER_DAY, US_PER_HOUR, US_PER_MINUTE, us_to_datetime
from replay.fixed import ONE, round_to_grid
from replay.market import (
    FORMATS,
    Bars,
    Funding,
    Kind,
    MarketData,
    Metrics,
    OpenInterest,
)

_FIVE_MIN_US = 5 * US_PER_MINUTE
_FUNDING_US = 8 * US_PER_HOUR
_INTEREST = 0.0001  # Binance's 0.01 % interest component per 8 h
_PREMIUM_CLAMP = 0.0005
_FUNDING_CAP = 0.003
_STUDENT_DF = 5.0
_GARCH_ALPHA = 0.05
_GARCH_BETA = 0.93

REGIMES = ("default", "random_walk", "planted")
#: Planted effect: next 5m bar's expected log return per unit of taker imbalance, in units of
#: one 5m bar's volatility (sqrt(5) minute volatilities). With the imbalance's spread (~0.15
#: at 5m) it gives a correlation of about 0.15 between imbalance and the next 5m return (and,
#: as buyers lean with the bar's own move, a 5m return autocorrelation of about 0.1).
PLANTED_LOADING = 1.0


@dataclass(frozen=True)
class SymbolProfile:
    """What makes one synthetic symbol look like itself."""

    symbol: str
    index: int
    price_low: float
    price_high: float
    annual_vol: float
    volume_per_minute: float  # spot, base asset
    trade_size: float
    perp_volume_ratio: float
    perp_trade_size: float
    open_interest: float  # contracts


PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(
        "BTCUSDT", 0, 60_000.0, 110_000.0, 0.55, 12.0, 0.01, 6.0, 0.05, 80_000.0
    ),
    "ETHUSDT": SymbolProfile(
        "ETHUSDT", 1, 1_800.0, 4_200.0, 0.70, 250.0, 0.2, 5.0, 1.0, 2_000_000.0
    ),
}


@dataclass(frozen=True)
class _SymbolData:
    klines: dict[Kind, Bars]
    funding: Funding
    open_interest: OpenInterest
    metrics: Metrics


class SyntheticMarket(MarketData):
    """Seeded BTC-like market covering 1m bars with open time in [start_us, end_us)."""

    replay_kind = "synthetic"

    def __init__(
        self,
        seed: int,
        start_us: int,
        end_us: int,
        symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
        regime: str = "default",
    ) -> None:
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; choose from {', '.join(REGIMES)}")
        unknown = [s for s in symbols if s not in PROFILES]
        if unknown:
            raise ValueError(f"no synthetic profile for {unknown}; known: {sorted(PROFILES)}")
        start_us = start_us // US_PER_MINUTE * US_PER_MINUTE
        if end_us <= start_us:
            raise ValueError("synthetic market end must be after its start")
        if start_us < 0:
            raise ValueError("synthetic market cannot start before 1970")
        self.seed = seed
        self.start_us = start_us
        self.end_us = end_us
        self.symbols = tuple(symbols)
        self.regime = regime
        self._data: dict[str, _SymbolData] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        start = us_to_datetime(self.start_us).isoformat()
        end = us_to_datetime(self.end_us).isoformat()
        regime = "" if self.regime == "default" else f" regime={self.regime}"
        return (
            f"synthetic seed={self.seed} {start} -> {end} symbols={','.join(self.symbols)}{regime}"
        )

    def native_klines(self, kind: Kind, symbol: str) -> Mapping[str, Bars]:
        return {"1m": self._symbol(symbol).klines[kind]}

    def funding(self, symbol: str) -> Funding:
        return self._symbol(symbol).funding

    def open_interest(self, symbol: str) -> Mapping[str, OpenInterest]:
        return {"5m": self._symbol(symbol).open_interest}

    def metrics(self, symbol: str) -> Metrics:
        return self._symbol(symbol).metrics

    def _symbol(self, symbol: str) -> _SymbolData:
        with self._lock:
            if symbol not in self._data:
                self._data[symbol] = _Generator(self.seed, PROFILES[symbol], self.regime).run(
                    self.start_us, self.end_us
                )
            return self._data[symbol]


class _Generator:
    """Generates one symbol; every random stream has its own number (keep them stable)."""

    def __init__(self, seed: int, profile: SymbolProfile, regime: str = "default") -> None:
        self.seed = seed
        self.profile = profile
        self.regime = regime

    def draws(
        self,
        stream: int,
        slots: np.ndarray,
        per_day: int,
        draw: Callable[[np.random.Generator, int], np.ndarray],
    ) -> np.ndarray:
        """Values for contiguous ascending slots (per_day slots a UTC day), keyed by day."""
        out = np.empty(len(slots), dtype=np.float64)
        if not len(slots):
            return out
        days = slots // per_day
        for day in range(int(days[0]), int(days[-1]) + 1):
            lo, hi = np.searchsorted(days, [day, day + 1])
            rng = np.random.default_rng([self.seed, self.profile.index, stream, day])
            out[lo:hi] = draw(rng, per_day)[slots[lo:hi] - day * per_day]
        return out

    def normal(self, stream: int, slots: np.ndarray, per_day: int = 1440) -> np.ndarray:
        return self.draws(stream, slots, per_day, lambda rng, n: rng.standard_normal(n))

    def run(self, start_us: int, end_us: int) -> _SymbolData:
        p = self.profile
        count = -(-(end_us - start_us) // US_PER_MINUTE)
        open_time = start_us + np.arange(count, dtype=np.int64) * US_PER_MINUTE
        minutes = open_time // US_PER_MINUTE
        hour_of_day = (open_time % US_PER_DAY) / US_PER_HOUR
        weekday = ((open_time // US_PER_DAY) + 3) % 7  # 0 = Monday; the epoch was a Thursday
        season = 1.0 + 0.35 * np.cos(2 * np.pi * (hour_of_day - 14.5) / 24.0)
        season *= np.where(weekday >= 5, 0.6, 1.0)

        iid = self.regime != "default"
        # i.i.d. regimes: no slow volatility regime (volume keeps its calendar).
        regime = np.ones(len(open_time)) if iid else self._slow_regime(open_time)
        scale = np.sqrt(_STUDENT_DF / (_STUDENT_DF - 2.0))
        shocks = self.draws(0, minutes, 1440, lambda rng, n: rng.standard_t(_STUDENT_DF, n)) / scale
        basis_noise = self.normal(7, minutes)
        unit, sd, basis = _garch_and_basis(shocks, basis_noise, garch=not iid)
        minute_vol = p.annual_vol / math.sqrt(525_600.0)
        sigma = minute_vol * regime if iid else minute_vol * np.sqrt(season) * regime
        returns = sigma * unit
        if self.regime == "planted":
            returns = returns + self._planted_drift(open_time, season, regime, sd, unit, minutes)

        rng0 = np.random.default_rng([self.seed, p.index, 99])
        lo_log, hi_log = math.log(p.price_low), math.log(p.price_high)
        start_log = lo_log + (0.25 + 0.5 * rng0.random()) * (hi_log - lo_log)
        # The reflection at the price band is predictable near its edges: i.i.d. regimes go free.
        path = start_log + np.cumsum(returns)
        log_price = path if iid else _fold(path, lo_log, hi_log)
        price = np.exp(log_price)
        first_price = math.exp(start_log)

        wick_up = np.exp(sigma * sd * np.abs(self.normal(1, minutes)) * 0.6)
        wick_down = np.exp(-sigma * sd * np.abs(self.normal(2, minutes)) * 0.6)
        vwap_weight = np.clip(0.5 + 0.18 * self.normal(5, minutes), 0.05, 0.95)

        spot = self._spot(
            price, first_price, wick_up, wick_down, vwap_weight, season, regime, sd, unit, minutes
        )
        perp_price = price * (1.0 + basis)
        perp = self._perp(
            perp_price,
            first_price * (1.0 + basis[0]),
            wick_up,
            wick_down,
            vwap_weight,
            spot,
            minutes,
        )
        mark = self._mark(perp_price, first_price, wick_up, wick_down, minutes)
        premium = self._premium(basis, minutes)
        close_time = open_time + (US_PER_MINUTE - 1)
        spot, perp, mark, premium = (
            replace(bars, open_time=open_time, close_time=close_time)
            for bars in (spot, perp, mark, premium)
        )
        funding = self._funding(premium, mark, start_us, end_us)
        open_interest, metrics = self._open_interest(spot, mark, perp, start_us, end_us)
        return _SymbolData(
            {"spot": spot, "perp": perp, "mark": mark, "premium": premium},
            funding,
            open_interest,
            metrics,
        )

    def _planted_drift(
        self,
        open_time: np.ndarray,
        season: np.ndarray,
        regime: np.ndarray,
        sd: np.ndarray,
        unit: np.ndarray,
        minutes: np.ndarray,
    ) -> np.ndarray:
        """Per-minute drift: each 5m bar's mean return loads on the previous bar's imbalance.

        The imbalance is computed from the same draws `_spot` turns into volume and taker buys
        (before their rounding to the exchange's steps, a relative error below 1e-6).
        """
        volume = self._volume_float(season, regime, sd, unit, minutes)
        buys = volume * self._buy_share(unit, minutes)
        bucket = open_time // _FIVE_MIN_US
        first = int(bucket[0])
        index = (bucket - first).astype(np.int64)
        bar_volume = np.bincount(index, weights=volume)
        bar_buys = np.bincount(index, weights=buys)
        imbalance = (2.0 * bar_buys - bar_volume) / np.maximum(bar_volume, 1e-12)
        # A bar whose minutes start mid-bar (the market's first) still defines the next one.
        previous = np.concatenate([[0.0], imbalance[:-1]])
        minute_vol = self.profile.annual_vol / math.sqrt(525_600.0)
        per_minute = PLANTED_LOADING * math.sqrt(5.0) * minute_vol / 5.0
        return per_minute * previous[index]

    def _volume_float(
        self,
        season: np.ndarray,
        regime: np.ndarray,
        sd: np.ndarray,
        unit: np.ndarray,
        minutes: np.ndarray,
    ) -> np.ndarray:
        """Spot base volume per minute before rounding: calendar x activity x noise."""
        activity = (regime * sd) ** 0.8 * (1.0 + 0.6 * np.abs(unit)) / 1.5
        lognormal = np.exp(0.4 * self.normal(3, minutes) - 0.08)
        return self.profile.volume_per_minute * season * activity * lognormal

    def _buy_share(self, unit: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        """Taker buys' share of spot volume: leans with the minute's own move."""
        return np.clip(0.5 + 0.2 * np.tanh(unit) + 0.08 * self.normal(6, minutes), 0.02, 0.98)

    def _slow_regime(self, open_time: np.ndarray) -> np.ndarray:
        """exp of an hourly AR(1) log-volatility (half-life ~6 days), interpolated to minutes."""
        first_hour = int(open_time[0] // US_PER_HOUR)
        hours = np.arange(first_hour, int(open_time[-1] // US_PER_HOUR) + 2, dtype=np.int64)
        noise = self.normal(10, hours, per_day=24).tolist()
        phi, sd = 0.995, 0.35
        step = sd * math.sqrt(1 - phi * phi)
        level = sd * noise[0]
        path = []
        for value in noise:
            level = phi * level + step * value
            path.append(level)
        at = open_time / US_PER_HOUR
        return np.exp(np.interp(at, hours.astype(np.float64), np.array(path)) - sd * sd / 2)

    def _spot(
        self,
        price: np.ndarray,
        first_price: float,
        wick_up: np.ndarray,
        wick_down: np.ndarray,
        vwap_weight: np.ndarray,
        season: np.ndarray,
        regime: np.ndarray,
        sd: np.ndarray,
        unit: np.ndarray,
        minutes: np.ndarray,
    ) -> Bars:
        p, fmt = self.profile, FORMATS["spot"]
        tick = 10**6  # 0.01 USDT
        close = round_to_grid(price * ONE, tick)
        open_ = np.concatenate([round_to_grid(np.array([first_price * ONE]), tick), close[:-1]])
        high, low = _wicks(open_, close, wick_up, wick_down, tick)
        volume_float = self._volume_float(season, regime, sd, unit, minutes)
        volume = np.maximum(round_to_grid(volume_float * ONE, 1_000), 1_000)  # 0.00001 step
        trades = np.maximum(
            1, np.rint(volume_float / p.trade_size * np.exp(0.25 * self.normal(4, minutes)))
        ).astype(np.int64)
        buy_share = self._buy_share(unit, minutes)
        return _flows(
            open_,
            high,
            low,
            close,
            volume,
            trades,
            buy_share,
            vwap_weight,
            fmt.quote_step,
            fmt.volume_step,
        )

    def _perp(
        self,
        perp_price: np.ndarray,
        first_price: float,
        wick_up: np.ndarray,
        wick_down: np.ndarray,
        vwap_weight: np.ndarray,
        spot: Bars,
        minutes: np.ndarray,
    ) -> Bars:
        p, fmt = self.profile, FORMATS["perp"]
        tick = 10**7 if p.price_high > 10_000 else 10**6  # BTC 0.1, ETH 0.01 USDT
        close = round_to_grid(perp_price * ONE, tick)
        open_ = np.concatenate([round_to_grid(np.array([first_price * ONE]), tick), close[:-1]])
        high, low = _wicks(open_, close, wick_up, wick_down, tick)
        ratio = p.perp_volume_ratio * np.exp(0.2 * self.normal(8, minutes) - 0.02)
        volume_float = spot.volume / ONE * ratio
        volume = np.maximum(round_to_grid(volume_float * ONE, fmt.volume_step), fmt.volume_step)
        trades = np.maximum(
            1, np.rint(volume_float / p.perp_trade_size * np.exp(0.25 * self.normal(9, minutes)))
        ).astype(np.int64)
        spot_share = spot.taker_base / np.maximum(spot.volume, 1)
        buy_share = np.clip(spot_share + 0.03 * self.normal(11, minutes), 0.02, 0.98)
        return _flows(
            open_,
            high,
            low,
            close,
            volume,
            trades,
            buy_share,
            vwap_weight,
            fmt.quote_step,
            fmt.volume_step,
        )

    def _mark(
        self,
        perp_price: np.ndarray,
        first_price: float,
        wick_up: np.ndarray,
        wick_down: np.ndarray,
        minutes: np.ndarray,
    ) -> Bars:
        close = np.rint(perp_price * (1.0 + 2e-6 * self.normal(12, minutes)) * ONE).astype(np.int64)
        open_ = np.concatenate([np.array([round(first_price * ONE)], dtype=np.int64), close[:-1]])
        high, low = _wicks(open_, close, wick_up**0.7, wick_down**0.7, 1)
        zero = np.zeros(len(close), dtype=np.int64)
        return Bars("1m", zero, zero, open_, high, low, close, zero, zero, zero + 60, zero, zero)

    def _premium(self, basis: np.ndarray, minutes: np.ndarray) -> Bars:
        close = np.rint(basis * ONE).astype(np.int64)
        open_ = np.concatenate([close[:1], close[:-1]])
        spread = np.abs(self.normal(13, minutes)) * 4e-6 * ONE
        high = np.maximum(open_, close) + np.rint(spread).astype(np.int64)
        low = np.minimum(open_, close) - np.rint(
            np.abs(self.normal(14, minutes)) * 4e-6 * ONE
        ).astype(np.int64)
        zero = np.zeros(len(close), dtype=np.int64)
        return Bars("1m", zero, zero, open_, high, low, close, zero, zero, zero + 12, zero, zero)

    def _funding(self, premium: Bars, mark: Bars, start_us: int, end_us: int) -> Funding:
        """Every 8 h: average premium + clamp(interest - premium, +-0.05 %), capped, jittered."""
        first = (start_us // _FUNDING_US + 1) * _FUNDING_US
        times = np.arange(first, end_us + 1, _FUNDING_US, dtype=np.int64)
        cumulative = np.concatenate([[0.0], np.cumsum(premium.close / ONE)])
        lo = np.searchsorted(premium.open_time, times - _FUNDING_US)
        hi = np.searchsorted(premium.open_time, times)
        keep = hi > lo
        times, lo, hi = times[keep], lo[keep], hi[keep]
        average = (cumulative[hi] - cumulative[lo]) / (hi - lo)
        rate = average + np.clip(_INTEREST - average, -_PREMIUM_CLAMP, _PREMIUM_CLAMP)
        rate_fixed = np.rint(np.clip(rate, -_FUNDING_CAP, _FUNDING_CAP) * ONE).astype(np.int64)
        jitter_ms = np.array(
            [self._jitter_ms(int(t // _FUNDING_US)) for t in times.tolist()], dtype=np.int64
        )
        return Funding(
            time=times + jitter_ms * 1_000,
            rate=rate_fixed,
            mark_price=mark.close[hi - 1],
            has_mark_price=np.ones(len(times), dtype=bool),
            interval_hours=np.full(len(times), 8, dtype=np.int64),
        )

    def _jitter_ms(self, slot: int) -> int:
        """Binance's fundingTime lands 0-16 ms after the hour, most often exactly on it."""
        rng = np.random.default_rng([self.seed, self.profile.index, 20, slot])
        return 0 if rng.random() < 0.45 else int(rng.integers(1, 17))

    def _open_interest(
        self, spot: Bars, mark: Bars, perp: Bars, start_us: int, end_us: int
    ) -> tuple[OpenInterest, Metrics]:
        p = self.profile
        first = -(-start_us // _FIVE_MIN_US) * _FIVE_MIN_US
        times = np.arange(first, end_us + 1, _FIVE_MIN_US, dtype=np.int64)
        index = np.searchsorted(mark.open_time, times)
        before = np.clip(index - 1, 0, len(mark) - 1)
        price = np.where(
            index < len(mark), mark.open[np.clip(index, 0, len(mark) - 1)], mark.close[before]
        )
        spot_close = np.where(index > 0, spot.close[before], spot.open[0]).astype(np.float64)
        move = np.abs(np.diff(np.log(spot_close), prepend=math.log(spot_close[0])))
        move -= move.mean()  # big moves shed open interest; calm periods rebuild it
        slots = times // _FIVE_MIN_US
        shocks = self.normal(30, slots, per_day=288).tolist()
        level, path = 0.0, []
        for shock, jump in zip(shocks, move.tolist(), strict=True):
            level = 0.9995 * level + 0.004 * shock - 0.3 * jump
            path.append(level)
        contracts = p.open_interest * np.exp(np.array(path))
        oi = round_to_grid(contracts * ONE, 10**5)  # 0.001 contract step
        value = np.rint(oi / ONE * price.astype(np.float64)).astype(np.int64)
        open_interest = OpenInterest(times, oi, value)

        def ratio(stream: int, centre: float) -> np.ndarray:
            noise = self.normal(stream, slots, per_day=288).tolist()
            level, out = 0.0, []
            for value in noise:
                level = 0.995 * level + 0.02 * value
                out.append(level)
            return np.rint(centre * np.exp(np.array(out)) * ONE).astype(np.int64)

        cum_buy = np.concatenate([[0], np.cumsum(perp.taker_base)])
        cum_volume = np.concatenate([[0], np.cumsum(perp.volume)])
        lo = np.searchsorted(perp.open_time, times - _FIVE_MIN_US)
        buy = (cum_buy[index] - cum_buy[lo]).astype(np.float64)
        sell = (cum_volume[index] - cum_volume[lo]).astype(np.float64) - buy
        taker = np.where(sell > 0, buy / np.where(sell > 0, sell, 1.0), 1.0)
        metrics = Metrics(
            open_interest,
            count_toptrader_long_short_ratio=ratio(31, 1.6),
            sum_toptrader_long_short_ratio=ratio(32, 1.3),
            count_long_short_ratio=ratio(33, 1.8),
            sum_taker_long_short_vol_ratio=np.rint(taker * ONE).astype(np.int64),
        )
        return open_interest, metrics


def _garch_and_basis(
    shocks: np.ndarray, basis_noise: np.ndarray, *, garch: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-variance GARCH(1,1) returns, their conditional sd, and the AR(1) basis.

    Without `garch` the returns are the shocks themselves (sd 1): i.i.d.
    Sequential by nature; a plain-float loop runs a year of minutes in well under a second.
    """
    if not garch:
        return shocks, np.ones(len(shocks)), _basis(shocks, basis_noise)
    omega = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    mean_basis, phi, push, step = -0.0003, 0.998, 5e-6, 8e-6
    units, sds, basis = [], [], []
    variance, previous, level = 1.0, 0.0, mean_basis
    sqrt = math.sqrt
    for shock, noise in zip(shocks.tolist(), basis_noise.tolist(), strict=True):
        variance = min(omega + _GARCH_ALPHA * previous * previous + _GARCH_BETA * variance, 25.0)
        sd = sqrt(variance)
        previous = sd * shock
        level = mean_basis + phi * (level - mean_basis) + push * previous + step * noise
        units.append(previous)
        sds.append(sd)
        basis.append(level)
    return np.array(units), np.array(sds), np.array(basis)


def _basis(units: np.ndarray, basis_noise: np.ndarray) -> np.ndarray:
    """The AR(1) basis of `_garch_and_basis`, pushed by the given unit returns."""
    mean_basis, phi, push, step = -0.0003, 0.998, 5e-6, 8e-6
    basis, level = [], mean_basis
    for previous, noise in zip(units.tolist(), basis_noise.tolist(), strict=True):
        level = mean_basis + phi * (level - mean_basis) + push * previous + step * noise
        basis.append(level)
    return np.array(basis)


def _fold(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Reflect a path into [low, high]; increments keep their size, only their sign flips."""
    width = high - low
    phase = np.mod(values - low, 2 * width)
    return low + np.where(phase <= width, phase, 2 * width - phase)


def _wicks(
    open_: np.ndarray, close: np.ndarray, up: np.ndarray, down: np.ndarray, tick: int
) -> tuple[np.ndarray, np.ndarray]:
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = np.maximum(round_to_grid(top * up, tick, "up"), top)
    low = np.minimum(round_to_grid(bottom * down, tick, "down"), bottom)
    return high, np.maximum(low, tick)


def _flows(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    trades: np.ndarray,
    buy_share: np.ndarray,
    vwap_weight: np.ndarray,
    quote_step: int,
    volume_step: int,
) -> Bars:
    """Quote and taker volumes consistent with volume: vwap inside [low, high], buys <= total."""
    vwap = low + (high - low) * vwap_weight
    quote = round_to_grid(volume / ONE * vwap, quote_step)
    taker_base = np.minimum(round_to_grid(volume * buy_share, volume_step, "down"), volume)
    taker_quote = np.minimum(round_to_grid(taker_base / ONE * vwap, quote_step), quote)
    zero = np.zeros(len(close), dtype=np.int64)
    return Bars(
        "1m", zero, zero, open_, high, low, close, volume, quote, trades, taker_base, taker_quote
    )
