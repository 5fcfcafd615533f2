"""Alpha Vantage loader: in-band throttling, the daily series, and the 16:00 New York rule."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from ingest.errors import MalformedResponse, VendorThrottled
from ingest.vendors import alphavantage as av
from ingest.vendors.base import RowSet
from lake.schemas import AV_DAILY_SCHEMA, VENDOR_DATASETS
from lake.store import PartitionKey
from replay.vendors.alphavantage import AlphaVantageRoutes, quota_message
from tests.ingest.macro_fakes import Recorder, files_text, json_response, make_ctx, routes_handler

KEY = "AVKEY0123456789X"
DATASET = VENDOR_DATASETS["av-daily"]
# Wednesday 2024-06-05, 15:00 UTC = 11:00 in New York: that day is in session.
NOW = datetime(2024, 6, 5, 15, 0, tzinfo=UTC)


def bar(
    o: str = "100.0000",
    h: str = "101.0000",
    lo: str = "99.0000",
    c: str = "100.5000",
    v: str | None = "1000",
) -> dict[str, str]:
    out = {"1. open": o, "2. high": h, "3. low": lo, "4. close": c}
    if v is not None:
        out["5. volume"] = v
    return out


def series_body(pairs: list[tuple[str, object]], symbol: str = "SPY") -> bytes:
    inner = ",".join(f"{orjson.dumps(k).decode()}:{orjson.dumps(v).decode()}" for k, v in pairs)
    meta = {
        "1. Information": "Daily Prices",
        "2. Symbol": symbol,
        "3. Last Refreshed": "2024-06-04",
    }
    return (
        f'{{"Meta Data":{orjson.dumps(meta).decode()},"Time Series (Daily)":{{{inner}}}}}'.encode()
    )


def parse(body: bytes, now: datetime = NOW) -> RowSet:
    rows = RowSet(DATASET)
    av.parse_daily(body, rows, symbol="SPY", now=now, is_synthetic=False)
    return rows


# -- point in time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "close_utc"),
    [
        (date(2024, 1, 10), datetime(2024, 1, 10, 21, tzinfo=UTC)),  # EST: UTC-5
        (date(2024, 7, 10), datetime(2024, 7, 10, 20, tzinfo=UTC)),  # EDT: UTC-4
        (date(2024, 3, 8), datetime(2024, 3, 8, 21, tzinfo=UTC)),  # Friday before DST starts
        (date(2024, 3, 11), datetime(2024, 3, 11, 20, tzinfo=UTC)),  # Monday after
        (date(2024, 11, 1), datetime(2024, 11, 1, 20, tzinfo=UTC)),  # Friday before DST ends
        (date(2024, 11, 4), datetime(2024, 11, 4, 21, tzinfo=UTC)),  # Monday after
    ],
)
def test_close_is_16_new_york_in_utc_across_dst(day: date, close_utc: datetime) -> None:
    assert av.close_at(day) == close_utc
    assert av.available_at(day) == close_utc + timedelta(minutes=15)


def test_the_bar_of_a_day_in_session_is_held_not_landed() -> None:
    rows = parse(series_body([("2024-06-05", bar()), ("2024-06-04", bar())]))
    by_day = {r["trade_date"]: r["available_at"] for r in rows.rows}
    assert by_day[date(2024, 6, 5)] > NOW  # land_rows holds it back
    assert by_day[date(2024, 6, 4)] == datetime(2024, 6, 4, 20, 15, tzinfo=UTC) <= NOW


# -- parsing ------------------------------------------------------------------------------


def test_bars_parse_to_exact_decimals() -> None:
    rows = parse(
        series_body(
            [("2024-06-04", bar("472.6500", "474.1000", "470.0100", "473.9900", "61234567"))]
        )
    )
    [row] = rows.rows
    assert (row["open"], row["high"], row["low"], row["close"]) == tuple(
        Decimal(x) for x in ("472.65", "474.10", "470.01", "473.99")
    )
    assert row["volume"] == 61234567
    assert rows.table().schema.equals(AV_DAILY_SCHEMA)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("2024-06-31", bar(), "unparsable date"),
        ("June 3", bar(), "unparsable date"),
        ("2024-06-03", "not an object", "bar is not an object"),
        ("2024-06-03", {"1. open": "1"}, "missing 2. high, 3. low, 4. close"),
        ("2024-06-03", bar(o="abc"), "unparsable open"),
        ("2024-06-03", {**bar(), "1. open": 100.0}, "unparsable open"),
        ("2024-06-03", bar(c="-1.0000", lo="-2.0000"), "unparsable low"),
        ("2024-06-03", bar(o="0.0000", lo="0.0000"), "open is not positive"),
        ("2024-06-03", bar(o="Infinity"), "unparsable open"),
        ("2024-06-03", bar(o="1e30"), "unparsable open"),
        ("2024-06-03", bar(o="1_00.0000"), "unparsable open"),
        ("2024-06-03", bar(o="\u0661\u0660\u0660"), "unparsable open"),
        ("2024-06-03", bar(o=" 100.0000"), "unparsable open"),
        ("2024-06-03", bar(o="+100.0000"), "unparsable open"),
        ("2024-06-03", bar(v="12.5"), "unparsable volume"),
        ("2024-06-03", bar(v="'; DROP TABLE bars; --"), "unparsable volume"),
        ("2024-06-01", bar(), "date is a weekend"),
        ("2024-06-07", bar(), "date is after now"),
    ],
)
def test_bad_bars_are_rejected_with_a_reason(key: str, value: object, reason: str) -> None:
    rows = parse(series_body([(key, value), ("2024-06-04", bar())]))
    assert [r["trade_date"] for r in rows.rows] == [date(2024, 6, 4)]
    [(_, why, _)] = rows.rejected
    assert reason in why


def test_ohlc_inconsistency_is_left_to_the_shared_check(tmp_path: Path) -> None:
    # The framework's land_rows checks OHLC order for every vendor: high below the close.
    body = series_body([("2024-06-04", bar(h="100.1000", c="100.5000")), ("2024-06-03", bar())])
    ctx = make_ctx(av.SPEC, tmp_path, lambda r: httpx.Response(200, content=body), now=NOW,
                   start=date(2024, 6, 3), config={"symbols": ["SPY"]})  # fmt: skip
    report = av.AlphaVantageLoader(ctx).load()
    assert report.status == "ok", report.message
    key = PartitionKey(DATASET, "SPY", None, date(2024, 6, 4))
    assert ctx.lake.read_partition(key).num_rows == 0
    assert ctx.lake.read_manifest(key).quarantined_rows == 1


def test_volume_may_be_absent_but_prices_may_not() -> None:
    rows = parse(series_body([("2024-06-04", bar(v=None))]))
    assert rows.rows[0]["volume"] is None


def test_a_repeated_date_is_kept_for_the_duplicate_check() -> None:
    body = series_body([("2024-06-04", bar()), ("2024-06-04", bar(c="100.2500"))])
    rows = parse(body)
    assert [r["close"] for r in rows.rows] == [Decimal("100.5"), Decimal("100.25")]


def test_wrong_symbol_rejects_every_bar() -> None:
    rows = parse(series_body([("2024-06-04", bar())], symbol="QQQ"))
    assert not rows.rows and "wrong symbol" in rows.rejected[0][1]


@pytest.mark.parametrize(
    ("payload", "error", "text"),
    [
        (
            {"Information": "Thank you for using Alpha Vantage! ... 1 request per second ..."},
            av.AlphaVantageThrottled,
            "throttled",
        ),
        (
            {
                "Note": "Thank you for using Alpha Vantage! Our standard API call frequency "
                "is 5 calls per minute"
            },
            av.AlphaVantageThrottled,
            "Note",
        ),
        ({"Error Message": "Invalid API call."}, av.AlphaVantageError, "Invalid API call"),
        ({"Meta Data": {}}, MalformedResponse, "Time Series"),
        ([1, 2], MalformedResponse, "expected a JSON object"),
    ],
)
def test_in_band_failures_raise(payload: object, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        parse(orjson.dumps(payload))


@pytest.mark.parametrize(
    "body", [b'{"Time Series (Daily)": {', b"NaN", b"\xff\xfe", b"[" * 100_000]
)
def test_malformed_bodies_raise(body: bytes) -> None:
    with pytest.raises(MalformedResponse):
        parse(body)


def test_the_daily_quota_message_never_shows_the_key() -> None:
    with pytest.raises(av.AlphaVantageThrottled) as caught:
        from core.redact import register_secrets

        register_secrets([KEY])
        parse(orjson.dumps({"Information": quota_message(KEY)}))
    assert caught.value.daily_quota
    assert KEY not in str(caught.value)


# -- the loader ---------------------------------------------------------------------------


def test_loader_lands_closed_days_and_holds_the_session(tmp_path: Path) -> None:
    handler, _ = routes_handler(AlphaVantageRoutes, now=NOW)
    recorder = Recorder(handler)
    ctx = make_ctx(av.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 5, 1), key=KEY)
    report = av.AlphaVantageLoader(ctx).load()
    assert report.status == "ok", report.message
    assert {line.symbol for line in report.lines} == {"SPY", "UUP"}
    assert all("in session" in line.message for line in report.lines)
    params = recorder.requests[0].url.params
    assert (params["function"], params["outputsize"], params["apikey"]) == (
        "TIME_SERIES_DAILY",
        "compact",
        KEY,
    )
    today = PartitionKey(DATASET, "SPY", None, date(2024, 6, 5))
    assert ctx.lake.read_partition(today).num_rows == 0
    memorial = PartitionKey(DATASET, "SPY", None, date(2024, 5, 27))
    assert ctx.lake.read_partition(memorial).num_rows == 0
    landed = ctx.lake.read_partition(PartitionKey(DATASET, "SPY", None, date(2024, 6, 4)))
    assert landed.column("available_at")[0].as_py() == datetime(2024, 6, 4, 20, 15, tzinfo=UTC)
    assert landed.column("is_synthetic")[0].as_py() is True

    # After the close the same day lands; the days before are unchanged.
    evening = NOW + timedelta(hours=6)
    handler_later, _ = routes_handler(AlphaVantageRoutes, now=evening)
    later = make_ctx(av.SPEC, tmp_path, handler_later, now=evening, start=date(2024, 5, 1), key=KEY)
    again = av.AlphaVantageLoader(later).load()
    assert again.status == "ok"
    assert later.lake.read_partition(today).num_rows == 1
    assert KEY not in files_text(tmp_path)


def test_a_start_older_than_compact_asks_for_full(tmp_path: Path) -> None:
    handler, routes = routes_handler(AlphaVantageRoutes, now=NOW)
    routes.full_is_premium = False  # type: ignore[attr-defined]  # a premium key
    recorder = Recorder(handler)
    ctx = make_ctx(av.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 1, 15), key=KEY,
                   config={"symbols": ["UUP"]})  # fmt: skip
    report = av.AlphaVantageLoader(ctx).load()
    assert report.status == "ok"
    assert recorder.requests[0].url.params["outputsize"] == "full"
    assert report.lines[0].rows > 95  # more than compact's 100 bars minus the session


def test_throttling_is_retried_a_bounded_number_of_times_then_fails_the_vendor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    throttle = {
        "Information": "Thank you for using Alpha Vantage! Please consider spreading out your "
        "free API requests more sparingly (1 request per second)."
    }
    recorder = Recorder(lambda r: json_response(throttle))
    slept: list[float] = []
    ctx = make_ctx(av.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 6, 3), key=KEY,
                   config={"throttle_retries": 2, "throttle_backoff_s": 1.5})  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        report = av.AlphaVantageLoader(ctx, sleep=slept.append).load()
    assert report.status == "failed"
    assert len(recorder.requests) == 3 and slept == [1.5, 3.0]
    assert "\n" not in report.message and "after 3 attempts" in report.message
    assert len(report.lines) == 1  # throttling stops the vendor: UUP is not even tried
    assert not list((tmp_path / "lake").rglob("*.parquet"))
    assert not (tmp_path / "raw").exists()


def test_throttling_then_success_lands(tmp_path: Path) -> None:
    handler, _ = routes_handler(AlphaVantageRoutes, now=NOW)
    answers = iter([json_response({"Note": "5 calls per minute"})])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or handler(request)

    slept: list[float] = []
    ctx = make_ctx(av.SPEC, tmp_path, flaky, now=NOW, start=date(2024, 6, 3), key=KEY,
                   config={"symbols": ["SPY"]})  # fmt: skip
    report = av.AlphaVantageLoader(ctx, sleep=slept.append).load()
    assert report.status == "ok" and slept == [av.DEFAULT_THROTTLE_BACKOFF_S]
    assert report.lines[0].rows == 2


def test_daily_quota_is_not_retried_and_the_key_stays_secret(tmp_path: Path) -> None:
    recorder = Recorder(lambda r: json_response({"Information": quota_message(KEY)}))
    slept: list[float] = []
    ctx = make_ctx(av.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 6, 3), key=KEY)
    report = av.AlphaVantageLoader(ctx, sleep=slept.append).load()
    assert report.status == "failed" and len(recorder.requests) == 1 and not slept
    assert "25 requests per day" in report.message and KEY not in report.message


def test_unknown_symbol_fails_its_line_only(tmp_path: Path) -> None:
    handler, _ = routes_handler(AlphaVantageRoutes, now=NOW)
    ctx = make_ctx(av.SPEC, tmp_path, handler, now=NOW, start=date(2024, 6, 3), key=KEY,
                   config={"symbols": ["NOPE", "SPY"]})  # fmt: skip
    report = av.AlphaVantageLoader(ctx).load()
    lines = {line.symbol: line for line in report.lines}
    assert lines["NOPE"].status == "failed" and "Invalid API call" in lines["NOPE"].message
    assert lines["SPY"].status == "ok"


def test_replay_burst_limit_answers_information(tmp_path: Path) -> None:
    handler, routes = routes_handler(AlphaVantageRoutes, now=NOW)
    routes.burst_per_second = 1  # type: ignore[attr-defined]
    request = httpx.Request(
        "GET", "http://vendor.test/query?function=TIME_SERIES_DAILY&symbol=SPY&apikey=k1"
    )
    assert "Time Series (Daily)" in orjson.loads(handler(request).content)
    assert "1 request per second" in orjson.loads(handler(request).content)["Information"]
    missing = httpx.Request("GET", "http://vendor.test/query?function=TIME_SERIES_DAILY&symbol=SPY")
    assert "apikey is invalid or missing" in orjson.loads(handler(missing).content)["Error Message"]


def test_throttled_error_is_a_vendor_throttle() -> None:
    assert issubclass(av.AlphaVantageThrottled, VendorThrottled)


def test_a_malformed_answer_fails_its_symbol_only(tmp_path: Path) -> None:
    handler, _ = routes_handler(AlphaVantageRoutes, now=NOW)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["symbol"] == "SPY":
            return httpx.Response(200, content=b'{"Time Series (Daily)": [1, 2]}')
        return handler(request)

    ctx = make_ctx(av.SPEC, tmp_path, answer, now=NOW, start=date(2024, 6, 3), key=KEY)
    report = av.AlphaVantageLoader(ctx).load()
    lines = {line.symbol: line.status for line in report.lines}
    assert lines == {"SPY": "failed", "UUP": "ok"}


def test_a_free_key_asked_for_full_lands_compact_and_leaves_older_days_open(
    tmp_path: Path,
) -> None:
    handler, _ = routes_handler(AlphaVantageRoutes, now=NOW)  # free tier: full is premium
    recorder = Recorder(handler)
    slept: list[float] = []
    ctx = make_ctx(av.SPEC, tmp_path, recorder, now=NOW, start=date(2023, 6, 1), key=KEY,
                   config={"symbols": ["SPY"]})  # fmt: skip
    report = av.AlphaVantageLoader(ctx, sleep=slept.append).load()
    assert report.status == "ok", report.message
    assert [r.url.params["outputsize"] for r in recorder.requests] == ["full", "compact"]
    assert not slept  # a plan answer is not waited on
    [line] = report.lines
    assert "needs a premium key" in line.message and line.rows == 99  # 100 bars, 1 in session
    assert not ctx.lake.is_finished(PartitionKey(DATASET, "SPY", None, date(2023, 6, 1)))


def test_premium_only_answers_are_classified() -> None:
    assert av.is_premium_only("outputsize=full is a premium feature")
    assert av.is_premium_only("Thank you for using Alpha Vantage! This is a premium endpoint.")
    burst = "... to lift the free key rate limit ... and instantly unlock all premium endpoints"
    assert not av.is_premium_only(burst)
