"""Trade a signal bar by bar after costs: taker fee and slippage per side, funding on perps.

A decision taken at bar t (when its features are known) sets the position held from t's
close to the next decision. Each bar earns position x the next 5m return (`fwd_ret_5m`, a
log return); every change of position pays `cost_per_side` per unit traded (entry, exit and
both legs of a flip); a perp position held across a funding time pays (long) or receives
(short) that settlement's rate. Buy-and-hold on the same instrument is the yardstick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.config import BacktestConfig

BARS_PER_YEAR = 365 * 288
FUNDING_HOURS = (0, 8, 16)  # Binance BTCUSDT settles every 8 h on these UTC hours


@dataclass
class BacktestResult:
    curve: pd.DataFrame  # per bar: position, gross, cost, funding, net, equity, buy_and_hold
    strategy: dict[str, float]
    buy_and_hold: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "buy_and_hold": self.buy_and_hold}


def positions(
    signal: np.ndarray,
    threshold: float,
    *,
    every: int = 1,
    long_only: bool = False,
) -> np.ndarray:
    """+1 / -1 / 0 from a signal, re-decided every `every` bars and held in between."""
    signal = np.asarray(signal, float)
    wanted = np.where(signal > threshold, 1.0, np.where(signal < -threshold, -1.0, 0.0))
    if long_only:
        wanted = np.maximum(wanted, 0.0)
    if every > 1:
        decision_rows = np.arange(len(signal)) // every * every
        wanted = wanted[decision_rows]
    return wanted


def funding_charges(
    times: pd.Series,
    held: np.ndarray,
    rates: pd.Series | None,
    default_rate: float,
) -> np.ndarray:
    """Per bar: position x rate for each settlement inside (bar close, bar close + 5m].

    The bar keyed at open time t closes at t + 5m; the position set then is held until
    t + 10m. The settled rate is read as of the first bar at or after the settlement
    (the rate the warehouse knows just after it); `default_rate` when unknown.
    """
    open_us = pd.to_datetime(times, utc=True).to_numpy(dtype="datetime64[us]").astype(np.int64)
    hour_us = 3_600_000_000
    held_from = open_us + 5 * 60_000_000
    held_to = held_from + 5 * 60_000_000
    # A settlement at T is in (from, to] iff T = ceil-to-hour(from+) and T <= to.
    next_hour = (held_from // hour_us + 1) * hour_us
    crosses = (next_hour <= held_to) & np.isin((next_hour // hour_us) % 24, FUNDING_HOURS)
    rate = np.full(len(open_us), default_rate)
    if rates is not None and len(rates):
        index_us = (
            pd.to_datetime(rates.index, utc=True).to_numpy(dtype="datetime64[us]").astype(np.int64)
        )
        position = np.searchsorted(index_us, next_hour, side="left")
        known = position < len(index_us)
        values = rates.to_numpy(dtype=float)
        rate = np.where(known, values[np.clip(position, 0, len(values) - 1)], default_rate)
        rate = np.where(np.isfinite(rate), rate, default_rate)
    return np.where(crosses, held * rate, 0.0)


def run(
    frame: pd.DataFrame,
    signal_column: str,
    threshold: float,
    config: BacktestConfig,
    horizon_bars: int,
    funding: pd.Series | None = None,
) -> BacktestResult:
    """Backtest `signal_column` of `frame` (needs open_time and fwd_ret_5m), time-ordered."""
    frame = frame.sort_values("open_time", kind="stable").reset_index(drop=True)
    returns = np.expm1(frame["fwd_ret_5m"].to_numpy(dtype=float))
    every = horizon_bars if config.rebalance == "horizon" else 1
    held = positions(
        frame[signal_column].to_numpy(),
        threshold,
        every=every,
        long_only=config.instrument == "spot",
    )
    strategy_curve = _simulate(frame["open_time"], returns, held, config, funding)
    hold = np.ones(len(frame))
    hold_curve = _simulate(frame["open_time"], returns, hold, config, funding)
    curve = strategy_curve.assign(buy_and_hold=hold_curve["equity"].to_numpy())
    return BacktestResult(
        curve=curve,
        strategy=summary(strategy_curve, held),
        buy_and_hold=summary(hold_curve, hold),
    )


def _simulate(
    times: pd.Series,
    returns: np.ndarray,
    held: np.ndarray,
    config: BacktestConfig,
    funding: pd.Series | None,
) -> pd.DataFrame:
    previous = np.concatenate([[0.0], held[:-1]])
    traded = np.abs(held - previous)
    if len(held):
        traded[-1] += abs(held[-1])  # close out at the end: exits are paid too
    cost = traded * config.cost_per_side
    if config.instrument == "perp":
        paid = funding_charges(times, held, funding, config.funding_rate_default)
    else:
        paid = np.zeros(len(held))
    gross = held * returns
    net = gross - cost - paid
    equity = np.cumprod(1.0 + net)
    return pd.DataFrame(
        {
            "open_time": times.to_numpy(),
            "position": held,
            "gross": gross,
            "cost": cost,
            "funding": paid,
            "net": net,
            "equity": equity,
        }
    )


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a (negative) fraction; starts from 1."""
    if not len(equity):
        return 0.0
    peaks = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float((equity / peaks - 1.0).min())


def _annualised(final_equity: float, bars: int) -> float:
    """Compound growth per year; a few bars of data can make it astronomically large."""
    if final_equity <= 0:
        return -1.0
    exponent = math.log(final_equity) * BARS_PER_YEAR / bars
    return math.expm1(min(exponent, 700.0))


def summary(curve: pd.DataFrame, held: np.ndarray) -> dict[str, float]:
    net = curve["net"].to_numpy()
    n = len(net)
    if n == 0:
        return {"bars": 0.0}
    equity = curve["equity"].to_numpy()
    sd = float(net.std(ddof=1)) if n > 1 else 0.0
    days = n / 288
    changes = np.abs(np.diff(np.concatenate([[0.0], held])))
    entries = int(((held != 0) & (np.concatenate([[0.0], held[:-1]]) != held)).sum())
    return {
        "bars": float(n),
        "days": float(days),
        "total_return": float(equity[-1] - 1.0),
        "annual_return": _annualised(float(equity[-1]), n),
        "annual_volatility": sd * math.sqrt(BARS_PER_YEAR),
        "sharpe": float(net.mean() / sd * math.sqrt(BARS_PER_YEAR)) if sd > 0 else 0.0,
        "max_drawdown": max_drawdown(equity),
        "turnover_per_day": float(changes.sum() / days) if days else 0.0,
        "trades": float(entries),
        "exposure": float((held != 0).mean()),
        "costs_paid": float(curve["cost"].sum()),
        "funding_paid": float(curve["funding"].sum()),
    }
