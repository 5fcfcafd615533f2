"""FRED, Alpha Vantage and CryptoQuant end to end over real HTTP on loopback.

The replay server speaks each wire format; `run_vendor` (what `btcfs ingest vendor` runs)
lands the lake. Checked here: partitions and provenance, an idempotent rerun, CryptoQuant
vintages after a revision, faults survived with the same data, each vendor's error modes on
the wire, and that dummy keys never reach raw pages, Parquet, logs or errors.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest import HttpClient
from ingest.timeutil import parse_moment
from ingest.vendors import VENDORS
from ingest.vendors.base import VendorReport, run_vendor
from lake.schemas import VENDOR_DATASETS
from lake.store import Lake
from replay import ReplayServer, SyntheticMarket
from replay.vendors.alphavantage import AlphaVantageRoutes
from replay.vendors.cryptoquant import CryptoQuantRoutes

NOW = "2024-02-20T10:30:30Z"
KEYS = {
    "fred": ("FRED_API_KEY", "fredsecret0123456789abcdefghijkl"),
    "alphavantage": ("ALPHA_VANTAGE_API_KEY", "AVSECRET0123456789"),
    "cryptoquant": ("CQ_TOKEN", "cqsecret-0123456789-abcdefghij"),
}
START = date(2024, 2, 1)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, key in KEYS.values():
        monkeypatch.setenv(env, key)


@pytest.fixture
def server(synthetic_market: SyntheticMarket) -> Iterator[ReplayServer]:
    replay = ReplayServer(synthetic_market, now=NOW)
    replay.start()
    yield replay
    replay.stop()


def no_sleep_client(*args: Any, **kwargs: Any) -> HttpClient:
    # Backoffs shortened, but a real nap: the client re-checks a 429's Retry-After in a loop,
    # and a sleep that returns at once would spin a core until it passes.
    return HttpClient(*args, **{**kwargs, "sleep": lambda seconds: time.sleep(min(seconds, 0.05))})


def run(
    name: str, url: str, root: Path, now: str = NOW, config: dict[str, Any] | None = None
) -> VendorReport:
    return run_vendor(
        VENDORS[name],
        lake=Lake(root / "lake"),
        raw_root=root / "raw",
        now=parse_moment(now),
        config={"throttle_backoff_s": 0, **(config or {})},
        start=START,
        end=parse_moment(now).date(),
        base_url=url,
        debug=True,
        client_factory=no_sleep_client,
    )


def everything_on_disk(root: Path) -> bytes:
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            out.append(gzip.decompress(data) if path.suffix == ".gz" else data)
    return b"\n".join(out)


def lake_rows(root: Path, dataset: str) -> list[dict[str, Any]]:
    lake = Lake(root / "lake")
    ds = VENDOR_DATASETS[dataset]
    return [r for key, _ in lake.iter_partitions(ds) for r in lake.read_partition(key).to_pylist()]


@pytest.mark.parametrize(
    ("name", "dataset", "symbols"),
    [
        ("fred", "fred-series", {"DTWEXBGS", "DGS10", "VIXCLS"}),
        ("alphavantage", "av-daily", {"SPY", "UUP"}),
        ("cryptoquant", "cq-daily", {"all_exchange"}),
    ],
)
def test_lands_then_a_rerun_is_a_no_op_and_no_key_is_anywhere(
    keys: None,
    server: ReplayServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    dataset: str,
    symbols: set[str],
) -> None:
    with caplog.at_level(logging.DEBUG):
        report = run(name, server.url, tmp_path)
        assert report.status == "ok", report.message
        assert {line.symbol for line in report.lines} == symbols
        rows = lake_rows(tmp_path, dataset)
        assert rows and all(r["is_synthetic"] for r in rows)
        # The MANIFEST says so too: `btcfs warehouse load-bq` refuses synthetic partitions.
        lake = Lake(tmp_path / "lake")
        manifests = [m for _, m in lake.iter_partitions(VENDOR_DATASETS[dataset])]
        assert manifests and all(m is not None and m.is_synthetic for m in manifests if m.rows)
        assert all(r["available_at"] <= parse_moment(NOW) for r in rows)
        assert all(r["source"] == "rest" and r["ingested_at"] for r in rows)

        again = run(name, server.url, tmp_path)
        assert again.status == "ok", again.message
        assert sum(line.written for line in again.lines) == 0
        assert sum(line.unchanged for line in again.lines) > 0

    secret = KEYS[name][1]
    assert secret.encode() not in everything_on_disk(tmp_path)
    assert secret not in caplog.text
    assert secret not in repr(report) + repr(again)
    metas = list((tmp_path / "raw").rglob("*.meta.json"))
    assert metas and all(b"***" in m.read_bytes() or name == "cryptoquant" for m in metas)


def test_fred_vintages_and_holidays_over_http(
    keys: None, server: ReplayServer, tmp_path: Path
) -> None:
    report = run("fred", server.url, tmp_path)
    assert report.status == "ok", report.message
    rows = lake_rows(tmp_path, "fred-series")
    # Presidents' Day (Monday 02-19) is released "." on Tuesday 02-20: usable only from
    # Wednesday 06:00 UTC, so at 02-20 10:30 it is held back, and lands the next day as NULL.
    assert not [r for r in rows if r["observation_date"] == date(2024, 2, 19)]
    assert all("not yet available" in line.message for line in report.lines)
    later = "2024-02-21T12:00:00Z"
    server.app.clock.frozen_us = int(parse_moment(later).timestamp() * 1_000_000)
    assert run("fred", server.url, tmp_path, now=later).status == "ok"
    rows = lake_rows(tmp_path, "fred-series")
    presidents_day = [r for r in rows if r["observation_date"] == date(2024, 2, 19)]
    # DGS10 and VIXCLS; DTWEXBGS publishes that week on Monday 02-26.
    assert len(presidents_day) == 2 and all(r["value"] is None for r in presidents_day)
    for r in rows:
        day_after_vintage = datetime.combine(
            r["realtime_start"] + timedelta(days=1), datetime.min.time()
        )
        assert r["available_at"].replace(tzinfo=None) >= day_after_vintage
    # Nothing released after the replay clock: the latest vintage starts today at the latest.
    assert max(r["realtime_start"] for r in rows) <= parse_moment(NOW).date()


def test_cryptoquant_revision_adds_a_vintage_and_keeps_the_old(
    keys: None, server: ReplayServer, tmp_path: Path
) -> None:
    assert run("cryptoquant", server.url, tmp_path).status == "ok"
    before = {
        (r["observation_date"], r["metric"]): r["value"] for r in lake_rows(tmp_path, "cq-daily")
    }
    routes = next(v for v in server.app.vendors if isinstance(v, CryptoQuantRoutes))
    assert httpx.get(f"{server.url}/v1/btc/__replay/revise").json() == {"revision": 1}
    assert routes.revision == 1
    later = "2024-02-21T10:30:30Z"
    server.app.clock.frozen_us = int(parse_moment(later).timestamp() * 1_000_000)
    report = run("cryptoquant", server.url, tmp_path, now=later)
    assert report.status == "ok", report.message
    rows = lake_rows(tmp_path, "cq-daily")
    seen = {r["first_seen_at"] for r in rows}
    assert seen == {parse_moment(NOW), parse_moment(later)}
    first = {
        (r["observation_date"], r["metric"]): r["value"]
        for r in rows
        if r["first_seen_at"] == parse_moment(NOW)
    }
    assert first == before  # the old vintage is intact
    revised = [r for r in rows if r["first_seen_at"] == parse_moment(later)]
    assert any(r["observation_date"] < date(2024, 2, 20) for r in revised)
    assert all(r["available_at"] == parse_moment(later) for r in revised)


def test_faults_are_survived_with_the_same_data(
    keys: None, synthetic_market: SyntheticMarket, tmp_path: Path
) -> None:
    with ReplayServer(synthetic_market, now=NOW) as clean_url:
        for name in KEYS:
            assert run(name, clean_url, tmp_path / "clean").status == "ok"
    with ReplayServer(synthetic_market, now=NOW, faults="5xx=0.1,truncate=0.05,429=0.05") as url:
        for name in KEYS:
            report = run(name, url, tmp_path / "faulty")
            assert report.status == "ok", report.message
    for dataset in ("fred-series", "av-daily", "cq-daily"):
        clean = _data(tmp_path / "clean", dataset)
        assert clean and clean == _data(tmp_path / "faulty", dataset)


def _data(root: Path, dataset: str) -> dict[str, str]:
    lake = Lake(root / "lake")
    out = {}
    for key, manifest in lake.iter_partitions(VENDOR_DATASETS[dataset]):
        assert manifest is not None
        out[str(key.relative_dir())] = manifest.data_sha256
    return out


def test_alpha_vantage_throttle_over_http_fails_the_vendor_in_one_line(
    keys: None, synthetic_market: SyntheticMarket, tmp_path: Path
) -> None:
    # A frozen wall clock and one request a second: SPY gets the only answer, every UUP
    # attempt gets the Information burst message.
    replay = ReplayServer(synthetic_market, now=NOW, wall_clock=lambda: 1_800_000_000.0)
    with replay as url:
        routes = next(v for v in replay.app.vendors if isinstance(v, AlphaVantageRoutes))
        routes.burst_per_second = 1
        report = run("alphavantage", url, tmp_path, config={"throttle_retries": 2})
    assert report.status == "failed"
    assert "\n" not in report.message and "after 3 attempts" in report.message
    assert "1 request per second" in report.message
    assert KEYS["alphavantage"][1] not in report.message
    lines = {line.symbol: line for line in report.lines}
    assert lines["SPY"].status == "ok" and lines["SPY"].rows > 0
    landed = {(r["trade_date"]) for r in lake_rows(tmp_path, "av-daily")}
    assert landed  # SPY's bars; nothing of the throttled answers is written
    assert routes.throttled == 3


def test_error_modes_on_the_wire(server: ReplayServer) -> None:
    url = server.url
    fred = httpx.get(
        f"{url}/fred/series/observations", params={"series_id": "DGS10", "file_type": "json"}
    )
    assert fred.status_code == 400 and "api_key has not been set" in fred.json()["error_message"]
    xml = httpx.get(
        f"{url}/fred/series/observations", params={"series_id": "DGS10", "api_key": "k"}
    )
    assert xml.status_code == 200 and xml.content.startswith(b"<?xml")
    unknown = httpx.get(
        f"{url}/fred/series/observations",
        params={"series_id": "NOPE", "api_key": "k", "file_type": "json"},
    )
    assert unknown.status_code == 400 and unknown.json()["error_code"] == 400
    av = httpx.get(f"{url}/query", params={"function": "TIME_SERIES_DAILY", "symbol": "SPY"})
    assert av.status_code == 200 and "Error Message" in av.json()
    cq = httpx.get(f"{url}/v1/btc/exchange-flows/netflow", params={"exchange": "all_exchange"})
    assert cq.status_code == 401 and cq.json()["status"]["code"] == 401
    rows = httpx.get(
        f"{url}/v1/btc/exchange-flows/netflow",
        params={"exchange": "all_exchange", "window": "day", "limit": "5"},
        headers={"Authorization": "Bearer t"},
    ).json()["result"]["data"]
    days = [r["date"] for r in rows]
    assert days == sorted(days, reverse=True) and days[0] == "2024-02-20"


def test_pages_are_deterministic(server: ReplayServer, synthetic_market: SyntheticMarket) -> None:
    params = {
        "series_id": "DGS10",
        "api_key": "k",
        "file_type": "json",
        "observation_start": "2024-01-01",
    }
    first = httpx.get(f"{server.url}/fred/series/observations", params=params).content
    with ReplayServer(synthetic_market, now=NOW) as other:
        assert httpx.get(f"{other}/fred/series/observations", params=params).content == first


def test_cryptoquant_reserve_is_valued_at_the_servers_own_btc_close(server: ReplayServer) -> None:
    url = server.url
    rows = httpx.get(
        f"{url}/v1/btc/exchange-flows/reserve",
        params={"exchange": "all_exchange", "from": "20240210", "to": "20240216"},
        headers={"Authorization": "Bearer t"},
    ).json()["result"]["data"]
    start_ms = int(parse_moment("2024-02-10").timestamp() * 1000)
    klines = httpx.get(
        f"{url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1d", "startTime": start_ms, "limit": 7},
    ).json()
    closes = {
        datetime.fromtimestamp(k[0] / 1000, UTC).date().isoformat(): float(k[4]) for k in klines
    }
    compared = 0
    for row in rows:
        if row["reserve"] is None or row["reserve_usd"] is None:
            continue
        assert row["reserve_usd"] == pytest.approx(row["reserve"] * closes[row["date"]], abs=0.01)
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize("name", ["fred", "alphavantage", "cryptoquant"])
def test_btcfs_ingest_vendor_over_http(
    server: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from click.testing import CliRunner

    from btcfs.cli import cli
    from ingest import commands

    root, level = logging.getLogger(), logging.getLogger().level
    handlers = root.handlers[:]
    monkeypatch.setattr(commands, "HttpClient", no_sleep_client)
    env_name, secret = KEYS[name]
    env = {"BTCFS_DATA_DIR": str(tmp_path / "data"), "BTCFS_NOW": NOW, env_name: secret}
    args = ["ingest", "vendor", name, "--start", "2024-02-12", "--base-url", server.url,
            "--config", "config/ingest.yml", "--debug"]  # fmt: skip
    try:
        result = CliRunner().invoke(cli, args, env=env)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 0, result.output
    assert "days written" in result.output
    assert secret not in result.output
    assert secret.encode() not in everything_on_disk(tmp_path / "data")
