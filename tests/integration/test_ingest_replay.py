"""Loaders against the real replay server on loopback: faults, the open bar, kill -9, bans."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ingest import ClientConfig, HttpClient, RetryPolicy
from ingest.binance.loader import BinanceLoader, LoadRequest
from ingest.timeutil import datetime_to_us, day_start_us
from ingest.verify import lake_fingerprint as manifests
from lake.store import Lake
from replay import ReplayServer, SyntheticMarket

BTCFS = str(Path(sys.executable).parent / "btcfs")
# The server's clock and the loaders' "now": mid-bar, so a still-open bar exists.
NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
FIRST_DAY = date(2026, 3, 4)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(
        seed=3,
        start_us=day_start_us(FIRST_DAY - timedelta(days=2)),
        end_us=datetime_to_us(NOW) + 3_600_000_000,
        symbols=("BTCUSDT",),
    )


def land(url: str, root: Path, requests: list[LoadRequest], *, archive: bool = False) -> None:
    from ingest.binance.archive import HttpArchive

    config = ClientConfig(timeout=2.0, retry=RetryPolicy(backoff_base=0.05, backoff_max=0.2))
    clients = [
        HttpClient(url, vendor="spot", config=config),
        HttpClient(url, vendor="futures", config=config),
        HttpClient(url, vendor="archive", config=config),
    ]
    try:
        loader = BinanceLoader(
            Lake(root / "lake"),
            root / "raw",
            spot=clients[0],
            futures=clients[1],
            archive=HttpArchive(clients[2]) if archive else None,
            now=NOW,
        )
        for req in requests:
            loader.load(req)
    finally:
        for client in clients:
            client.close()


REQUESTS = [
    LoadRequest("spot-klines", "BTCUSDT", "1m", FIRST_DAY, NOW.date()),
    LoadRequest("perp-klines", "BTCUSDT", "5m", FIRST_DAY, NOW.date()),
    LoadRequest("funding", "BTCUSDT", None, FIRST_DAY, NOW.date()),
    LoadRequest("open-interest", "BTCUSDT", "5m", FIRST_DAY, NOW.date()),
]


def test_fault_storm_gives_the_same_lake_as_a_clean_run(market, tmp_path):
    with ReplayServer(market, now=NOW) as url:
        land(url, tmp_path / "clean", REQUESTS)
    faults = "429=0.1,5xx=0.05,truncate=0.02,slow=0.01,drop=0.01"
    server = ReplayServer(market, now=NOW, faults=faults, slow_delay=3.0)
    with server as url:
        land(url, tmp_path / "faulty", REQUESTS)
        stats = httpx.get(f"{url}/__replay/stats").json()
    clean = manifests(tmp_path / "clean" / "lake")
    assert clean, "the clean run landed nothing"
    assert manifests(tmp_path / "faulty" / "lake") == clean
    assert stats["retry_after_violations"] == 0
    injected = {k: v for k, v in stats["faults"].items() if v}
    assert injected.get("429") and injected.get("5xx"), f"faults were not exercised: {stats}"


def test_the_still_open_bar_is_never_landed_and_archive_serves_history(market, tmp_path):
    with ReplayServer(market, now=NOW) as url:
        land(url, tmp_path, REQUESTS[:1], archive=True)
    lake = Lake(tmp_path / "lake")
    today = lake.read_partition(_key("spot-klines", "1m", NOW.date()))
    last_open = today.column("open_time")[-1].as_py()
    # 12:00 is still open at 12:00:30; 11:59 is the last closed bar.
    assert last_open == NOW.replace(second=0) - timedelta(minutes=1)
    sources = {
        day: lake.read_manifest(_key("spot-klines", "1m", day)).source
        for day in (FIRST_DAY, NOW.date())
    }
    assert sources == {FIRST_DAY: "archive", NOW.date(): "rest"}
    full_day = lake.read_manifest(_key("spot-klines", "1m", FIRST_DAY))
    assert (full_day.rows, full_day.is_complete) == (1440, True)


def _key(dataset: str, interval: str | None, day: date):
    from lake.schemas import DATASETS
    from lake.store import PartitionKey

    return PartitionKey(DATASETS[dataset], "BTCUSDT", interval, day)


def _cli_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ, BTCFS_DATA_DIR=str(data_dir), BTCFS_NOW=NOW.isoformat())
    return env


def _ingest_cmd(url: str) -> list[str]:
    return [
        BTCFS, "ingest", "binance", "--dataset", "spot-klines", "--interval", "1m",
        "--start", FIRST_DAY.isoformat(), "--base-url", url, "--archive", "none", "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_run(market, tmp_path):
    rng = random.Random(20)
    with ReplayServer(market, now=NOW) as url:
        clean = tmp_path / "clean"
        subprocess.run(_ingest_cmd(url), env=_cli_env(clean), check=True, capture_output=True)
        expected = manifests(clean / "lake")
        assert len(expected) == 7
        interrupted = 0
        for attempt in range(5):
            data_dir = tmp_path / f"killed-{attempt}"
            process = subprocess.Popen(
                _ingest_cmd(url), env=_cli_env(data_dir), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # Kill once k partitions are finished, a few ms later: inside the next write.
            k = rng.randint(1, 3)
            while process.poll() is None and _finished(data_dir) < k:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.02))
            process.kill()
            process.wait()
            interrupted += _finished(data_dir) < 7
            subprocess.run(
                _ingest_cmd(url), env=_cli_env(data_dir), check=True, capture_output=True
            )
            assert manifests(data_dir / "lake") == expected, f"attempt {attempt} (k={k})"
            assert not list((data_dir / "lake").rglob(".*.tmp")), "temporary files left behind"
        assert interrupted, "no kill landed inside an ingest: the drill proved nothing"


def _finished(data_dir: Path) -> int:
    return len(list((data_dir / "lake").rglob("_SUCCESS")))


def test_a_ban_stops_the_run_with_the_ban_time(market, tmp_path):
    with ReplayServer(market, now=NOW, banned_for=600) as url:
        result = subprocess.run(
            _ingest_cmd(url), env=_cli_env(tmp_path), capture_output=True, text=True
        )
    assert result.returncode == 1
    assert "banned" in result.stderr.lower() and "until" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*.parquet"))


def test_old_open_interest_without_an_archive_points_to_metrics_files(market, tmp_path):
    with ReplayServer(market, now=NOW) as url:
        result = subprocess.run(
            [BTCFS, "ingest", "binance", "--dataset", "open-interest", "--interval", "5m",
             "--start", "2026-01-01", "--end", "2026-01-03", "--base-url", url,
             "--archive", "none", "--no-progress"],
            env=_cli_env(tmp_path), capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 1
    assert "30 days" in result.stderr and "metrics" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_all_without_network_fails_fast_with_one_line(tmp_path):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = dict(
        os.environ,
        BTCFS_DATA_DIR=str(tmp_path),
        BINANCE_SPOT_BASE_URL=dead,
        BINANCE_FUTURES_BASE_URL=dead,
        BINANCE_ARCHIVE_URL=dead,
    )
    result = subprocess.run([BTCFS, "ingest", "all"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach" in lines[0] and "make demo" in lines[0]
    # the reason is printed once: the progress line and the table say only "failed"
    assert (result.stdout + result.stderr).count("cannot reach") == 1, result.stdout
    assert "binance spot-klines BTCUSDT: failed\n" in result.stdout


SHARED_BINANCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance"


@pytest.mark.realdata
def test_real_days_via_archive_and_via_rest_land_identical_rows(tmp_path):
    if not (SHARED_BINANCE / "spot" / "klines" / "1m").is_dir():
        pytest.skip(f"real data not found at {SHARED_BINANCE} (../shared/data is absent)")
    from replay import RealDataMarket

    days = [date(2025, 8, 30), date(2025, 8, 31)]
    now = datetime(2025, 9, 10, tzinfo=UTC)
    request = LoadRequest("spot-klines", "BTCUSDT", "1m", days[0], days[-1])
    with ReplayServer(RealDataMarket(SHARED_BINANCE), now=now) as url:
        for name, archive in (("archive", True), ("rest", False)):
            clients = [HttpClient(url, vendor=name) for _ in range(3)]
            from ingest.binance.archive import HttpArchive

            loader = BinanceLoader(
                Lake(tmp_path / name / "lake"), tmp_path / name / "raw", spot=clients[0],
                futures=clients[1], archive=HttpArchive(clients[2]) if archive else None, now=now,
            )  # fmt: skip
            loader.load(request)
            for client in clients:
                client.close()
    for day in days:
        key = _key("spot-klines", "1m", day)
        via_archive = Lake(tmp_path / "archive" / "lake").read_partition(key)
        via_rest = Lake(tmp_path / "rest" / "lake").read_partition(key)
        assert set(via_archive.column("source").to_pylist()) == {"archive"}
        assert set(via_rest.column("source").to_pylist()) == {"rest"}
        drop = ["source", "ingested_at"]
        # REST speaks milliseconds, the 2025 archive microseconds: close_time differs by the
        # sub-millisecond digits (…59.999999 vs …59.999); everything else is identical.
        archive_rows = via_archive.drop_columns([*drop, "close_time"])
        rest_rows = via_rest.drop_columns([*drop, "close_time"])
        assert archive_rows.num_rows == 1440
        assert archive_rows.equals(rest_rows)
