"""CoinGlass and CoinAPI against the real replay server on loopback: wire formats consistent
with the synthetic market, auth and business errors, and the loaders and CLI end to end (lake,
MANIFEST, idempotent rerun, fault storm, skipped and failed vendors, secrets)."""

from __future__ import annotations

import gzip
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import ingest.commands as commands
from btcfs.cli import cli
from ingest import ClientConfig, HttpClient
from ingest.vendors import VENDORS
from ingest.vendors.base import run_vendor
from ingest.verify import lake_fingerprint as manifests
from lake.store import Lake
from replay import ReplayServer, SyntheticMarket
from replay.clock import datetime_to_us, day_start_us

NOW = datetime(2026, 3, 10, 12, 2, 30, tzinfo=UTC)
FIRST = date(2026, 3, 8)
CG_KEY = "replay-cg-key-0a1b2c3d4e5f"
CA_KEY = "replay-ca-key-6a7b8c9d0e1f"
CG = {"CG-API-KEY": "k"}
CA = {"X-CoinAPI-Key": "k"}


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(
        seed=5,
        start_us=day_start_us(FIRST - timedelta(days=2)),
        end_us=datetime_to_us(NOW) + 3_600_000_000,
        symbols=("BTCUSDT",),
    )


@pytest.fixture(scope="module")
def url(market: SyntheticMarket) -> Iterator[str]:
    with ReplayServer(market, now=NOW) as base:
        yield base


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# ---- wire formats consistent with the market -------------------------------------------------


def test_coinglass_price_is_the_binance_perpetual(url: str) -> None:
    start = ms(datetime(2026, 3, 9, tzinfo=UTC))
    cg = httpx.get(
        f"{url}/api/futures/price/history",
        headers=CG,
        params={
            "exchange": "Binance",
            "symbol": "BTCUSDT",
            "interval": "5m",
            "limit": 50,
            "start_time": start,
        },
    )
    body = cg.json()
    assert cg.status_code == 200 and body["code"] == "0" and len(body["data"]) == 50
    binance = httpx.get(
        f"{url}/fapi/v1/klines",
        params={"symbol": "BTCUSDT", "interval": "5m", "limit": 50, "startTime": start},
    ).json()
    for row, kline in zip(body["data"], binance, strict=True):
        assert row["time"] == kline[0]
        assert [Decimal(row[k]) for k in ("open", "high", "low", "close")] == [
            Decimal(v) for v in kline[1:5]
        ]
        quote = Decimal(kline[7]).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        assert Decimal(row["volume_usd"]) == quote
    assert cg.headers["API-KEY-MAX-LIMIT"] and cg.headers["API-KEY-USE-LIMIT"]


def test_coinglass_oi_and_funding_follow_binance(url: str) -> None:
    start = ms(datetime(2026, 3, 9, 8, tzinfo=UTC))
    params = {"symbol": "BTC", "interval": "5m", "limit": 12, "start_time": start}
    oi = httpx.get(
        f"{url}/api/futures/open-interest/aggregated-history", headers=CG, params=params
    ).json()["data"]
    binance = httpx.get(
        f"{url}/futures/data/openInterestHist",
        params={"symbol": "BTCUSDT", "period": "5m", "limit": 12, "startTime": start},
    ).json()
    ratios = [
        float(o["open"]) / float(b["sumOpenInterestValue"])
        for o, b in zip(oi, binance, strict=True)
    ]
    assert all(abs(r - 2.7) < 1e-6 for r in ratios)
    funding = httpx.get(
        f"{url}/api/futures/funding-rate/oi-weight-history", headers=CG, params=params
    ).json()["data"]
    settled = httpx.get(
        f"{url}/fapi/v1/fundingRate",
        params={"symbol": "BTCUSDT", "startTime": start - 8 * 3600_000, "endTime": start},
    ).json()
    in_force = Decimal(settled[-1]["fundingRate"]) * 100  # CoinGlass reports percent
    assert Decimal(funding[0]["open"]) == in_force.quantize(Decimal("0.000001"))


def test_coinglass_never_serves_the_future(url: str) -> None:
    for path in (
        "/api/futures/open-interest/aggregated-history",
        "/api/futures/funding-rate/vol-weight-history",
    ):
        rows = httpx.get(
            f"{url}{path}",
            headers=CG,
            params={
                "symbol": "BTC",
                "interval": "5m",
                "limit": 1000,
                "start_time": ms(NOW - timedelta(hours=2)),
            },
        ).json()["data"]
        assert rows and max(r["time"] for r in rows) + 300_000 <= ms(NOW)
    price = httpx.get(
        f"{url}/api/futures/price/history",
        headers=CG,
        params={
            "exchange": "Binance",
            "symbol": "BTCUSDT",
            "interval": "5m",
            "start_time": ms(NOW - timedelta(hours=1)),
        },
    ).json()["data"]
    assert max(r["time"] for r in price) <= ms(NOW)  # the open bar, covering what has elapsed


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({}, {}, 401, "401"),
        (CG, {"exchange": "Binance", "symbol": "NOPE", "interval": "5m"}, 200, "40001"),
        (CG, {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "7m"}, 200, "40001"),
        (
            CG,
            {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "5m", "limit": "x"},
            200,
            "40001",
        ),
    ],
)
def test_coinglass_errors(url: str, headers: dict, params: dict, status: int, code: str) -> None:
    response = httpx.get(f"{url}/api/futures/price/history", headers=headers, params=params)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["X-Btcfs-Replay"] == "synthetic"


def test_coinapi_ohlcv_is_the_binance_spot_bars_with_seven_digit_times(url: str) -> None:
    response = httpx.get(
        f"{url}/v1/ohlcv/BINANCE_SPOT_BTC_USDT/history",
        headers=CA,
        params={
            "period_id": "5MIN",
            "time_start": "2026-03-09T00:00:00.0000000Z",
            "time_end": "2026-03-09T01:00:00.0000000Z",
            "limit": 100,
        },
    )
    rows = response.json()
    assert response.status_code == 200 and len(rows) == 12
    assert rows[0]["time_period_start"] == "2026-03-09T00:00:00.0000000Z"
    assert rows[0]["time_period_end"] == "2026-03-09T00:05:00.0000000Z"
    klines = httpx.get(
        f"{url}/api/v3/klines",
        params={
            "symbol": "BTCUSDT",
            "interval": "5m",
            "startTime": ms(datetime(2026, 3, 9, tzinfo=UTC)),
            "limit": 12,
        },
    ).json()
    assert [r["price_close"] for r in rows] == [float(k[4]) for k in klines]


@pytest.mark.parametrize(
    ("path", "headers", "params", "status"),
    [
        ("/v1/ohlcv/BINANCE_SPOT_BTC_USDT/history", {}, {"period_id": "5MIN"}, 401),
        ("/v1/ohlcv/BINANCE_SPOT_BTC_USDT/history", CA, {"period_id": "5MIN"}, 400),
        (
            "/v1/ohlcv/BINANCE_SPOT_BTC_USDT/history",
            CA,
            {"period_id": "7MIN", "time_start": "2026-03-09T00:00:00Z"},
            400,
        ),
        (
            "/v1/ohlcv/KRAKEN_SPOT_BTC_USD/history",
            CA,
            {"period_id": "5MIN", "time_start": "2026-03-09T00:00:00Z"},
            550,
        ),
        (
            "/v1/metrics/symbol/history",
            CA,
            {
                "metric_id": "NOPE",
                "symbol_id": "BINANCEFTS_PERP_BTC_USDT",
                "time_start": "2026-03-09T00:00:00Z",
            },
            400,
        ),
    ],
)
def test_coinapi_errors(url: str, path: str, headers: dict, params: dict, status: int) -> None:
    response = httpx.get(f"{url}{path}", headers=headers, params=params)
    assert response.status_code == status and set(response.json()) == {"message"}


# ---- loaders over loopback -------------------------------------------------------------------


def fast_client(
    *args: Any, config: ClientConfig | None = None, max_retries: int | None = None, **kwargs: Any
) -> HttpClient:
    """An HttpClient with the settings it is given (the vendor's), but a short timeout and
    short backoffs (and `max_retries`, if given)."""
    config = ClientConfig() if config is None else config
    retry = replace(config.retry, backoff_base=0.02, backoff_max=0.2)
    if max_retries is not None:
        retry = replace(retry, max_retries=max_retries)
    return HttpClient(*args, config=replace(config, timeout=2.0, retry=retry), **kwargs)


def land(
    url: str, root: Path, monkeypatch: pytest.MonkeyPatch, max_retries: int | None = None
) -> dict:
    monkeypatch.setenv("COINGLASS_API_KEY", CG_KEY)
    monkeypatch.setenv("COINAPI_KEY", CA_KEY)
    factory = partial(fast_client, max_retries=max_retries)
    reports = {}
    for name, config in (("coinglass", {"exchange_list": ["Binance"]}), ("coinapi", {})):
        reports[name] = run_vendor(
            VENDORS[name],
            lake=Lake(root / "lake"),
            raw_root=root / "raw",
            now=NOW,
            config=config,
            start=FIRST,
            end=NOW.date(),
            base_url=url,
            client_factory=factory,
        )
    return reports


def test_loaders_land_synthetic_rows_and_a_rerun_is_a_no_op(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = land(url, tmp_path, monkeypatch)
    assert {r.status for r in reports.values()} == {"ok"}, reports
    found = manifests(tmp_path / "lake")
    # 8 CoinGlass datasets + OHLCV spot/perp + funding, 3 days each.
    assert len(found) == (8 + 3) * 3
    full_day = [v for k, v in found.items() if "date=2026-03-09" in k and "interval=5m" in k]
    assert {rows for rows, _, _ in full_day} == {288}
    for part in (tmp_path / "lake").rglob("part-0.parquet"):
        if "_quarantine" not in str(part):
            table = pq.read_table(part)
            assert all(table.column("is_synthetic").to_pylist())
            available = table.column("available_at").to_pylist()
            assert max(available) <= NOW
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "lake").rglob("*") if p.is_file()}
    again = land(url, tmp_path, monkeypatch)
    assert all(line.written == 0 for r in again.values() for line in r.lines)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "lake").rglob("*") if p.is_file()} == (
        mtimes
    )
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            data = gzip.decompress(data) if path.suffix == ".gz" else data
            assert CG_KEY.encode() not in data and CA_KEY.encode() not in data


def test_a_fault_storm_on_vendor_routes_gives_the_same_lake(
    market: SyntheticMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ReplayServer(market, now=NOW) as clean_url:
        land(clean_url, tmp_path / "clean", monkeypatch)
    faults = "429=0.1,5xx=0.05,truncate=0.03,slow=0.01,drop=0.02"
    with ReplayServer(market, now=NOW, faults=faults, slow_delay=3.0, retry_after=0.0) as bad:
        reports = land(bad, tmp_path / "faulty", monkeypatch, max_retries=8)
        stats = httpx.get(f"{bad}/__replay/stats").json()
    assert {r.status for r in reports.values()} == {"ok"}, reports
    clean = manifests(tmp_path / "clean" / "lake")
    assert clean and manifests(tmp_path / "faulty" / "lake") == clean
    assert stats["faults"]["429"] and stats["faults"]["5xx"], stats["faults"]


def test_a_vendor_business_error_fails_that_vendor_with_its_message(
    market: SyntheticMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ReplayServer(market, now=NOW, faults="vendor=1") as bad:
        reports = land(bad, tmp_path, monkeypatch)
    assert reports["coinglass"].status == "failed"
    assert "code 50001: Server busy" in reports["coinglass"].message
    assert reports["coinapi"].status == "failed" and "HTTP 550" in reports["coinapi"].message
    assert not list((tmp_path / "lake").rglob("*.parquet"))


# ---- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for spec in VENDORS.values():
        if spec.env_key is not None:
            monkeypatch.delenv(spec.env_key, raising=False)
        monkeypatch.delenv(spec.base_url_env, raising=False)
    monkeypatch.setattr(commands, "HttpClient", fast_client)
    yield {
        "BTCFS_DATA_DIR": str(tmp_path / "data"),
        "BTCFS_NOW": NOW.isoformat(),
        "BINANCE_ARCHIVE_URL": "none",
    }
    root.handlers[:] = handlers
    root.setLevel(level)


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "ingest.yml"
    config.write_text(
        "start: 2026-03-09\ndatasets: [{dataset: funding}]\n"
        "vendors:\n  coinglass: {exchange_list: [Binance], datasets: [cg-price-ohlc]}\n"
        "  coinapi: {symbols: [BINANCE_SPOT_BTC_USDT]}\n"
    )
    return config


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def summary(output: str) -> dict[str, list[str]]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("vendor "))
    return {line.split()[0]: line.split() for line in lines[start + 2 :] if line.strip()}


def test_ingest_all_lands_every_vendor_and_skips_one_without_a_key(
    url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "COINGLASS_API_KEY": CG_KEY}
    result = CliRunner().invoke(
        cli, ["ingest", "all", "--config", str(write_config(tmp_path)), "--base-url", url], env=env
    )
    assert result.exit_code == 0, result.output
    assert "coinapi: skipped (COINAPI_KEY not set)" in result.output.splitlines()
    table = summary(result.output)
    assert table["binance"][1] == "ok" and table["coinapi"][1] == "skipped"
    assert table["coinglass"][1:4] == ["ok", "432", "2"]  # 288 + 144 bars (12:00 still open)
    assert CG_KEY not in result.output
    status = json.loads(CliRunner().invoke(cli, ["lake", "status", "--json"], env=env).output)
    assert ("coinglass", "cg_price_ohlc", 2) in {
        (s["vendor"], s["dataset"], s["days"]) for s in status
    }


def test_one_failing_vendor_does_not_stop_the_others(
    url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "COINGLASS_API_KEY": CG_KEY,
        "COINAPI_KEY": CA_KEY,
        "COINGLASS_BASE_URL": url,
        "COINAPI_BASE_URL": closed_port(),
        "BINANCE_FUTURES_BASE_URL": url,
    }
    result = CliRunner().invoke(
        cli, ["ingest", "all", "--config", str(write_config(tmp_path))], env=env
    )
    assert result.exit_code == 1
    table = summary(result.output)
    assert table["binance"][1] == "ok" and table["coinglass"][1] == "ok"
    # the table says it failed; its reason is printed once, in the error line that ends it
    assert table["coinapi"][1] == "failed" and "error below" in " ".join(table["coinapi"])
    assert "1 failed: coinapi" in result.output and "Traceback" not in result.output
    assert result.output.count("cannot reach") == 1


def test_ingest_vendor_one_dataset(url: str, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "COINAPI_KEY": CA_KEY}
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            "vendor",
            "coinapi",
            "--dataset",
            "coinapi-funding",
            "--start",
            "2026-03-10",
            "--base-url",
            url,
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("coinapi coinapi-funding BINANCEFTS_PERP_BTC_USDT: 1 days")
