"""Synthetic regimes for the trainer's behaviour tests: a pure random walk and a planted effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from replay import SyntheticMarket, parse_moment
from replay.synthetic import PLANTED_LOADING

START, END = parse_moment("2024-01-01"), parse_moment("2024-02-01")


def five_minute_bars(regime: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(5m log returns, 5m taker imbalance, 1m log returns) of a month of BTCUSDT."""
    market = SyntheticMarket(seed, START, END, symbols=("BTCUSDT",), regime=regime)
    bars = market.native_klines("spot", "BTCUSDT")["1m"]
    n = len(bars.close) // 5 * 5
    close = bars.close[:n].reshape(-1, 5)[:, -1].astype(np.float64)
    volume = bars.volume[:n].reshape(-1, 5).sum(axis=1).astype(np.float64)
    buys = bars.taker_base[:n].reshape(-1, 5).sum(axis=1).astype(np.float64)
    imbalance = (2 * buys - volume) / volume
    minute = np.diff(np.log(bars.close.astype(np.float64)))
    return np.diff(np.log(close)), imbalance[:-1], minute


def autocorrelation(values: np.ndarray, lag: int = 1) -> float:
    centred = values - values.mean()
    return float((centred[lag:] * centred[:-lag]).mean() / (centred * centred).mean())


def test_unknown_regime_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown regime 'trending'"):
        SyntheticMarket(1, START, END, regime="trending")


def test_random_walk_has_no_predictable_structure() -> None:
    returns, imbalance, minute = five_minute_bars("random_walk")
    bound = 4 / np.sqrt(len(returns))  # four standard errors of a zero correlation
    assert abs(autocorrelation(returns)) < bound
    assert abs(np.corrcoef(imbalance, returns)[0, 1]) < bound
    # No volatility clustering either: |r| is i.i.d. too.
    assert abs(autocorrelation(np.abs(minute))) < 4 / np.sqrt(len(minute))


def test_random_walk_still_looks_like_a_market() -> None:
    market = SyntheticMarket(7, START, END, symbols=("BTCUSDT",), regime="random_walk")
    bars = market.native_klines("spot", "BTCUSDT")["1m"]
    returns = np.diff(np.log(bars.close.astype(np.float64)))
    centred = returns - returns.mean()
    assert (centred**4).mean() / (centred**2).mean() ** 2 > 3  # fat tails (Student-t shocks)
    hour = (bars.open_time // 3_600_000_000) % 24
    by_hour = np.array([bars.volume[hour == h].mean() for h in range(24)])
    assert by_hour.max() > 1.5 * by_hour.min()  # volume keeps its intraday rhythm
    assert np.all(bars.taker_base <= bars.volume) and np.all(bars.low <= bars.high)


def test_planted_effect_is_there_with_the_documented_size() -> None:
    returns, imbalance, _ = five_minute_bars("planted")
    correlation = np.corrcoef(imbalance, returns)[0, 1]
    expected = PLANTED_LOADING * imbalance.std()  # loading x spread, in 5m volatilities
    assert correlation > 0.08
    assert correlation == pytest.approx(expected, abs=0.05)


def test_regimes_are_deterministic_and_distinct() -> None:
    closes = {}
    for regime in ("default", "random_walk", "planted", "planted"):
        market = SyntheticMarket(3, START, parse_moment("2024-01-03"), regime=regime)
        closes.setdefault(regime, []).append(market.native_klines("spot", "BTCUSDT")["1m"].close)
    np.testing.assert_array_equal(*closes["planted"])
    assert not np.array_equal(closes["default"][0], closes["random_walk"][0])
    assert not np.array_equal(closes["random_walk"][0], closes["planted"][0])


def test_a_later_end_only_appends_in_every_regime() -> None:
    for regime in ("random_walk", "planted"):
        short = SyntheticMarket(5, START, parse_moment("2024-01-02"), regime=regime)
        long = SyntheticMarket(5, START, parse_moment("2024-01-04"), regime=regime)
        a = short.native_klines("spot", "BTCUSDT")["1m"]
        b = long.native_klines("spot", "BTCUSDT")["1m"]
        np.testing.assert_array_equal(a.close, b.close[: len(a.close)])


def test_cli_regime_option(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["replay", "serve", "--help"]).output
    assert "--regime" in help_text and "planted" in help_text
    out = tmp_path / "archive"
    result = runner.invoke(
        cli,
        [
            "replay", "export-archive", "--out", str(out), "--synthetic", "--regime", "planted",
            "--start", "2024-01-01", "--end", "2024-01-03", "--now", "2024-01-04T00:00:00Z",
            "--datasets", "spot-klines", "--granularity", "daily",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*.zip"))) == 2
    refused = runner.invoke(
        cli, ["replay", "serve", "--data", str(tmp_path), "--regime", "planted"]
    )
    assert refused.exit_code != 0
    assert "only apply to --synthetic" in refused.output
    bad = runner.invoke(cli, ["replay", "serve", "--synthetic", "--regime", "trending"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
