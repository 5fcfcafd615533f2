"""The synthetic market looks like BTC (stylised facts) and is deterministic by seed."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, datetime

import httpx
import numpy as np
import pyarrow.csv as pacsv
import pytest

from replay import ReplayServer, SyntheticMarket, parse_moment

JANUARY = "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip"


@pytest.fixture(scope="module")
def january(synthetic_market: SyntheticMarket) -> np.ndarray:
    """A month of synthetic 1m spot bars, fetched as the archive serves them."""
    with ReplayServer(synthetic_market, now="2024-02-20T10:30:30Z") as url:
        data = httpx.get(url + JANUARY).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read(archive.namelist()[0])
    options = pacsv.ReadOptions(autogenerate_column_names=True)
    table = pacsv.read_csv(io.BytesIO(text), read_options=options)
    return np.column_stack([table.column(i).to_numpy().astype(np.float64) for i in range(11)])


def test_fat_tails(january: np.ndarray) -> None:
    returns = np.diff(np.log(january[:, 4]))
    centred = returns - returns.mean()
    kurtosis = (centred**4).mean() / (centred**2).mean() ** 2
    assert kurtosis > 3


def test_volatility_clusters(january: np.ndarray) -> None:
    size = np.abs(np.diff(np.log(january[:, 4])))
    size -= size.mean()
    autocorrelation = (size[1:] * size[:-1]).mean() / (size * size).mean()
    assert autocorrelation > 0.05


def test_weekend_volume_is_lower(january: np.ndarray) -> None:
    weekday = np.array([datetime.fromtimestamp(t / 1000, tz=UTC).weekday() for t in january[:, 0]])
    weekend = january[weekday >= 5, 5].mean()
    working = january[weekday < 5, 5].mean()
    assert weekend < 0.85 * working


def test_intraday_volume_has_a_rhythm(january: np.ndarray) -> None:
    hour = (january[:, 0] // 3_600_000) % 24
    by_hour = np.array([january[hour == h, 5].mean() for h in range(24)])
    assert by_hour.max() > 1.5 * by_hour.min()


def test_ohlc_and_flows_are_consistent(january: np.ndarray) -> None:
    _, o, h, low, c, volume, _, quote, trades, taker, taker_quote = january.T
    assert np.all(low <= np.minimum(o, c)) and np.all(np.maximum(o, c) <= h)
    assert np.all(volume > 0) and np.all(trades >= 1)
    assert np.all(taker <= volume) and np.all(taker_quote <= quote)
    vwap = quote / volume
    assert np.all(vwap >= low * (1 - 1e-9)) and np.all(vwap <= h * (1 + 1e-9))
    assert low.min() >= 60_000 and h.max() <= 110_000.01
    np.testing.assert_array_equal(o[1:], c[:-1])  # each bar opens at the previous close


def test_funding_every_8_hours_with_jitter(client: httpx.Client) -> None:
    rows = client.get(
        "/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "startTime": 0, "limit": 1000}
    ).json()
    times = np.array([r["fundingTime"] for r in rows])
    jitter = times % 3_600_000
    assert jitter.min() >= 0 and jitter.max() <= 16 and len(set(jitter.tolist())) > 5
    hours = (times // 3_600_000) % 24
    assert set(hours.tolist()) == {0, 8, 16}
    assert set(np.diff(times // 3_600_000).tolist()) == {8}
    rates = np.array([float(r["fundingRate"]) for r in rows])
    assert np.abs(rates).max() <= 0.003
    assert np.mean(rates == 0.0001) > 0.3  # the interest rate whenever the premium is small


def test_premium_drives_funding(client: httpx.Client) -> None:
    rows = client.get(
        "/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "startTime": 0, "limit": 30}
    ).json()
    for row in rows[1:6]:
        hour_ms = row["fundingTime"] // 3_600_000 * 3_600_000
        premium = client.get(
            "/fapi/v1/premiumIndexKlines",
            params={"symbol": "BTCUSDT", "interval": "8h", "endTime": hour_ms - 1, "limit": 1},
        ).json()[0]
        assert premium[0] == hour_ms - 8 * 3_600_000
        assert abs(float(premium[4])) < 0.003


def test_open_interest_is_a_bounded_walk(client: httpx.Client) -> None:
    rows = client.get(
        "/futures/data/openInterestHist",
        params={"symbol": "BTCUSDT", "period": "1h", "limit": 500},
    ).json()
    contracts = np.array([float(r["sumOpenInterest"]) for r in rows])
    assert contracts.min() > 20_000 and contracts.max() < 300_000
    assert np.abs(np.diff(np.log(contracts))).max() < 0.1


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    start, end = parse_moment("2024-03-01"), parse_moment("2024-03-03")
    params = {"symbol": "BTCUSDT", "interval": "1m", "startTime": 0, "limit": 1000}
    bodies = []
    for seed in (11, 11, 12):
        with ReplayServer(SyntheticMarket(seed, start, end), now="2024-03-05T00:00:00Z") as url:
            bodies.append(httpx.get(f"{url}/api/v3/klines", params=params).content)
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_a_later_end_only_appends() -> None:
    start = parse_moment("2024-03-01")
    short = SyntheticMarket(5, start, parse_moment("2024-03-02"), symbols=("BTCUSDT",))
    long = SyntheticMarket(5, start, parse_moment("2024-03-04"), symbols=("BTCUSDT",))
    a = short.native_klines("spot", "BTCUSDT")["1m"]
    b = long.native_klines("spot", "BTCUSDT")["1m"]
    np.testing.assert_array_equal(a.close, b.close[: len(a)])
    np.testing.assert_array_equal(a.volume, b.volume[: len(a)])


def test_a_year_generates_in_seconds() -> None:
    began = time.perf_counter()
    market = SyntheticMarket(
        3, parse_moment("2023-01-01"), parse_moment("2024-01-01"), symbols=("BTCUSDT",)
    )
    bars = market.native_klines("spot", "BTCUSDT")["1m"]
    market.funding("BTCUSDT")
    elapsed = time.perf_counter() - began
    assert len(bars) == 365 * 1440
    assert elapsed < 8  # ~1 s on an idle core; slack for loaded CI machines
