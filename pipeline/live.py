"""`btcfs live`: bring everything current, then follow the market bar by bar (docs/live.md).

    catch up      the update pipeline (ingest all, build, qa, publish), as `btcfs update`
    each turn     sample the exchange's clock; land the bars that closed since the newest
                  landed one (ingest.live); when any did: the update plan (the same SQL as
                  `dbt build`, gates on the rebuilt days), publish, log the new feature rows
                  served; every `slow_every_s` of exchange time: `btcfs ingest all` (the other
                  vendors, funding, the refresh tail), built on the next turn
    between       sleep until just after the next bar closes, waking every `price_every_s` to
                  read the still-open bar's price (the state file; never landed)

Everything it knows is in `DataPaths.live_state` (pipeline.live_state), replaced every turn.
An exchange that cannot be reached, a failing gate or a vendor down does not stop it: the
state says what is stale, the API keeps serving the last good publish, the next turn retries.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from core.errors import BtcfsError
from core.redact import redact
from core.settings import DataPaths
from core.units import US_PER_MINUTE, US_PER_S
from ingest.config import load_config
from ingest.live import BinanceFollower
from lake.store import Lake
from pipeline.live_state import LiveState, Quote, Status, write_state
from pipeline.params import IngestParams, UpdateParams
from pipeline.run import (
    Context,
    IngestFailed,
    IngestResult,
    Runner,
    StepFailed,
    ingest,
    plan,
    publish,
    update_build,
)
from pipeline.served import ServedLog
from warehouse.plan import QUARANTINE_SOURCE, source_of

#: A bar is asked for this long (wall seconds) after it closed: the exchange needs a moment.
CLOSE_GRACE_S = 0.05
#: When the exchange cannot be reached, the loop waits this long (wall) before trying again,
#: doubling up to the maximum.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
#: On stop, how long to wait for a background refresh to finish (it lands whole partitions,
#: so one cut short loses nothing; it is simply done again next time).
REFRESH_GRACE_S = 10.0


@dataclass(frozen=True)
class LiveOptions:
    ingest: IngestParams = field(default_factory=IngestParams)
    price_every_s: float = 2.0  # wall seconds between reads of the open bar
    slow_every_s: float = 3600.0  # exchange seconds between full refreshes (ingest all)
    stale_after_s: float = 20.0  # wall seconds without a turn after which the loop is behind
    catch_up: bool = True  # run the update pipeline first


@dataclass
class TurnTimes:
    """Wall seconds of the last turn that built, for `--timings` and the freshness bench."""

    land: float = 0.0
    build: float = 0.0
    publish: float = 0.0
    log: float = 0.0


class LiveLoop:
    def __init__(
        self,
        runner: Runner,
        context: Context,
        options: LiveOptions,
        *,
        out: TextIO | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.context = context
        self.options = options
        self.out = out or sys.stderr
        self.wall = wall
        self.paths = DataPaths(context.data_dir)
        self.stop = threading.Event()
        self.started_at = datetime.now(UTC)
        self.reasons: dict[str, str] = {}  # what -> why (exchange, gates, publish)
        self.stale: dict[str, str] = {}  # dataset or vendor -> why
        self.quotes: dict[tuple[str, str], Quote] = {}
        self.newest: dict[str, datetime] = {}
        self.published_bar: dict[str, datetime] = {}
        self.last_publish_at: datetime | None = None
        self.changed: set[str] = set()  # lake sources with rows not built yet
        self.refreshed = False  # the full refresh landed something: build on the next turn
        self.built_bucket: int | None = None  # the 5m bucket (µs) of the newest bar built
        self.next_slow_us: int | None = None
        self.refresher: threading.Thread | None = None
        self.refreshes: list[tuple[IngestResult | None, str | None]] = []
        self.lock = threading.Lock()
        self.times = TurnTimes()
        self.served = ServedLog(self.paths.root / "live" / "served.duckdb")

    # ------------------------------------------------------------------ output and state

    def say(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"[live {stamp}] {text}", file=self.out, flush=True)

    def write(self, follower: BinanceFollower | None, status: Status) -> None:
        clock = follower.clock if follower is not None else None
        now = datetime.now(UTC)
        exchange_now = now
        rate = 1.0
        if clock is not None and clock.known:
            exchange_now = datetime.fromtimestamp(clock.now_us() / US_PER_S, UTC)
            rate = clock.rate
        reasons = [f"{what}: {why}" for what, why in self.reasons.items()]
        state = LiveState(
            pid=os.getpid(),
            status="degraded" if reasons and status == "following" else status,
            started_at=self.started_at,
            heartbeat_at=now,
            exchange_now=exchange_now,
            clock_rate=rate,
            stale_after_s=self.options.stale_after_s,
            newest_bar=dict(self.newest),
            last_publish_at=self.last_publish_at,
            published_bar=dict(self.published_bar),
            reasons=reasons,
            stale=dict(self.stale),
            quotes=list(self.quotes.values()),
        )
        write_state(self.paths.live_state, state)

    # ------------------------------------------------------------------ steps

    def catch_up(self) -> None:
        """The update pipeline, as `btcfs update` runs it."""
        result: dict[str, object] = {}
        params = UpdateParams(ingest=self.options.ingest)
        self.say("catching up: btcfs update")
        for step, action in plan("update", params, self.runner, self.context, result):
            try:
                action()
            except StepFailed as exc:
                self.reasons["update"] = f"{step} failed: {redact(str(exc))}"
                self.say(f"catch-up stopped at {step}: {exc}; following the market anyway")
                return
        self.reasons.pop("update", None)
        self.after_publish()

    def build_and_publish(self, changed: set[str]) -> bool:
        """The update plan for what reads the `changed` sources (or dbt build when the plan is
        stale), then publish; False when a gate or the publish failed (the API keeps the
        last good publish, and the next turn builds again)."""
        began = time.monotonic()
        try:
            update_build(self.runner, self.context, UpdateParams().build(), changed=changed)
        except StepFailed as exc:
            self.times.build = time.monotonic() - began
            self.reasons["build"] = redact(str(exc))
            self.say(f"not published: {exc}")
            return False
        self.reasons.pop("build", None)
        self.times.build = time.monotonic() - began
        began = time.monotonic()
        try:
            publish(self.runner, self.context)
        except StepFailed as exc:
            self.times.publish = time.monotonic() - began
            self.reasons["publish"] = redact(str(exc))
            self.say(f"publish failed: {exc}")
            return False
        self.reasons.pop("publish", None)
        self.times.publish = time.monotonic() - began
        self.after_publish()
        return True

    def after_publish(self) -> None:
        self.last_publish_at = datetime.now(UTC)
        began = time.monotonic()
        try:
            self.published_bar = self.served.record(self.paths.serve_db, self.last_publish_at)
        except BtcfsError as exc:  # the log is for `btcfs live verify`; serving goes on
            self.say(f"could not log the served rows: {exc}")
        self.times.log = time.monotonic() - began

    def slow_refresh(self, now_us: int) -> None:
        """Start `btcfs ingest all` (the other vendors, funding, the refresh tail) in a
        process of its own, watched by a thread: a slow or throttled vendor never holds up a
        bar. What it landed is built at the next 5m close (`refresh_done`)."""
        if self.refresher is not None and self.refresher.is_alive():
            return  # the last one is still running
        self.say("refreshing every dataset: btcfs ingest all (in the background)")
        env = {
            **os.environ,
            "BTCFS_NOW": datetime.fromtimestamp(now_us / US_PER_S, UTC).isoformat(),
        }

        def refresh() -> None:
            try:
                found = ingest(
                    self.runner, self.context, self.options.ingest, env=env, progress=False
                )
                error = None
            except IngestFailed as exc:
                found, error = exc.result, redact(str(exc))
            except BtcfsError as exc:
                found, error = None, redact(exc.explain())
            with self.lock:
                self.refreshes.append((found, error))

        self.refresher = threading.Thread(target=refresh, name="btcfs-live-refresh", daemon=True)
        self.refresher.start()

    def refresh_done(self) -> None:
        """Take in what finished refreshes landed (and why one failed)."""
        with self.lock:
            done, self.refreshes = self.refreshes, []
        for found, error in done:
            if error is None:
                self.stale.pop("ingest all", None)
            else:
                self.stale["ingest all"] = error
                self.say(f"refresh: {error}; following on what the lake holds")
            if found is not None:
                sources = {source_of(name) for name in found.datasets}
                self.changed |= sources
                self.refreshed = self.refreshed or bool(sources)

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        config_path = Path(self.options.ingest.config) if self.options.ingest.config else None
        config = load_config(config_path, datetime.now(UTC))  # a bad config: refused at once
        follower = BinanceFollower(
            config, Lake(self.paths.lake), self.paths.raw, base_url=self.options.ingest.base_url
        )
        self.write(None, "starting")
        retry = RETRY_FIRST_S
        try:
            if self.options.catch_up:
                self.sync(follower)
                self.catch_up()
                self.write(follower, "starting")
            while not self.stop.is_set():
                if not self.sync(follower):
                    self.write(follower, "following")
                    self.say(f"retrying in {retry:g} s")
                    self.stop.wait(retry)
                    retry = min(RETRY_MAX_S, retry * 2)
                    continue
                retry = RETRY_FIRST_S
                try:
                    self.turn(follower)
                except BtcfsError as exc:  # e.g. another process holds the warehouse
                    self.reasons["turn"] = redact(exc.explain())
                    self.say(f"this turn failed: {self.reasons['turn']}; trying again next turn")
                else:
                    self.reasons.pop("turn", None)
                self.write(follower, "following")
                self.stop.wait(self.sleep_for(follower))
        finally:
            follower.close()
            if self.refresher is not None:  # a refresh lands whole partitions: let it end
                self.refresher.join(timeout=REFRESH_GRACE_S)
            self.write(follower, "stopped")
            self.say("stopped")
        return 0

    def sync(self, follower: BinanceFollower) -> bool:
        """Read the exchange's clock; the loaders of `btcfs ingest all` (run in this process)
        take it as their now ($BTCFS_NOW): a replay server's clock may run ahead of ours."""
        try:
            now_us = follower.sync_clock()
        except BtcfsError as exc:
            self.reasons["exchange"] = f"unreachable: {redact(exc.explain())}"
            self.say(f"exchange: {self.reasons['exchange']}")
            return False
        self.reasons.pop("exchange", None)
        _tell_loaders(now_us)
        return True

    def turn(self, follower: BinanceFollower) -> None:
        self.refresh_done()
        began = time.monotonic()
        _tell_loaders(follower.clock.now_us())
        landed = follower.land()
        self.times.land = time.monotonic() - began
        errors = landed.errors
        if errors:
            self.reasons["exchange"] = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        else:
            self.reasons.pop("exchange", None)
        for name in [n for n in self.stale if n.startswith("binance ")]:
            if name.removeprefix("binance ") not in errors:
                del self.stale[name]
        for name, why in errors.items():
            self.stale[f"binance {name}"] = why
        self.newest.update(landed.newest)
        for (symbol, market), bar in landed.open_bars.items():
            self.quotes[(symbol, market)] = Quote(
                symbol=symbol,
                market=market,  # type: ignore[arg-type]
                price=bar.close,
                open_time=datetime.fromtimestamp(bar.open_time_us / US_PER_S, UTC),
                at=landed.now,
            )
        if landed.sources:
            # a landing may quarantine rows too: the quarantine's gates run with the rest
            self.changed |= {*landed.sources, QUARANTINE_SOURCE}
        if self.changed and (self.refreshed or self.bar_closed()):
            changed = set(self.changed)
            if self.build_and_publish(changed):
                self.changed -= changed
                self.refreshed = False
                self.built_bucket = self.bucket()
                t = self.times
                self.say(
                    f"published through {self.newest_text()} "
                    f"(land {t.land:.2f} s, build {t.build:.2f} s, publish {t.publish:.2f} s)"
                )
        now_us = follower.clock.now_us()
        if self.next_slow_us is None:
            self.next_slow_us = now_us + int(self.options.slow_every_s * US_PER_S)
        elif now_us >= self.next_slow_us:
            self.next_slow_us = now_us + int(self.options.slow_every_s * US_PER_S)
            self.slow_refresh(now_us)

    def bucket(self) -> int | None:
        """The 5m bucket (open time, µs) the newest landed bar closes, over the symbols' spot
        bars: the served marts change only when a 5m bar closes."""
        closes = [
            int(opened.timestamp() * US_PER_S) + US_PER_MINUTE
            for name, opened in self.newest.items()
            if name.endswith("/spot")
        ]
        if not closes:
            return None
        return min(closes) // (5 * US_PER_MINUTE) * (5 * US_PER_MINUTE)

    def bar_closed(self) -> bool:
        """Has a 5m bar closed (on every followed symbol) since the last build?"""
        now = self.bucket()
        return now is not None and (self.built_bucket is None or now > self.built_bucket)

    def newest_text(self) -> str:
        spot = [f"{n.split('/')[0]} {t:%H:%M}" for n, t in sorted(self.newest.items())
                if n.endswith("/spot")]  # fmt: skip
        return ", ".join(spot) or "nothing yet"

    def sleep_for(self, follower: BinanceFollower) -> float:
        """Wall seconds until just after the next bar closes, at most `price_every_s`."""
        clock = follower.clock
        if not clock.known:
            return self.options.price_every_s
        now_us = clock.now_us()
        next_close = (now_us // US_PER_MINUTE + 1) * US_PER_MINUTE
        until = clock.wall_at(next_close) - self.wall() + CLOSE_GRACE_S
        return max(0.0, min(self.options.price_every_s, until))


def _tell_loaders(now_us: int) -> None:
    """`btcfs ingest all`, run in this process, takes $BTCFS_NOW as its now."""
    os.environ["BTCFS_NOW"] = datetime.fromtimestamp(now_us / US_PER_S, UTC).isoformat()


def stop_on_signals(loop: LiveLoop) -> None:
    """SIGINT and SIGTERM end the loop after the current turn (main thread only)."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        loop.say(f"signal {signum}: stopping after this turn")
        loop.stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
