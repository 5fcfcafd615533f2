"""ingest.binance.loader against a fake Binance (httpx.MockTransport) and local archive folders."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.binance.archive import daily_path, monthly_path
from ingest.binance.loader import BinanceLoader, LoadRequest, validate_request
from ingest.errors import ChecksumMismatch, ConfigError, DataUnavailable, MalformedResponse
from lake.schemas import DATASETS
from lake.store import PART_FILE, Lake, PartitionKey
from tests.ingest.binance_fakes import (
    DAY_MS,
    MINUTE_MS,
    FakeBinance,
    day_ms,
    kline_grid,
    kline_row,
    put_archive_file,
)

D1 = date(2024, 1, 1)
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)
LATER = datetime(2024, 2, 1, tzinfo=UTC)  # all of D1..D3 long over
KLINES = "/api/v3/klines"

Loader = Callable[..., BinanceLoader]


def spot(start: date = D1, end: date = D3, **kw: Any) -> LoadRequest:
    return LoadRequest("spot-klines", "BTCUSDT", "1m", start, end, **kw)


def key(day: date, dataset: str = "spot-klines", interval: str | None = "1m") -> PartitionKey:
    return PartitionKey(DATASETS[dataset], "BTCUSDT", interval, day)


def lake_of(loader: BinanceLoader) -> Lake:
    return loader.lake


def open_times_ms(lake: Lake, k: PartitionKey) -> list[int]:
    times = lake.read_partition(k).column(k.dataset.time_column).to_pylist()
    return [int(t.timestamp() * 1000) for t in times]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def actions(report: Any) -> dict[date, str]:
    return {d.day: d.action for d in report.days}


# ---- pagination ---------------------------------------------------------------------------


def test_exact_pagination_1m_three_days(make_loader: Loader) -> None:
    fake = FakeBinance(klines=kline_grid(day_ms(D1) - DAY_MS, day_ms(D3) + 2 * DAY_MS))
    loader = make_loader(fake, LATER)
    report = loader.load(spot())
    assert actions(report) == dict.fromkeys([D1, D2, D3], "written")
    assert report.rows == 4320
    lake = lake_of(loader)
    seen: list[int] = []
    for day in (D1, D2, D3):
        times = open_times_ms(lake, key(day))
        assert times == list(range(day_ms(day), day_ms(day) + DAY_MS, MINUTE_MS))
        seen.extend(times)
    assert len(seen) == len(set(seen)) == 4320
    # Per day: one full page of 1000, then the rest starting 1 ms after the last open time.
    expected = []
    for day in (D1, D2, D3):
        expected += [day_ms(day), day_ms(day) + 999 * MINUTE_MS + 1]
    assert fake.start_times(KLINES) == expected
    for request in fake.requests:
        params = request.url.params
        assert params["symbol"] == "BTCUSDT"
        assert params["interval"] == "1m"
        assert params["limit"] == "1000"
        start = int(params["startTime"])
        day_start = start - start % DAY_MS
        assert params["endTime"] == str(day_start + DAY_MS - 1)


def test_pagination_when_a_page_ends_exactly_at_the_limit(make_loader: Loader) -> None:
    """1000 bars in a day: the first page is full, the second is empty, nothing repeats."""
    grid = kline_grid(day_ms(D1), day_ms(D1) + DAY_MS)
    fake = FakeBinance(klines=grid[:1000])
    loader = make_loader(fake, LATER)
    report = loader.load(spot(D1, D1))
    assert report.days[0].rows == 1000
    assert fake.start_times() == [day_ms(D1), day_ms(D1) + 999 * MINUTE_MS + 1]


def test_perp_klines_use_continuous_klines_and_1500_pages(make_loader: Loader) -> None:
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + DAY_MS))
    loader = make_loader(fake, LATER)
    report = loader.load(LoadRequest("perp-klines", "BTCUSDT", "1m", D1, D3))
    assert report.rows == 4320
    assert fake.start_times("/fapi/v1/continuousKlines") == [day_ms(d) for d in (D1, D2, D3)]
    params = fake.requests[0].url.params
    assert (params["pair"], params["contractType"], params["limit"]) == (
        "BTCUSDT",
        "PERPETUAL",
        "1500",
    )
    assert "symbol" not in params


def test_hourly_klines_several_days_per_request(make_loader: Loader) -> None:
    hour = 3_600_000
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + DAY_MS, hour))
    loader = make_loader(fake, LATER)
    report = loader.load(LoadRequest("spot-klines", "BTCUSDT", "1h", D1, D3))
    assert [d.rows for d in report.days] == [24, 24, 24]
    assert fake.start_times() == [day_ms(D1)]
    assert fake.requests[0].url.params["endTime"] == str(day_ms(D3) + DAY_MS - 1)


def test_a_page_that_goes_backwards_is_malformed_not_an_endless_loop(make_loader: Loader) -> None:
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D1) + DAY_MS))
    fake.tamper = lambda path, rows: [kline_row(day_ms(D1) - DAY_MS)] * 1000
    with pytest.raises(MalformedResponse, match="pagination would loop"):
        make_loader(fake, LATER).load(spot(D1, D1))


# ---- the still-open bar and incomplete days -----------------------------------------------


def test_the_still_open_bar_is_never_landed(make_loader: Loader) -> None:
    now = datetime(2024, 1, 3, 10, 30, 30, tzinfo=UTC)
    # The fake serves every bar that has opened, the one open at 10:30 included.
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + (10 * 60 + 31) * MINUTE_MS))
    loader = make_loader(fake, now)
    report = loader.load(spot())
    today = report.days[-1]
    assert (today.day, today.rows, today.expected_rows, today.is_incomplete) == (
        D3,
        630,
        1440,
        True,
    )
    times = open_times_ms(lake_of(loader), key(D3))
    assert times[-1] == day_ms(D3) + (10 * 60 + 29) * MINUTE_MS
    manifest = lake_of(loader).read_manifest(key(D3))
    assert manifest is not None
    assert not manifest.is_complete
    assert "the still-open bar was not landed" in manifest.notes
    assert any("day not over yet" in n for n in manifest.notes)
    assert manifest.quarantined_rows == 0  # not a bad row: just not final yet


def test_a_bar_that_closed_just_now_is_landed(make_loader: Loader) -> None:
    now = datetime(2024, 1, 3, 10, 31, tzinfo=UTC)  # the 10:30 bar closed at 10:30:59.999
    fake = FakeBinance(klines=kline_grid(day_ms(D3), day_ms(D3) + (10 * 60 + 32) * MINUTE_MS))
    report = make_loader(fake, now).load(spot(D3, D3))
    assert report.days[0].rows == 631


def test_a_bar_is_not_landed_in_its_last_millisecond(make_loader: Loader) -> None:
    # 10:30:59.9995: past the 10:30 bar's close_time (…59.999) but before its interval ends.
    now = datetime(2024, 1, 3, 10, 30, 59, 999_500, tzinfo=UTC)
    fake = FakeBinance(klines=kline_grid(day_ms(D3), day_ms(D3) + (10 * 60 + 31) * MINUTE_MS))
    report = make_loader(fake, now).load(spot(D3, D3))
    assert report.days[0].rows == 630  # 00:00 … 10:29


def test_old_hourly_open_interest_is_not_looked_for_in_the_5m_metrics_archive(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    loader = make_loader(FakeBinance(), LATER + timedelta(days=90), archive=archive)
    with pytest.raises(DataUnavailable, match="1h open interest"):
        loader.load(LoadRequest("open-interest", "BTCUSDT", "1h", D1, D2))


def test_funding_with_an_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="no interval"):
        validate_request(LoadRequest("funding", "BTCUSDT", "8h", D1, D2))


def test_missing_minutes_are_reported_not_padded(make_loader: Loader) -> None:
    gap = range(day_ms(D2) + (12 * 60 + 40) * MINUTE_MS, day_ms(D2) + 14 * 60 * MINUTE_MS)
    lonely = day_ms(D2) + (23 * 60 + 59) * MINUTE_MS
    grid = [
        row
        for row in kline_grid(day_ms(D1), day_ms(D3) + DAY_MS)
        if row[0] not in gap and row[0] != lonely
    ]
    fake = FakeBinance(klines=grid)
    loader = make_loader(fake, LATER)
    report = loader.load(spot())
    day = next(d for d in report.days if d.day == D2)
    assert (day.rows, day.expected_rows, day.is_incomplete) == (1359, 1440, True)
    assert day.missing == ["12:40–13:59 (80 bars)", "23:59–23:59 (1 bars)"]
    lake = lake_of(loader)
    manifest = lake.read_manifest(key(D2))
    assert manifest is not None
    assert (manifest.rows, manifest.missing_rows, manifest.is_complete) == (1359, 81, False)
    assert manifest.notes == ["missing 12:40–13:59 (80 bars)", "missing 23:59–23:59 (1 bars)"]
    times = set(open_times_ms(lake, key(D2)))
    assert not times & set(gap)
    assert len(times) == 1359
    assert [d.is_incomplete for d in report.days] == [False, True, False]


# ---- incremental runs ---------------------------------------------------------------------


def test_complete_days_are_skipped_and_incomplete_ones_refetched(make_loader: Loader) -> None:
    grid = [r for r in kline_grid(day_ms(D1), day_ms(D3) + DAY_MS) if r[0] != day_ms(D2)]
    fake = FakeBinance(klines=grid)
    make_loader(fake, LATER).load(spot())
    fake.requests.clear()
    report = make_loader(fake, LATER).load(spot(refresh_tail=2))
    assert actions(report) == {D1: "skipped", D2: "unchanged", D3: "skipped"}
    assert fake.start_times() == [day_ms(D2), day_ms(D2) + 1000 * MINUTE_MS + 1]


def test_refresh_tail_refetches_and_identical_data_changes_nothing(
    make_loader: Loader, tmp_path: Path
) -> None:
    now = datetime(2024, 1, 3, 12, 0, 30, tzinfo=UTC)
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + 12 * 60 * MINUTE_MS + 1))
    first = make_loader(fake, now).load(spot())
    assert actions(first) == dict.fromkeys([D1, D2, D3], "written")
    before = snapshot(tmp_path / "data")
    fake.requests.clear()

    report = make_loader(fake, now).load(spot(refresh_tail=2))
    assert actions(report) == {D1: "skipped", D2: "unchanged", D3: "unchanged"}
    assert {int(t) // DAY_MS * DAY_MS for t in fake.start_times()} == {day_ms(D2), day_ms(D3)}
    assert snapshot(tmp_path / "data") == before, "no file rewritten, no raw page added"

    fake.requests.clear()
    report = make_loader(fake, now).load(spot(refresh_tail=0))
    assert actions(report) == {D1: "skipped", D2: "skipped", D3: "unchanged"}  # D3 incomplete

    fake.requests.clear()
    report = make_loader(fake, now).load(spot(refresh_tail=0, force=True))
    assert actions(report) == dict.fromkeys([D1, D2, D3], "unchanged")
    assert len(fake.requests) == 5  # D3 so far fits in one page
    assert snapshot(tmp_path / "data") == before


def test_a_late_correction_in_the_tail_is_written(make_loader: Loader) -> None:
    now = datetime(2024, 1, 10, tzinfo=UTC)
    days = (date(2024, 1, 8), date(2024, 1, 9))
    grid = kline_grid(day_ms(days[0]), day_ms(days[1]) + DAY_MS)
    fake = FakeBinance(klines=grid)
    make_loader(fake, now).load(spot(*days, refresh_tail=0))
    changed = {day_ms(days[1]) + 5 * MINUTE_MS}
    fake.klines = [kline_row(r[0], bump=1) if r[0] in changed else r for r in grid]
    quiet = make_loader(fake, now).load(spot(*days, refresh_tail=0))
    assert set(actions(quiet).values()) == {"skipped"}
    # The tail counts today (2024-01-10): 2 days reach back to the 9th, 3 to the 8th.
    report = make_loader(fake, now).load(spot(*days, refresh_tail=2))
    assert actions(report) == {days[0]: "skipped", days[1]: "written"}
    fake.klines = grid
    report = make_loader(fake, now).load(spot(*days, refresh_tail=3))
    assert actions(report) == {days[0]: "unchanged", days[1]: "written"}


def test_end_beyond_today_stops_at_today_and_start_in_future_is_refused(
    make_loader: Loader,
) -> None:
    now = datetime(2024, 1, 2, 0, 0, 30, tzinfo=UTC)
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D2) + MINUTE_MS))
    report = make_loader(fake, now).load(spot(D1, date(2024, 3, 1)))
    assert [d.day for d in report.days] == [D1, D2]
    assert report.days[1].rows == 0  # only the still-open 00:00 bar exists
    with pytest.raises(ConfigError, match="future"):
        make_loader(fake, now).load(spot(date(2024, 1, 3), date(2024, 1, 4)))


# ---- archive and REST ---------------------------------------------------------------------


def _csv(rows: list[list[Any]]) -> bytes:
    return ("\n".join(",".join(map(str, r)) for r in rows) + "\n").encode()


def test_history_from_the_archive_rest_for_what_it_lacks(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    grid = kline_grid(day_ms(D1), day_ms(D3) + DAY_MS)
    put_archive_file(archive, daily_path("spot-klines", "BTCUSDT", "1m", D1), _csv(grid[:1440]))
    put_archive_file(archive, daily_path("spot-klines", "BTCUSDT", "1m", D3), _csv(grid[2880:]))
    fake = FakeBinance(klines=grid)
    loader = make_loader(fake, LATER, archive=archive)
    report = loader.load(spot())
    assert [(d.day, d.action, d.source, d.rows) for d in report.days] == [
        (D1, "written", "archive", 1440),
        (D2, "written", "rest", 1440),
        (D3, "written", "archive", 1440),
    ]
    assert {t // DAY_MS * DAY_MS for t in fake.start_times()} == {day_ms(D2)}
    lake = lake_of(loader)
    for day in (D1, D2, D3):
        assert open_times_ms(lake, key(day)) == [
            r[0] for r in grid if r[0] // DAY_MS * DAY_MS == day_ms(day)
        ]
    manifest = lake.read_manifest(key(D1))
    assert manifest is not None
    assert manifest.source == "archive"
    assert manifest.raw_pages == [daily_path("spot-klines", "BTCUSDT", "1m", D1)]
    # The archive zip is kept as received.
    kept = list((tmp_path / "data" / "raw").rglob("BTCUSDT-1m-2024-01-01.zip.*"))
    assert len(kept) == 1
    zip_path = archive / daily_path("spot-klines", "BTCUSDT", "1m", D1)
    assert kept[0].read_bytes() == zip_path.read_bytes()


def test_a_whole_past_month_comes_from_its_monthly_file(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    feb1 = date(2024, 2, 1)
    grid = kline_grid(day_ms(D1), day_ms(feb1) + DAY_MS)
    january = [r for r in grid if r[0] < day_ms(feb1)]
    put_archive_file(archive, monthly_path("spot-klines", "BTCUSDT", "1m", D1), _csv(january))
    put_archive_file(archive, daily_path("spot-klines", "BTCUSDT", "1m", feb1), _csv(grid[-1440:]))
    fake = FakeBinance(klines=grid)
    loader = make_loader(fake, LATER + timedelta(days=10), archive=archive)
    report = loader.load(spot(D1, feb1))
    assert [d.source for d in report.days] == ["archive"] * 32
    assert all(d.rows == 1440 for d in report.days)
    assert fake.requests == []  # nothing from REST, and January in one file
    jan31 = lake_of(loader).read_manifest(key(date(2024, 1, 31)))
    assert jan31 is not None
    assert jan31.raw_pages == [monthly_path("spot-klines", "BTCUSDT", "1m", D1)]


def test_an_unpublished_monthly_file_falls_back_to_the_daily_files(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    grid = kline_grid(day_ms(D1), day_ms(date(2024, 2, 1)))
    for n in range(31):
        day = D1 + timedelta(days=n)
        put_archive_file(
            archive,
            daily_path("spot-klines", "BTCUSDT", "1m", day),
            _csv(grid[n * 1440 : (n + 1) * 1440]),
        )
    fake = FakeBinance(klines=grid)
    loader = make_loader(fake, LATER + timedelta(days=10), archive=archive)
    report = loader.load(spot(D1, date(2024, 1, 31)))
    assert [(d.source, d.rows) for d in report.days] == [("archive", 1440)] * 31
    assert fake.requests == []


def test_recent_days_come_from_rest_even_with_an_archive(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    now = datetime(2024, 1, 3, 0, 0, 30, tzinfo=UTC)
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + MINUTE_MS))
    report = make_loader(fake, now, archive=archive).load(spot(D2, D3))
    assert [(d.day, d.source) for d in report.days] == [(D2, "rest"), (D3, "rest")]


def test_checksum_mismatch_stops_the_load_and_lands_nothing(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    rel = daily_path("spot-klines", "BTCUSDT", "1m", D1)
    put_archive_file(archive, rel, _csv(kline_grid(day_ms(D1), day_ms(D2))), checksum="0" * 64)
    loader = make_loader(None, LATER, archive=archive)
    with pytest.raises(ChecksumMismatch, match="not used"):
        loader.load(spot(D1, D1))
    assert lake_of(loader).read_manifest(key(D1)) is None
    assert not (tmp_path / "data" / "raw").exists()


def test_archive_rows_outside_the_day_and_bad_rows_are_quarantined(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    rows = kline_grid(day_ms(D1), day_ms(D2))
    stray = kline_row(day_ms(D2) + 5 * MINUTE_MS)
    bad = kline_row(day_ms(D1) + 7 * MINUTE_MS)
    bad[2] = "1.00000000"  # high below low
    rows[7] = bad
    put_archive_file(archive, daily_path("spot-klines", "BTCUSDT", "1m", D1), _csv([*rows, stray]))
    loader = make_loader(None, LATER, archive=archive)
    report = loader.load(spot(D1, D1))
    assert (report.days[0].rows, report.days[0].quarantined) == (1439, 2)
    q = pq.read_table(lake_of(loader).root / key(D1).quarantine_dir() / PART_FILE)
    assert sorted(q.column("reason").to_pylist()) == [
        "OHLC inconsistent",
        "outside the requested days",
    ]


# ---- rows outside the window, raw pages ---------------------------------------------------


def test_rows_outside_the_requested_days_are_quarantined_not_dropped(make_loader: Loader) -> None:
    grid = kline_grid(day_ms(D1), day_ms(D2) + DAY_MS)
    stray_early = kline_row(day_ms(D1) - 10 * DAY_MS)
    stray_late = kline_row(day_ms(D3) + 3 * MINUTE_MS)

    def tamper(path: str, rows: list[Any]) -> list[Any]:
        if rows and rows[0][0] == day_ms(D1) + 1000 * MINUTE_MS:  # second page of D1
            return [stray_early, *rows, stray_late]
        return rows

    fake = FakeBinance(klines=grid, tamper=tamper)
    loader = make_loader(fake, LATER)
    report = loader.load(spot(D1, D2))
    assert [(d.rows, d.quarantined) for d in report.days] == [(1440, 2), (1440, 0)]
    assert report.quarantined == 2
    lake = lake_of(loader)
    q = pq.read_table(lake.root / key(D1).quarantine_dir() / PART_FILE)
    assert q.column("reason").to_pylist() == ["outside the requested days"] * 2
    assert sorted(int(t.timestamp() * 1000) for t in q.column("event_time").to_pylist()) == [
        stray_early[0],
        stray_late[0],
    ]
    assert not (lake.root / key(D1 - timedelta(days=10)).relative_dir()).exists()
    # A rerun with the same answers changes nothing.
    again = make_loader(fake, LATER).load(spot(D1, D2, force=True))
    assert set(actions(again).values()) == {"unchanged"}


def test_raw_pages_are_gzipped_as_received_named_by_hash(
    make_loader: Loader, tmp_path: Path
) -> None:
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D1) + DAY_MS))
    bodies: list[bytes] = []
    real_handler = fake.handler

    def recording(request: Any) -> Any:
        response = real_handler(request)
        bodies.append(response.content)
        return response

    fake.handler = recording  # type: ignore[method-assign]
    make_loader(fake, LATER).load(spot(D1, D1))
    raw_dir = tmp_path / "data" / "raw" / "binance" / "spot_klines" / "date=2024-01-01"
    files = sorted(raw_dir.iterdir())
    assert len(files) == 2
    stored = {gzip.decompress(f.read_bytes()) for f in files}
    assert stored == set(bodies)
    for f in files:
        body = gzip.decompress(f.read_bytes())
        assert f.name.endswith(f"-{hashlib.sha256(body).hexdigest()[:12]}.json.gz")
        assert f.name.startswith("page-")
    manifest = Lake(tmp_path / "data" / "lake").read_manifest(key(D1))
    assert manifest is not None
    assert sorted(Path(p).name for p in manifest.raw_pages) == [f.name for f in files]
    before = snapshot(tmp_path / "data" / "raw")
    make_loader(fake, LATER).load(spot(D1, D1, force=True))
    make_loader(fake, LATER).load(spot(D1, D1, force=True))
    assert snapshot(tmp_path / "data" / "raw") == before


# ---- funding and open interest ------------------------------------------------------------


def funding_rows(start: date, days: int, jitter: int = 7) -> list[dict[str, Any]]:
    return [
        {
            "symbol": "BTCUSDT",
            "fundingTime": day_ms(start) + i * 8 * 3_600_000 + (i * jitter) % 17,
            "fundingRate": f"0.000{10 + i % 50:02d}000",
            "markPrice": f"{40000 + i}.50000000",
        }
        for i in range(days * 3)
    ]


def test_funding_from_rest_lands_per_day_with_jitter(make_loader: Loader) -> None:
    rows = funding_rows(D1, 40)
    rows[4]["symbol"] = "ETHUSDT"  # day 2
    fake = FakeBinance(funding=rows)
    loader = make_loader(fake, datetime(2024, 3, 1, tzinfo=UTC))
    report = loader.load(LoadRequest("funding", "BTCUSDT", None, D1, D1 + timedelta(days=39)))
    assert len(report.days) == 40
    assert [d.rows for d in report.days[:3]] == [3, 2, 3]
    assert report.days[1].quarantined == 1
    assert all(d.expected_rows is None and not d.is_incomplete for d in report.days)
    assert fake.start_times("/fapi/v1/fundingRate") == [day_ms(D1), day_ms(D1) + 30 * DAY_MS]
    table = lake_of(loader).read_partition(key(D1, "funding", None))
    assert [t.microsecond for t in table.column("funding_time").to_pylist()] == [0, 7000, 14000]


def test_funding_monthly_archive_only_lands_the_asked_days(
    make_loader: Loader, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    lines = ["calc_time,funding_interval_hours,last_funding_rate"]
    lines += [f"{r['fundingTime']},8,{r['fundingRate']}" for r in funding_rows(D1, 31)]
    rel = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"
    put_archive_file(archive, rel, ("\n".join(lines) + "\n").encode())
    loader = make_loader(None, LATER, archive=archive)
    report = loader.load(
        LoadRequest("funding", "BTCUSDT", None, date(2024, 1, 10), date(2024, 1, 11))
    )
    assert [(d.day, d.source, d.rows, d.quarantined) for d in report.days] == [
        (date(2024, 1, 10), "archive", 3, 0),
        (date(2024, 1, 11), "archive", 3, 0),
    ]
    # The month's other days are neither landed nor quarantined as strays.
    assert [k.day for k, _ in lake_of(loader).iter_partitions(DATASETS["funding"])] == [
        date(2024, 1, 10),
        date(2024, 1, 11),
    ]
    assert not (lake_of(loader).root / "_quarantine").exists()


def oi_rows(day: date) -> list[dict[str, Any]]:
    return [
        {
            "symbol": "BTCUSDT",
            "sumOpenInterest": f"{70000 + i}.12300000",
            "sumOpenInterestValue": f"{4_000_000_000 + i}.50000000",
            "timestamp": str(day_ms(day) + i * 300_000) if i % 2 else day_ms(day) + i * 300_000,
        }
        for i in range(288)
    ]


def test_recent_open_interest_from_rest(make_loader: Loader) -> None:
    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    day = date(2024, 2, 20)
    fake = FakeBinance(open_interest=oi_rows(day))
    loader = make_loader(fake, now)
    report = loader.load(LoadRequest("open-interest", "BTCUSDT", "5m", day, day))
    assert (report.days[0].rows, report.days[0].expected_rows) == (288, 288)
    request = fake.requests[0].url.params
    assert (request["period"], request["limit"]) == ("5m", "500")


def test_open_interest_older_than_30_days_without_archive_names_the_metrics_files(
    make_loader: Loader,
) -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    fake = FakeBinance()
    with pytest.raises(DataUnavailable) as info:
        make_loader(fake, now).load(
            LoadRequest("open-interest", "BTCUSDT", "5m", date(2024, 1, 1), date(2024, 2, 28))
        )
    message = str(info.value)
    assert "30 days" in message
    assert "metrics" in message
    assert "--archive" in message
    assert fake.requests == []


def test_old_open_interest_from_the_archive_and_unavailable_days(
    make_loader: Loader, tmp_path: Path
) -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    archive = tmp_path / "archive"
    header = "create_time,symbol,sum_open_interest,sum_open_interest_value"
    lines = [header] + [
        f"{datetime.fromtimestamp(day_ms(D1) / 1000 + i * 300, UTC):%Y-%m-%d %H:%M:%S},"
        f"BTCUSDT,{70000 + i}.5,{4e9 + i:.1f}"
        for i in range(288)
    ]
    put_archive_file(
        archive,
        daily_path("open-interest", "BTCUSDT", "5m", D1),
        ("\n".join(lines) + "\n").encode(),
    )
    fake = FakeBinance()
    report = make_loader(fake, now, archive=archive).load(
        LoadRequest("open-interest", "BTCUSDT", "5m", D1, D2)
    )
    assert [(d.day, d.action, d.rows) for d in report.days] == [
        (D1, "written", 288),
        (D2, "unavailable", 0),
    ]
    assert "30 days" in report.days[1].note
    assert fake.requests == []


# ---- invalid requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (LoadRequest("spot-klines", "btcusdt", "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "BTC/USDT", "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "../ETC", "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "ＢＴＣＵＳＤＴ", "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "", "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "B" * 21, "1m", D1, D1), "symbol"),
        (LoadRequest("spot-klines", "BTCUSDT", "2m", D1, D1), "interval"),
        (LoadRequest("spot-klines", "BTCUSDT", "1M", D1, D1), "interval"),
        (LoadRequest("spot-klines", "BTCUSDT", "1w", D1, D1), "interval"),
        (LoadRequest("spot-klines", "BTCUSDT", None, D1, D1), "interval"),
        (LoadRequest("open-interest", "BTCUSDT", "1m", D1, D1), "period"),
        (LoadRequest("spot-klines", "BTCUSDT", "1m", D2, D1), "before"),
        (LoadRequest("spot-klines", "BTCUSDT", "1m", D1, D1, refresh_tail=-1), "refresh-tail"),
        (LoadRequest("trades", "BTCUSDT", "1m", D1, D1), "unknown dataset"),
    ],
)
def test_invalid_requests_are_config_errors(
    make_loader: Loader, request_: LoadRequest, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_request(request_)
    with pytest.raises(ConfigError, match=match):
        make_loader(None, LATER).load(request_)


def test_start_in_the_future_is_a_config_error(make_loader: Loader) -> None:
    with pytest.raises(ConfigError, match="in the future"):
        make_loader(None, LATER).load(spot(date(2024, 2, 2), date(2024, 2, 3)))


def test_a_day_landed_while_open_is_refetched_once_then_skipped(make_loader: Loader) -> None:
    """Funding has no expected row count: a day landed before it ended must not pass for
    complete, and once landed after its end (even with identical rows) it must be skipped."""
    rows = funding_rows(D1, 3)
    fake = FakeBinance(funding=rows)
    request = LoadRequest("funding", "BTCUSDT", None, D3, D3, refresh_tail=0)
    evening = datetime(2024, 1, 3, 20, 0, tzinfo=UTC)  # all three fundings of D3 are out
    first = make_loader(fake, evening).load(request)
    assert (first.days[0].action, first.days[0].rows) == ("written", 3)
    later = datetime(2024, 1, 5, tzinfo=UTC)
    second = make_loader(fake, later).load(request)
    assert second.days[0].action == "written"  # same rows, but now known to be final
    third = make_loader(fake, later).load(request)
    assert third.days[0].action == "skipped"
    # Under a replay clock (BTCFS_NOW) in the past, the wall-clock ingested_at must not
    # make a day landed "so far" look final.
    replay = make_loader(fake, datetime(2024, 1, 3, 10, 0, tzinfo=UTC)).load(
        LoadRequest("funding", "BTCUSDT", None, D3, D3, refresh_tail=0, force=True)
    )
    assert replay.days[0].rows == 2
    next_day = make_loader(fake, datetime(2024, 1, 4, 10, 0, tzinfo=UTC)).load(request)
    assert (next_day.days[0].action, next_day.days[0].rows) == ("written", 3)
