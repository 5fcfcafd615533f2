"""FRED loader: wire format, error envelopes, vintages and the point-in-time rule."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from ingest.errors import MalformedResponse, VendorAuthError, VendorThrottled
from ingest.vendors import fred
from ingest.vendors.base import RowSet
from lake.schemas import FRED_SCHEMA, VENDOR_DATASETS
from lake.store import PartitionKey
from replay.vendors.fred import FredRoutes
from tests.ingest.macro_fakes import Recorder, files_text, json_response, make_ctx, routes_handler

NOW = datetime(2024, 6, 5, 15, 0, tzinfo=UTC)
KEY = "abcdefghij0123456789abcdefghij01"
DATASET = VENDOR_DATASETS["fred-series"]


def rows() -> RowSet:
    return RowSet(DATASET)


def body(observations: list[object], **extra: object) -> bytes:
    payload = {
        "realtime_start": "1776-07-04",
        "realtime_end": "9999-12-31",
        "count": len(observations),
        "offset": 0,
        "limit": 100000,
        "observations": observations,
        **extra,
    }
    return orjson.dumps(payload)


def obs(day: str, value: str, start: str | None = None, end: str = "9999-12-31") -> dict[str, str]:
    return {"realtime_start": start or day, "realtime_end": end, "date": day, "value": value}


# -- point in time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 5, 10), date(2024, 5, 13)),  # Friday -> Monday
        (date(2024, 5, 11), date(2024, 5, 13)),  # Saturday -> Monday
        (date(2024, 11, 27), date(2024, 11, 29)),  # Thanksgiving Thursday skipped
        (date(2024, 12, 24), date(2024, 12, 26)),  # Christmas skipped
        (date(2024, 6, 18), date(2024, 6, 20)),  # Juneteenth skipped
        (date(2024, 7, 3), date(2024, 7, 5)),  # Independence Day skipped
        (date(2024, 8, 30), date(2024, 9, 3)),  # Friday before Labor Day -> Tuesday
    ],
)
def test_next_business_day_skips_weekends_and_federal_holidays(day: date, expected: date) -> None:
    assert fred.next_business_day(day) == expected


def test_available_at_is_end_of_the_vintage_day_and_never_before_the_next_business_day() -> None:
    # DGS10 for Friday 2024-05-10, first published Monday 05-13: usable Tuesday 06:00 UTC.
    assert fred.available_at(date(2024, 5, 10), date(2024, 5, 13)) == datetime(
        2024, 5, 14, 6, tzinfo=UTC
    )
    # A vintage dated before the release (clipped real-time start) still waits for the
    # next business day after the observation.
    assert fred.available_at(date(2024, 5, 10), date(1776, 7, 4)) == datetime(
        2024, 5, 13, 6, tzinfo=UTC
    )
    # DTWEXBGS: Monday 05-06 comes out with its week on Monday 05-13.
    assert fred.available_at(date(2024, 5, 6), date(2024, 5, 13)) == datetime(
        2024, 5, 14, 6, tzinfo=UTC
    )
    # Midnight in St. Louis is 05:00 (CDT) or 06:00 (CST) UTC: 06:00 covers both.
    assert fred.PUBLICATION_LAG.total_seconds() == 6 * 3600


# -- parsing ------------------------------------------------------------------------------


def test_dot_is_null_never_zero_and_values_keep_every_vintage() -> None:
    collected = rows()
    count, offset, returned = fred.parse_observations(
        body(
            [
                obs("2024-05-09", "4.46", "2024-05-10", "2024-05-16"),
                obs("2024-05-09", "4.47", "2024-05-17"),
                obs("2024-05-27", ".", "2024-05-28"),  # Memorial Day
            ]
        ),
        collected,
        series_id="DGS10",
        is_synthetic=False,
    )
    assert (count, offset, returned) == (3, 0, 3)
    assert [r["value"] for r in collected.rows] == [4.46, 4.47, None]
    table = collected.table()
    assert table.schema.equals(FRED_SCHEMA)
    assert table.column("value").null_count == 1
    assert [r["realtime_start"] for r in collected.rows][:2] == [
        date(2024, 5, 10),
        date(2024, 5, 17),
    ]
    assert collected.rows[1]["available_at"] == datetime(2024, 5, 18, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("not an object", "observation is not an object"),
        ({"date": "2024-05-09", "value": "1"}, "missing realtime_start, realtime_end"),
        (obs("2024-13-01", "1"), "unparsable date"),
        (obs("20240509", "1"), "unparsable date"),
        ({**obs("2024-05-09", "1"), "realtime_end": "2024-05-01"}, "realtime_end before"),
        ({**obs("2024-05-09", "1"), "value": 4.2}, "value is not a string"),
        ({**obs("2024-05-09", "1"), "value": None}, "value is not a string"),
        (obs("2024-05-09", "four"), "unparsable value"),
        (obs("2024-05-09", "NaN"), "unparsable value"),
        (obs("2024-05-09", "1e400"), "value is not finite"),
        (obs("2024-05-09", "'; DROP TABLE fred; --"), "unparsable value"),
        (obs("2024-05-09", "<script>alert(1)</script>"), "unparsable value"),
        (obs("2024-05-09", "1\x00"), "unparsable value"),
        (obs("2024-05-09", "4_5"), "unparsable value"),
        (obs("2024-05-09", "\u0661\u0662"), "unparsable value"),
        (obs("2024-05-09", " 4.5"), "unparsable value"),
        (obs("2024-05-09", ""), "unparsable value"),
        (obs("2024-05-09", "0x10"), "unparsable value"),
    ],
)
def test_bad_rows_are_quarantined_with_a_reason(row: object, reason: str) -> None:
    collected = rows()
    fred.parse_observations(
        body([row, obs("2024-05-10", "4.5")]), collected, series_id="DGS10", is_synthetic=False
    )
    assert len(collected.rows) == 1
    [(_, why, _)] = collected.rejected
    assert reason in why
    quarantine = collected.quarantine()
    assert quarantine.num_rows == 1 and reason in quarantine.column("reason")[0].as_py()


def test_a_huge_hostile_string_is_quarantined_cut_short() -> None:
    collected = rows()
    fred.parse_observations(
        body([obs("2024-05-09", "x" * 100_000)]), collected, series_id="DGS10", is_synthetic=False
    )
    raw = collected.quarantine().column("raw")[0].as_py()
    assert len(raw) < 3_000 and "truncated" in raw


@pytest.mark.parametrize(
    ("payload", "error", "text"),
    [
        (b"<?xml version='1.0'?><observations/>", MalformedResponse, "XML"),
        (b'{"observations": [', MalformedResponse, "not JSON"),
        (b"[1, 2]", MalformedResponse, "expected a JSON object"),
        (b'{"count": 1}', MalformedResponse, "no `observations`"),
        (b'{"observations": [], "count": "many"}', MalformedResponse, "`count`"),
        (b'{"observations": {"date": "2024-01-01"}}', MalformedResponse, "no `observations`"),
        (
            b'{"error_code": 400, "error_message": "Bad Request.  The series does not exist."}',
            fred.FredAPIError,
            "series does not exist",
        ),
        (
            b'{"error_code": 400, "error_message": "Bad Request.  The value for variable '
            b'api_key is not registered."}',
            VendorAuthError,
            "api_key",
        ),
        (b'{"error_code": 429, "error_message": "Too Many Requests."}', VendorThrottled, "429"),
    ],
)
def test_envelopes_that_are_not_observations_raise(payload: bytes, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        fred.parse_observations(payload, rows(), series_id="DGS10", is_synthetic=False)


def test_oversized_body_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fred, "MAX_BODY_BYTES", 100)
    with pytest.raises(MalformedResponse, match="over 100"):
        fred.parse_observations(
            body([obs("2024-05-09", "1")] * 10), rows(), series_id="X", is_synthetic=False
        )


# -- the loader on a MockTransport ----------------------------------------------------------


def test_loader_lands_every_vintage_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    handler, _ = routes_handler(FredRoutes, now=NOW)
    recorder = Recorder(handler)
    ctx = make_ctx(fred.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 4, 1), key=KEY)
    report = fred.FredLoader(ctx).load()
    assert report.status == "ok", report.message
    assert {line.symbol for line in report.lines} == {"DTWEXBGS", "DGS10", "VIXCLS"}
    params = recorder.requests[0].url.params
    assert params["file_type"] == "json" and params["api_key"] == KEY
    assert (params["realtime_start"], params["realtime_end"]) == ("1776-07-04", "9999-12-31")

    tables = [
        ctx.lake.read_partition(key)
        for key, _ in ctx.lake.iter_partitions(DATASET)
        if key.symbol == "DTWEXBGS"
    ]
    rows_ = [r for t in tables for r in t.to_pylist()]
    assert rows_ and all(r["is_synthetic"] for r in rows_)
    revised = {r["observation_date"] for r in rows_} - {
        r["observation_date"] for r in rows_ if r["realtime_end"] == date(9999, 12, 31)
    }
    assert not revised  # every observation's latest vintage is still current
    multi = [
        d
        for d in {r["observation_date"] for r in rows_}
        if sum(r["observation_date"] == d for r in rows_) > 1
    ]
    assert multi, "some DTWEXBGS days carry a revised vintage"
    for r in rows_:
        assert r["available_at"] >= datetime.combine(r["realtime_start"], datetime.min.time(), UTC)
        assert r["available_at"] > datetime.combine(r["observation_date"], datetime.min.time(), UTC)
        assert r["available_at"] <= NOW or r["realtime_start"] >= NOW.date()
    holiday = PartitionKey(DATASET, "DGS10", None, date(2024, 5, 27))
    assert ctx.lake.read_partition(holiday).column("value").to_pylist() == [None]

    again = fred.FredLoader(ctx).load()
    assert again.status == "ok"
    assert sum(line.written for line in again.lines) == 0
    assert sum(line.unchanged for line in again.lines) > 0


def test_unknown_series_fails_its_line_only(tmp_path: Path) -> None:
    handler, _ = routes_handler(FredRoutes, now=NOW)
    ctx = make_ctx(
        fred.SPEC, tmp_path, handler, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"series": ["NOSUCH", "DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    lines = {line.symbol: line for line in report.lines}
    assert lines["NOSUCH"].status == "failed" and "series does not exist" in lines["NOSUCH"].message
    assert lines["DGS10"].status == "ok" and lines["DGS10"].rows > 0
    assert report.status == "failed"


def test_rejected_key_fails_the_vendor_without_showing_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "bad-" + "s" * 28
    handler, _ = routes_handler(FredRoutes, now=NOW)
    ctx = make_ctx(fred.SPEC, tmp_path, handler, now=NOW, start=date(2024, 5, 20), key=secret)
    with caplog.at_level(logging.DEBUG):
        report = fred.FredLoader(ctx).load()
    assert report.status == "failed"
    assert "not registered" in report.message
    assert len(report.lines) == 1  # an auth failure stops the vendor
    assert secret not in report.message and secret not in caplog.text
    assert secret not in files_text(tmp_path)


def test_pages_follow_offset_until_count(tmp_path: Path) -> None:
    all_rows = [obs(f"2024-05-{d:02d}", f"{d}.5", f"2024-06-0{1 + d % 3}") for d in range(20, 25)]

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        page = all_rows[offset : offset + 2]
        return httpx.Response(200, content=body(page, count=len(all_rows), offset=offset))

    recorder = Recorder(answer)
    ctx = make_ctx(
        fred.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"series": ["DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.status == "ok", report.message
    assert [r.url.params.get("offset", "0") for r in recorder.requests] == ["0", "2", "4"]
    assert report.lines[0].rows == 5


def test_duplicates_collapse_and_conflicts_are_quarantined(tmp_path: Path) -> None:
    rows_ = [
        obs("2024-05-20", "4.4", "2024-05-21"),
        obs("2024-05-20", "4.4", "2024-05-21"),  # identical copy
        obs("2024-05-22", "4.5", "2024-05-23"),
        obs("2024-05-22", "4.6", "2024-05-23"),  # same vintage, another value
        obs("2024-05-21", "4.3", "2024-05-22"),  # out of order
    ]
    ctx = make_ctx(
        fred.SPEC, tmp_path, lambda r: httpx.Response(200, content=body(rows_)),
        now=NOW, start=date(2024, 5, 20), key=KEY, config={"series": ["DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.status == "ok"
    key = PartitionKey(DATASET, "DGS10", None, date(2024, 5, 20))
    assert ctx.lake.read_partition(key).column("value").to_pylist() == [4.4]
    assert ctx.lake.read_manifest(key).duplicates_identical == 1
    conflict = PartitionKey(DATASET, "DGS10", None, date(2024, 5, 22))
    assert ctx.lake.read_partition(conflict).num_rows == 0
    assert ctx.lake.read_manifest(conflict).quarantined_rows == 2
    q = pq.read_table(tmp_path / "lake" / conflict.quarantine_dir() / "part-0.parquet")
    assert set(q.column("reason").to_pylist()) == {
        "duplicate observation_date/realtime_start with conflicting values"
    }


def test_http_error_status_from_fred_becomes_a_clear_line(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return json_response(
            {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}, 400
        )

    ctx = make_ctx(
        fred.SPEC, tmp_path, answer, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"series": ["DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.lines[0].status == "failed"
    assert "HTTP 400" in report.lines[0].message
    assert KEY not in report.lines[0].message


@pytest.mark.parametrize("value", [0, 9, "14", True, -1])
def test_a_revision_window_too_short_to_catch_weekly_releases_is_refused(
    tmp_path: Path, value: object
) -> None:
    handler, _ = routes_handler(FredRoutes, now=NOW)
    ctx = make_ctx(
        fred.SPEC, tmp_path, handler, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"revision_days": value},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.status == "failed" and "revision_days" in report.message


def test_a_page_that_ignores_the_offset_is_malformed_not_an_endless_loop(tmp_path: Path) -> None:
    rows_ = [obs("2024-05-20", "1.0", "2024-05-21"), obs("2024-05-21", "1.1", "2024-05-22")]
    recorder = Recorder(lambda r: httpx.Response(200, content=body(rows_, count=9, offset=0)))
    ctx = make_ctx(
        fred.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"series": ["DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.status == "failed" and "asked for offset 2" in report.message
    assert len(recorder.requests) == 2


def test_a_count_that_never_ends_stops_at_max_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fred, "MAX_PAGES", 3)

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        row = obs("2024-05-20", "1.0", f"2024-05-{21 + offset:02d}")
        return httpx.Response(200, content=body([row], count=10**9, offset=offset))

    recorder = Recorder(answer)
    ctx = make_ctx(
        fred.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 5, 20), key=KEY,
        config={"series": ["DGS10"]},
    )  # fmt: skip
    report = fred.FredLoader(ctx).load()
    assert report.status == "failed" and "more than 3 pages" in report.message
    assert len(recorder.requests) == 3


def test_a_failing_series_does_not_stop_the_others(tmp_path: Path) -> None:
    handler, _ = routes_handler(FredRoutes, now=NOW)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["series_id"] == "DGS10":
            return json_response({"error_code": 423, "error_message": "Locked."}, 423)
        return handler(request)

    ctx = make_ctx(fred.SPEC, tmp_path, answer, now=NOW, start=date(2024, 5, 20), key=KEY)
    report = fred.FredLoader(ctx).load()
    lines = {line.symbol: line.status for line in report.lines}
    assert lines == {"DTWEXBGS": "ok", "DGS10": "failed", "VIXCLS": "ok"}
