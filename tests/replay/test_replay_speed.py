"""A fast server clock (`speed`): time, bars, the archive and vendors follow it (HTTP on loopback).

Wall-time bounds are exact rather than tuned: the server reads its clock somewhere between the
moment a request is sent and the moment its answer arrives, so for two reads the market time
elapsed lies within speed x [wall time between the inner ends, between the outer ends].
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from replay import ReplayServer, SyntheticMarket, parse_moment
from replay.clock import US_PER_DAY, Clock, running_horizon_us

MINUTE_MS = 60_000
SPEED = 60.0
START = "2024-01-01"
END = "2024-01-03"


def ms(text: str) -> int:
    return parse_moment(text) // 1000


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(5, parse_moment(START), parse_moment(END), symbols=("BTCUSDT",))


def timed(http: httpx.Client, path: str, **params: object) -> tuple[float, httpx.Response, float]:
    """(wall time before, response, wall time after) on the monotonic clock."""
    before = time.monotonic()
    response = http.get(path, params=params)
    after = time.monotonic()
    assert response.status_code == 200, response.text
    return before, response, after


def assert_elapsed_at_speed(
    first: tuple[float, httpx.Response, float],
    second: tuple[float, httpx.Response, float],
    speed: float,
) -> None:
    elapsed_ms = second[1].json()["serverTime"] - first[1].json()["serverTime"]
    lowest = speed * (second[0] - first[2]) * 1000 - 2  # 1 ms rounding on each read
    highest = speed * (second[2] - first[0]) * 1000 + 2
    assert lowest <= elapsed_ms <= highest


def last_klines(http: httpx.Client, limit: int = 3) -> list[list]:
    params = {"symbol": "BTCUSDT", "interval": "1m", "limit": limit}
    response = http.get("/api/v3/klines", params=params)
    assert response.status_code == 200, response.text
    return response.json()


@contextmanager
def client_of(market: SyntheticMarket, now: str, **options: object) -> Iterator[httpx.Client]:
    with (
        ReplayServer(market, now=now, **options) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


# -- the clock ------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.ns = 5_000_000_000

    def __call__(self) -> int:
        return self.ns


def test_clock_modes() -> None:
    wall = FakeMonotonic()
    start = parse_moment("2024-01-02T00:00:00Z")
    frozen, stopped = Clock(start, monotonic_ns=wall), Clock(start, speed=0, monotonic_ns=wall)
    fast = Clock(start, speed=SPEED, monotonic_ns=wall)
    real_time = Clock(start, speed=1, monotonic_ns=wall)
    wall.ns += 1_500_000_000  # 1.5 wall seconds
    assert frozen.now_us() == stopped.now_us() == start and frozen.is_frozen
    assert fast.now_us() == start + 90_000_000 and not fast.is_frozen
    assert real_time.now_us() == start + 1_500_000
    assert Clock(speed=SPEED).frozen_us is None
    fast.frozen_us = start  # the tests' way to move a server's clock by hand still works
    wall.ns += 10**9
    assert fast.now_us() == start and fast.is_frozen


def test_clock_without_a_start_begins_at_the_real_now() -> None:
    before = time.time_ns() // 1000
    clock = Clock(speed=SPEED)
    assert before <= clock.now_us() <= time.time_ns() // 1000 + 2 * int(SPEED) * 1_000_000


@pytest.mark.parametrize("speed", [-1.0, float("nan"), float("inf"), "fast"])
def test_clock_rejects_bad_speeds(speed: object) -> None:
    with pytest.raises(ValueError):
        Clock(speed=speed)  # type: ignore[arg-type]


def test_running_horizon_is_a_wall_day_within_bounds() -> None:
    assert running_horizon_us(1) == 7 * US_PER_DAY
    assert running_horizon_us(SPEED) == 60 * US_PER_DAY
    assert running_horizon_us(10_000) == 90 * US_PER_DAY


# -- the in-process server ------------------------------------------------------------


def test_time_runs_at_speed_on_both_bases(market: SyntheticMarket) -> None:
    with client_of(market, "2024-01-02T00:00:00Z", speed=SPEED) as http:
        for path in ("/api/v3/time", "/fapi/v1/time"):
            first = timed(http, path)
            assert abs(first[1].json()["serverTime"] - ms("2024-01-02T00:00:00Z")) < 60_000
            time.sleep(0.5)
            second = timed(http, path)
            assert_elapsed_at_speed(first, second, SPEED)
        stats = http.get("/__replay/stats").json()
        assert stats["speed"] == SPEED


def test_a_new_one_minute_bar_appears_after_about_a_wall_second(market: SyntheticMarket) -> None:
    now = "2024-01-02T06:00:00Z"
    with client_of(market, now, speed=SPEED) as http:
        first = last_klines(http)
        server_ms = http.get("/api/v3/time").json()["serverTime"]
        open_bar = first[-1]
        assert open_bar[0] <= server_ms <= open_bar[6]  # the bar holding now, still open
        started = time.monotonic()
        latest = first
        while latest[-1][0] == open_bar[0] and time.monotonic() - started < 3.0:
            time.sleep(0.05)
            latest = last_klines(http)
        waited = time.monotonic() - started
        assert latest[-1][0] == open_bar[0] + MINUTE_MS, "no new bar after 3 wall seconds"
        assert waited <= 1.0 + 2.0  # at most one market minute plus a loaded machine's lag
        closed = next(row for row in latest if row[0] == open_bar[0])
    # Once closed by the fast clock, the bar is the one a frozen server serves later on.
    later = "2024-01-02T07:00:00Z"
    with ReplayServer(market, now=later) as url:
        params = {"symbol": "BTCUSDT", "interval": "1m", "startTime": open_bar[0], "limit": 1}
        [full] = httpx.get(f"{url}/api/v3/klines", params=params).json()
    assert closed == full


def test_frozen_stays_frozen(market: SyntheticMarket) -> None:
    for options in ({}, {"speed": 0}):
        with client_of(market, "2024-01-02T00:00:00Z", **options) as http:
            first = http.get("/api/v3/time").json()["serverTime"]
            bars = last_klines(http)
            time.sleep(0.3)
            assert http.get("/api/v3/time").json()["serverTime"] == first
            assert last_klines(http) == bars
            assert first == ms("2024-01-02T00:00:00Z")


def test_the_archive_publishes_a_day_when_the_fast_clock_passes_midnight(
    market: SyntheticMarket,
) -> None:
    day = "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    with client_of(market, "2024-01-01T23:59:45Z", speed=SPEED) as http:
        assert http.get(day).status_code == 404
        started, status = time.monotonic(), 404
        while status == 404 and time.monotonic() - started < 3.0:
            time.sleep(0.05)
            status = http.get(day).status_code
        assert status == 200


def test_past_the_market_end_time_runs_on_and_no_bar_appears(market: SyntheticMarket) -> None:
    end_ms = ms(END)
    with client_of(market, "2024-01-02T23:59:30Z", speed=SPEED * 2) as http:
        started = time.monotonic()
        while http.get("/api/v3/time").json()["serverTime"] < end_ms + 2 * MINUTE_MS:
            assert time.monotonic() - started < 3.0
            time.sleep(0.05)
        rows = last_klines(http)
        assert rows[-1][0] == end_ms - MINUTE_MS  # the market's last bar, now closed
        assert rows[-1][6] < http.get("/api/v3/time").json()["serverTime"]


# -- the CLI --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        ("0", "not a finite number > 0"),
        ("-2", "not a finite number > 0"),
        ("nan", "not a finite number > 0"),
        ("inf", "not a finite number > 0"),
        ("fast", "'fast' is not a valid float"),
    ],
)
def test_serve_rejects_bad_speeds(speed: str, message: str) -> None:
    args = ["replay", "serve", "--synthetic", "--now", "2024-01-02", "--speed", speed]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output and "--speed" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@contextmanager
def serving(*args: str, symbols: bool = True) -> Iterator[httpx.Client]:
    command = [
        sys.executable, "-c", "from btcfs.cli import main; main()",
        "replay", "serve", "--port", "0", *(["--symbols", "BTCUSDT"] if symbols else []), *args,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr and process.stderr.read()
        with httpx.Client(base_url=url, timeout=10) as http:
            yield http
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_with_now_and_speed_runs_fast_and_extends_the_market() -> None:
    with serving("--synthetic", "--start", START, "--now", "2024-01-02T00:00:00Z",
                 "--speed", "60") as http:  # fmt: skip
        first = timed(http, "/api/v3/time")
        time.sleep(0.5)
        second = timed(http, "/api/v3/time")
        assert_elapsed_at_speed(first, second, SPEED)
        stats = http.get("/__replay/stats").json()
        # No --end: a wall day's worth of market ahead of --now (60 days at 60x).
        assert "-> 2024-03-02T00:00:00+00:00" in stats["market"]
        assert stats["speed"] == SPEED


def test_serve_with_speed_alone_starts_at_the_real_now() -> None:
    with serving("--synthetic", "--speed", "60") as http:
        first = timed(http, "/api/v3/time")
        real_ms = time.time() * 1000
        # The clock started when the server did, a few wall seconds ago at most.
        assert real_ms - 1000 <= first[1].json()["serverTime"] <= real_ms + 60 * 30_000
        rows = last_klines(http, limit=1)
        assert rows and rows[0][6] >= first[1].json()["serverTime"]  # the open bar


def test_serve_with_now_alone_stays_frozen() -> None:
    with serving("--synthetic", "--start", START, "--end", END,
                 "--now", "2024-01-02T00:00:00Z") as http:  # fmt: skip
        first = http.get("/api/v3/time").json()["serverTime"]
        time.sleep(0.3)
        assert http.get("/api/v3/time").json()["serverTime"] == first
        assert http.get("/__replay/stats").json()["speed"] == 0.0


def test_serve_recorded_data_with_speed_runs_the_clock_only(real_data_dir: Path) -> None:
    with serving("--data", str(real_data_dir), "--now", "2024-01-02T00:00:00Z",
                 "--speed", "60", symbols=False) as http:  # fmt: skip
        first = timed(http, "/api/v3/time")
        time.sleep(0.5)
        second = timed(http, "/api/v3/time")
        assert_elapsed_at_speed(first, second, SPEED)
        assert second[1].headers["X-Btcfs-Replay"] == "recorded"


def test_vendor_routes_follow_the_fast_clock(market: SyntheticMarket) -> None:
    params = {"exchange": "all_exchange", "window": "day", "limit": "2"}
    headers = {"Authorization": "Bearer t"}

    def newest_day(http: httpx.Client) -> str:
        response = http.get("/v1/btc/exchange-flows/netflow", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["result"]["data"][0]["date"])

    with client_of(market, "2024-01-02T23:59:45Z", speed=SPEED) as http:
        assert newest_day(http) == "2024-01-02"
        started = time.monotonic()
        while newest_day(http) == "2024-01-02" and time.monotonic() - started < 3.0:
            time.sleep(0.05)
        assert newest_day(http) == "2024-01-03"  # CryptoQuant's day opened by the fast clock


def test_a_stopped_server_answers_nothing_even_on_a_kept_alive_connection(
    market: SyntheticMarket,
) -> None:
    """An outage is an outage: after stop(), a client's pooled connection gets no answer."""
    server = ReplayServer(market, now=START, speed=SPEED)
    url = server.start()
    with httpx.Client(base_url=url, timeout=5) as http:
        assert http.get("/api/v3/time").status_code == 200  # the connection is now pooled
        server.stop()
        with pytest.raises(httpx.TransportError):
            http.get("/api/v3/time")
