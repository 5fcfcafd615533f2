"""BinanceLoader.load_tail and ingest.live.BinanceFollower against the replay server (HTTP on
loopback): landing only the bars after the newest one lands the same rows as a whole-day
landing, across midnight, keeps what the partition held, never lands the still-open bar, and
leaves the lake as it was when the exchange answers badly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from ingest import HttpClient
from ingest.binance.loader import BinanceLoader, LoadRequest
from ingest.config import DatasetJob, IngestConfig
from ingest.errors import IngestError
from ingest.live import BinanceFollower, ServerClock
from ingest.timeutil import datetime_to_us
from lake.schemas import DATASETS
from lake.store import Lake, PartitionKey, quarantine_table
from replay import ReplayServer, SyntheticMarket

DAY1 = date(2024, 1, 1)
DAY2 = DAY1 + timedelta(days=1)
#: Provenance differs between two landings of the same bars; the bars do not.
PROVENANCE = ("ingested_at",)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(
        11,
        datetime_to_us(datetime(2023, 12, 31, tzinfo=UTC)),
        datetime_to_us(datetime(2024, 1, 3, tzinfo=UTC)),
        symbols=("BTCUSDT",),
    )


@contextmanager
def loader_at(
    market: SyntheticMarket, root: Path, now: datetime, **faults: str
) -> Iterator[BinanceLoader]:
    with ReplayServer(market, now=now.isoformat(), **faults) as url:
        spot = HttpClient(url, vendor="binance-spot")
        futures = HttpClient(url, vendor="binance-futures")
        try:
            yield BinanceLoader(
                Lake(root / "lake"), root / "raw", spot=spot, futures=futures, archive=None,
                now=now,
            )  # fmt: skip
        finally:
            spot.close()
            futures.close()


def request(dataset: str = "spot-klines", day: date = DAY2) -> LoadRequest:
    return LoadRequest(dataset, "BTCUSDT", "1m", day, day, 1)


def key(day: date, dataset: str = "spot-klines") -> PartitionKey:
    return PartitionKey(DATASETS[dataset], "BTCUSDT", "1m", day)


def bars(lake: Lake, day: date, dataset: str = "spot-klines") -> pa.Table:
    table = lake.read_partition(key(day, dataset))
    return table.drop_columns(list(PROVENANCE))


def test_the_tail_lands_the_same_bars_as_a_whole_day(
    market: SyntheticMarket, tmp_path: Path
) -> None:
    start = datetime(2024, 1, 2, 10, 0, 30, tzinfo=UTC)
    with loader_at(market, tmp_path / "tail", start) as loader:
        loader.load(request())  # the day so far, as `btcfs ingest all` lands it
    reports = []
    for minutes in (1, 2, 7, 8):  # one bar, one more, five at once, then one
        now = start + timedelta(minutes=minutes)
        with loader_at(market, tmp_path / "tail", now) as loader:
            reports.append(loader.load_tail(request()))
            loader.load_tail(request("perp-klines"))
    end = start + timedelta(minutes=8)
    with loader_at(market, tmp_path / "whole", end) as loader:
        loader.load(request())
        loader.load(request("perp-klines"))
    tail_lake, whole_lake = Lake(tmp_path / "tail" / "lake"), Lake(tmp_path / "whole" / "lake")
    for dataset in ("spot-klines", "perp-klines"):
        assert bars(tail_lake, DAY2, dataset).equals(bars(whole_lake, DAY2, dataset))
    assert bars(tail_lake, DAY2).num_rows == 10 * 60 + 8
    assert [r.count("written") for r in reports] == [1, 1, 1, 1]
    # the still-open bar is reported with its price, and never landed
    last_open = reports[-1].open_bar
    assert last_open is not None
    assert last_open.open_time_us == datetime_to_us(datetime(2024, 1, 2, 10, 8, tzinfo=UTC))
    landed = tail_lake.read_partition(key(DAY2)).column("open_time").to_pylist()
    assert max(landed) == datetime(2024, 1, 2, 10, 7, tzinfo=UTC)
    manifest = tail_lake.read_manifest(key(DAY2))
    assert manifest is not None and not manifest.day_closed
    # every raw page the partition was landed from is named in its manifest and kept
    assert len(manifest.raw_pages) == 5
    assert all((tmp_path / "tail" / "raw" / page).is_file() for page in manifest.raw_pages)


def test_a_tail_across_midnight_closes_yesterday_and_opens_today(
    market: SyntheticMarket, tmp_path: Path
) -> None:
    with loader_at(market, tmp_path, datetime(2024, 1, 1, 23, 58, 10, tzinfo=UTC)) as loader:
        loader.load(request(day=DAY1))
    now = datetime(2024, 1, 2, 0, 2, 10, tzinfo=UTC)
    with loader_at(market, tmp_path, now) as loader:
        report = loader.load_tail(request())
    lake = Lake(tmp_path / "lake")
    yesterday, today = lake.read_manifest(key(DAY1)), lake.read_manifest(key(DAY2))
    assert yesterday is not None and today is not None
    assert (yesterday.rows, yesterday.is_complete, yesterday.day_closed) == (1440, True, True)
    assert (today.rows, today.day_closed) == (2, False)
    assert sorted(d.day for d in report.days) == [DAY1, DAY2]


def test_nothing_closed_since_writes_nothing(market: SyntheticMarket, tmp_path: Path) -> None:
    now = datetime(2024, 1, 2, 9, 0, 5, tzinfo=UTC)
    with loader_at(market, tmp_path, now) as loader:
        loader.load(request())
    part = (
        tmp_path
        / "lake"
        / Lake(tmp_path / "lake").partition_dir(key(DAY2)).relative_to(tmp_path / "lake")
    )
    before = {p.name: p.stat().st_mtime_ns for p in part.iterdir()}
    with loader_at(market, tmp_path, now + timedelta(seconds=40)) as loader:
        report = loader.load_tail(request())
    assert report.days == []
    assert report.open_bar is not None
    assert {p.name: p.stat().st_mtime_ns for p in part.iterdir()} == before


def test_without_a_recent_partition_the_tail_is_a_whole_load(
    market: SyntheticMarket, tmp_path: Path
) -> None:
    now = datetime(2024, 1, 2, 0, 30, 5, tzinfo=UTC)
    with loader_at(market, tmp_path, now) as loader:
        report = loader.load_tail(request())
    assert [(d.day, d.action, d.rows) for d in report.days] == [(DAY2, "written", 30)]


def test_the_partitions_quarantine_is_kept(market: SyntheticMarket, tmp_path: Path) -> None:
    now = datetime(2024, 1, 2, 3, 0, 5, tzinfo=UTC)
    with loader_at(market, tmp_path, now) as loader:
        loader.load(request())
    lake = Lake(tmp_path / "lake")
    held = lake.read_partition(key(DAY2))
    refused = quarantine_table(
        "spot_klines",
        [('["not", "a", "kline"]', "unparsable row", datetime_to_us(now) - 60_000_000)],
        source="rest",
        ingested_at=now,
    )
    lake.write_partition(
        key(DAY2), held, source="rest", ingested_at=now, expected_rows=1440,
        quarantine=refused, day_open=True,
    )  # fmt: skip
    with loader_at(market, tmp_path, now + timedelta(minutes=3)) as loader:
        loader.load_tail(request())
    kept = lake.read_quarantine(key(DAY2))
    assert kept is not None and kept.column("reason").to_pylist() == ["unparsable row"]
    manifest = lake.read_manifest(key(DAY2))
    assert manifest is not None and (manifest.rows, manifest.quarantined_rows) == (183, 1)


def test_a_bad_answer_lands_nothing(market: SyntheticMarket, tmp_path: Path) -> None:
    now = datetime(2024, 1, 2, 5, 0, 5, tzinfo=UTC)
    with loader_at(market, tmp_path, now) as loader:
        loader.load(request())
    lake = Lake(tmp_path / "lake")
    before = lake.read_partition(key(DAY2))
    later = now + timedelta(minutes=4)
    with (
        loader_at(market, tmp_path, later, faults="truncate=1.0") as loader,
        pytest.raises(IngestError),
    ):
        loader.load_tail(request())
    assert lake.read_partition(key(DAY2)).equals(before)


def test_the_follower_reads_the_exchange_clock_and_its_rate(
    market: SyntheticMarket, tmp_path: Path
) -> None:
    config = IngestConfig(
        symbols=("BTCUSDT",),
        start=DAY1,
        jobs=(DatasetJob("spot-klines", "1m"), DatasetJob("perp-klines", "1m")),
    )
    start = datetime(2024, 1, 2, 12, 0, 50, tzinfo=UTC)
    with ReplayServer(market, now=start.isoformat(), speed=20.0) as url:
        follower = BinanceFollower(config, Lake(tmp_path / "lake"), tmp_path / "raw", base_url=url)
        try:
            follower.sync_clock()
            first = follower.land()  # no partition yet: today so far, whole
            time.sleep(1.5)  # 30 s of market time: a bar closes
            follower.sync_clock()
            second = follower.land()
        finally:
            follower.close()
    assert 15 < follower.clock.rate < 25
    assert first.errors == {} and second.errors == {}
    assert "spot-klines BTCUSDT 2024-01-02" in second.written
    assert second.newest["BTCUSDT/spot"] == datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
    assert ("BTCUSDT", "perp") in second.open_bars


def test_the_server_clock_fits_offset_and_rate() -> None:
    wall = [100.0]
    clock = ServerClock(wall=lambda: wall[0])
    clock.add(100.0, 5_000_000_000)
    assert clock.rate == 1.0  # one sample: no rate yet
    clock.add(102.0, 5_000_000_000 + 20_000_000)  # 20 s of exchange time in 2 s
    assert clock.rate == pytest.approx(10.0)
    wall[0] = 103.0
    assert clock.now_us() == 5_000_000_000 + 30_000_000
    assert clock.wall_at(5_000_000_000 + 40_000_000) == pytest.approx(104.0)
    clock.add(104.0, 1_000)  # the server restarted with an earlier clock: start over
    assert clock.rate == 1.0 and clock.now_us(104.0) == 1_000
