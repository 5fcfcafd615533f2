"""The replay server over recorded Binance data (../shared/data): served as recorded."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from replay import RealDataMarket, ReplayServer, parse_moment

pytestmark = pytest.mark.realdata


def ms(moment: str) -> int:
    return parse_moment(moment) // 1000


@pytest.fixture(scope="module")
def real(real_market: RealDataMarket) -> Iterator[httpx.Client]:
    """The recordings on the real clock: all of them lie in the past."""
    with ReplayServer(real_market) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def may_2024(real_market: RealDataMarket) -> Iterator[httpx.Client]:
    """Inside the 5m open-interest recording, so that is within the 30-day window."""
    with (
        ReplayServer(real_market, now="2024-05-12T00:00:00Z") as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        yield client


def spot(client: httpx.Client, **params: object) -> list[list]:
    response = client.get("/api/v3/klines", params={"symbol": "BTCUSDT", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_only_btcusdt(real: httpx.Client) -> None:
    response = real.get("/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1m"})
    assert response.json()["code"] == -1121


def test_spot_day_zip_is_byte_identical(real_market: RealDataMarket, real_data_dir: Path) -> None:
    spot_dir = real_data_dir / "spot" / "klines" / "1m"
    with ReplayServer(real_market) as url, httpx.Client(base_url=url) as client:
        for day in ("2024-05-10", "2025-06-01", "2023-03-24"):
            path = f"/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip"
            data = client.get(path).content
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                inner = archive.read(f"BTCUSDT-1m-{day}.csv")
            recorded = gzip.decompress((spot_dir / f"BTCUSDT-1m-{day}.csv.gz").read_bytes())
            assert inner == recorded
            checksum = client.get(path + ".CHECKSUM").text
            assert checksum == f"{hashlib.sha256(data).hexdigest()}  BTCUSDT-1m-{day}.zip\n"
        monthly = client.get("/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip")
        assert monthly.status_code == 200
        partial_month = client.get("/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-05.zip")
        assert partial_month.status_code == 404  # the recording starts on the 19th
        perp = client.get("/data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-10-01.zip")
        assert perp.status_code == 404  # recorded perp klines are REST-only


def test_halt_minutes_are_not_served(real: httpx.Client) -> None:
    rows = spot(real, interval="1m", startTime=ms("2023-03-24T12:30:00Z"), limit=20)
    opens = [r[0] for r in rows]
    assert opens[9] == ms("2023-03-24T12:39:00Z")
    assert opens[10] == ms("2023-03-24T14:00:00Z")  # 12:40-13:59 never happened
    assert rows[9][6] == 1679661581646  # the recorded, truncated close time, kept
    assert rows[9][5] == "0.00000000" and rows[9][8] == 0  # the halt's flat bars are served
    hours = spot(real, interval="1h", startTime=ms("2023-03-24T11:00:00Z"), limit=4)
    assert [h[0] for h in hours] == [
        ms("2023-03-24T11:00:00Z"),
        ms("2023-03-24T12:00:00Z"),
        ms("2023-03-24T14:00:00Z"),
        ms("2023-03-24T15:00:00Z"),
    ]


def test_hourly_resampling_matches_binance(real: httpx.Client, real_data_dir: Path) -> None:
    path = real_data_dir / "spot" / "klines" / "1h" / "BTCUSDT-1h-api-2025-05-19_2025-05-25.csv"
    with path.open() as handle:
        expected = list(csv.DictReader(handle))
    rows = spot(real, interval="1h", startTime=int(expected[0]["open_time"]), limit=len(expected))
    assert len(rows) == len(expected) == 165
    names = ["open", "high", "low", "close", "volume", "close_time", "quote_asset_volume"]
    names += ["number_of_trades", "taker_buy_base", "taker_buy_quote"]
    for row, want in zip(rows, expected, strict=True):
        assert row[0] == int(want["open_time"])
        for value, name in zip(row[1:11], names, strict=True):
            got, wanted = Decimal(str(value)), Decimal(want[name])
            assert abs(got - wanted) <= abs(wanted) * Decimal("1e-6"), name


def test_time_units_of_both_eras(real: httpx.Client) -> None:
    micro = {"X-MBX-TIME-UNIT": "MICROSECOND"}
    params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}
    newer = {**params, "startTime": ms("2025-05-19T00:00:00Z")}
    older = {**params, "startTime": ms("2024-05-09T00:00:00Z")}
    assert spot(real, **newer)[0][:1] + spot(real, **newer)[0][6:7] == [
        1747612800000,
        1747612859999,
    ]
    [row] = real.get("/api/v3/klines", params=newer, headers=micro).json()
    assert (row[0], row[6]) == (1747612800000000, 1747612859999999)  # as recorded
    [row] = real.get("/api/v3/klines", params=older, headers=micro).json()
    assert (row[0], row[6]) == (1715212800000000, 1715212859999999)


def test_perp_klines_only_at_recorded_intervals(real: httpx.Client) -> None:
    params = {"symbol": "BTCUSDT", "startTime": ms("2025-10-01T00:00:00Z"), "limit": 2}
    hourly = real.get("/fapi/v1/klines", params={**params, "interval": "1h"}).json()
    assert hourly[0][:5] == [1759276800000, *hourly[0][1:5]]
    assert len(hourly[0][1].split(".")[1]) == 2 and len(hourly[0][5].split(".")[1]) == 3
    assert hourly[0][9] == "0" and hourly[0][10] == "0"  # not recorded: served as "0"
    for interval in ("4h", "1d"):
        assert real.get("/fapi/v1/klines", params={**params, "interval": interval}).json()
    for interval in ("1m", "2h", "1w"):
        assert real.get("/fapi/v1/klines", params={**params, "interval": interval}).json() == []
    mark = real.get("/fapi/v1/markPriceKlines", params={**params, "interval": "1h"})
    assert mark.json() == []


def test_recorded_funding(real: httpx.Client) -> None:
    rows = real.get(
        "/fapi/v1/fundingRate",
        params={"symbol": "BTCUSDT", "startTime": ms("2025-05-07T00:00:00Z"), "limit": 3},
    ).json()
    assert rows[1] == {
        "symbol": "BTCUSDT",
        "fundingTime": 1746604800000,
        "fundingRate": "-0.00000025",  # recorded as -2.5E-7 in the archive layout
        "markPrice": "",
    }
    newer = real.get(
        "/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "startTime": 1768262400000}
    )
    assert newer.json()[0]["fundingTime"] == 1768262400007  # the jitter as recorded


def test_recorded_open_interest(may_2024: httpx.Client) -> None:
    rows = may_2024.get(
        "/futures/data/openInterestHist",
        params={"symbol": "BTCUSDT", "period": "5m", "startTime": 1715252400000, "limit": 2},
    ).json()
    assert rows == [
        {
            "symbol": "BTCUSDT",
            "sumOpenInterest": "71346.12900000",
            "sumOpenInterestValue": "4336802989.71660000",
            "timestamp": 1715252400000,
        },
        {
            "symbol": "BTCUSDT",
            "sumOpenInterest": "71176.92800000",
            "sumOpenInterestValue": "4320851065.00660500",
            "timestamp": 1715252700000,
        },
    ]
    hourly = may_2024.get(
        "/futures/data/openInterestHist",
        params={"symbol": "BTCUSDT", "period": "1h", "limit": 500},
    ).json()
    assert all(r["timestamp"] % 3_600_000 == 0 for r in hourly) and len(hourly) == 46


def test_recorded_open_interest_at_4h(real_market: RealDataMarket) -> None:
    with ReplayServer(real_market, now="2026-03-20T12:00:00Z") as url:
        rows = httpx.get(
            f"{url}/futures/data/openInterestHist",
            params={"symbol": "BTCUSDT", "period": "4h", "limit": 500},
        ).json()
    assert rows[-1]["sumOpenInterest"] == "86874.41900000"
    assert len(rows) == 168
