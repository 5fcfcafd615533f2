"""`btcfs live` under trouble, against the replay server running faster than the wall clock.

live-kill9    kill -9 of `btcfs live` at random moments (mid-turn or between bars), then a
              restart: the lake holds the same bars as a landing of the same span by
              `btcfs ingest all` (no bar missing, none twice, no temporary file), and every
              feature row served equals a full batch rebuild's (`btcfs live verify`)
live-outage   the exchange goes away (connection refused), then bans the IP (HTTP 418),
              and a vendor is down throughout: live keeps running on what it has, says
              what is stale in its state file and /health, recovers by itself; the API
              (`--port`) answers every request through every publish
live-memory   a long run at 10x (30 min; 3 with --quick): RSS sampled every 10 s stays flat

Each scenario starts from one warehouse built by `btcfs update` on 33 days of BTCUSDT spot
and perpetual klines (the features' 31-day warm-up and two days of rows), copied per run.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from drills._common import (
    BTCFS,
    REPO,
    Context,
    Record,
    Stopwatch,
    cli_env,
    free_port,
    rss_mib,
    run,
)
from ingest.timeutil import day_start_us
from ingest.verify import verify_lake
from pipeline.live_state import LiveState, read_state
from replay import ReplayServer, SyntheticMarket

START = date(2026, 1, 1)
NOW = datetime.combine(START + timedelta(days=33), dt_time(0, 31), UTC)
KLINES = ("spot_klines", "perp_klines")
#: Columns that say when and how a row was landed, not what the bar was.
PROVENANCE = ("ingested_at", "source")


def market() -> SyntheticMarket:
    return SyntheticMarket(
        5, day_start_us(START), day_start_us(START + timedelta(days=40)), symbols=("BTCUSDT",)
    )


def config(path: Path, vendors: str = "") -> Path:
    path.write_text(
        f"symbols: [BTCUSDT]\nstart: {START.isoformat()}\nrefresh_tail: 1\n"
        "datasets:\n  - {dataset: spot-klines, interval: 1m}\n"
        "  - {dataset: perp-klines, interval: 1m}\n" + vendors
    )
    return path


def env(data_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in cli_env(data_dir).items() if not k.startswith(("DBT_", "BTCFS_NOW"))}
    return {
        **base,
        "DBT_TARGET_PATH": str(data_dir / "target"),
        "DBT_LOG_PATH": str(data_dir / "logs"),
        "DBT_PROFILES_DIR": str(REPO / "profiles"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **extra,
    }


def base_site(ctx: Context, record: Record) -> Path | None:
    """A data folder caught up to NOW by `btcfs update` (built once per `make drills`)."""
    base = ctx.work.parent / "live-base"  # shared by the live drills of one run
    if (base / "warehouse" / "serve.duckdb").is_file():
        return base
    base.mkdir(parents=True, exist_ok=True)
    conf = config(base / "ingest.yml")
    watch = Stopwatch()
    with ReplayServer(market(), now=NOW.isoformat()) as url:
        done = run(
            [BTCFS, "update", "--config", str(conf), "--base-url", url],
            env(base, BTCFS_NOW=NOW.isoformat()),
        )
    if not record.expect(done.returncode == 0, "the base warehouse builds (btcfs update)"):
        record.found_(done.stderr[-2000:])
        return None
    record.tried_(
        f"a base warehouse: 33 days of BTCUSDT spot and perp klines, {watch.seconds():.0f} s"
    )
    return base


def copy_site(base: Path, to: Path) -> Path:
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(base, to, symlinks=True)
    config(to / "ingest.yml")
    return to


@dataclass
class Live:
    """One `btcfs live` process on a data folder, its output in `log`."""

    data_dir: Path
    url: str
    args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "live.log"

    def start(self) -> Live:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [BTCFS, "live", "--config", str(self.data_dir / "ingest.yml"),
                 "--base-url", self.url, "--price-every", "0.5", *self.args],
                cwd=REPO, env=env(self.data_dir, **self.extra_env), stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def state(self) -> LiveState | None:
        return read_state(self.data_dir / "live" / "state.json")

    def wait(self, what: str, check: Callable[[LiveState], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state is not None and check(state):
                return True
            if self.process is not None and self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def published(self) -> datetime | None:
        state = self.state()
        return state.published_bar.get("BTCUSDT") if state else None

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def after(moment: datetime | None, bars: int) -> Callable[[LiveState], bool]:
    """A state whose newest published 5m bar is `bars` bars after `moment`."""

    def check(state: LiveState) -> bool:
        newest = state.published_bar.get("BTCUSDT")
        return newest is not None and (
            moment is None or newest >= moment + timedelta(minutes=5 * bars)
        )

    return check


def bars_of(lake: Path, dataset: str, through: datetime) -> dict[str, object]:
    """The dataset's bars up to `through` (open time), provenance left out, by day."""
    found: dict[str, object] = {}
    for part in sorted((lake / "binance" / dataset).rglob("part-0.parquet")):
        table = pq.read_table(part)
        table = table.drop_columns([c for c in PROVENANCE if c in table.column_names])
        rows = [r for r in table.to_pylist() if r["open_time"] <= through]
        if rows:
            found[part.parent.name] = rows
    return found


def kill9_drill(ctx: Context) -> Record:
    record = Record("live-kill9", "kill -9 of btcfs live, then a restart")
    base = base_site(ctx, record)
    if base is None:
        return record
    rng = random.Random(ctx.seed)
    kills = 1 if ctx.quick else 3
    speed = 30.0
    site = copy_site(base, ctx.work / "killed")
    server = ReplayServer(market(), now=NOW.isoformat(), speed=speed)
    url = server.start()
    outcomes = []
    try:
        live = Live(site, url).start()
        if not record.expect(live.wait("a first publish", after(None, 0), 300), "live publishes"):
            record.found_(live.log.read_text()[-3000:])
            return record
        for attempt in range(kills):
            first = live.published()
            live.wait("a publish", after(first, 1), 120)
            delay = rng.uniform(0, 10.0)  # a 5m bar every 10 s of wall time at 30x
            time.sleep(delay)
            live.kill()
            at = live.published()
            temporary = len(list((site / "lake").rglob(".*.tmp")))
            live = Live(site, url).start()
            recovered = live.wait("two publishes after the restart", after(at, 2), 300)
            outcome = {"kill_after_s": round(delay, 2), "published_at_kill": str(at)}
            outcome.update(temporary_files_at_kill=temporary, recovered=recovered)
            outcomes.append(outcome)
            record.expect(
                recovered,
                f"kill {attempt + 1} ({delay:.1f} s into a bar, {temporary} temporary files): "
                f"restarted, caught up and published two more 5m bars",
            )
        code = live.stop()
        record.expect(code == 0, f"SIGTERM stops it cleanly (exit {code})")
        state = live.state()
        newest = state.newest_bar.get("BTCUSDT/spot") if state else None
    finally:
        server.stop()
    if newest is None:
        record.expect(False, "live landed bars")
        return record
    # the same span landed in one go by `btcfs ingest all`, frozen just after the newest bar
    reference = ctx.work / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    reference.mkdir(parents=True)
    frozen = newest + timedelta(minutes=1, seconds=1)
    with ReplayServer(market(), now=frozen.isoformat()) as url:
        done = run(
            [BTCFS, "ingest", "all", "--config", str(config(reference / "ingest.yml")),
             "--base-url", url],
            env(reference, BTCFS_NOW=frozen.isoformat()),
        )  # fmt: skip
    record.expect(done.returncode == 0, "the reference ingest of the same span succeeds")
    for dataset in KLINES:
        ours, theirs = (
            bars_of(site / "lake", dataset, newest),
            bars_of(reference / "lake", dataset, newest),
        )
        rows = sum(len(v) for v in ours.values() if isinstance(v, list))
        record.expect(
            ours == theirs,
            f"{dataset}: the killed and restarted lake holds the reference's {rows:,} bars "
            f"through {newest:%Y-%m-%d %H:%M}, exactly (provenance aside)",
        )
    leftovers = list((site / "lake").rglob(".*.tmp"))
    intact = verify_lake(site / "lake")
    record.expect(
        not leftovers and intact.ok,
        f"no temporary file left ({len(leftovers)}), no damaged file ({len(intact.problems)})",
    )
    verified = run([BTCFS, "live", "verify"], env(site))
    record.expect(
        verified.returncode == 0, "btcfs live verify: every served row equals a batch rebuild's"
    )
    record.found_(
        verified.stdout.strip().splitlines()[0]
        if verified.stdout.strip()
        else verified.stderr[-500:]
    )
    record.figures = {"kills": kills, "outcomes": outcomes, "newest_bar": str(newest)}
    return record


class ApiProbe(threading.Thread):
    """Asks the API for /health and the newest 5m bars every 50 ms; counts what fails."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        self.stopping = threading.Event()
        self.requests = 0
        self.failures: list[str] = []
        self.degraded: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            for path in ("/health", "/v1/bars?symbol=BTCUSDT&interval=5m&limit=3"):
                try:
                    response = self.client.get(path)
                    ok = response.status_code == 200
                    if path == "/health" and ok and response.json()["status"] == "degraded":
                        self.degraded.extend(response.json()["reasons"])
                except httpx.HTTPError as exc:
                    ok, response = False, None
                    self.failures.append(f"{path}: {type(exc).__name__}")
                self.requests += 1
                if response is not None and not ok:
                    self.failures.append(f"{path}: HTTP {response.status_code}")
            self.stopping.wait(0.05)


def outage_drill(ctx: Context) -> Record:
    record = Record("live-outage", "the exchange goes away, then bans us; a vendor is down")
    base = base_site(ctx, record)
    if base is None:
        return record
    site = copy_site(base, ctx.work / "outage")
    config(site / "ingest.yml", "vendors:\n  fred: {enabled: true, series: [DGS10]}\n")
    port, api_port = free_port(), free_port()
    speed = 30.0
    # every vendor route answers with the vendor's own error: FRED is down, Binance is not
    down = "vendor=1.0"
    server = ReplayServer(market(), now=NOW.isoformat(), speed=speed, port=port, faults=down)
    url = server.start()
    clock = server.app.clock
    live = Live(site, url, ("--port", str(api_port), "--slow-every", "300"),
                {"FRED_API_KEY": "drill-key"})  # fmt: skip
    probe = ApiProbe(api_port)
    figures: dict[str, object] = {}
    try:
        live.start()
        if not record.expect(live.wait("a first publish", after(None, 0), 300), "live publishes"):
            record.found_(live.log.read_text()[-3000:])
            return record
        probe.start()
        live.wait("a publish", after(live.published(), 1), 60)
        stale_vendor = live.wait("the vendor marked stale", lambda s: "ingest all" in s.stale, 60)
        record.expect(stale_vendor, "the vendor that is down is marked stale (ingest all failed)")
        # the exchange goes away
        server.stop()
        watch = Stopwatch()
        gone = live.wait("degraded", lambda s: any("unreachable" in r for r in s.reasons), 30)
        record.expect(gone, f"exchange unreachable: live says so in {watch.seconds():.1f} s")
        time.sleep(5)
        alive = live.process is not None and live.process.poll() is None
        record.expect(alive, "live keeps running while the exchange is unreachable")
        before = live.published()
        server = ReplayServer(market(), now=clock.now_us(), speed=speed, port=port, faults=down)
        server.start()
        clock = server.app.clock
        watch = Stopwatch()
        back = live.wait("a publish after the outage", after(before, 1), 120)
        record.expect(
            back, f"the exchange is back: live publishes newer bars in {watch.seconds():.1f} s"
        )
        following = live.wait(
            "no reasons", lambda s: not any("unreachable" in r for r in s.reasons), 30
        )
        record.expect(following, "the exchange's reason is gone from the state")
        figures["recovered_after_outage_s"] = round(watch.seconds(), 1)
        # the exchange bans us (HTTP 418) for 8 s of wall time
        server.stop()
        server = ReplayServer(
            market(), now=clock.now_us(), speed=speed, port=port, faults=down, banned_for=8.0
        )
        server.start()
        clock = server.app.clock
        banned = live.wait(
            "the ban seen", lambda s: any("418" in r or "ban" in r.lower() for r in s.reasons), 30
        )
        record.expect(banned, "the 418 ban shows in the state's reasons")
        before = live.published()
        watch = Stopwatch()
        back = live.wait("a publish after the ban", after(before, 1), 120)
        record.expect(back, f"after the ban: live publishes newer bars in {watch.seconds():.1f} s")
        figures["recovered_after_ban_s"] = round(watch.seconds(), 1)
        probe.stopping.set()  # before the API stops with live
        probe.join(timeout=10)
        code = live.stop()
        record.expect(code == 0, f"SIGTERM stops it cleanly (exit {code})")
    finally:
        probe.stopping.set()
        server.stop()
        if live.process is not None and live.process.poll() is None:
            live.process.kill()
    probe.join(timeout=10)
    record.expect(
        probe.requests > 100 and not probe.failures,
        f"the API answered {probe.requests:,} requests through every publish, the outage and "
        f"the ban, {len(probe.failures)} failed"
        + (f": {probe.failures[:3]}" if probe.failures else ""),
    )
    shown = sorted({re.sub(r"\d+(\.\d+)?", "N", r)[:80] for r in probe.degraded})
    record.expect(
        any("live loop" in r or "unreachable" in r for r in probe.degraded) or not shown,
        f"/health was degraded with the live loop's reasons: {shown[:4]}",
    )
    for dataset in KLINES:
        parts = sorted((site / "lake" / "binance" / dataset).rglob("part-0.parquet"))
        times = [t for p in parts for t in pq.read_table(p).column("open_time").to_pylist()]
        span = int((max(times) - min(times)).total_seconds() // 60) + 1
        record.expect(len(times) == len(set(times)) == span,
                      f"{dataset}: {len(times):,} bars, none missing, none twice")  # fmt: skip
    figures.update(requests=probe.requests, failed=len(probe.failures))
    record.figures = figures
    return record


def memory_drill(ctx: Context) -> Record:
    record = Record("live-memory", "RSS of btcfs live over a long run at 10x")
    base = base_site(ctx, record)
    if base is None:
        return record
    minutes = 3.0 if ctx.quick else 30.0
    site = copy_site(base, ctx.work / "memory")
    server = ReplayServer(market(), now=NOW.isoformat(), speed=10.0)
    url = server.start()
    samples: list[tuple[float, float]] = []
    live = Live(site, url)
    try:
        live.start()
        assert live.process is not None
        if not record.expect(live.wait("a first publish", after(None, 0), 300), "live publishes"):
            return record
        watch = Stopwatch()
        while watch.seconds() < minutes * 60 and live.process.poll() is None:
            samples.append((round(watch.seconds(), 1), round(rss_mib(live.process.pid), 1)))
            time.sleep(10)
        state = live.state()
        code = live.stop()
    finally:
        server.stop()
    record.expect(code == 0, f"ran {minutes:g} min at 10x and stopped cleanly (exit {code})")
    third = max(1, len(samples) // 3)
    early = statistics.median(v for _, v in samples[:third])
    late = statistics.median(v for _, v in samples[-third:])
    record.expect(
        late <= early * 1.15 + 20,
        f"RSS flat: median {early:.0f} MiB in the first third, {late:.0f} MiB in the last "
        f"(allowed {early * 1.15 + 20:.0f}); peak {max(v for _, v in samples):.0f} MiB",
    )
    published = state.published_bar.get("BTCUSDT") if state else None
    record.found_(f"newest 5m bar published: {published}")
    record.figures = {"minutes": minutes, "rss_mib": samples, "early_mib": early, "late_mib": late}
    return record
