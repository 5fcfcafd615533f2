"""Fixtures for the replay server tests: markets, a fake wall clock, servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replay import RealDataMarket, ReplayServer, SyntheticMarket, parse_moment

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_DATA = (REPO_ROOT / ".." / "shared" / "data" / "binance").resolve()

# The synthetic test market: two months of 1m bars; "now" sits inside February so the bar
# holding it is still open and later bars do not exist yet.
SYNTH_START = "2024-01-01"
SYNTH_END = "2024-03-01"
SYNTH_NOW = "2024-02-20T10:30:30Z"


class FakeWallClock:
    """Stands in for time.time() in the rate limiter, so tests never sleep."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def synthetic_market() -> SyntheticMarket:
    return SyntheticMarket(7, parse_moment(SYNTH_START), parse_moment(SYNTH_END))


@pytest.fixture
def wall_clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
def synthetic_url(synthetic_market: SyntheticMarket, wall_clock: FakeWallClock) -> Iterator[str]:
    with ReplayServer(synthetic_market, now=SYNTH_NOW, wall_clock=wall_clock) as url:
        yield url


@pytest.fixture
def client(synthetic_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=synthetic_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data/binance from the repo root; tests needing it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real Binance data not found at {REAL_DATA} (../shared/data from repo root)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_market(real_data_dir: Path) -> RealDataMarket:
    return RealDataMarket(real_data_dir)
