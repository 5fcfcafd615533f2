"""POST /v1/features/as-of over real HTTP (`btcfs serve` on loopback) on a real published
warehouse: its answers equal the library's on the same file and a brute-force scan of the
mart, in input order; bad input is a 4xx naming what is wrong and what is valid."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.routes.as_of import MAX_BYTES, MAX_INDEXES
from api.settings import ApiSettings
from tests.api.apipipeline import Pipeline, live_server, published_pipeline
from tests.warehouse import retrievalfixtures as fx
from warehouse.retrieval import historical_features

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

US = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return published_pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def api(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    state = str(tmp_path_factory.mktemp("as_of_state") / "paper.sqlite")
    with (
        live_server(pipeline, BTCFS_STATE_DB=state) as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def ask(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/v1/features/as-of", json=body)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.mark.parametrize("interval", ["5m", "1h"])
def test_answers_equal_the_library_and_a_brute_force_scan(
    api: httpx.Client, pipeline: Pipeline, interval: str
) -> None:
    rows = fx.mart(pipeline.serve, f"features_{interval}")
    available = rows.column("available_at").to_pylist()
    first, last = available[0], available[-1]
    random = fx.random_events(1500, seed=21, start=first - timedelta(days=2),
                              end=last + timedelta(days=2), symbols=("BTCUSDT",))  # fmt: skip
    times = [
        available[10], available[10] - US, first - US, first, last, last + timedelta(days=3),
        available[10],  # a repeat, out of order
        *random.column("event_time").to_pylist(),
    ]  # fmt: skip
    response = ask(api, times=[rfc3339(t) for t in times], interval=interval)
    assert response.status_code == 200, response.text
    answers = response.json()["rows"]
    features = [n for n in rows.column_names if n not in ("symbol", "open_time", "available_at")]
    assert list(answers[0]) == [
        "event_time", "feature_open_time", "feature_available_at", "feature_age_seconds",
        *features,
    ]  # fmt: skip
    events = pa.table(
        {"symbol": ["BTCUSDT"] * len(times), "event_time": pa.array(times, fx.TIMESTAMP)}
    )
    library = historical_features(events, source=pipeline.serve, interval=interval).to_pylist()
    reference = fx.reference(rows, events, features)
    for index, (answer, mine, expected) in enumerate(zip(answers, library, reference, strict=True)):
        assert parse(answer["event_time"]) == times[index]
        for name in ("feature_open_time", "feature_available_at"):
            assert parse(answer[name]) == mine[name] == expected[name], (index, name)
        assert answer["feature_age_seconds"] == mine["feature_age_seconds"], index
        assert mine["feature_age_seconds"] == expected["feature_age_seconds"], index
        for name in features:
            assert answer[name] == mine[name] == expected[name], (index, name)
    assert answers[0]["feature_age_seconds"] == 0.0
    assert parse(answers[1]["feature_available_at"]) == available[9]
    assert answers[2]["feature_open_time"] is None and answers[2][features[0]] is None
    assert answers[5]["feature_age_seconds"] == 3 * 86_400
    assert answers[6] == answers[0]


def test_chosen_features_come_in_mart_order(api: httpx.Client) -> None:
    response = ask(api, times=["2030-01-01T00:00:00+02:00"], features=["vol_z", "close"])
    assert response.status_code == 200, response.text
    (row,) = response.json()["rows"]
    assert list(row)[4:] == ["close", "vol_z"] and row["event_time"] == "2029-12-31T22:00:00Z"
    assert ask(api, times=[]).json() == {"rows": []}
    (spot,) = ask(api, times=["2030-01-01T00:00:00Z"], feature_set="spot").json()["rows"]
    assert "close" in spot and "basis_bps" not in spot


@pytest.mark.parametrize(
    ("body", "status", "key", "needle"),
    [
        ({"symbol": "SOLUSDT"}, 404, "symbol", "unknown symbol 'SOLUSDT'"),
        ({"features": ["clsoe"]}, 422, "features", "did you mean close"),
        ({"interval": "15m"}, 422, "interval", "unknown interval"),
        ({"feature_set": "macro"}, 422, "feature_set", "unknown feature set macro"),
        ({"feature_set": "spot", "features": ["close"]}, 422, "features", "not both"),
        ({"times": ["2025-01-01T00:00:00Z", "yesterday"]}, 422, "times[1]",
         "times[1]: 'yesterday' is not an RFC 3339 time"),
        ({"times": ["2025-02-30T00:00:00Z"]}, 422, "times[0]", "is not a valid time"),
        ({"times": ["2025-01-01T00:00:00Z"] * 10_001}, 422, "times", "at most 10,000"),
        ({"times": ["2025-01-01T00:00:00Z'; drop table features_5m; --"]}, 422, "times[0]",
         "is not an RFC 3339 time"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_the_valid_values(
    api: httpx.Client,
    pipeline: Pipeline,
    body: dict[str, Any],
    status: int,
    key: str,
    needle: str,
) -> None:
    response = ask(api, **{"times": ["2025-01-01T00:00:00Z"], **body})
    assert response.status_code == status, response.text
    error = response.json()
    assert needle in error["detail"] and error["extra"]["key"] == key
    if key == "symbol":
        served = fx.mart(pipeline.serve, "features_5m").column("symbol").to_pylist()
        assert error["extra"]["valid"] == sorted(set(served))
    if key == "features":
        assert "close" in error["extra"]["valid"] and "vol_z" in error["extra"]["valid"]
    if key == "feature_set":
        assert error["extra"]["valid"] == ["spot", "derivatives", "vendors"]
    if key == "times" and status == 422 and "limit" in error["extra"]:
        assert error["extra"]["limit"] == 10_000


def test_mistyped_bodies_are_422_naming_the_field(api: httpx.Client) -> None:
    response = ask(api, times=[1735689600])
    assert response.status_code == 422 and response.json()["extra"][0]["key"] == "times[0]"
    response = ask(api, times=["2025-01-01T00:00:00Z"], max_age="5m")
    assert response.status_code == 422 and "unknown field `max_age`" in response.text


def test_it_is_in_the_openapi_document(api: httpx.Client) -> None:
    document = api.get("/docs/openapi.json").json()
    operation = document["paths"]["/v1/features/as-of"]["post"]
    assert operation["operationId"] == "getFeaturesAsOf"
    assert {"404", "422"} <= set(operation["responses"])


def test_the_times_are_utc(api: httpx.Client) -> None:
    naive = ask(api, times=["2025-01-20T12:00:00"], features=["close"]).json()["rows"][0]
    zoned = ask(api, times=["2025-01-20T13:00:00+01:00"], features=["close"]).json()["rows"][0]
    assert naive == zoned and naive["event_time"] == "2025-01-20T12:00:00Z"
    assert parse(naive["feature_available_at"]) <= datetime(2025, 1, 20, 12, tzinfo=UTC)  # type: ignore[operator]


def test_row_indexes_are_bounded_per_publish(pipeline: Pipeline, tmp_path: Path) -> None:
    """A caller choosing new features on every request costs a load each time, not memory."""
    settings = ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=str(tmp_path / "p.sqlite")))
    app = create_app(settings)
    names = ["close", "ret_5m", "ret_1h", "ret_4h", "hl_range", "co_ret", "vol_z"]
    with TestClient(app) as client:
        for chosen in itertools.islice(itertools.combinations(names, 2), MAX_INDEXES + 4):
            response = client.post(
                "/v1/features/as-of",
                json={"times": ["2030-01-01T00:00:00Z"], "features": list(chosen)},
            )
            assert response.status_code == 200, response.text
        services = app.state["services"]
        with services.db.reader() as reader:
            indexes = reader.generation.memo[("as_of_indexes",)]
            assert len(indexes) == MAX_INDEXES
            assert sum(index.nbytes for index in indexes.values()) <= MAX_BYTES


def test_csv_and_arrow_answer_the_json_rows_as_typed_tables(
    api: httpx.Client, pipeline: Pipeline
) -> None:
    import io

    import polars as pl
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc

    available = fx.mart(pipeline.serve, "features_5m").column("available_at").to_pylist()
    times = [rfc3339(available[0] - US), rfc3339(available[100]), "2025-01-20T13:00:00+01:00",
             rfc3339(available[-1] + timedelta(hours=1))]  # fmt: skip
    body = {"times": times, "features": ["close", "vol_z", "is_spot_complete"]}
    rows = ask(api, **body).json()["rows"]
    arrow = api.post("/v1/features/as-of", params={"format": "arrow"}, json=body)
    assert arrow.status_code == 200, arrow.text
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.file"
    assert 'filename="features_5m_BTCUSDT_as_of.arrow"' in arrow.headers["content-disposition"]
    table = ipc.open_file(arrow.content).read_all()  # straight from the bytes
    assert table.column_names == list(rows[0])
    assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("feature_age_seconds").type) == "double"
    assert str(table.schema.field("is_spot_complete").type) == "bool"
    for answer, typed in zip(rows, table.to_pylist(), strict=True):
        for name, value in answer.items():
            if name in ("event_time", "feature_open_time", "feature_available_at"):
                assert parse(value) == typed[name], name
            else:
                assert value == typed[name], name
    frame = pl.read_ipc(arrow.content)  # polars, straight from the bytes
    assert frame.columns == table.column_names and frame.height == len(times)
    assert frame["close"].to_list() == [r["close"] for r in rows]
    csv = api.post("/v1/features/as-of", params={"format": "csv"}, json=body)
    assert csv.headers["content-type"].startswith("text/csv")
    read = pacsv.read_csv(io.BytesIO(csv.content))
    assert read.column_names == table.column_names and read.num_rows == len(times)
    assert pl.read_csv(io.BytesIO(csv.content))["vol_z"].to_list() == [r["vol_z"] for r in rows]
    # every column of the mart when none are chosen, the same as the JSON answer
    whole = api.post("/v1/features/as-of", params={"format": "arrow"}, json={"times": times[1:2]})
    (row,) = ask(api, times=times[1:2]).json()["rows"]
    assert ipc.open_file(whole.content).read_all().column_names == list(row)


def test_an_unknown_format_is_a_422_listing_the_formats(api: httpx.Client) -> None:
    response = api.post(
        "/v1/features/as-of", params={"format": "xml"}, json={"times": ["2025-01-01T00:00:00Z"]}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["extra"] == {"key": "format", "valid": ["json", "csv", "arrow"]}
