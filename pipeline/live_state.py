"""What `btcfs live` last saw, for the API and dashboard: one small JSON file, replaced whole.

The live loop writes `DataPaths.live_state` on every turn (about every 2 s of wall time): the
exchange's clock as it estimates it, the newest bar landed per symbol and market, the quote of
each still-open bar (a price shown as such and never landed), and why it is degraded when it
is. The API reads it per request; nothing in it is served as a bar or a feature.

    state = read_state(paths.live_state)        # None: no live loop has run here
    state.problem(datetime.now(UTC))            # why the loop is behind, or None
    state.exchange_now_at(datetime.now(UTC))    # the exchange's clock now, extrapolated
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import msgspec

from lake.store import write_bytes_atomic

log = logging.getLogger("pipeline.live_state")

STATE_VERSION = 1
Market = Literal["spot", "perp"]
Status = Literal["starting", "following", "degraded", "stopped"]


class Quote(msgspec.Struct, frozen=True):
    """The still-open 1m bar of one symbol on one market, as the exchange last sent it."""

    symbol: str
    market: Market
    price: float  # the open bar's latest close
    open_time: datetime  # the open bar's open time (exchange clock)
    at: datetime  # the exchange's clock when the bar was read
    source: str = "open-bar"  # never landed: the lake holds only closed bars


class LiveState(msgspec.Struct, frozen=True):
    pid: int
    status: Status
    started_at: datetime  # wall clock, UTC
    heartbeat_at: datetime  # wall clock, UTC: the loop's last turn
    exchange_now: datetime  # the exchange's clock at heartbeat_at
    clock_rate: float  # exchange seconds per wall second (1.0 live, 10.0 on a 10x replay)
    stale_after_s: float  # wall seconds without a heartbeat after which the loop is behind
    newest_bar: dict[str, datetime]  # "BTCUSDT/spot" -> open time of the newest landed 1m bar
    last_publish_at: datetime | None = None  # wall clock
    published_bar: dict[str, datetime] = {}  # "BTCUSDT" -> newest 5m bar open time published
    reasons: list[str] = []  # why the loop is degraded (empty when following)
    stale: dict[str, str] = {}  # dataset or vendor -> why its data is old
    quotes: list[Quote] = []
    version: int = STATE_VERSION

    def exchange_now_at(self, now: datetime) -> datetime:
        """The exchange's clock at wall time `now`, extrapolated from the last heartbeat."""
        wall = (now - self.heartbeat_at).total_seconds()
        return self.exchange_now + timedelta(seconds=wall * self.clock_rate)

    def heartbeat_age(self, now: datetime) -> float:
        return max(0.0, (now - self.heartbeat_at).total_seconds())

    def problem(self, now: datetime) -> str | None:
        """Why the live loop is not keeping the data current (None: it is)."""
        if self.status == "stopped":
            return f"the live loop (pid {self.pid}) stopped at {self.heartbeat_at.isoformat()}"
        age = self.heartbeat_age(now)
        if age > self.stale_after_s:
            return (
                f"the live loop (pid {self.pid}) has not turned for {age:.0f} s "
                f"(stale after {self.stale_after_s:g} s): stopped or stuck"
            )
        if self.reasons:
            return "; ".join(self.reasons)
        return None

    def quote(self, symbol: str, market: Market) -> Quote | None:
        return next((q for q in self.quotes if q.symbol == symbol and q.market == market), None)

    def newest_bar_at(self, symbol: str, market: Market) -> datetime | None:
        """Open time of the newest 1m bar landed for `symbol` on `market` (None: none yet)."""
        return self.newest_bar.get(f"{symbol}/{market}")

    def symbols(self) -> tuple[str, ...]:
        """Every symbol the state names (quotes and landed bars), sorted."""
        named = {q.symbol for q in self.quotes} | {k.partition("/")[0] for k in self.newest_bar}
        return tuple(sorted(named))

    def quote_age(self, quote: Quote, now: datetime) -> float:
        """Seconds of exchange time since the quote was read, as of wall time `now`."""
        return max(0.0, (self.exchange_now_at(now) - quote.at).total_seconds())


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(LiveState)


def write_state(path: Path, state: LiveState) -> None:
    """Replace the file whole (temporary file, fsync, rename): a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, _ENCODER.encode(state))


def read_state(path: Path) -> LiveState | None:
    """The state file, or None when there is none or it cannot be read (logged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    try:
        state = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    if state.version != STATE_VERSION:
        log.warning("ignoring %s: version %s, expected %s", path, state.version, STATE_VERSION)
        return None
    return state
