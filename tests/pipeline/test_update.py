"""`btcfs update` end to end against the replay server: the first run builds and publishes
(with dbt, then compiles the update plan), later runs land the new bars and publish them
through the plan, a run with nothing new publishes the same newest bar, a run with the
exchange unreachable publishes what the lake holds, and a new stretch that fails a gate stops
with one line naming it and leaves the published file as it was. (The plan equals dbt build:
tests/warehouse/test_update_plan.py, with a late correction of yesterday.)"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest

from ingest.timeutil import datetime_to_us, day_start_us
from replay import ReplayServer, SyntheticMarket
from replay.market import Bars, Kind

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BTCFS = str(Path(sys.executable).with_name("btcfs"))
START = date(2025, 1, 1)
#: 31 days of warm-up (the production windows) and two days of feature rows.
FIRST_NOW = datetime.combine(START + timedelta(days=33), time(0, 30), UTC)


def _market() -> SyntheticMarket:
    return SyntheticMarket(
        3, day_start_us(START), day_start_us(START + timedelta(days=40)), symbols=("BTCUSDT",)
    )


class GappedMarket(SyntheticMarket):
    """The same synthetic market with `hours` of spot 1m klines missing from `gap_start` on."""

    def __init__(self, gap_start: datetime, hours: int) -> None:
        base = _market()
        super().__init__(base.seed, base.start_us, base.end_us, symbols=base.symbols)
        self.gap = (datetime_to_us(gap_start), datetime_to_us(gap_start + timedelta(hours=hours)))

    def native_klines(self, kind: Kind, symbol: str) -> dict[str, Bars]:
        klines = dict(super().native_klines(kind, symbol))
        if kind == "spot":
            bars = klines["1m"]
            keep = (bars.open_time < self.gap[0]) | (bars.open_time >= self.gap[1])
            columns = {name: column[keep] for name, column in bars.columns().items()}
            klines["1m"] = Bars(bars.interval, missing_taker=bars.missing_taker, **columns)
        return klines


@dataclass
class Served:
    published_at: str
    newest_bar: datetime


@dataclass
class Site:
    root: Path

    def update(
        self, market: SyntheticMarket, now: datetime, *args: str
    ) -> subprocess.CompletedProcess[str]:
        with ReplayServer(market, now=now.isoformat()) as url:
            return self.run(url, now, *args)

    def run(self, url: str, now: datetime, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            BTCFS_NOW=now.isoformat(),
            DBT_TARGET_PATH=str(self.root / "target"),
            DBT_LOG_PATH=str(self.root / "logs"),
            DBT_PROFILES_DIR=str(REPO / "profiles"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        return subprocess.run(
            [BTCFS, "update", "--config", str(self.root / "ingest.yml"), "--base-url", url, *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    def served(self) -> Served:
        con = duckdb.connect(str(self.root / "warehouse" / "serve.duckdb"), read_only=True)
        try:
            published = con.execute("select published_at from btcfs_publish").fetchone()
            newest = con.execute("select max(open_time) from bars_5m").fetchone()
        finally:
            con.close()
        assert published is not None and newest is not None
        return Served(str(published[0]), newest[0])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("update")
    (root / "ingest.yml").write_text(
        f"symbols: [BTCUSDT]\nstart: {START.isoformat()}\nrefresh_tail: 1\n"
        "datasets:\n  - {dataset: spot-klines, interval: 1m}\n"
    )
    return Site(root)


def test_update_builds_lands_new_bars_and_stops_on_a_failing_gate(site: Site) -> None:
    market = _market()
    first = site.update(market, FIRST_NOW, "--timings")
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert "update: ingest, build, qa, publish" in first.stdout
    timings = next(x for x in first.stdout.splitlines() if x.startswith("timings: "))
    for step in ("ingest", "build", "qa", "publish"):
        assert f"{step} " in timings and " s" in timings
    # the update's build: incremental, unit tests left to CI, gates on the rebuilt days
    assert '--vars={"gate_window_days":2}' in first.stdout
    assert "--exclude-resource-type=unit_test" in first.stdout
    # ... then compiles the update plan the later runs use; its QA leaves out the
    # whole-history dataset summaries
    assert "dbt compile" in first.stdout and "btcfs_plan" in first.stdout
    assert "--no-summaries" in first.stdout
    before = site.served()
    assert before.newest_bar == FIRST_NOW - timedelta(minutes=5)  # the newest closed 5m bar

    later = FIRST_NOW + timedelta(hours=3)
    second = site.update(market, later, "--json")
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert "update plan not used" not in second.stderr, second.stderr[-3000:]
    # where the plan's time went, in one line
    assert re.search(r"update plan: \d+ models in [\d.]+ s, \d+ gates in", second.stderr)
    result = json.loads(second.stdout)
    assert result["pipeline"] == "update" and result["steps"] == [
        "ingest", "build", "qa", "publish"
    ]  # fmt: skip
    assert result["result"]["ingest"]["rows_landed"] > 0
    after = site.served()
    assert after.newest_bar == before.newest_bar + timedelta(hours=3)
    assert after.published_at > before.published_at

    # Nothing new: it still publishes, the same newest bar.
    again = site.update(market, later)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    published = site.served()
    assert published.newest_bar == after.newest_bar

    # The exchange unreachable: the update says so, builds on what the lake holds and
    # publishes it (exit 0), the same newest bar.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    down = site.run(closed, later + timedelta(minutes=10), "--json")
    assert down.returncode == 0, (down.stdout + down.stderr)[-4000:]
    assert "building on what the lake holds" in down.stderr
    assert json.loads(down.stdout)["result"]["ingest"]["error"]
    offline = site.served()
    assert offline.newest_bar == published.newest_bar
    assert offline.published_at > published.published_at
    published = offline

    # Three hours of spot minutes missing after `later`: the gap gate of that day fails, the
    # update stops in one line naming it, and the published file stays as it was.
    gapped = GappedMarket(later + timedelta(minutes=30), 3)
    failed = site.update(gapped, later + timedelta(hours=6))
    assert failed.returncode == 1, (failed.stdout + failed.stderr)[-4000:]
    (line,) = [x for x in failed.stderr.splitlines() if x.startswith("Error: ")]
    assert "update stopped at build" in line and "gap_ratio__spot_klines" in line, line
    assert site.served() == published
