"""The data.binance.vision archive the replay server serves and exports (synthetic market)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from replay import ReplayServer, SyntheticMarket, parse_moment

SPOT_DAY = "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip"
FUTURES_HEADER = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip


def unzip(data: bytes) -> tuple[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [name] = archive.namelist()
        return name, archive.read(name).decode()


def test_spot_daily_zip_and_checksum(client: httpx.Client) -> None:
    response = client.get(SPOT_DAY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    name, text = unzip(response.content)
    assert name == "BTCUSDT-1m-2024-01-05.csv"
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1440 and len(rows[0]) == 12  # no header before 2025
    assert int(rows[0][0]) == parse_moment("2024-01-05") // 1000  # milliseconds before 2025
    assert int(rows[0][6]) == int(rows[0][0]) + 59_999
    checksum = client.get(SPOT_DAY + ".CHECKSUM")
    digest = hashlib.sha256(response.content).hexdigest()
    assert checksum.text == f"{digest}  BTCUSDT-1m-2024-01-05.zip\n"
    rest = client.get(
        "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": rows[0][0], "limit": 2},
    ).json()
    assert [[str(v) for v in r] for r in rest] == rows[:2]  # the same numbers as REST


def test_head_gives_the_size(client: httpx.Client) -> None:
    head = client.head(SPOT_DAY)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(client.get(SPOT_DAY).content)


def test_futures_files_have_a_header(client: httpx.Client) -> None:
    base = "/data/futures/um/daily"
    for folder in ("klines", "markPriceKlines", "premiumIndexKlines"):
        response = client.get(f"{base}/{folder}/BTCUSDT/1h/BTCUSDT-1h-2024-01-05.zip")
        assert response.status_code == 200, folder
        rows = list(csv.reader(io.StringIO(unzip(response.content)[1])))
        assert rows[0] == FUTURES_HEADER and len(rows) == 25
        assert int(rows[1][0]) == parse_moment("2024-01-05") // 1000


def test_funding_and_metrics_files(client: httpx.Client) -> None:
    funding = client.get(
        "/data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"
    )
    name, text = unzip(funding.content)
    rows = list(csv.reader(io.StringIO(text)))
    assert name == "BTCUSDT-fundingRate-2024-01.csv"
    assert rows[0] == ["calc_time", "funding_interval_hours", "last_funding_rate"]
    assert len(rows) == 1 + 92 and {r[1] for r in rows[1:]} == {"8"}
    metrics = client.get("/data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip")
    rows = list(csv.reader(io.StringIO(unzip(metrics.content)[1])))
    assert rows[0][:4] == ["create_time", "symbol", "sum_open_interest", "sum_open_interest_value"]
    assert len(rows[0]) == 8 and len(rows) == 1 + 288
    assert rows[1][:2] == ["2024-01-05 00:00:00", "BTCUSDT"] and rows[2][0] == "2024-01-05 00:05:00"


def test_only_finished_periods_exist(client: httpx.Client) -> None:
    monthly = "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-{}.zip"
    assert client.get(monthly.format("2024-01")).status_code == 200
    assert client.get(monthly.format("2024-02")).status_code == 404  # "now" is in February
    daily = "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{}.zip"
    assert client.get(daily.format("2024-02-19")).status_code == 200
    assert client.get(daily.format("2024-02-20")).status_code == 404  # today
    assert client.get(daily.format("2023-12-31")).status_code == 404  # before the market
    assert (
        client.get(
            "/data/futures/um/daily/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01-05.zip"
        ).status_code
        == 404
    )  # funding is monthly only, metrics daily only
    month = unzip(client.get(monthly.format("2024-01")).content)[1]
    assert month.count("\n") == 31 * 1440


def test_missing_files_are_s3_errors(client: httpx.Client) -> None:
    for path in (
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2030-01-01.zip",
        "/data/spot/daily/klines/DOGEUSDT/1m/DOGEUSDT-1m-2024-01-05.zip",
        "/data/spot/daily/klines/BTCUSDT/7m/BTCUSDT-7m-2024-01-05.zip",
        "/data/spot/daily/klines/BTCUSDT/1m/ETHUSDT-1m-2024-01-05.zip",
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02-31.zip",
        "/data/spot/daily/klines/BTCUSDT/1m/../../../../../etc/passwd",
        "/data/spot/daily/klines/BTCUSDT/1m/..%2F..%2Fsecret.zip",
        "/data/%2e%2e/%2e%2e/pyproject.toml",
        "/data/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/xml"
        assert "<Code>NoSuchKey</Code>" in response.text


def test_zips_are_byte_stable_and_seeded(synthetic_market: SyntheticMarket) -> None:
    start, end = parse_moment("2024-01-01"), parse_moment("2024-01-10")
    twin = SyntheticMarket(7, start, end)
    other = SyntheticMarket(8, start, end)
    now = "2024-02-01T00:00:00Z"
    fetched = []
    for market in (synthetic_market, twin, other):
        with ReplayServer(market, now=now) as url:
            fetched.append(httpx.get(url + SPOT_DAY).content)
    assert fetched[0] == fetched[1]  # same seed, fresh market, fresh server: same bytes
    assert fetched[0] != fetched[2]


def test_export_archive_writes_the_same_files(tmp_path: Path, client: httpx.Client) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "replay", "export-archive", "--out", str(tmp_path), "--synthetic", "--seed", "7",
            "--start", "2024-01-01", "--end", "2024-03-01", "--now", "2024-02-20T10:30:30Z",
            "--datasets", "spot-klines,funding-rate,metrics", "--intervals", "1m,1h",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    zips = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.zip"))
    # spot: 50 days + 1 month at two intervals; funding: January; metrics: 50 days
    assert len(zips) == 2 * (50 + 1) + 1 + 50
    assert "wrote 153 files" in result.output
    local = (tmp_path / SPOT_DAY.lstrip("/")).read_bytes()
    assert local == client.get(SPOT_DAY).content
    checksum = (tmp_path / (SPOT_DAY.lstrip("/") + ".CHECKSUM")).read_text()
    assert checksum.split()[0] == hashlib.sha256(local).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--datasets", "trades"], "choose from"),
        (["--intervals", "1M"], "choose from"),
        (["--granularity", "weekly"], "choose from"),
    ],
)
def test_export_archive_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    base = [
        "replay",
        "export-archive",
        "--out",
        str(tmp_path),
        "--synthetic",
        "--end",
        "2024-01-02",
    ]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
