"""`btcfs live` end to end against the replay server running 30x faster than the wall clock:
it catches up (`btcfs update`), then lands each bar as it closes and publishes each 5m bar;
SIGTERM stops it cleanly; the lake holds every closed bar once and never the open one;
`btcfs live verify` finds every served feature row equal to a full batch rebuild's and fails
when one is not; an exchange that cannot be reached leaves it running, degraded, saying why;
with `--port`, the dashboard in Chromium ticks and turns red when the loop stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from ingest.timeutil import day_start_us
from pipeline.live_state import LiveState, read_state
from replay import ReplayServer, SyntheticMarket

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BTCFS = str(Path(sys.executable).with_name("btcfs"))
START = date(2025, 1, 1)
#: 31 days of warm-up (the production windows) and two days of feature rows.
NOW = datetime.combine(START + timedelta(days=33), dt_time(0, 31), UTC)
SPEED = 30.0


def _market() -> SyntheticMarket:
    return SyntheticMarket(
        3, day_start_us(START), day_start_us(START + timedelta(days=40)), symbols=("BTCUSDT",)
    )


@dataclass
class Site:
    root: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "BTCFS_NOW"))}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            DBT_TARGET_PATH=str(self.root / "target"),
            DBT_LOG_PATH=str(self.root / "logs"),
            DBT_PROFILES_DIR=str(REPO / "profiles"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        return env

    def live(self, url: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [BTCFS, "live", "--config", str(self.root / "ingest.yml"), "--base-url", url,
             "--price-every", "0.5", *args],
            cwd=REPO, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def btcfs(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BTCFS, *args], cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=900
        )

    def state(self) -> LiveState | None:
        return read_state(self.root / "live" / "state.json")


def wait_for(
    what: str, check: Callable[[], bool], process: subprocess.Popen[str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(
                f"btcfs live exited ({process.returncode}) before {what}:\n{output[-4000:]}"
            )
        time.sleep(0.2)
    process.kill()
    output = process.stdout.read() if process.stdout else ""
    raise AssertionError(f"no {what} within {timeout:g} s:\n{output[-4000:]}")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("live")
    (root / "ingest.yml").write_text(
        f"symbols: [BTCUSDT]\nstart: {START.isoformat()}\nrefresh_tail: 1\n"
        "datasets:\n  - {dataset: spot-klines, interval: 1m}\n"
        "  - {dataset: perp-klines, interval: 1m}\n"
    )
    return Site(root)


@pytest.fixture(scope="module")
def followed(site: Site) -> dict[str, object]:
    """One run of `btcfs live`: caught up, three 5m bars published while following, stopped."""
    server = ReplayServer(_market(), now=NOW.isoformat(), speed=SPEED)
    url = server.start()
    try:
        process = site.live(url)

        seen: set[datetime] = set()

        def publishes(count: int) -> Callable[[], bool]:
            def check() -> bool:
                state = site.state()
                if state is not None and "BTCUSDT" in state.published_bar:
                    seen.add(state.published_bar["BTCUSDT"])
                return len(seen) >= count

            return check

        wait_for("a first publish", publishes(1), process, 600)
        wait_for("three more 5m bars published, one by one", publishes(4), process, 300)
        running = site.state()
        output = stop(process)
        stopped_at_us = server.app.clock.now_us()
    finally:
        server.stop()
    return {"output": output, "running": running, "stopped_at_us": stopped_at_us}


def test_live_follows_the_market_and_stops_cleanly(site: Site, followed: dict[str, object]) -> None:
    output = str(followed["output"])
    assert "catching up: btcfs update" in output
    assert "published through BTCUSDT" in output
    assert "stopped" in output.splitlines()[-1]
    running = followed["running"]
    assert isinstance(running, LiveState)
    assert running.status == "following", running.reasons
    assert 20 < running.clock_rate < 40  # it measured the replay server's 30x clock
    quote = running.quote("BTCUSDT", "spot")
    assert quote is not None and quote.source == "open-bar" and quote.price > 0
    assert running.quote("BTCUSDT", "perp") is not None
    final = site.state()
    assert final is not None and final.status == "stopped"


def test_the_lake_holds_every_closed_bar_once_and_never_the_open_one(
    site: Site, followed: dict[str, object]
) -> None:
    stopped_at_us = int(followed["stopped_at_us"])  # type: ignore[call-overload]
    for dataset in ("spot_klines", "perp_klines"):
        parts = sorted((site.root / "lake" / "binance" / dataset).rglob("part-0.parquet"))
        times = [t for part in parts for t in pq.read_table(part).column("open_time").to_pylist()]
        assert len(times) == len(set(times)), f"{dataset}: a bar landed twice"
        newest = max(times)
        # every minute from the first to the newest, once
        assert len(times) == int((newest - min(times)).total_seconds() // 60) + 1
        # the newest landed bar had closed when live stopped; the open one never landed
        close_us = int(newest.timestamp() * 1_000_000) + 60_000_000
        assert close_us <= stopped_at_us


def test_every_served_row_equals_a_batch_rebuild(site: Site, followed: dict[str, object]) -> None:
    verified = site.btcfs("live", "verify", "--json")
    assert verified.returncode == 0, (verified.stdout + verified.stderr)[-4000:]
    verdict = json.loads(verified.stdout)
    assert verdict["ok"] and verdict["mismatches"] == []
    assert verdict["checked"]["features_5m"] > 100
    # the rows published while following are in the log, each with its publish time
    con = duckdb.connect(str(site.root / "live" / "served.duckdb"), read_only=True)
    try:
        publishes = con.execute(
            "select count(distinct btcfs_published_at) from features_5m"
        ).fetchone()
    finally:
        con.close()
    assert publishes is not None and publishes[0] >= 4


def test_verify_finds_a_row_that_differs(site: Site, followed: dict[str, object]) -> None:
    log = site.root / "live" / "served.duckdb"
    copy = log.with_name("served.original.duckdb")
    copy.write_bytes(log.read_bytes())
    try:
        con = duckdb.connect(str(log))
        try:
            column = con.execute(
                "select column_name from information_schema.columns where table_name = "
                "'features_5m' and data_type = 'DOUBLE' order by ordinal_position limit 1"
            ).fetchone()
            assert column is not None
            con.execute(
                f'update features_5m set "{column[0]}" = coalesce("{column[0]}", 0) * 1.001 + 1e-6 '
                "where open_time = (select max(open_time) from features_5m)"
            )
        finally:
            con.close()
        verified = site.btcfs("live", "verify")
        assert verified.returncode == 1
        assert f"column {column[0]}: served" in verified.stdout
        assert "live verify: differences" in verified.stderr
    finally:
        copy.replace(log)


def test_an_unreachable_exchange_leaves_it_running_degraded(site: Site) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    process = site.live(closed, "--no-catch-up")

    def degraded() -> bool:
        state = site.state()
        return state is not None and state.status == "degraded" and bool(state.reasons)

    wait_for("a degraded state", degraded, process, 60)
    state = site.state()
    assert state is not None and any("unreachable" in reason for reason in state.reasons)
    assert state.problem(datetime.now(UTC)) is not None
    time.sleep(1.5)
    assert process.poll() is None  # still running, retrying
    output = stop(process)
    assert "retrying" in output
    final = site.state()
    assert final is not None and final.status == "stopped"


@pytest.mark.browser
def test_the_dashboard_ticks_with_the_real_loop_and_goes_red_when_it_stops(
    site: Site, followed: dict[str, object], tmp_path: Path
) -> None:
    """`btcfs live --port` serving the dashboard in headless Chromium: the open bar's price
    changes without a reload; a frozen loop (SIGSTOP) turns the badge red and /health
    degraded; the loop resumed, the badge is live again."""
    from tests.api.cdp import Browser, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not found: `apt-get install -y chromium` (.ci/run does it)")
    stopped_at_us = int(followed["stopped_at_us"])  # type: ignore[call-overload]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ReplayServer(_market(), now=stopped_at_us, speed=SPEED)
    url = server.start()
    process = site.live(url, "--no-catch-up", "--port", str(port))
    browser = Browser(chromium, tmp_path / "profile")
    try:
        api = f"http://127.0.0.1:{port}"

        def api_up() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the API", api_up, process, 120)
        page = browser.page()
        page.call("Page.navigate", url=api + "/")
        price = "document.querySelector('#live-price')"
        page.wait_for(f"{price} !== null && {price}.dataset.source === 'open-bar'", timeout=60)
        first = float(page.evaluate(f"{price}.dataset.price"))
        page.evaluate("window.notReloaded = true")
        page.wait_for(f"Number({price}.dataset.price) !== {first}", timeout=60)
        assert page.evaluate("window.notReloaded") is True
        badge = "document.querySelector('#freshness')"
        page.wait_for(f"{badge}.dataset.status === 'live'", timeout=30)
        os.kill(process.pid, signal.SIGSTOP)  # the loop stops turning; its API child serves on
        try:
            page.wait_for(f"{badge}.dataset.status === 'behind'", timeout=60)
            assert "bad" in page.evaluate(f"{badge}.className")
            # /health: degraded once the heartbeat is older than the state's stale_after_s

            def degraded() -> bool:
                health = httpx.get(f"{api}/health", timeout=5).json()
                return health["status"] == "degraded" and any(
                    reason.startswith("live: ") and "has not turned" in reason
                    for reason in health["reasons"]
                )

            deadline = time.monotonic() + 60
            while not degraded() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert degraded(), httpx.get(f"{api}/health", timeout=5).json()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        page.wait_for(f"{badge}.dataset.status === 'live'", timeout=60)
    finally:
        browser.close()
        stop(process)
        server.stop()
