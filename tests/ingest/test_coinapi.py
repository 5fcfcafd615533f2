"""CoinAPI loader: 7-digit ISO times, OHLCV and funding landing, every error status, secrets."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import HttpClient
from ingest.errors import SchemaDrift, VendorEnvelopeError
from ingest.vendors.base import REPLAY_HEADER, RowError, run_vendor
from ingest.vendors.coinapi import FUNDING_LAG, SPEC, check_rows, format_time, parse_time
from lake.schemas import VENDOR_DATASETS
from lake.store import Lake, PartitionKey

KEY = "coinapi-test-key-1a2b3c4d5e"
NOW = datetime(2024, 3, 2, 12, 2, 30, tzinfo=UTC)
D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
SPOT, PERP = "BINANCE_SPOT_BTC_USDT", "BINANCEFTS_PERP_BTC_USDT"


# ---- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00.0000000Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.1234567Z", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T00:00:00.9999999Z", datetime(2024, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)),
        ("2024-01-01T23:59:59.5Z", datetime(2024, 1, 1, 23, 59, 59, 500000, tzinfo=UTC)),
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
    ],
)
def test_parse_time_is_exact_to_the_microsecond_and_truncates_the_seventh_digit(
    text: str, expected: datetime
) -> None:
    assert parse_time(text, "t") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00.0000000",
        "2024-01-01 00:00:00Z",
        "2024-02-30T00:00:00.0000000Z",
        "2024-01-01T00:00:00.12345678Z",
        "2024-01-01T00:00:00+01:00",
        "",
        "١٢٣٤-01-01T00:00:00Z",
        1704067200,
        None,
    ],
)
def test_parse_time_rejects(text: object) -> None:
    with pytest.raises(RowError):
        parse_time(text, "t")


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)))
def test_format_then_parse_round_trips(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    text = format_time(aware)
    assert len(text.split(".")[1]) == 8 and text.endswith("0Z")  # 7 digits + Z
    assert parse_time(text, "t") == aware


# ---- fake ------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return format_time(moment)


class FakeCoinApi:
    """OHLCV and funding-metric rows for any window; `script` overrides the n-th reply."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: dict[int, Callable[[httpx.Request], httpx.Response]] = {}
        self.mutate: Callable[[list[dict[str, Any]]], list[Any]] = lambda rows: rows

    def handler(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        self.requests.append(request)
        if request.headers.get("X-CoinAPI-Key") != KEY:
            return httpx.Response(401, json={"message": "Invalid API key."})
        if n in self.script:
            return self.script[n](request)
        p = request.url.params
        start = parse_time(p["time_start"], "s")
        end = parse_time(p["time_end"], "e")
        limit = int(p["limit"])
        step = timedelta(minutes=5) if "ohlcv" in request.url.path else timedelta(hours=1)
        rows = []
        t = start
        while t < end and len(rows) < limit:
            if "ohlcv" in request.url.path:
                rows.append(
                    {
                        "time_period_start": iso(t),
                        "time_period_end": iso(t + step),
                        "time_open": iso(t + timedelta(seconds=1, microseconds=7)),
                        "time_close": iso(t + step - timedelta(seconds=2)),
                        "price_open": 42000.5,
                        "price_high": 42010.25,
                        "price_low": 41990.0,
                        "price_close": 42001.0,
                        "volume_traded": 12.34567891,
                        "trades_count": 321,
                    }
                )
            elif t + step <= NOW:
                rows.append(
                    {
                        "time_period_start": iso(t),
                        "time_period_end": iso(t + step),
                        "time_open": iso(t),
                        "time_close": iso(t + step - timedelta(seconds=1)),
                        "first": 0.0001,
                        "last": 0.00012,
                        "min": 0.0001,
                        "max": 0.00012,
                        "count": 60,
                        "sum": 0.0066,
                    }
                )
            t += step
        body = self.mutate(rows)
        return httpx.Response(200, json=body, headers={REPLAY_HEADER: "synthetic"})


def land(fake: FakeCoinApi, root: Path, monkeypatch: pytest.MonkeyPatch, **options: Any):
    monkeypatch.setenv("COINAPI_KEY", KEY)
    clock = [1_700_000_000.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    factory = partial(
        HttpClient, transport=httpx.MockTransport(fake.handler), sleep=sleep, clock=lambda: clock[0]
    )
    return run_vendor(
        SPEC,
        lake=Lake(root / "lake"),
        raw_root=root / "raw",
        now=NOW,
        config=options.pop("config", {}),
        start=options.pop("start", D1),
        end=options.pop("end", D2),
        datasets=options.pop("datasets", ["coinapi-ohlcv"]),
        client_factory=factory,
        **options,
    )


def ohlcv_key(symbol: str, day: date) -> PartitionKey:
    return PartitionKey(VENDOR_DATASETS["coinapi-ohlcv"], symbol, "5m", day)


# ---- landing ---------------------------------------------------------------------------------


def test_ohlcv_lands_per_symbol_with_available_at_the_period_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinApi()
    report = land(fake, tmp_path, monkeypatch)
    assert report.status == "ok", report
    assert [(line.symbol, line.rows) for line in report.lines] == [
        (SPOT, 288 + 144),
        (PERP, 288 + 144),  # 12:00 is still open at 12:02:30
    ]
    lake = Lake(tmp_path / "lake")
    row = lake.read_partition(ohlcv_key(PERP, D1)).to_pylist()[0]
    assert row["open_time"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert row["available_at"] == row["close_time"] == datetime(2024, 3, 1, 0, 5, tzinfo=UTC)
    assert row["first_trade_at"] == datetime(2024, 3, 1, 0, 0, 1, 7, tzinfo=UTC)
    assert row["open"] == Decimal("42000.5") and row["volume"] == Decimal("12.34567891")
    assert row["trade_count"] == 321 and row["is_synthetic"] is True
    first = fake.requests[0].url.params
    assert first["period_id"] == "5MIN" and first["time_start"] == "2024-03-01T00:00:00.0000000Z"
    assert {r.url.path for r in fake.requests} == {
        f"/v1/ohlcv/{SPOT}/history",
        f"/v1/ohlcv/{PERP}/history",
    }


def test_funding_lands_with_the_documented_lag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinApi()
    report = land(fake, tmp_path, monkeypatch, datasets=["coinapi-funding"])
    assert report.status == "ok" and report.rows == 24 + 12  # 11:00-12:00 known at 12:01
    lake = Lake(tmp_path / "lake")
    key = PartitionKey(VENDOR_DATASETS["coinapi-funding"], PERP, None, D1)
    row = lake.read_partition(key).to_pylist()[0]
    assert row["funding_rate"] == Decimal("0.00012")
    assert row["available_at"] == row["funding_time"] + timedelta(hours=1) + FUNDING_LAG
    params = fake.requests[0].url.params
    assert params["metric_id"] == "DERIVATIVES_FUNDING_RATE_CURRENT"
    assert params["symbol_id"] == PERP


def test_funding_also_reads_the_time_value_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinApi()
    fake.mutate = lambda rows: [
        {"symbol_id": PERP, "time": r["time_period_start"], "value": r["last"]} for r in rows
    ]
    report = land(fake, tmp_path, monkeypatch, datasets=["coinapi-funding"], end=D1)
    assert report.status == "ok" and report.rows == 24


def test_paging_follows_the_last_period_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinApi()
    report = land(fake, tmp_path, monkeypatch, config={"limit": 100, "symbols": [SPOT]}, end=D1)
    assert report.rows == 288
    starts = [r.url.params["time_start"] for r in fake.requests]
    assert starts == [
        "2024-03-01T00:00:00.0000000Z",
        "2024-03-01T08:20:00.0000000Z",
        "2024-03-01T16:40:00.0000000Z",
    ]


# ---- errors ----------------------------------------------------------------------------------


def error(status: int, message: str, **headers: str) -> Callable[..., httpx.Response]:
    return lambda _r: httpx.Response(status, json={"message": message}, headers=headers)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "HTTP 400"),
        (401, "check the API key"),
        (403, "check the API key"),
        (550, "HTTP 550"),
        (404, "HTTP 404"),
    ],
)
def test_any_non_200_is_a_failure_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, expected: str
) -> None:
    fake = FakeCoinApi()
    fake.script = {0: error(status, "You requested specific single item")}
    report = land(fake, tmp_path, monkeypatch, config={"symbols": [SPOT]}, end=D1)
    assert report.status == "failed"
    assert expected in report.message and "You requested specific single item" in report.message
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_429_is_honoured_then_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCoinApi()
    fake.script = {0: error(429, "Too many requests", **{"Retry-After": "3"})}
    report = land(fake, tmp_path, monkeypatch, config={"symbols": [SPOT]}, end=D1)
    assert report.status == "ok" and report.rows == 288 and len(fake.requests) == 2


def test_a_200_that_is_not_an_array() -> None:
    with pytest.raises(VendorEnvelopeError, match="quota"):
        check_rows({"message": "quota"}, "/v1/x")
    with pytest.raises(SchemaDrift):
        check_rows({"data": []}, "/v1/x")


def test_bad_rows_are_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def mutate(rows: list[dict[str, Any]]) -> list[Any]:
        rows = list(rows)
        rows[0] = {**rows[0], "time_period_start": "2024-03-01 00:00:00"}
        rows[1] = {**rows[1], "price_high": "NaN"}
        rows[2] = {**rows[2], "trades_count": 1.5}
        rows[3] = {**rows[3], "time_period_end": rows[5]["time_period_end"]}  # wrong length
        rows.append(rows[10])
        return rows[::-1]

    fake = FakeCoinApi()
    fake.mutate = mutate
    report = land(fake, tmp_path, monkeypatch, config={"symbols": [SPOT]}, end=D1)
    manifest = Lake(tmp_path / "lake").read_manifest(ohlcv_key(SPOT, D1))
    assert report.status == "ok"
    assert (manifest.rows, manifest.quarantined_rows, manifest.duplicates_identical) == (284, 4, 1)


def test_a_renamed_field_is_schema_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = FakeCoinApi()
    fake.mutate = lambda rows: [
        {("px_close" if k == "price_close" else k): v for k, v in r.items()} for r in rows
    ]
    report = land(fake, tmp_path, monkeypatch, config={"symbols": [SPOT]}, end=D1)
    assert report.status == "failed" and "price_close" in report.message


def test_the_key_is_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCoinApi()
    fake.script = {0: error(403, f"key {KEY} has no access")}
    report = land(fake, tmp_path, monkeypatch, config={"symbols": [SPOT]}, end=D1)
    assert report.status == "failed" and KEY not in report.message
    fake = FakeCoinApi()
    fake.mutate = lambda rows: [*rows, {"echo": KEY}]
    report = land(fake, tmp_path / "b", monkeypatch, config={"symbols": [SPOT]}, end=D1)
    assert report.status == "ok"
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in (gzip.decompress(data) if path.suffix == ".gz" else data)
