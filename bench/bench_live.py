"""Freshness of `btcfs live`: from a 5m bar's close to its prediction on
`GET /v1/predictions/latest`, against the replay server at 10x. Targets: p50 <= 2 s,
max <= 5 s of wall time, over at least 10 bars.

Setup (not timed): the demo's lake (config/demo.yml: both symbols, every vendor) landed and
built by `btcfs update` with the replay server's clock frozen at the start, a model trained
on it (`btcfs train`), published. Then the replay server's clock runs at `--speed` from that
moment and `btcfs live --port P` follows it. For each 5m bar that closes while it runs, this
process polls the API every 100 ms and records when the prediction first comes from that bar
(`as_of`, the feature row's bar); the bar closed when the server's clock passed its close
(`Clock.monotonic_at`). Also reported: the live loop's own land/build/publish times (from its
log) and the process's RSS at the end.

Usage: python -m bench.bench_live [--bars 12] [--speed 10] [--days 80] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import httpx

from bench._report import quick, report
from drills._common import free_port, rss_mib
from ingest.timeutil import datetime_to_us
from replay import ReplayServer, SyntheticMarket
from scripts.demo import vendor_env

REPO = Path(__file__).resolve().parents[1]
BTCFS = str(Path(sys.executable).with_name("btcfs"))
SEED = 7
P50_TARGET_S = 2.0
MAX_TARGET_S = 5.0
US_PER_5M = 300 * 1_000_000
TURN = re.compile(r"land ([0-9.]+) s, build ([0-9.]+) s, publish ([0-9.]+) s")


def _env(work: Path, url: str, now: datetime | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "BTCFS_NOW"))}
    env.update(
        BTCFS_DATA_DIR=str(work),
        DBT_TARGET_PATH=str(work / "target"),
        DBT_LOG_PATH=str(work / "logs"),
        DBT_PROFILES_DIR=str(REPO / "profiles"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    if now is not None:
        env["BTCFS_NOW"] = now.isoformat()
    return {**env, **vendor_env(url)}


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:3])} failed:\n{done.stderr[-3000:]}")


def setup(work: Path, market: SyntheticMarket, now: datetime) -> None:
    """Land, build, train and publish the demo's lake with the clock frozen at `now`."""
    if (work / "warehouse" / "serve.duckdb").is_file() and (work / "registry").is_dir():
        return  # a --work-dir set up by an earlier run
    with ReplayServer(market, now=now.isoformat()) as url:
        env = _env(work, url, now)
        config = ["--config", "config/demo.yml", "--base-url", url]
        _run([BTCFS, "update", *config], env)
        _run([BTCFS, "train"], env)
        _run([BTCFS, "publish"], env)


def newest_bar(work: Path) -> datetime:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        pattern = str(
            work / "lake" / "binance" / "spot_klines" / "*" / "*" / "*" / "part-0.parquet"
        )
        row = con.execute("select max(open_time) from read_parquet(?)", [pattern]).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] is not None
    newest: datetime = row[0]
    return newest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10 if quick() else 12)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--days", type=int, default=45 if quick() else 80)
    parser.add_argument("--work-dir", type=Path, help="keep (and reuse) the data folder here")
    args = parser.parse_args()
    # a frozen start 30 s after a 5m close; the market runs a day beyond what the bench needs
    now = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(hours=6)
    now -= timedelta(minutes=now.minute % 5)
    start = datetime.combine((now - timedelta(days=args.days)).date(), dt_time(), UTC)
    market = SyntheticMarket(
        SEED,
        datetime_to_us(start),
        datetime_to_us(now + timedelta(days=1)),
        symbols=("BTCUSDT", "ETHUSDT"),
    )
    print(
        f"btcfs live at {args.speed:g}x on {args.days} days, every vendor, 2 symbols "
        f"({os.cpu_count()} cores)",
        flush=True,
    )
    tmp = tempfile.mkdtemp(prefix="bench_live_")
    work = args.work_dir or Path(tmp)
    try:
        began = time.monotonic()
        setup(work, market, now)
        print(f"  setup (land, build, train, publish): {time.monotonic() - began:.0f} s")
        # a reused --work-dir may hold bars past `now` from an earlier run: start after them
        start_at = max(now, newest_bar(work) + timedelta(minutes=1, seconds=30))
        measure(work, market, start_at, args.speed, args.bars)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(work: Path, market: SyntheticMarket, now: datetime, speed: float, bars: int) -> None:
    server = ReplayServer(market, now=now.isoformat(), speed=speed)
    url = server.start()
    clock = server.app.clock
    port = free_port()
    log_path = work / "live.log"
    with log_path.open("w") as log:
        live = subprocess.Popen(
            [BTCFS, "live", "--config", "config/demo.yml", "--base-url", url, "--port", str(port)],
            cwd=REPO, env=_env(work, url, None), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    latencies: list[float] = []
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        # wait for the catch-up: the first bar measured closes after live follows the market
        deadline = time.monotonic() + 600
        while "published" not in log_path.read_text() and time.monotonic() < deadline:
            if live.poll() is not None:
                raise RuntimeError(f"btcfs live exited:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        close_us = (clock.now_us() // US_PER_5M + 1) * US_PER_5M
        while len(latencies) < bars:
            wanted = datetime.fromtimestamp((close_us - US_PER_5M) / 1e6, UTC)
            closed_at = clock.monotonic_at(close_us)
            while time.monotonic() < closed_at:
                time.sleep(0.01)
            seen = None
            while seen is None and time.monotonic() - closed_at < 30:
                try:
                    body = api.get("/v1/predictions/latest", params={"symbol": "BTCUSDT"}).json()
                except httpx.HTTPError:
                    body = {}
                opened = body.get("as_of")
                if opened and datetime.fromisoformat(opened) >= wanted:
                    seen = time.monotonic() - closed_at
                else:
                    time.sleep(0.1)
            if seen is None:
                raise RuntimeError(f"no prediction for the bar opening {wanted} within 30 s")
            latencies.append(seen)
            print(f"  bar {wanted:%H:%M}: served {seen:.2f} s after its close", flush=True)
            close_us += US_PER_5M
        rss = rss_mib(live.pid)
    finally:
        live.send_signal(signal.SIGTERM)
        try:
            live.wait(timeout=30)
        except subprocess.TimeoutExpired:
            live.kill()
        server.stop()
    turns = [tuple(map(float, m)) for m in TURN.findall(log_path.read_text())]
    report(
        f"live freshness, 5m close -> prediction, p50 of {len(latencies)} bars",
        statistics.median(latencies), "s", P50_TARGET_S, "below",
    )  # fmt: skip
    report("live freshness, worst bar", max(latencies), "s", MAX_TARGET_S, "below")
    if turns:
        for index, name in enumerate(("land", "build (update plan)", "publish")):
            values = [turn[index] for turn in turns]
            report(f"  live turn: {name} (median of {len(values)})", statistics.median(values), "s")
    report("btcfs live RSS at the end", rss, "MiB")


if __name__ == "__main__":
    main()
