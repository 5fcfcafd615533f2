"""CoinGlass v4 loader: envelope, every error mode, paging, parsing, rate-limit headers, secrets.

A fake CoinGlass over httpx.MockTransport serves 5-minute rows for whatever window is asked.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import HttpClient
from ingest.errors import SchemaDrift, VendorAuthError, VendorEnvelopeError, VendorThrottled
from ingest.vendors.base import REPLAY_HEADER, RowSet, run_vendor
from ingest.vendors.coinglass import ENDPOINTS, SPEC, check_envelope, parse_rows
from lake.schemas import VENDOR_DATASETS
from lake.store import Lake, PartitionKey

KEY = "cg-test-key-9f8e7d6c5b4a"
NOW = datetime(2024, 3, 2, 12, 2, 30, tzinfo=UTC)
D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
STEP_MS = 300_000


def ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def row_for(path: str, t: int) -> dict[str, Any]:
    fields = ENDPOINTS[next(k for k, e in ENDPOINTS.items() if e.path == path)].fields
    price = 60000 + (t // STEP_MS) % 100
    values = {
        "open": str(price),
        "high": str(price + 5),
        "low": str(price - 5),
        "close": str(price + 1),
        "volume_usd": "1234.5",
    }
    return {"time": t, **{f: values.get(c, "10.25") for c, f in fields.items()}}


class FakeCoinGlass:
    """Serves rows for [start_time, min(end_time, now)], `limit` at most, in CoinGlass's envelope.

    `script` can replace the response of the n-th request (0-based) by a callable result.
    """

    def __init__(self, *, now_ms: int | None = None) -> None:
        self.now_ms = now_ms if now_ms is not None else int(NOW.timestamp() * 1000)
        self.requests: list[httpx.Request] = []
        self.script: dict[int, Callable[[httpx.Request], httpx.Response]] = {}
        self.mutate: Callable[[list[dict[str, Any]]], list[Any]] = lambda rows: rows
        self.headers: dict[str, str] = {REPLAY_HEADER: "synthetic"}

    def handler(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        self.requests.append(request)
        if request.headers.get("CG-API-KEY") != KEY:
            return httpx.Response(401, json={"code": "401", "msg": "API key missing"})
        if n in self.script:
            return self.script[n](request)
        p = request.url.params
        start, end, limit = int(p["start_time"]), int(p["end_time"]), int(p["limit"])
        first = -(-start // STEP_MS) * STEP_MS
        times = [t for t in range(first, min(end, self.now_ms) + 1, STEP_MS)][:limit]
        rows = self.mutate([row_for(request.url.path, t) for t in times])
        body = {"code": "0", "msg": "success", "data": rows}
        return httpx.Response(200, json=body, headers=self.headers)


def land(fake: FakeCoinGlass, root: Path, monkeypatch: pytest.MonkeyPatch, **options: Any):
    monkeypatch.setenv("COINGLASS_API_KEY", KEY)
    sleeps: list[float] = []
    clock = [1_700_000_000.0]

    def sleep(seconds: float) -> None:  # a fake clock: waits are recorded, never slept
        sleeps.append(seconds)
        clock[0] += seconds

    factory = partial(
        HttpClient,
        transport=httpx.MockTransport(fake.handler),
        sleep=sleep,
        clock=lambda: clock[0],
    )
    report = run_vendor(
        SPEC,
        lake=Lake(root / "lake"),
        raw_root=root / "raw",
        now=options.pop("now", NOW),
        config=options.pop("config", {}),
        start=options.pop("start", D1),
        end=options.pop("end", D2),
        datasets=options.pop("datasets", ["cg-price-ohlc"]),
        client_factory=factory,
        **options,
    )
    return report, sleeps


def key(dataset: str, day: date) -> PartitionKey:
    return PartitionKey(VENDOR_DATASETS[dataset], "BTCUSDT", "5m", day)


# ---- envelope --------------------------------------------------------------------------------


def test_code_zero_is_the_only_success() -> None:
    assert check_envelope({"code": "0", "msg": "success", "data": []}, "/p") == []
    assert check_envelope({"code": 0, "data": [1]}, "/p") == [1]
    with pytest.raises(VendorEnvelopeError, match=r"code 40001: symbol not supported"):
        check_envelope({"code": "40001", "msg": "symbol not supported", "data": []}, "/p")
    with pytest.raises(VendorThrottled, match="50001"):
        check_envelope({"code": "50001", "msg": "busy"}, "/p")
    with pytest.raises(VendorAuthError):
        check_envelope({"code": "401", "msg": "key"}, "/p")
    for bad in ([], "x", {"msg": "no code"}, {"code": "0", "data": {"a": 1}}, {"code": "0"}):
        with pytest.raises(SchemaDrift):
            check_envelope(bad, "/p")


def test_a_hostile_message_is_one_bounded_line_without_the_key() -> None:
    msg = "bad\n\x00\x1b[31m" + KEY + "X" * 5000
    from core.redact import register_secrets

    register_secrets([KEY])
    with pytest.raises(VendorEnvelopeError) as info:
        check_envelope({"code": "1", "msg": msg}, "/p")
    text = str(info.value)
    assert "\n" not in text and "\x00" not in text and KEY not in text and len(text) < 400


# ---- landing ---------------------------------------------------------------------------------


def test_lands_bars_with_available_at_at_the_close_and_holds_the_open_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    report, _ = land(fake, tmp_path, monkeypatch)
    assert report.status == "ok", report
    lake = Lake(tmp_path / "lake")
    day1 = lake.read_partition(key("cg-price-ohlc", D1))
    assert day1.num_rows == 288 and lake.read_manifest(key("cg-price-ohlc", D1)).is_complete
    first = day1.to_pylist()[0]
    assert first["available_at"] - first["open_time"] == timedelta(minutes=5)
    wire = row_for("/api/futures/price/history", ms(D1))
    assert first["open"] == Decimal(wire["open"]) and first["volume_usd"] == Decimal("1234.5")
    assert first["is_synthetic"] is True
    today = lake.read_partition(key("cg-price-ohlc", D2))
    # 12:00 is still open at 12:02:30: 11:55 is the last bar landed.
    assert today.column("open_time")[-1].as_py() == datetime(2024, 3, 2, 11, 55, tzinfo=UTC)
    assert report.lines[0].message == "1 still-open bars held back"


def test_every_dataset_lands_with_its_own_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    report, _ = land(fake, tmp_path, monkeypatch, datasets=list(ENDPOINTS), end=D1)
    assert report.status == "ok" and len(report.lines) == len(ENDPOINTS)
    assert {line.rows for line in report.lines} == {288}
    liq = Lake(tmp_path / "lake").read_partition(key("cg-liquidations", D1)).to_pylist()[0]
    assert liq["long_liquidation_usd"] == Decimal("10.25")
    paths = {r.url.path for r in fake.requests}
    assert paths == {e.path for e in ENDPOINTS.values()}
    agg = next(r for r in fake.requests if "aggregated-taker" in r.url.path)
    assert agg.url.params["symbol"] == "BTC" and agg.url.params["exchange_list"]
    pair = next(r for r in fake.requests if r.url.path.endswith("price/history"))
    assert (pair.url.params["exchange"], pair.url.params["symbol"]) == ("Binance", "BTCUSDT")


def test_pages_by_time_window_without_gaps_or_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    report, _ = land(fake, tmp_path, monkeypatch, config={"limit": 100}, end=D1)
    assert report.status == "ok" and report.rows == 288
    starts = [int(r.url.params["start_time"]) for r in fake.requests]
    # The next page starts 1 ms after the last row of the previous one.
    assert starts == [ms(D1), ms(D1) + 99 * STEP_MS + 1, ms(D1) + 199 * STEP_MS + 1]
    assert Lake(tmp_path / "lake").read_manifest(key("cg-price-ohlc", D1)).duplicates_identical == 0


def test_a_rerun_is_a_no_op_and_fetches_only_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    land(fake, tmp_path, monkeypatch)
    before = len(fake.requests)
    report, _ = land(fake, tmp_path, monkeypatch, refresh_tail=1)
    assert report.lines[0].written == 0 and report.lines[0].unchanged == 1
    assert [int(r.url.params["start_time"]) for r in fake.requests[before:]] == [ms(D2)]


# ---- error modes -----------------------------------------------------------------------------


def envelope(status: int, code: str, msg: str, **headers: str) -> Callable[..., httpx.Response]:
    return lambda _r: httpx.Response(status, json={"code": code, "msg": msg}, headers=headers)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (200, "40001", "code 40001: symbol not supported"),
        (200, "50001", "code 50001"),
        (401, "401", "HTTP 401"),
        (400, "400", "HTTP 400"),
        (404, "404", "HTTP 404"),
    ],
)
def test_failures_land_nothing_and_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, code: str, error: str
) -> None:
    fake = FakeCoinGlass()
    fake.script = {0: envelope(status, code, "symbol not supported")}
    report, _ = land(fake, tmp_path, monkeypatch, end=D1)
    assert report.status == "failed" and error in report.message
    assert "symbol not supported" in report.message
    assert not list((tmp_path / "lake").rglob("*.parquet"))
    assert KEY not in report.message


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_statuses_with_an_envelope_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    fake = FakeCoinGlass()
    fake.script = {0: envelope(status, str(status), "slow down", **{"Retry-After": "7"})}
    report, sleeps = land(fake, tmp_path, monkeypatch, end=D1)
    assert report.status == "ok" and report.rows == 288
    assert len(fake.requests) == 2
    if status == 429:
        assert 7 in [round(s) for s in sleeps]


def test_a_persistent_500_fails_with_the_vendor_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    fake.script = {n: envelope(500, "500", "Internal Server Error") for n in range(20)}
    report, _ = land(fake, tmp_path, monkeypatch, end=D1)
    assert report.status == "failed" and "500 Internal Server Error" in report.message


def test_malformed_and_truncated_json_is_retried_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    fake.script = {0: lambda _r: httpx.Response(200, content=b'{"code": "0", "data": [{"ti')}
    report, _ = land(fake, tmp_path, monkeypatch, end=D1)
    assert report.status == "ok" and report.rows == 288  # the retry got the whole body
    fake = FakeCoinGlass()
    fake.script = {n: (lambda _r: httpx.Response(200, content=b"<html>")) for n in range(20)}
    report, _ = land(fake, tmp_path / "b", monkeypatch, end=D1)
    assert report.status == "failed" and "invalid JSON" in report.message


def test_a_renamed_field_is_schema_drift_not_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    fake.mutate = lambda rows: [
        {**{k: v for k, v in r.items() if k != "close"}, "c": "1"} for r in rows
    ]
    report, _ = land(fake, tmp_path, monkeypatch, end=D1)
    assert report.status == "failed" and "no row has `close`" in report.message


def test_bad_rows_are_quarantined_with_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mutate(rows: list[dict[str, Any]]) -> list[Any]:
        rows = list(rows)
        rows[1] = {**rows[1], "open": "abc"}  # wrong type
        rows[2] = {k: v for k, v in rows[2].items() if k != "high"}  # missing field
        rows[3] = {**rows[3], "low": "999999"}  # OHLC inconsistent
        rows[4] = {**rows[4], "time": "soon"}  # unparsable time
        rows[5] = {**rows[5], "time": 5}  # a time in 1970: a unit mistake
        rows[6] = {**rows[6], "volume_usd": "-3"}
        rows.append(dict(rows[10]))  # identical duplicate
        rows.append({**rows[11], "close": str(Decimal(rows[11]["close"]) + 1)})  # conflicting
        rows.append(["not", "an", "object"])
        rows.append({**rows[12], "open": "\u202e<script>" + "9" * 40})  # hostile, out of range
        rows.reverse()  # out of order
        return rows

    fake = FakeCoinGlass()
    fake.mutate = mutate
    report, _ = land(fake, tmp_path, monkeypatch, end=D1, config={"limit": 1000})
    manifest = Lake(tmp_path / "lake").read_manifest(key("cg-price-ohlc", D1))
    assert report.status == "ok"
    # Rows 1-6 are bad and have no clean copy; row 11 conflicts: 288 - 7 land.
    assert manifest.rows == 281 and manifest.duplicates_identical == 1
    quarantine = pq.read_table(next((tmp_path / "lake" / "_quarantine").rglob("*.parquet")))
    reasons = quarantine.column("reason").to_pylist()
    assert "unparsable open" in reasons and "missing high" in reasons
    assert "OHLC inconsistent" in reasons and "negative volume_usd" in reasons
    assert reasons.count("duplicate open_time with conflicting values") == 2
    assert "row is a list, not an object" in reasons
    assert any(r.startswith("time out of range") for r in reasons)
    assert manifest.quarantined_rows == quarantine.num_rows == 10


def test_a_huge_page_is_parsed(tmp_path: Path) -> None:
    rows = RowSet(VENDOR_DATASETS["cg-price-ohlc"])
    data = [row_for("/api/futures/price/history", ms(D1) + i * STEP_MS) for i in range(50_000)]
    parse_rows("cg-price-ohlc", data, interval="5m", synthetic=False, rows=rows)
    assert len(rows) == 50_000 and rows.table().num_rows == 50_000


# ---- rate-limit headers ----------------------------------------------------------------------


def test_near_the_plan_cap_the_client_waits_for_the_next_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    fake.headers = {"API-KEY-MAX-LIMIT": "30", "API-KEY-USE-LIMIT": "29"}
    clock = [1_700_000_010.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setenv("COINGLASS_API_KEY", KEY)
    factory = partial(
        HttpClient,
        transport=httpx.MockTransport(fake.handler),
        sleep=sleep,
        clock=lambda: clock[0],
    )
    report = run_vendor(
        SPEC,
        lake=Lake(tmp_path / "lake"),
        raw_root=tmp_path / "raw",
        now=NOW,
        config={"limit": 100},
        start=D1,
        end=D1,
        datasets=["cg-price-ohlc"],
        client_factory=factory,
    )
    assert report.status == "ok"
    # 29 of 30 used: every further request waits for the next minute.
    assert len(sleeps) >= 2 and all(s >= 30 for s in sleeps)


# ---- secrets ---------------------------------------------------------------------------------


def test_the_key_never_reaches_raw_pages_parquet_logs_or_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeCoinGlass()
    # A vendor that echoes the key back in its body (and a failing request naming it).
    fake.mutate = lambda rows: [*rows, {"time": rows[0]["time"], "echo": KEY}]
    fake.script = {0: envelope(500, "500", f"bad key {KEY}")}
    with caplog.at_level(logging.DEBUG):
        report, _ = land(fake, tmp_path, monkeypatch, end=D1, debug=True)
    assert report.status == "ok"
    blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    blobs += [gzip.decompress(p.read_bytes()) for p in tmp_path.rglob("*.gz")]
    assert all(KEY.encode() not in blob for blob in blobs)
    assert KEY not in caplog.text
    fake.script = {n: envelope(401, "401", f"invalid key {KEY}") for n in range(5)}
    report, _ = land(fake, tmp_path / "again", monkeypatch, end=D1)
    assert report.status == "failed" and KEY not in report.message and "***" in report.message


def test_body_echo_is_quarantined_as_raw_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCoinGlass()
    fake.mutate = lambda rows: [*rows, {"time": "x", "echo": KEY}]
    land(fake, tmp_path, monkeypatch, end=D1)
    quarantine = pq.read_table(next((tmp_path / "lake" / "_quarantine").rglob("*.parquet")))
    assert KEY not in orjson.dumps(quarantine.to_pylist(), default=str).decode()


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1e999999", "-0", "1_000", " 12 ", "0x10", "1.000000005", "١٢"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"time": st.one_of(_VALUES, st.integers(1_600_000_000_000, 1_800_000_000_000))},
                optional={k: _VALUES for k in ("open", "high", "low", "close", "volume_usd")},
            ),
            _VALUES,
        ),
        max_size=30,
    )
)
def test_any_page_is_landed_or_quarantined_never_crashes(data: list[Any]) -> None:
    """Hostile rows: every row ends up parsed or rejected with a reason; nothing else escapes
    but SchemaDrift (a field no row has)."""
    rows = RowSet(VENDOR_DATASETS["cg-price-ohlc"])
    try:
        parse_rows("cg-price-ohlc", data, interval="5m", synthetic=False, rows=rows)
    except SchemaDrift:
        return
    assert len(rows.rows) + len(rows.rejected) == len(data)
    rows.table()
    rows.quarantine()
