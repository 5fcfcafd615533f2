"""Live-loop states for the API tests, written with the loop's own writer
(pipeline.live_state.write_state), and a small published warehouse (one 5m bar per mart,
close 100 at 2025-01-01 00:00, published by the real `publish`) for tests that need a served
file but not a trained model."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.settings import ApiSettings
from pipeline import publish
from pipeline.live_state import LiveState, Quote, write_state
from tests.api.apipipeline import IN_PROCESS_HOSTS
from tests.api.publishfixtures import make_build, write_run_results

#: The small warehouse's one bar: open 00:00, closes (available) 00:05, close 100.
SMALL_BAR_AVAILABLE_AT = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)


def live_state(
    exchange_now: datetime,
    quotes: dict[tuple[str, str], float],
    *,
    heartbeat_age_s: float = 0.0,
    quote_age_s: float = 1.0,
    clock_rate: float = 10.0,
    stale_after_s: float = 10.0,
    status: str = "following",
    reasons: tuple[str, ...] = (),
) -> LiveState:
    """A state whose last turn was `heartbeat_age_s` wall seconds ago, at `exchange_now` on
    the exchange's clock, with a quote per (symbol, market) read `quote_age_s` before it."""
    wall = datetime.now(UTC) - timedelta(seconds=heartbeat_age_s)
    minute = exchange_now.replace(second=0, microsecond=0)
    at = exchange_now - timedelta(seconds=quote_age_s)
    return LiveState(
        pid=os.getpid(),
        status=status,  # type: ignore[arg-type]
        started_at=wall - timedelta(minutes=5),
        heartbeat_at=wall,
        exchange_now=exchange_now,
        clock_rate=clock_rate,
        stale_after_s=stale_after_s,
        newest_bar={f"{s}/{m}": minute - timedelta(minutes=1) for s, m in quotes},
        last_publish_at=wall - timedelta(seconds=30),
        published_bar={s: minute - timedelta(minutes=5) for s, _ in quotes},
        reasons=list(reasons),
        quotes=[
            Quote(symbol=s, market=m, price=p, open_time=minute, at=at)  # type: ignore[arg-type]
            for (s, m), p in quotes.items()
        ],
    )


def write_live(path: Path, state: LiveState) -> None:
    write_state(path, state)


@dataclass(frozen=True)
class SmallServed:
    root: Path

    @property
    def live_state(self) -> Path:
        return self.root / "live" / "state.json"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BTCFS_", "DBT_"))}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            DBT_TARGET_PATH=str(self.root / "target"),
            BTCFS_API_ALLOWED_HOSTS=IN_PROCESS_HOSTS,
            **extra,
        )
        return env

    def settings(self, **extra: str) -> ApiSettings:
        return ApiSettings.from_env(self.env(**extra))


def small_served(root: Path) -> SmallServed:
    """A data dir whose serve.duckdb holds one BTCUSDT bar per mart (spot and perp)."""
    write_run_results(root / "target")
    make_build(root / "warehouse" / "build.duckdb", close=100.0)
    publish(
        target_path=root / "target",
        warehouse=root / "warehouse" / "build.duckdb",
        serve=root / "warehouse" / "serve.duckdb",
        registry_root=root / "registry",
    )
    return SmallServed(root)


class LiveLoopStandIn(threading.Thread):
    """Writes a state file every `every_s` as `btcfs live` does (its own writer), so the
    heartbeat stays fresh for as long as a browser test runs: `prices` are the open bars'
    quotes; `frozen` stops the heartbeat (the file stays, its last turn ages). The exchange
    clock starts at `exchange_start` and runs at `clock_rate` x the wall."""

    def __init__(
        self,
        path: Path,
        exchange_start: datetime,
        prices: dict[tuple[str, str], float],
        *,
        every_s: float = 0.5,
        clock_rate: float = 1.0,
        stale_after_s: float = 3.0,
    ) -> None:
        super().__init__(name="live-loop-stand-in", daemon=True)
        self.path = path
        self.prices = dict(prices)
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.every_s = every_s
        self.clock_rate = clock_rate
        self.stale_after_s = stale_after_s
        self._wall0 = datetime.now(UTC)
        self._exchange0 = exchange_start
        self.turn()

    def turn(self) -> None:
        wall = datetime.now(UTC)
        exchange_now = self._exchange0 + (wall - self._wall0) * self.clock_rate
        state = live_state(
            exchange_now,
            self.prices,
            quote_age_s=0.2,
            clock_rate=self.clock_rate,
            stale_after_s=self.stale_after_s,
        )
        write_state(self.path, state)

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            if not self.frozen.is_set():
                self.turn()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
