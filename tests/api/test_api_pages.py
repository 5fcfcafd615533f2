"""Cursor pages of GET /v1/bars and GET /v1/features on the session's published warehouse:
following `next` returns every row of the range once, in order, in every format, also
while a publish replaces the file; a cursor that is malformed, altered or issued for
another query is a 422 problem naming `cursor`."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import httpx
import polars as pl
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.apipipeline import Pipeline, published_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.dbt]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return published_pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def client(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("pages_state") / "paper.sqlite"
    app = create_app(ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=str(state))))
    with TestClient(app) as test_client:
        yield test_client


def open_times(serve: Path, table: str, symbol: str, since: datetime | None = None) -> list[Any]:
    con = duckdb.connect(str(serve), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return [
            row[0]
            for row in con.execute(
                f"select open_time from {table} where symbol = ? and open_time >= ? "
                "order by open_time",
                [symbol, since or datetime.fromisoformat("1970-01-01T00:00:00+00:00")],
            ).fetchall()
        ]
    finally:
        con.close()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def walk(client: TestClient, url: str, params: dict[str, Any]) -> list[httpx.Response]:
    """Every page from the first, by the `Link` header (the JSON body's `next` agrees)."""
    pages = [client.get(url, params=params or None)]  # {} would drop the query of `url`
    while True:
        page = pages[-1]
        assert page.status_code == 200, page.text
        link = page.links.get("next", {}).get("url")
        if page.headers["content-type"].startswith("application/json"):
            body = page.json()
            assert body["next"] == link and (body["next_cursor"] is None) == (link is None)
            if link:
                assert parse_qs(urlsplit(link).query)["cursor"] == [body["next_cursor"]]
        if link is None:
            return pages
        assert len(pages) < 100, "no end in sight"
        pages.append(client.get(link))


def test_pages_forward_from_start_return_every_row_once_in_order(
    client: TestClient, pipeline: Pipeline
) -> None:
    expected = open_times(pipeline.serve, "bars_5m", "BTCUSDT")
    start = expected[0].isoformat()
    for limit in (5000, 997):
        pages = walk(client, "/v1/bars", {"start": start, "limit": limit})
        got = [parse(bar["open_time"]) for page in pages for bar in page.json()["bars"]]
        assert got == expected, limit  # 14,406 bars: every one once, in order
        assert len(pages) == -(-len(expected) // limit)
        assert [page.json()["count"] for page in pages[:-1]] == [limit] * (len(pages) - 1)
        assert "link" not in pages[-1].headers and pages[-1].json()["next"] is None
    # a page that ends exactly at the last row has no next
    exact = client.get("/v1/bars", params={"start": expected[-3].isoformat(), "limit": 3})
    assert exact.json()["count"] == 3 and exact.json()["next"] is None


def test_pages_without_start_walk_back_from_the_newest_row(
    client: TestClient, pipeline: Pipeline
) -> None:
    expected = open_times(pipeline.serve, "features_1h", "ETHUSDT")
    pages = walk(client, "/v1/features", {"symbol": "ETHUSDT", "interval": "1h", "limit": 300})
    chunks = [[parse(row["open_time"]) for row in page.json()["rows"]] for page in pages]
    assert all(chunk == sorted(chunk) for chunk in chunks)  # each page oldest first
    assert [t for chunk in reversed(chunks) for t in chunk] == expected
    assert chunks[0][-1] == expected[-1] and len(pages) == 4


def test_csv_and_arrow_pages_follow_the_link_header(client: TestClient, pipeline: Pipeline) -> None:
    expected = open_times(pipeline.serve, "features_5m", "BTCUSDT")
    start = expected[-2500].isoformat()
    params = {"start": start, "interval": "5m", "limit": 1000}
    arrow = walk(client, "/v1/features", {**params, "format": "arrow"})
    assert len(arrow) == 3
    tables = [ipc.open_file(page.content).read_all() for page in arrow]
    got = [t for table in tables for t in table.column("open_time").to_pylist()]
    assert got == expected[-2500:]
    assert pl.concat([pl.read_ipc(page.content) for page in arrow]).height == 2500
    link = arrow[0].links["next"]["url"]
    assert link.startswith("/v1/features?") and "format=arrow" in link
    csv = walk(client, "/v1/bars", {"interval": "1h", "start": start, "limit": 200,
                                    "format": "csv"})  # fmt: skip
    hours = open_times(pipeline.serve, "bars_1h", "BTCUSDT", parse(start))
    rows = [pacsv.read_csv(io.BytesIO(page.content)).column("open_time") for page in csv]
    assert [t for column in rows for t in column.to_pylist()] == hours
    assert len(csv) == -(-len(hours) // 200) and "link" not in csv[-1].headers


def test_limit_and_format_may_change_between_pages(client: TestClient, pipeline: Pipeline) -> None:
    expected = open_times(pipeline.serve, "bars_5m", "ETHUSDT")[:30]
    params = {"symbol": "ETHUSDT", "start": expected[0].isoformat(), "limit": 10}
    first = client.get("/v1/bars", params=params).json()
    second = client.get(
        "/v1/bars", params={**params, "limit": 20, "format": "arrow",
                            "cursor": first["next_cursor"]},
    )  # fmt: skip
    table = ipc.open_file(second.content).read_all()
    got = [parse(b["open_time"]) for b in first["bars"]] + table.column("open_time").to_pylist()
    assert got == expected


def test_pages_survive_a_publish_that_replaces_the_file(pipeline: Pipeline, tmp_path: Path) -> None:
    """The rows a caller already has are gone from the next file (as if trimmed): an offset
    would now skip as many; the keyset continues after the last row it returned."""
    serve = tmp_path / "serve.duckdb"
    shutil.copyfile(pipeline.serve, serve)
    expected = open_times(serve, "bars_1h", "BTCUSDT")
    settings = pipeline.env(BTCFS_SERVE_DB=str(serve), BTCFS_STATE_DB=str(tmp_path / "p.sqlite"))
    app = create_app(ApiSettings.from_env(settings))
    database = app.state["services"].db
    with TestClient(app) as client:
        params = {"interval": "1h", "start": expected[0].isoformat(), "limit": 400}
        first = client.get("/v1/bars", params=params)
        generation = database.current_number()
        trimmed = tmp_path / "next.duckdb"
        shutil.copyfile(serve, trimmed)
        con = duckdb.connect(str(trimmed))
        try:
            con.execute("delete from bars_1h where open_time <= ?", [expected[399]])
        finally:
            con.close()
        os.replace(trimmed, serve)  # what publish does
        rest = walk(client, first.links["next"]["url"], {})
        assert database.current_number() == generation + 1  # the new file was served
    got = [parse(b["open_time"]) for page in [first, *rest] for b in page.json()["bars"]]
    assert got == expected


def test_bad_cursors_are_a_422_naming_the_cursor(client: TestClient, pipeline: Pipeline) -> None:
    start = open_times(pipeline.serve, "bars_5m", "BTCUSDT")[0].isoformat()
    params = {"start": start, "limit": 5}
    cursor = client.get("/v1/bars", params=params).json()["next_cursor"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=="))
    raw[5] ^= 0x40  # a later time, in place
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/bars", {**params, "cursor": "not-a-cursor"}, "not a cursor of this API"),
        ("/v1/bars", {**params, "cursor": cursor[:-2] + "AA"}, "altered"),
        ("/v1/bars", {**params, "cursor": tampered}, "altered"),
        ("/v1/bars", {**params, "cursor": "'; drop table bars_5m; --"}, "not a cursor"),
        ("/v1/features", {**params, "cursor": cursor}, "pages another query"),
        ("/v1/bars", {**params, "symbol": "ETHUSDT", "cursor": cursor}, "another query"),
        ("/v1/bars", {**params, "interval": "1h", "cursor": cursor}, "another query"),
        ("/v1/bars", {"limit": 5, "cursor": cursor}, "another query"),
        ("/v1/bars", {**params, "end": "2030-01-01", "cursor": cursor}, "another query"),
    ]
    for url, query, needle in cases:
        response = client.get(url, params=query)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["extra"]["key"] == "cursor" and needle in problem["detail"], problem
    # the same start written another way is the same query
    same = client.get("/v1/bars", params={**params, "start": start.replace("+00:00", "Z"),
                                          "cursor": cursor})  # fmt: skip
    assert same.status_code == 200, same.text
    for query, key in (({"limit": -1}, "limit"), ({"limit": "ten"}, "limit"),
                       ({"format": "xml"}, "format")):  # fmt: skip
        response = client.get("/v1/features", params=query)
        assert response.status_code == 422, response.text
        extra = response.json()["extra"]
        keys = [item["key"] for item in extra] if isinstance(extra, list) else [extra["key"]]
        assert key in keys


def test_a_cursor_outlives_a_restart_and_needs_the_same_key(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    state = str(tmp_path / "state" / "paper.sqlite")
    params = {"interval": "1d", "start": "2025-01-01", "limit": 10}

    app = create_app(ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=state)))
    with TestClient(app) as client:
        link = client.get("/v1/bars", params=params).json()["next"]
    app = create_app(ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=state)))  # a restart
    with TestClient(app) as client:
        assert client.get(link).status_code == 200
    other = create_app(ApiSettings.from_env(
        pipeline.env(BTCFS_STATE_DB=state, BTCFS_API_CURSOR_KEY="another key, 16+ chars")
    ))  # fmt: skip
    with TestClient(other) as client:
        refused = client.get(link)
        assert refused.status_code == 422 and refused.json()["extra"]["key"] == "cursor"
