"""The API's routes on a real published warehouse (replay server -> loaders -> dbt -> train
-> publish), through Litestar's TestClient: answers, bad input, auth, paper positions."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.apipipeline import ADMIN_TOKEN, IN_PROCESS_HOSTS, Pipeline, published_pipeline
from tests.api.livefixtures import live_state, write_live

pytestmark = [pytest.mark.slow, pytest.mark.dbt]
#: A paper fill's costs per side: the backtest's defaults (config/train.yml).
FEE, SLIPPAGE = 5.0 / 10_000, 1.0 / 10_000


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return published_pipeline(tmp_path_factory)


def make_app(pipeline: Pipeline, state: Path, **env: str) -> Litestar:
    return create_app(ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=str(state), **env)))


@pytest.fixture(scope="module")
def client(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state") / "paper.sqlite"
    with TestClient(make_app(pipeline, state)) as test_client:
        yield test_client


def warehouse_rows(pipeline: Pipeline, sql: str, params: list[Any] | None = None) -> list[Any]:
    con = duckdb.connect(str(pipeline.serve), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ------------------------------------------------------------------------- reading


def test_health_names_build_model_and_freshness(client: TestClient, pipeline: Pipeline) -> None:
    body = client.get("/health").json()
    published = warehouse_rows(
        pipeline, "select dbt_invocation_id, model_version from btcfs_publish"
    )
    assert (body["dbt_invocation_id"], body["model_version"]) == published[0]
    assert body["status"] in ("ok", "degraded") and body["model"] == "btcusdt_5m"
    last = dict(
        warehouse_rows(pipeline, "select symbol, max(available_at) from bars_5m group by 1")
    )
    fresh = {f["symbol"]: parse(f["last_bar_at"]) for f in body["freshness"]}
    assert fresh == last and sorted(fresh) == ["BTCUSDT", "ETHUSDT"]
    # The replay market ends in 2025: the data is stale now, and health says so.
    assert any("old" in reason for reason in body["reasons"])


def test_health_is_ok_with_a_live_loop_keeping_up_and_degraded_when_it_stops(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # the replay's exchange clock is just past the newest published bar: fresh on it
    (newest,) = warehouse_rows(pipeline, "select max(available_at) from bars_5m")[0]
    exchange_now = newest.astimezone(UTC) + timedelta(seconds=40)
    live = tmp_path / "live.json"
    write_live(live, live_state(exchange_now, {("BTCUSDT", "spot"): 1.0}))
    app = make_app(pipeline, tmp_path / "paper.sqlite", BTCFS_LIVE_STATE=str(live))
    with TestClient(app) as test_client:
        body = test_client.get("/health").json()
        assert body["status"] == "ok", body["reasons"]
        assert {f["clock"] for f in body["freshness"]} == {"exchange"}
        assert all(f["age_seconds"] < 120 for f in body["freshness"]), body["freshness"]
        # the feature age of a prediction and of the latest features: the same clock
        prediction = test_client.get("/v1/predictions/latest").json()
        assert 0 <= prediction["feature_age_seconds"] < 600, prediction["feature_age_seconds"]
        latest = test_client.get("/v1/features/latest").json()
        assert 0 <= latest["age_seconds"] < 600, latest["age_seconds"]
        write_live(live, live_state(exchange_now, {}, heartbeat_age_s=120))
        body = test_client.get("/health").json()
        assert body["status"] == "degraded"
        assert [r for r in body["reasons"] if r.startswith("live:")], body["reasons"]


def test_bars_match_the_mart(client: TestClient, pipeline: Pipeline) -> None:
    for interval in ("5m", "15m", "1h", "4h", "1d"):
        body = client.get("/v1/bars", params={"interval": interval, "limit": 3}).json()
        expected = warehouse_rows(
            pipeline,
            f"select open_time, cast(close as double) from bars_{interval} "
            "where symbol = 'BTCUSDT' order by open_time desc limit 3",
        )[::-1]
        assert [(parse(b["open_time"]), b["close"]) for b in body["bars"]] == expected
        assert body["count"] == 3 and body["interval"] == interval
    first = warehouse_rows(pipeline, "select min(open_time) from bars_1h")[0][0]
    start = first + timedelta(hours=5)
    body = client.get(
        "/v1/bars",
        params={
            "interval": "1h",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=9)).isoformat(),
        },
    ).json()
    times = [parse(bar["open_time"]) for bar in body["bars"]]
    assert times == [start + timedelta(hours=h) for h in range(10)]
    assert all(b["available_at"] > b["open_time"] for b in body["bars"])
    # A date alone is its midnight UTC.
    day = (first + timedelta(days=2)).date()
    by_date = client.get("/v1/bars", params={"interval": "1h", "start": day.isoformat()}).json()
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    assert parse(by_date["bars"][0]["open_time"]) == midnight


def test_features_latest_and_range(client: TestClient, pipeline: Pipeline) -> None:
    latest = client.get("/v1/features/latest", params={"interval": "5m"}).json()
    expected = warehouse_rows(
        pipeline,
        "select open_time, ret_5m from latest_features where bar_interval = '5m'",
    )[0]
    assert (parse(latest["open_time"]), latest["values"]["ret_5m"]) == expected
    assert latest["age_seconds"] > 0 and "symbol" not in latest["values"]
    rows = client.get("/v1/features", params={"interval": "1h", "limit": 5}).json()["rows"]
    assert (
        len(rows) == 5
        and parse(rows[-1]["open_time"])
        == warehouse_rows(pipeline, "select max(open_time) from features_1h")[0][0]
    )


def test_range_endpoints_answer_csv_and_arrow_that_pyarrow_and_polars_read(
    client: TestClient, pipeline: Pipeline
) -> None:
    import io

    import polars as pl
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc

    params = {"symbol": "ETHUSDT", "interval": "5m", "limit": 50}
    rows = client.get("/v1/features", params=params).json()["rows"]
    arrow = client.get("/v1/features", params={**params, "format": "arrow"})
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.file"
    table = ipc.open_file(arrow.content).read_all()
    served = [r[0] for r in warehouse_rows(pipeline, "describe features_5m")]
    assert table.column_names == served and table.num_rows == 50
    assert str(table.schema.field("open_time").type) == "timestamp[us, tz=UTC]"
    assert [parse(r["open_time"]) for r in rows] == table.column("open_time").to_pylist()
    assert table.column("vol_z").to_pylist() == [r["values"]["vol_z"] for r in rows]
    assert pl.read_ipc(arrow.content).shape == (50, len(served))
    csv = client.get("/v1/bars", params={"interval": "1h", "limit": 7, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="bars_1h_BTCUSDT.csv"' in csv.headers["content-disposition"]
    bars = pacsv.read_csv(io.BytesIO(csv.content))
    json_bars = client.get("/v1/bars", params={"interval": "1h", "limit": 7}).json()["bars"]
    assert bars.column("close").to_pylist() == [b["close"] for b in json_bars]
    assert pl.read_csv(io.BytesIO(csv.content)).height == 7
    bad = client.get("/v1/bars", params={"format": "xml"})
    assert bad.status_code == 422 and bad.json()["extra"]["valid"] == ["json", "csv", "arrow"]


def test_responses_are_compressed_when_the_client_accepts_it(client: TestClient) -> None:
    params = {"interval": "5m", "limit": 2000}
    plain = client.get("/v1/features", params=params, headers={"accept-encoding": "identity"})
    packed = client.get("/v1/features", params=params, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json() == plain.json()  # the same rows, decoded by the client
    assert packed.num_bytes_downloaded * 4 < plain.num_bytes_downloaded, (
        packed.num_bytes_downloaded, plain.num_bytes_downloaded,
    )  # fmt: skip


def test_catalog_declares_every_served_feature_with_its_coverage(
    client: TestClient, pipeline: Pipeline
) -> None:
    body = client.get("/v1/catalog").json()
    features = {(f["model"], f["name"]): f for f in body["features"]}
    assert body["count"] == len(body["features"]) == len(features)
    served = [r[0] for r in warehouse_rows(pipeline, "describe features_5m")]
    assert [name for model, name in features if model == "features_5m"] == served
    vol_z = features[("features_5m", "vol_z")]
    assert (vol_z["feature_set"], vol_z["role"], vol_z["model_input"]) == ("spot", "feature", True)
    assert "zscore" in vol_z["description"] and vol_z["warm_up"]
    measured = {c["symbol"]: c for c in vol_z["coverage"]}
    assert sorted(measured) == ["BTCUSDT", "ETHUSDT"]
    for symbol, rows, first in warehouse_rows(
        pipeline,
        "select symbol, count(*), min(open_time) from features_5m where vol_z is not null "
        "group by symbol",
    ):
        got = measured[symbol]
        assert (got["non_null_rows"], parse(got["first_open_time"])) == (rows, first)
    spot = client.get("/v1/catalog", params={"feature_set": "spot", "model": "features_1h"})
    assert {f["feature_set"] for f in spot.json()["features"]} == {"spot"}
    assert {f["model"] for f in spot.json()["features"]} == {"features_1h"}
    bad = client.get("/v1/catalog", params={"feature_set": "macro"})
    assert bad.status_code == 422 and "feature_set" in bad.text


def edited_copy(pipeline: Pipeline, tmp_path: Path, statement: str) -> Any:
    """An app serving a copy of the published file with `statement` run on it."""
    serve = tmp_path / "serve.duckdb"
    serve.write_bytes(pipeline.serve.read_bytes())
    con = duckdb.connect(str(serve))
    try:
        con.execute(statement)
    finally:
        con.close()
    return make_app(pipeline, tmp_path / "paper.sqlite", BTCFS_SERVE_DB=str(serve))


def test_each_symbol_is_forecast_by_the_model_trained_on_it(
    client: TestClient, pipeline: Pipeline
) -> None:
    from ml.predict import load_model

    for symbol, name in (("BTCUSDT", "btcusdt_5m"), ("ETHUSDT", "ethusdt_5m")):
        body = client.get("/v1/predictions/latest", params={"symbol": symbol}).json()
        assert (body["symbol"], body["model"]) == (symbol, name), body
        model = load_model(name, body["model_version"], pipeline.root / "registry")
        assert model.symbols == (symbol,)
        row = client.get("/v1/features/latest", params={"symbol": symbol}).json()["values"]
        expected = model.predict(row).expected_return
        assert body["predicted_return"] == pytest.approx(expected, abs=1e-12)
        card = client.get("/v1/model", params={"symbol": symbol}).json()
        assert (card["model"], card["symbols"]) == (name, [symbol])
        instance = {name: row[name] for name in card["features"]}
        scored = client.post(
            "/v1/predict", json={"instances": [instance], "symbol": symbol, "horizon": "5m"}
        )
        assert scored.json()["model"] == name, scored.text
    # Only BTCUSDT has a barrier model: ETHUSDT's forecast has no barrier probabilities.
    eth = client.get("/v1/predictions/latest", params={"symbol": "ETHUSDT"}).json()
    assert eth["barrier_probabilities"] is None


def test_a_symbol_no_pinned_model_was_trained_on_is_a_404_naming_the_models(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """ETHUSDT rows served with only BTCUSDT's models pinned: never scored by them."""
    app = edited_copy(pipeline, tmp_path, "delete from btcfs_models where model = 'ethusdt_5m'")
    with TestClient(app) as client:
        for url, params in (
            ("/v1/predictions/latest", {"symbol": "ETHUSDT"}),
            ("/v1/forecast", {"symbol": "ETHUSDT"}),
            ("/v1/model", {"symbol": "ETHUSDT"}),
        ):
            eth = client.get(url, params=params)
            assert eth.status_code == 404, eth.text
            problem = eth.json()
            assert "no pinned model forecasts ETHUSDT" in problem["detail"]
            assert "btcusdt_5m (BTCUSDT, 5m)" in problem["detail"], problem
            assert problem["extra"]["valid"] == ["BTCUSDT"]
        row = client.get("/v1/features/latest", params={"symbol": "ETHUSDT"}).json()["values"]
        instance = {name: row[name] for name in client.get("/v1/model").json()["features"]}
        scored = client.post("/v1/predict", json={"instances": [instance], "symbol": "ETHUSDT"})
        assert scored.status_code == 404 and "ETHUSDT" in scored.text
        assert client.get("/v1/predictions/latest", params={"symbol": "BTCUSDT"}).status_code == 200


def test_a_file_published_before_models_recorded_symbols_reads_them_from_the_registry(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    app = edited_copy(pipeline, tmp_path, "alter table btcfs_models drop column symbols")
    with TestClient(app) as client:
        for symbol, name in (("BTCUSDT", "btcusdt_5m"), ("ETHUSDT", "ethusdt_5m")):
            body = client.get("/v1/predictions/latest", params={"symbol": symbol}).json()
            assert body["model"] == name, body


def test_latest_prediction_comes_from_ml_predict(client: TestClient, pipeline: Pipeline) -> None:
    from ml.predict import load_model

    body = client.get("/v1/predictions/latest").json()
    assert (body["model"], body["horizon"]) == ("btcusdt_5m", "5m")
    model = load_model("btcusdt_5m", body["model_version"], pipeline.root / "registry")
    row = client.get("/v1/features/latest").json()["values"]
    expected = model.predict(row)
    assert body["predicted_return"] == pytest.approx(expected.expected_return, abs=1e-12)
    assert expected.quantiles is not None
    assert body["quantiles"]["p10"] == pytest.approx(expected.quantiles["q10"], abs=1e-12)
    assert body["quantiles"]["p10"] <= body["quantiles"]["p50"] <= body["quantiles"]["p90"]
    probabilities = body["barrier_probabilities"]
    assert probabilities["model"] == "btcusdt_5m_tb"
    assert probabilities["down"] + probabilities["flat"] + probabilities["up"] == pytest.approx(1)
    assert parse(body["target_at"]) - parse(body["available_at"]) == timedelta(minutes=5)
    assert body["feature_age_seconds"] > 0


def test_forecast_path_widens(client: TestClient) -> None:
    body = client.get("/v1/forecast", params={"steps": 6}).json()
    path = body["path"]
    assert [point["step"] for point in path] == list(range(1, 7))
    widths = [point["upper_price"] - point["lower_price"] for point in path]
    assert all(later > earlier for earlier, later in itertools.pairwise(widths))
    assert all(p["lower_price"] < p["price"] < p["upper_price"] for p in path)
    assert parse(path[1]["at"]) - parse(path[0]["at"]) == timedelta(minutes=5)


def test_predict_scores_instances_and_names_bad_fields(client: TestClient) -> None:
    features = client.get("/v1/model").json()["features"]
    values = client.get("/v1/features/latest").json()["values"]
    instance = {name: values[name] for name in features}
    ok = client.post("/v1/predict", json={"instances": [instance, instance]})
    assert ok.status_code == 200, ok.text
    latest = client.get("/v1/predictions/latest").json()
    scored = ok.json()["predictions"]
    assert len(scored) == 2
    assert scored[0]["predicted_return"] == pytest.approx(latest["predicted_return"], abs=1e-12)
    missing = {k: v for k, v in instance.items() if k != "ret_1h"}
    cases = {
        "instances[0].ret_1h": missing,
        "instances[0].not_a_feature": {**instance, "not_a_feature": 1.0},
        "instances[0].vol_z": {**instance, "vol_z": "high"},
    }
    for field, bad in cases.items():
        response = client.post("/v1/predict", json={"instances": [bad]})
        assert response.status_code == 422, response.text
        assert response.json()["extra"]["key"] == field
        assert field.split(".")[1] in response.json()["detail"]
    assert client.post("/v1/predict", json={"instances": []}).status_code == 422
    assert client.post("/v1/predict", json={"rows": [instance]}).status_code == 422


def test_model_and_models(client: TestClient, pipeline: Pipeline) -> None:
    card = client.get("/v1/model").json()
    metadata = json.loads(
        (pipeline.root / "registry" / "btcusdt_5m" / card["version"] / "metadata.json").read_text()
    )
    assert card["features"] == metadata["features"]
    assert card["metrics"]["rank_ic"] == pytest.approx(metadata["metrics"]["overall"]["rank_ic"])
    assert card["stage"] in ("production", "candidate", "rejected")
    listed = client.get("/v1/models").json()["models"]
    assert {(m["model"], m["pinned"]) for m in listed} >= {
        ("btcusdt_5m", True),
        ("btcusdt_5m_tb", True),
    }


def test_qa_reports_the_published_gates(client: TestClient, pipeline: Pipeline) -> None:
    body = client.get("/v1/qa").json()
    published = body["published"]
    assert not published["failed"] and published["counts"].get("pass", 0) > 20
    assert published["invocation_id"] == client.get("/health").json()["dbt_invocation_id"]
    assert body["last_build"]["invocation_id"] == published["invocation_id"]


def test_docs_are_served_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert urls and all(url.startswith("/") for url in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    spec = client.get("/docs/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"getBars", "getLatestPrediction", "predict", "reload", "stream", "getQA",
            "openPaperPosition", "closePaperPosition", "getHealth"} <= operations  # fmt: skip


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("url", "status", "key"),
    [
        ("/v1/bars?symbol=SOLUSDT", 404, "symbol"),
        ("/v1/bars?interval=7m", 422, "interval"),
        ("/v1/features?interval=15m", 422, "interval"),
        ("/v1/bars?start=2025-02-01T00:00:00Z&end=2025-01-01T00:00:00Z", 422, "start"),
        ("/v1/bars?limit=5001", 422, "limit"),
        ("/v1/bars?limit=0", 422, "limit"),
        ("/v1/bars?start=yesterday", 422, "start"),
        ("/v1/bars?start=1735689600", 422, "start"),
        ("/v1/bars?end=9999-12-31T23:59:59-23:59", 422, "end"),
        ("/v1/features?end=2025-13-01T00:00:00Z", 422, "end"),
        ("/v1/predictions/latest?horizon=1w", 422, "horizon"),
        ("/v1/forecast?steps=1000", 422, "steps"),
        ("/v1/predictions/latest?symbol=SOLUSDT", 404, "symbol"),
        ("/v1/model?symbol=SOLUSDT", 404, "symbol"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_parameter(
    client: TestClient, url: str, status: int, key: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    extra = response.json()["extra"]
    keys = [item["key"] for item in extra] if isinstance(extra, list) else [extra["key"]]
    assert key in keys


def test_unknown_values_list_the_valid_ones(client: TestClient) -> None:
    assert client.get("/v1/bars?interval=7m").json()["extra"]["valid"] == [
        "5m", "15m", "1h", "4h", "1d"
    ]  # fmt: skip
    assert client.get("/v1/bars?symbol=x").json()["extra"]["valid"] == ["BTCUSDT", "ETHUSDT"]
    # lower case is refused as at every other door, the upper-case form named
    lower = client.get("/v1/bars?symbol=btcusdt")
    assert lower.status_code == 404
    assert "symbols are upper case (BTCUSDT)" in lower.json()["detail"]
    assert client.get("/v1/predictions/latest?horizon=4h").json()["extra"]["valid"] == ["5m"]


def test_sql_metacharacters_are_inert(client: TestClient, pipeline: Pipeline) -> None:
    for symbol in ("BTCUSDT' or '1'='1", "BTCUSDT'; drop table bars_5m; --", "%", "BTCUSDT\\"):
        response = client.get("/v1/bars", params={"symbol": symbol})
        assert response.status_code == 404, response.text
    assert client.get("/v1/bars", params={"limit": 1}).status_code == 200
    assert warehouse_rows(pipeline, "select count(*) from bars_5m")[0][0] > 1000


def test_request_bodies_have_a_size_limit(client: TestClient) -> None:
    body = json.dumps({"instances": [{"x": 1.0}] * 200_000})
    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# ---------------------------------------------------------------------- admin, paper


def test_admin_reload_needs_the_bearer_token(client: TestClient) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/v1/admin/reload", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    before = client.post("/v1/admin/reload", headers=right).json()["generation"]
    after = client.post("/v1/admin/reload", headers=right).json()["generation"]
    assert after == before + 1


def test_admin_is_off_without_a_configured_token(pipeline: Pipeline, tmp_path: Path) -> None:
    app = make_app(pipeline, tmp_path / "paper.sqlite", BTCFS_ADMIN_TOKEN="")
    with TestClient(app) as test_client:
        response = test_client.post("/v1/admin/reload", headers={"Authorization": "Bearer "})
        assert response.status_code == 401 and "BTCFS_ADMIN_TOKEN" in response.text


def test_paper_positions_mark_to_market_and_survive_a_restart(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    state = tmp_path / "paper.sqlite"
    close, available_at = warehouse_rows(
        pipeline,
        "select cast(close as double), available_at from bars_5m"
        " where symbol = 'BTCUSDT' order by open_time desc limit 1",
    )[0]
    # a live loop whose exchange clock is 30 s past the newest published close, no quote
    # of BTCUSDT spot yet: the published close is the fresh price
    live = tmp_path / "live.json"
    write_live(live, live_state(available_at + timedelta(seconds=30), {("ETHUSDT", "spot"): 1.0}))
    buy = close * (1 + SLIPPAGE)
    with TestClient(make_app(pipeline, state, BTCFS_LIVE_STATE=str(live))) as first:
        opened = first.post("/v1/paper/positions", json={"amount_usd": 1000})
        assert opened.status_code == 201, opened.text
        position = opened.json()
        assert position["entry_price_source"] == "published-close"
        assert position["entry_reference_price"] == pytest.approx(close)
        assert position["entry_price"] == pytest.approx(buy)
        assert position["units"] == pytest.approx(1000 / buy)
        second = first.post("/v1/paper/positions", json={"amount_usd": 250.5}).json()
        closed = first.post(f"/v1/paper/positions/{position['id']}/close")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert first.post(f"/v1/paper/positions/{position['id']}/close").status_code == 409
        assert first.post("/v1/paper/positions/999/close").status_code == 404
        # decoded strictly: a number in a string is not a number
        for bad in ({"amount_usd": 0}, {"amount_usd": -5}, {"amount_usd": "ten"},
                    {"amount_usd": "100"}, {"amount_usd": True}, {"amount_usd": 10, "leverage": 5},
                    {}):  # fmt: skip
            assert first.post("/v1/paper/positions", json=bad).status_code == 422, bad
        unknown = first.post("/v1/paper/positions", json={"amount_usd": 10, "symbol": "DOGE"})
        assert unknown.status_code == 404
    # restarted without the live loop: the same book, every price now stale (and flagged)
    with TestClient(make_app(pipeline, state, BTCFS_LIVE_STATE=str(tmp_path / "none"))) as again:
        book = again.get("/v1/paper/positions").json()
        assert again.post("/v1/paper/positions", json={"amount_usd": 10}).status_code == 409
    assert [p["id"] for p in book["positions"]] == [position["id"], second["id"]]
    assert [p["status"] for p in book["positions"]] == ["closed", "open"]
    assert book["positions"][1]["mark_is_stale"] is True
    assert book["invested_usd"] == pytest.approx(250.5)
    unrealised = second["units"] * close - 250.5 - 250.5 * FEE
    assert book["unrealised_pnl_usd"] == pytest.approx(unrealised)
    assert book["value_usd"] == pytest.approx(250.5 + unrealised)
    assert book["pnl_usd"] == pytest.approx(book["realised_pnl_usd"] + book["unrealised_pnl_usd"])


def test_without_a_published_file_the_api_says_so(tmp_path: Path) -> None:
    env = {"BTCFS_DATA_DIR": str(tmp_path), "DBT_TARGET_PATH": str(tmp_path / "target"),
           "BTCFS_API_ALLOWED_HOSTS": IN_PROCESS_HOSTS}  # fmt: skip
    with TestClient(create_app(ApiSettings.from_env(env))) as test_client:
        health = test_client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        response = test_client.get("/v1/bars")
        assert response.status_code == 503 and "btcfs publish" in response.json()["detail"]
        assert test_client.get("/v1/models").json() == {"models": []}
