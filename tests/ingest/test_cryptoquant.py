"""CryptoQuant loader: the status envelope, newest-first pages, nulls, and vintages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest

from ingest.errors import MalformedResponse, VendorAuthError, VendorThrottled
from ingest.vendors import cryptoquant as cq
from ingest.vendors.base import RowSet
from lake.schemas import CQ_DAILY_SCHEMA, VENDOR_DATASETS
from lake.store import PartitionKey
from replay.vendors.cryptoquant import CryptoQuantRoutes
from tests.ingest.macro_fakes import Recorder, files_text, json_response, make_ctx, routes_handler

TOKEN = "cq-token-0123456789abcdef"
DATASET = VENDOR_DATASETS["cq-daily"]
NOW = datetime(2024, 6, 5, 15, 0, tzinfo=UTC)
NETFLOW = cq.ENDPOINTS["netflow"]
RESERVE = cq.ENDPOINTS["reserve"]


def envelope(data: object, code: object = 200, message: str = "success") -> bytes:
    return orjson.dumps(
        {"status": {"code": code, "message": message}, "result": {"window": "day", "data": data}}
    )


def page(rows: list[object], endpoint: cq.Endpoint = NETFLOW) -> tuple[cq.CqPage, RowSet]:
    rejects = RowSet(DATASET)
    got = cq.parse_page(
        envelope(rows), endpoint, rejects, first=date(2024, 5, 1), last=date(2024, 6, 4)
    )
    return got, rejects


# -- point in time ------------------------------------------------------------------------


def test_available_at_is_the_later_of_day_end_plus_lag_and_first_seen() -> None:
    day = date(2024, 6, 3)
    early = datetime(2024, 6, 4, 0, 30, tzinfo=UTC)
    late = datetime(2024, 6, 10, 9, tzinfo=UTC)
    assert cq.available_at(day, early) == datetime(2024, 6, 4, 2, tzinfo=UTC)
    assert cq.available_at(day, late) == late
    assert not cq.is_final(date(2024, 6, 5), NOW)  # the running day
    assert not cq.is_final(date(2024, 6, 4), datetime(2024, 6, 5, 1, 59, tzinfo=UTC))
    assert cq.is_final(date(2024, 6, 4), datetime(2024, 6, 5, 2, tzinfo=UTC))


# -- parsing ------------------------------------------------------------------------------


def test_newest_first_rows_come_out_sorted_with_nulls_kept() -> None:
    got, rejects = page(
        [
            {"date": "2024-06-04", "netflow_total": -120.5},
            {"date": "2024-06-03", "netflow_total": None},
            {"date": "2024-06-02", "netflow_total": 33},
        ]
    )
    assert [(o.observation_date.day, o.value) for o in got.observations] == [
        (2, 33.0),
        (3, None),
        (4, -120.5),
    ]
    assert got.oldest == date(2024, 6, 2) and not got.out_of_order and not rejects.rejected


def test_two_fields_make_two_metrics() -> None:
    got, _ = page([{"date": "2024-06-04", "reserve": 2.1e6, "reserve_usd": 1.4e11}], RESERVE)
    assert [(o.metric, o.value) for o in got.observations] == [
        ("reserve", 2.1e6),
        ("reserve_usd", 1.4e11),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([1, 2], "row is not an object"),
        ({"netflow_total": 1.0}, "missing or unparsable date"),
        ({"date": "2024-06-31", "netflow_total": 1.0}, "missing or unparsable date"),
        ({"date": "2024-06-03 00:00:00", "netflow_total": 1.0}, "missing or unparsable date"),
        ({"date": "'; DROP TABLE cq; --", "netflow_total": 1.0}, "missing or unparsable date"),
        ({"date": "2024-06-03"}, "missing netflow_total"),
        ({"date": "2024-06-03", "netflow_total": "12.5"}, "netflow_total is not a number"),
        ({"date": "2024-06-03", "netflow_total": True}, "netflow_total is not a number"),
        ({"date": "2024-06-03", "netflow_total": {"v": 1}}, "netflow_total is not a number"),
        ({"date": "2024-04-03", "netflow_total": 1.0}, "date outside the request"),
    ],
)
def test_bad_rows_are_rejected(row: object, reason: str) -> None:
    got, rejects = page([{"date": "2024-06-04", "netflow_total": 1.0}, row])
    assert [o.observation_date for o in got.observations] == [date(2024, 6, 4)]
    [(_, why, _)] = rejects.rejected
    assert why == f"netflow: {reason}"


def test_duplicates_and_order() -> None:
    got, rejects = page(
        [
            {"date": "2024-06-02", "netflow_total": 1.0},
            {"date": "2024-06-04", "netflow_total": 2.0},  # out of order
            {"date": "2024-06-04", "netflow_total": 2.0},  # identical copy
            {"date": "2024-06-03", "netflow_total": 3.0},
            {"date": "2024-06-03", "netflow_total": 4.0},  # conflicting copy
        ]
    )
    assert [o.observation_date.day for o in got.observations] == [2, 4]
    assert got.duplicates_identical == 1 and got.out_of_order
    assert len(rejects.rejected) == 2


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (envelope([], 401, "Unauthorized"), VendorAuthError, "status 401"),
        (envelope([], 403, "Forbidden: plan"), VendorAuthError, "status 403"),
        (envelope([], 429, "Too Many Requests"), VendorThrottled, "status 429"),
        (envelope([], 400, "bad from"), cq.CryptoQuantError, "bad from"),
        (envelope([], "200"), cq.CryptoQuantError, "status 200"),
        (envelope([], True), cq.CryptoQuantError, "status True"),
        (b'{"result": {"data": []}}', MalformedResponse, "no `status`"),
        (b'{"status": {"code": 200}, "result": {"data": {}}}', MalformedResponse, "result.data"),
        (
            b'{"status": {"code": 200}, "result": {"window": "hour", "data": []}}',
            MalformedResponse,
            "window",
        ),
        (b'{"status": {"code": 200}, "result": {"data": [', MalformedResponse, "not JSON"),
        (b'{"status": {"code": 200}, "result": {"data": [1e400]}}', MalformedResponse, "JSON"),
        (b"[]", MalformedResponse, "expected a JSON object"),
    ],
)
def test_envelopes(body: bytes, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        cq.parse_page(body, NETFLOW, RowSet(DATASET), first=date(2024, 1, 1), last=NOW.date())


def test_oversized_body_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cq, "MAX_BODY_BYTES", 64)
    with pytest.raises(MalformedResponse, match="over 64"):
        page([{"date": "2024-06-04", "netflow_total": 1.0}] * 10)


# -- vintages -----------------------------------------------------------------------------


def obs(day: int, value: float | None, metric: str = "netflow_total") -> cq.Observation:
    return cq.Observation(date(2024, 6, day), metric, value)


def test_merge_appends_only_changed_values_and_keeps_old_vintages() -> None:
    t1 = datetime(2024, 6, 5, tzinfo=UTC)
    first = cq.merge_vintages(
        None, [obs(3, 1.0), obs(3, None, "reserve")], seen_at=t1, ingested_at=t1, is_synthetic=True
    )
    assert first.appended == 2 and first.table.schema.equals(CQ_DAILY_SCHEMA)
    same = cq.merge_vintages(
        first.table, [obs(3, 1.0), obs(3, None, "reserve")],
        seen_at=t1 + timedelta(days=1), ingested_at=t1, is_synthetic=True,
    )  # fmt: skip
    assert same.appended == 0 and same.table.equals(first.table)
    t2 = t1 + timedelta(days=7)
    revised = cq.merge_vintages(
        same.table, [obs(3, 1.5), obs(3, None, "reserve")],
        seen_at=t2, ingested_at=t2, is_synthetic=True,
    )  # fmt: skip
    assert revised.appended == 1
    netflow = [r for r in revised.table.to_pylist() if r["metric"] == "netflow_total"]
    assert [(r["value"], r["first_seen_at"], r["available_at"]) for r in netflow] == [
        (1.0, t1, t1),
        (1.5, t2, t2),
    ]
    # Back to an earlier value is a revision too.
    back = cq.merge_vintages(
        revised.table, [obs(3, 1.0)], seen_at=t2 + timedelta(days=1), ingested_at=t2,
        is_synthetic=True,
    )  # fmt: skip
    assert back.appended == 1


def test_a_change_without_time_passing_is_refused() -> None:
    t1 = datetime(2024, 6, 5, tzinfo=UTC)
    first = cq.merge_vintages(None, [obs(3, 1.0)], seen_at=t1, ingested_at=t1, is_synthetic=True)
    with pytest.raises(cq.VintageConflict):
        cq.merge_vintages(first.table, [obs(3, 2.0)], seen_at=t1, ingested_at=t1, is_synthetic=True)


# -- the loader ---------------------------------------------------------------------------


def load(tmp_path: Path, routes: CryptoQuantRoutes | None, now: datetime, **kw: object):
    handler, made = routes_handler(CryptoQuantRoutes, now=now)
    if routes is not None:
        made.revision = routes.revision  # type: ignore[attr-defined]
    recorder = Recorder(handler)
    ctx = make_ctx(cq.SPEC, tmp_path, recorder, now=now, start=date(2024, 5, 20), key=TOKEN, **kw)
    return cq.CryptoQuantLoader(ctx).load(), ctx, recorder, made


def test_loader_lands_final_days_and_a_rerun_is_a_no_op(tmp_path: Path) -> None:
    report, ctx, recorder, _ = load(tmp_path, None, NOW)
    assert report.status == "ok", report.message
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    params = recorder.requests[0].url.params
    assert (params["window"], params["exchange"], params["to"]) == (
        "day",
        "all_exchange",
        "20240604",
    )
    assert {r.url.path for r in recorder.requests} == {e.path for e in cq.ENDPOINTS.values()}
    today = PartitionKey(DATASET, "all_exchange", None, NOW.date())
    assert not ctx.lake.is_finished(today)  # the running day is partial: never landed
    day = ctx.lake.read_partition(PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 4)))
    assert sorted(day.column("metric").to_pylist()) == [
        "netflow_total", "reserve", "reserve_usd", "whale_ratio",
    ]  # fmt: skip
    assert set(day.column("first_seen_at").to_pylist()) == {NOW}
    assert set(day.column("available_at").to_pylist()) == {NOW}
    assert all(day.column("is_synthetic").to_pylist())
    manifest = ctx.lake.read_manifest(PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 4)))
    assert manifest is not None and manifest.is_synthetic

    again, _, _, _ = load(tmp_path, None, NOW + timedelta(hours=1))
    assert again.status == "ok"
    assert again.lines[0].written == 0 and again.lines[0].message == "0 new vintages"
    assert TOKEN not in files_text(tmp_path)


def test_a_revision_adds_a_vintage_and_keeps_the_old_one(tmp_path: Path) -> None:
    report, ctx, _, routes = load(tmp_path, None, NOW)
    assert report.status == "ok"
    key = PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 1))
    before = ctx.lake.read_partition(key)
    routes.revise()  # type: ignore[attr-defined]
    later = NOW + timedelta(days=1)
    again, ctx, _, _ = load(tmp_path, routes, later)  # type: ignore[arg-type]
    assert again.status == "ok" and again.lines[0].message != "0 new vintages"
    revised_days = 0
    for part, _ in ctx.lake.iter_partitions(DATASET):
        table = ctx.lake.read_partition(part).to_pylist()
        first = [r for r in table if r["first_seen_at"] == NOW]
        second = [r for r in table if r["first_seen_at"] == later]
        if part.day < date(2024, 6, 5) and second:
            revised_days += 1
            assert {r["metric"] for r in second} <= {"netflow_total", "whale_ratio"}
            assert all(r["available_at"] == later for r in second)
            assert len(first) == 4  # the first vintage is intact
    assert revised_days > 0
    old_rows = {(r["metric"], r["first_seen_at"]): r["value"] for r in before.to_pylist()}
    now_rows = {
        (r["metric"], r["first_seen_at"]): r["value"]
        for r in ctx.lake.read_partition(key).to_pylist()
    }
    assert all(now_rows[k] == v for k, v in old_rows.items())
    # The day that was running at the first ingest lands once it is over, as one vintage.
    landed = ctx.lake.read_partition(PartitionKey(DATASET, "all_exchange", None, NOW.date()))
    assert landed.num_rows == 4


def test_pages_count_back_from_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cq, "PAGE_LIMIT", 7)
    report, ctx, recorder, _ = load(tmp_path, None, NOW, config={"endpoints": ["netflow"]})
    assert report.status == "ok"
    windows = [(r.url.params["from"], r.url.params["to"]) for r in recorder.requests]
    assert windows == [("20240520", "20240604"), ("20240520", "20240528"), ("20240520", "20240521")]
    assert (
        ctx.lake.read_partition(
            PartitionKey(DATASET, "all_exchange", None, date(2024, 5, 20))
        ).num_rows
        == 1
    )


def test_rejected_token_fails_the_vendor(tmp_path: Path) -> None:
    handler, _ = routes_handler(CryptoQuantRoutes, now=NOW)
    token = "bad-" + "t" * 20
    ctx = make_ctx(cq.SPEC, tmp_path, handler, now=NOW, start=date(2024, 6, 1), key=token)
    report = cq.CryptoQuantLoader(ctx).load()
    assert report.status == "failed" and "401" in report.message
    assert token not in report.message
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_one_failing_endpoint_does_not_stop_the_others(tmp_path: Path) -> None:
    handler, _ = routes_handler(CryptoQuantRoutes, now=NOW)

    def answer(request: httpx.Request) -> httpx.Response:
        if "whale" in request.url.path:
            return json_response({"status": {"code": 503, "message": "Service Unavailable"}})
        return handler(request)

    ctx = make_ctx(cq.SPEC, tmp_path, answer, now=NOW, start=date(2024, 6, 1), key=TOKEN)
    report = cq.CryptoQuantLoader(ctx).load()
    [line] = report.lines
    assert line.status == "failed" and "Service Unavailable" in line.message
    day = ctx.lake.read_partition(PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 3)))
    assert sorted(set(day.column("metric").to_pylist())) == [
        "netflow_total", "reserve", "reserve_usd",
    ]  # fmt: skip


def test_quarantine_lands_with_its_day(tmp_path: Path) -> None:
    rows = [
        {"date": "2024-06-04", "netflow_total": 5.0},
        {"date": "2024-06-03", "netflow_total": "lots"},
        {"netflow_total": 1.0},
    ]
    ctx = make_ctx(
        cq.SPEC, tmp_path, lambda r: httpx.Response(200, content=envelope(rows)),
        now=NOW, start=date(2024, 6, 2), key=TOKEN, config={"endpoints": ["netflow"]},
    )  # fmt: skip
    report = cq.CryptoQuantLoader(ctx).load()
    assert report.status == "ok"
    d3 = PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 3))
    d2 = PartitionKey(DATASET, "all_exchange", None, date(2024, 6, 2))
    assert ctx.lake.read_manifest(d3).quarantined_rows == 1
    assert ctx.lake.read_manifest(d2).quarantined_rows == 1  # the undated one: first day
    assert ctx.lake.read_partition(d3).num_rows == 0
    assert isinstance(ctx.lake.read_partition(d3), pa.Table)


def test_a_server_that_ignores_to_is_malformed_not_an_endless_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cq, "PAGE_LIMIT", 2)
    stuck = envelope(
        [{"date": "2024-06-04", "netflow_total": 1.0}, {"date": "2024-06-03", "netflow_total": 2.0}]
    )
    recorder = Recorder(lambda r: httpx.Response(200, content=stuck))
    ctx = make_ctx(
        cq.SPEC, tmp_path, recorder, now=NOW, start=date(2024, 5, 20), key=TOKEN,
        config={"endpoints": ["netflow"]},
    )  # fmt: skip
    report = cq.CryptoQuantLoader(ctx).load()
    assert report.status == "failed" and "nothing on or before" in report.message
    assert len(recorder.requests) == 2
