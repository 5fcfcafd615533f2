"""Following Binance bar by bar: what `btcfs live` lands between its full refreshes.

Each turn of the live loop asks the exchange for the bars after the newest one landed, per
symbol and kline dataset of the ingest config (`BinanceLoader.load_tail`: one short page, the
day partitions it touches written whole as always), and open interest once per 5-minute
period. REST polling just after each close, not the kline WebSocket: the lake needs REST to
fill any gap anyway, a closed bar is final on both at the same moment, and one protocol keeps
the replay server, the retry policy and the raw pages as they are (docs/live.md).

The exchange's clock is read from `/api/v3/time` (`ServerClock`): its offset and its rate
against the wall clock, which is 1 on Binance and X on a replay server run with `--speed X`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.errors import BtcfsError
from core.redact import redact
from core.units import US_PER_MS, US_PER_S
from ingest._client import HttpClient, RetryPolicy
from ingest.binance.loader import BinanceLoader, LoadRequest, OpenBar
from ingest.config import IngestConfig
from ingest.errors import MalformedResponse
from ingest.timeutil import datetime_to_us, us_to_datetime
from ingest.vendors.base import build_client
from ingest.vendors.binance import SPEC as BINANCE
from ingest.vendors.binance import requests_of
from lake.schemas import DATASETS
from lake.store import Lake, PartitionKey

#: Kline datasets are followed every bar; open interest once per period.
FOLLOWED = ("spot-klines", "perp-klines", "mark-klines", "premium-klines", "open-interest")
#: Which market's price a dataset's open bar is (the others are indices, not prices).
QUOTED = {"spot-klines": "spot", "perp-klines": "perp"}
#: A live turn must not hang on one slow answer: few, short retries; the loop retries later.
LIVE_RETRY = RetryPolicy(
    max_retries=2,
    backoff_base=0.2,
    backoff_max=1.0,
    max_retry_after=5.0,
    max_rate_limit_retries=1,
    max_connect_retries=1,
)
LIVE_TIMEOUT_S = 5.0


class ServerClock:
    """The exchange's clock as seen from here, from `/api/v3/time` samples.

    Each sample is taken at the midpoint of its round trip. The rate is fitted from the first
    sample of a sliding window to the latest (1.0 until the samples span `min_span_s`).
    """

    def __init__(
        self, *, window_s: float = 600.0, min_span_s: float = 1.0, wall: Callable[[], float]
    ) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.wall = wall
        self._samples: list[tuple[float, int]] = []  # (wall seconds, server µs)

    def add(self, wall_s: float, server_us: int) -> None:
        samples = [s for s in self._samples if wall_s - s[0] <= self.window_s]
        if samples and server_us < samples[-1][1]:
            samples = []  # the server's clock went back (a restarted replay server): start over
        samples.append((wall_s, server_us))
        self._samples = samples

    @property
    def known(self) -> bool:
        return bool(self._samples)

    @property
    def rate(self) -> float:
        """Exchange seconds per wall second."""
        if len(self._samples) < 2:
            return 1.0
        (w0, s0), (w1, s1) = self._samples[0], self._samples[-1]
        if w1 - w0 < self.min_span_s:
            return 1.0
        rate = (s1 - s0) / US_PER_S / (w1 - w0)
        return rate if rate > 0 else 1.0

    def now_us(self, wall_s: float | None = None) -> int:
        if not self._samples:
            raise RuntimeError("no server time sampled yet")
        w, s = self._samples[-1]
        at = self.wall() if wall_s is None else wall_s
        return s + int((at - w) * self.rate * US_PER_S)

    def wall_at(self, server_us: int) -> float:
        """The wall time at which the exchange's clock reads `server_us`."""
        w, s = self._samples[-1]
        return w + (server_us - s) / US_PER_S / self.rate


@dataclass
class FollowResult:
    """One turn: what was landed, the open bars seen, and what could not be fetched."""

    now: datetime
    written: list[str] = field(default_factory=list)  # "<dataset> <symbol> <day>"
    sources: set[str] = field(default_factory=set)  # what was written, as "<vendor>.<table>"
    newest: dict[str, datetime] = field(default_factory=dict)  # "BTCUSDT/spot" -> open time
    open_bars: dict[tuple[str, str], OpenBar] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # "<dataset> <symbol>" -> why
    seconds: float = 0.0


class BinanceFollower:
    """Lands the newest closed bars of the config's Binance datasets, one turn at a time."""

    def __init__(
        self,
        config: IngestConfig,
        lake: Lake,
        raw_root: Path,
        *,
        base_url: str | None = None,
        wall: Callable[[], float] = time.time,
        client_factory: Callable[..., HttpClient] = HttpClient,
    ) -> None:
        self.lake = lake
        self.raw_root = raw_root
        self.wall = wall
        self.clock = ServerClock(wall=wall)
        spot_host = BINANCE
        futures_host = BINANCE.hosts[0]
        self.spot = build_client(
            BINANCE,
            None,
            base_url=base_url,
            client_factory=client_factory,
            config=replace(spot_host.client, retry=LIVE_RETRY, timeout=LIVE_TIMEOUT_S),
        )
        self.futures = build_client(
            BINANCE,
            None,
            base_url=base_url,
            client_factory=client_factory,
            config=replace(futures_host.client, retry=LIVE_RETRY, timeout=LIVE_TIMEOUT_S),
            host=futures_host,
        )
        options = {"symbols": list(config.symbols), "jobs": list(config.jobs)}
        today = datetime.now(UTC).date()
        chosen = tuple(d for d in FOLLOWED if any(j.dataset == d for j in config.jobs))
        self.requests: list[LoadRequest] = requests_of(options, chosen, today, today, 1)
        self._oi_period: dict[str, int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.spot.close()
        self.futures.close()

    def sync_clock(self) -> int:
        """Sample the exchange's clock (`/api/v3/time`); its time now in µs."""
        sent = self.wall()
        body, _ = self.spot.get_json("/api/v3/time", weight=1)
        received = self.wall()
        server_ms = body.get("serverTime") if isinstance(body, dict) else None
        if not isinstance(server_ms, int) or isinstance(server_ms, bool):
            raise MalformedResponse(f"/api/v3/time: no integer serverTime in {body!r:.200}")
        self.clock.add((sent + received) / 2, server_ms * US_PER_MS)
        return self.clock.now_us(received)

    def land(self) -> FollowResult:
        """Land each followed dataset's new closed bars as of the exchange's clock now."""
        with self._lock:
            started = time.monotonic()
            now = us_to_datetime(self.clock.now_us())
            result = FollowResult(now)
            loader = BinanceLoader(
                self.lake, self.raw_root, spot=self.spot, futures=self.futures, archive=None,
                now=now,
            )  # fmt: skip
            now_us = datetime_to_us(now)
            for request in self.requests:
                name = f"{request.dataset} {request.symbol}"
                if request.dataset == "open-interest":
                    period = now_us // request.step.us
                    if self._oi_period.get(request.symbol) == period:
                        continue
                try:
                    day = now.date()
                    report = loader.load_tail(replace(request, start=day, end=day))
                except BtcfsError as exc:
                    result.errors[name] = redact(exc.explain())
                    continue
                if request.dataset == "open-interest":
                    self._oi_period[request.symbol] = period
                written = [d for d in report.days if d.action == "written"]
                result.written.extend(
                    f"{request.dataset} {request.symbol} {d.day}" for d in written
                )
                if written:
                    dataset = DATASETS[request.dataset]
                    result.sources.add(f"{dataset.vendor}.{dataset.table}")
                market = QUOTED.get(request.dataset)
                if market is not None and report.open_bar is not None:
                    result.open_bars[(request.symbol, market)] = report.open_bar
                if market is not None:
                    newest = self._newest(request, now)
                    if newest is not None:
                        result.newest[f"{request.symbol}/{market}"] = newest
            result.seconds = time.monotonic() - started
            return result

    def _newest(self, request: LoadRequest, now: datetime) -> datetime | None:
        """Open time of the newest landed bar (today's partition, else yesterday's)."""
        today = now.date()
        for day in (today, today - timedelta(days=1)):
            key = PartitionKey(DATASETS[request.dataset], request.symbol, request.interval, day)
            manifest = self.lake.read_manifest(key)
            if manifest is not None and manifest.last_at:
                return datetime.fromisoformat(manifest.last_at)
        return None
