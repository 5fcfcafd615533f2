"""Backtest: positions, fees on every side, funding at 8-hour settlements, drawdown."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ml import backtest as bt
from ml.config import BacktestConfig

NO_COST = BacktestConfig(taker_fee_bps=0, slippage_bps=0, funding_rate_default=0, rebalance="bar")


def bars(returns: list[float], start: str = "2025-01-01 01:00") -> pd.DataFrame:
    times = pd.date_range(start, periods=len(returns), freq="5min", tz="UTC")
    return pd.DataFrame({"open_time": times, "fwd_ret_5m": np.log1p(returns)})


def test_positions_threshold_hold_and_long_only() -> None:
    signal = np.array([0.5, -0.5, 0.05, 2.0, -2.0, 0.0])
    assert bt.positions(signal, 0.1).tolist() == [1, -1, 0, 1, -1, 0]
    assert bt.positions(signal, 0.1, every=3).tolist() == [1, 1, 1, 1, 1, 1]
    assert bt.positions(signal, 0.1, long_only=True).tolist() == [1, 0, 0, 1, 0, 0]


def test_perfect_foresight_without_costs_compounds_every_move() -> None:
    returns = [0.01, -0.02, 0.03, -0.01]
    frame = bars(returns).assign(signal=np.sign(returns))
    result = bt.run(frame, "signal", 0.0, NO_COST, horizon_bars=1)
    assert result.strategy["total_return"] == pytest.approx(1.01 * 1.02 * 1.03 * 1.01 - 1)
    assert result.buy_and_hold["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 * 0.99 - 1)
    assert result.strategy["max_drawdown"] == 0.0


def test_fees_on_entry_exit_and_both_legs_of_a_flip() -> None:
    config = BacktestConfig(
        taker_fee_bps=5, slippage_bps=1, funding_rate_default=0, rebalance="bar"
    )
    frame = bars([0.0, 0.0, 0.0, 0.0]).assign(signal=[1.0, 1.0, -1.0, 0.0])
    result = bt.run(frame, "signal", 0.0, config, horizon_bars=1)
    traded = [1, 0, 2, 1]  # enter, hold, flip (2 units), exit
    np.testing.assert_allclose(result.curve["cost"], np.array(traded) * 6e-4)
    assert result.strategy["costs_paid"] == pytest.approx(4 * 6e-4)
    assert result.strategy["trades"] == 2
    # Buy and hold pays one entry and one exit.
    assert result.buy_and_hold["costs_paid"] == pytest.approx(2 * 6e-4)


def test_funding_is_paid_long_and_received_short_at_settlements() -> None:
    # The decision at the 07:50 bar's close holds 07:55 -> 08:00, across the 08:00 settlement;
    # the one at the 07:55 bar's close holds 08:00 -> 08:05, after it.
    frame = bars([0.0] * 5, start="2025-01-01 07:45").assign(signal=[1.0, 1.0, 1.0, -1.0, -1.0])
    rates = pd.Series([0.0003], index=pd.DatetimeIndex(["2025-01-01 08:00"], tz="UTC"))
    config = BacktestConfig(taker_fee_bps=0, slippage_bps=0, rebalance="bar")
    result = bt.run(frame, "signal", 0.0, config, horizon_bars=1, funding=rates)
    charged = result.curve.set_index("open_time")["funding"]
    assert charged[pd.Timestamp("2025-01-01 07:50", tz="UTC")] == pytest.approx(0.0003)
    assert charged.drop(pd.Timestamp("2025-01-01 07:50", tz="UTC")).eq(0).all()
    short = bars([0.0] * 3, start="2025-01-01 15:50").assign(signal=[-1.0] * 3)
    received = bt.run(short, "signal", 0.0, config, horizon_bars=1)  # default rate 0.01 %
    assert received.curve["funding"].sum() == pytest.approx(-0.0001)
    spot = BacktestConfig(instrument="spot", taker_fee_bps=0, slippage_bps=0, rebalance="bar")
    assert bt.run(frame, "signal", 0.0, spot, 1, rates).curve["funding"].eq(0).all()


def test_horizon_rebalance_holds_between_decisions() -> None:
    frame = bars([0.0] * 6).assign(signal=[1.0, -1.0, -1.0, -1.0, 1.0, 1.0])
    every_horizon = dataclasses.replace(NO_COST, rebalance="horizon")
    result = bt.run(frame, "signal", 0.0, every_horizon, horizon_bars=3)
    assert result.curve["position"].tolist() == [1, 1, 1, -1, -1, -1]


def test_max_drawdown_and_sharpe() -> None:
    assert bt.max_drawdown(np.array([1.1, 0.99, 1.2, 0.6])) == pytest.approx(0.6 / 1.2 - 1)
    assert bt.max_drawdown(np.array([0.9])) == pytest.approx(-0.1)
    rng = np.random.default_rng(0)
    frame = bars(list(rng.normal(0.0002, 0.001, 5000))).assign(signal=1.0)
    result = bt.run(frame, "signal", 0.0, NO_COST, horizon_bars=1)
    assert result.strategy["sharpe"] > 0
    assert result.strategy["exposure"] == 1.0 and result.strategy["days"] == pytest.approx(
        5000 / 288
    )
