"""ingest.binance.archive: layout, checksums, zips, header sniffing, funding/metrics CSVs."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ingest import HttpClient
from ingest.binance.archive import (
    HttpArchive,
    LocalArchive,
    daily_path,
    fetch_verified,
    monthly_path,
    parse_archive_csv,
    unzip_single_csv,
)
from ingest.errors import ChecksumMismatch, ConfigError, MalformedResponse, NotFound
from ingest.timeutil import Interval
from tests.ingest.binance_fakes import (
    MINUTE_MS,
    SHARED_DATA,
    day_ms,
    kline_row,
    make_zip,
    put_archive_file,
    requires_real_data,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)
M1, M5 = Interval.parse("1m"), Interval.parse("5m")
DAY = date(2024, 1, 1)
FUTURES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,"
    "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,"
    "sum_taker_long_short_vol_ratio"
)


def kline_csv(n: int, *, header: bool = False, start: int | None = None) -> bytes:
    first = day_ms(DAY) if start is None else start
    lines = [",".join(map(str, kline_row(first + i * MINUTE_MS))) for i in range(n)]
    return ("\n".join(([FUTURES_HEADER] if header else []) + lines) + "\n").encode()


# ---- layout (vendors.md: data/{spot|futures/um}/{daily|monthly}/{kind}/SYMBOL/[INTERVAL/]…) --


@pytest.mark.parametrize(
    ("dataset", "interval", "daily", "monthly"),
    [
        (
            "spot-klines", "1m",
            "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
            "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip",
        ),
        (
            "perp-klines", "1h",
            "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-05.zip",
            "data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
        ),
        (
            "mark-klines", "1m",
            "data/futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
            "data/futures/um/monthly/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip",
        ),
        (
            "premium-klines", "5m",
            "data/futures/um/daily/premiumIndexKlines/BTCUSDT/5m/BTCUSDT-5m-2024-01-05.zip",
            "data/futures/um/monthly/premiumIndexKlines/BTCUSDT/5m/BTCUSDT-5m-2024-01.zip",
        ),
        (
            "funding", None,
            "data/futures/um/daily/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01-05.zip",
            "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
        ),
        (
            "open-interest", "5m",
            "data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip",
            "data/futures/um/monthly/metrics/BTCUSDT/BTCUSDT-metrics-2024-01.zip",
        ),
    ],
)  # fmt: skip
def test_archive_paths(dataset: str, interval: str | None, daily: str, monthly: str) -> None:
    assert daily_path(dataset, "BTCUSDT", interval, date(2024, 1, 5)) == daily
    assert monthly_path(dataset, "BTCUSDT", interval, date(2024, 1, 5)) == monthly


def test_metrics_path_matches_binance_issue_258() -> None:
    assert (
        daily_path("open-interest", "BTCUSDT", "5m", date(2023, 7, 25))
        == "data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2023-07-25.zip"
    )


# ---- checksums ----------------------------------------------------------------------------

REL = daily_path("spot-klines", "BTCUSDT", "1m", DAY)


def test_verified_fetch(tmp_path: Path) -> None:
    payload = put_archive_file(tmp_path, REL, kline_csv(3))
    assert fetch_verified(LocalArchive(tmp_path), REL) == payload


def test_checksum_is_case_insensitive_and_may_lack_a_file_name(tmp_path: Path) -> None:
    payload = put_archive_file(tmp_path, REL, kline_csv(3), with_checksum=False)
    (tmp_path / (REL + ".CHECKSUM")).write_text(hashlib.sha256(payload).hexdigest().upper())
    assert fetch_verified(LocalArchive(tmp_path), REL) == payload


@pytest.mark.parametrize("published", ["0" * 64, "", "not-a-hash  file.zip"])
def test_checksum_mismatch_refuses_the_file(tmp_path: Path, published: str) -> None:
    put_archive_file(tmp_path, REL, kline_csv(3), checksum=published)
    with pytest.raises(ChecksumMismatch, match="was not used"):
        fetch_verified(LocalArchive(tmp_path), REL)


def test_missing_checksum_is_not_found_and_names_it(tmp_path: Path) -> None:
    put_archive_file(tmp_path, REL, kline_csv(3), with_checksum=False)
    with pytest.raises(NotFound, match=r"\.CHECKSUM"):
        fetch_verified(LocalArchive(tmp_path), REL)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not in the archive"):
        LocalArchive(tmp_path).fetch(REL)


# ---- LocalArchive -------------------------------------------------------------------------


def test_local_archive_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LocalArchive(tmp_path / "nope")


@pytest.mark.parametrize(
    "escape", ["../secret.txt", "data/../../secret.txt", "/etc/hostname", "data/link/secret.txt"]
)
def test_path_traversal_is_refused(tmp_path: Path, escape: str) -> None:
    root = tmp_path / "archive"
    (root / "data").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path, root / "data" / "link")
    with pytest.raises(ConfigError, match="escapes"):
        LocalArchive(root).fetch(escape)


# ---- HttpArchive --------------------------------------------------------------------------


def test_http_archive_fetches_by_path_and_maps_404(tmp_path: Path) -> None:
    payload = make_zip({"x.csv": b"1"})
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/" + REL:
            return httpx.Response(200, content=payload)
        return httpx.Response(404, text="<Error><Code>NoSuchKey</Code></Error>")

    client = HttpClient(
        "https://archive.test",
        vendor="archive",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    with client:
        archive = HttpArchive(client)
        assert archive.fetch(REL) == payload
        with pytest.raises(NotFound):
            archive.fetch(REL + ".CHECKSUM")
    assert seen == ["/" + REL, "/" + REL + ".CHECKSUM"]


# ---- zips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "members",
    [{}, {"a.csv": b"1", "b.csv": b"2"}, {"README.txt": b"hi"}],
    ids=["empty", "two-csvs", "no-csv"],
)
def test_zip_must_hold_exactly_one_csv(members: dict[str, bytes]) -> None:
    with pytest.raises(MalformedResponse, match="expected one CSV"):
        unzip_single_csv(make_zip(members), "x.zip")


def test_not_a_zip() -> None:
    with pytest.raises(MalformedResponse, match="not a zip"):
        unzip_single_csv(b"PK\x03\x04 truncated", "x.zip")


def test_single_csv_with_other_members() -> None:
    assert unzip_single_csv(make_zip({"x.csv": b"data", "x.txt": b"note"}), "x.zip") == b"data"


# ---- klines: header sniffing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "header"),
    [("spot-klines", False), ("perp-klines", True), ("perp-klines", False), ("mark-klines", True)],
)
def test_header_is_sniffed(dataset: str, header: bool) -> None:
    parsed = parse_archive_csv(
        dataset,
        kline_csv(5, header=header),
        symbol="BTCUSDT",
        interval=M1,
        ingested_at=NOW,
    )
    assert parsed.table.num_rows == 5, "no row lost to the header, no header landed as a row"
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.column("source").to_pylist() == ["archive"] * 5


def test_spot_microsecond_files_from_2025() -> None:
    first = day_ms(date(2025, 5, 19))
    lines = []
    for i in range(3):
        row = kline_row(first + i * MINUTE_MS)
        row[0], row[6] = row[0] * 1000, row[6] * 1000 + 999
        lines.append(",".join(map(str, row)))
    parsed = parse_archive_csv(
        "spot-klines",
        "\n".join(lines).encode(),
        symbol="BTCUSDT",
        interval=M1,
        ingested_at=NOW,
    )
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.column("open_time").to_pylist()[0] == datetime(2025, 5, 19, tzinfo=UTC)


def test_premium_archive_allows_negative_prices() -> None:
    row = kline_row(day_ms(DAY))
    row[1:5] = ["-0.00010000", "0.00020000", "-0.00030000", "0.00000000"]
    csv = ",".join(map(str, row)).encode()
    premium = parse_archive_csv(
        "premium-klines", csv, symbol="BTCUSDT", interval=M1, ingested_at=NOW
    )
    assert premium.table.num_rows == 1
    mark = parse_archive_csv("mark-klines", csv, symbol="BTCUSDT", interval=M1, ingested_at=NOW)
    assert mark.quarantine.column("reason").to_pylist() == ["non-positive price"]


def test_no_parser_for_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="no archive parser"):
        parse_archive_csv("trades", b"1,2\n", symbol="BTCUSDT", interval=None, ingested_at=NOW)


# ---- funding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "calc_time,funding_interval_hours,last_funding_rate",  # data.binance.vision today
        "funding_time,funding_interval_hours,funding_rate",  # ../shared/data's copy
    ],
)
def test_funding_archive_csv(header: str) -> None:
    csv = f"{header}\n1746057600000,8,0.00003519\n1746086400000,8,-0.00005755\n".encode()
    parsed = parse_archive_csv("funding", csv, symbol="BTCUSDT", interval=None, ingested_at=NOW)
    assert parsed.quarantine.num_rows == 0
    rows = parsed.table.to_pylist()
    assert [r["funding_time"] for r in rows] == [
        datetime(2025, 5, 1, 0, tzinfo=UTC),
        datetime(2025, 5, 1, 8, tzinfo=UTC),
    ]
    assert [r["funding_rate"] for r in rows] == [Decimal("0.00003519"), Decimal("-0.00005755")]
    assert [r["funding_interval_hours"] for r in rows] == [8, 8]
    assert [r["mark_price"] for r in rows] == [None, None]
    assert {r["source"] for r in rows} == {"archive"}


def test_funding_archive_bad_rows_are_quarantined() -> None:
    csv = b"calc_time,funding_interval_hours,last_funding_rate\n1746057600000,8,0.5\nx,8,0.1\n"
    parsed = parse_archive_csv("funding", csv, symbol="BTCUSDT", interval=None, ingested_at=NOW)
    assert parsed.table.num_rows == 0
    assert parsed.quarantine.column("reason").to_pylist() == [
        "funding rate outside ±3 %",
        "unparsable fundingTime",
    ]


@requires_real_data
def test_real_funding_archive_file() -> None:
    data = (
        SHARED_DATA / "binance/futures/um/BTCUSDT-funding-2025-05-01_2025-12-01.csv"
    ).read_bytes()
    parsed = parse_archive_csv("funding", data, symbol="BTCUSDT", interval=None, ingested_at=NOW)
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.num_rows == 643
    times = parsed.table.column("funding_time").to_pylist()
    hours = [t.replace(minute=0, second=0, microsecond=0) for t in times]
    assert len(set(hours)) == len(hours), "one funding per hour"
    assert all(abs((t - h).total_seconds()) < 1 for t, h in zip(times, hours, strict=True))
    assert any(t.microsecond for t in times), "Binance's ms jitter is kept as reported"
    assert parsed.table.column("funding_interval_hours").to_pylist() == [8] * 643


# ---- metrics (open interest) --------------------------------------------------------------


def test_metrics_csv_with_create_time_strings() -> None:
    csv = (
        f"{METRICS_HEADER}\n"
        "2023-07-25 00:00:00,BTCUSDT,71346.12900000,4336802989.71660000,1.5,1.25,1.1,0.95\n"
        "2023-07-25 00:05:00,BTCUSDT,71176.928,4320851065.006605,,,,\n"
    ).encode()
    parsed = parse_archive_csv("open-interest", csv, symbol="BTCUSDT", interval=M5, ingested_at=NOW)
    assert parsed.quarantine.num_rows == 0
    rows = parsed.table.to_pylist()
    assert [r["measured_at"] for r in rows] == [
        datetime(2023, 7, 25, 0, 0, tzinfo=UTC),
        datetime(2023, 7, 25, 0, 5, tzinfo=UTC),
    ]
    assert rows[0]["sum_open_interest"] == Decimal("71346.129")
    assert rows[1]["sum_open_interest_value"] == Decimal("4320851065.006605")
    assert rows[0]["count_toptrader_long_short_ratio"] == 1.5
    assert rows[0]["sum_taker_long_short_vol_ratio"] == 0.95
    assert rows[1]["count_long_short_ratio"] is None


def test_metrics_bad_rows_are_quarantined() -> None:
    csv = (
        f"{METRICS_HEADER}\n"
        "2023-07-25T00:00:00,BTCUSDT,1,1,,,,\n"  # not the archive's format
        "2023-07-25 00:01:00,BTCUSDT,1,1,,,,\n"  # off the 5-minute grid
        "2023-07-25 00:10:00,ETHUSDT,1,1,,,,\n"  # wrong symbol
        "2023-07-25 00:15:00,BTCUSDT,1,1,,,,\n"
    ).encode()
    parsed = parse_archive_csv("open-interest", csv, symbol="BTCUSDT", interval=M5, ingested_at=NOW)
    assert parsed.table.num_rows == 1
    assert parsed.quarantine.column("reason").to_pylist() == [
        "unparsable timestamp",
        "timestamp not on the period grid",
        "wrong symbol (expected BTCUSDT)",
    ]


def test_metrics_without_the_needed_columns_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="lacks"):
        parse_archive_csv(
            "open-interest",
            b"create_time,symbol\n2023-07-25 00:00:00,BTCUSDT\n",
            symbol="BTCUSDT",
            interval=M5,
            ingested_at=NOW,
        )
    with pytest.raises(MalformedResponse):  # headerless: nothing to go by
        parse_archive_csv(
            "open-interest",
            b"1,2,3\n",
            symbol="BTCUSDT",
            interval=M5,
            ingested_at=NOW,
        )
