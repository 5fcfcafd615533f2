"""Paper trading on a real published file (one bar, close 100) and live states written by the
loop's own writer: fills at the live quote of the right market with fees and slippage on both
sides, perp shorts and spot long-only, realised and unrealised P&L marked live, stale prices
refused unless accepted, idempotent client order ids, malformed and hostile input, and an
old-schema SQLite file migrated without losing a position."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.paper import Costs, Fill, OrderReplayed, PaperBook
from api.settings import paper_costs
from core.errors import ConfigError
from ml.config import load_config
from tests.api.livefixtures import SmallServed, live_state, small_served, write_live

EXCHANGE_NOW = datetime(2025, 1, 1, 0, 7, 0, tzinfo=UTC)
FEE, SLIP = 5.0 / 10_000, 1.0 / 10_000  # the backtest's defaults (config/train.yml)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> SmallServed:
    return small_served(tmp_path_factory.mktemp("paper"))


@pytest.fixture
def client(served: SmallServed, tmp_path: Path) -> Iterator[TestClient]:
    served.live_state.unlink(missing_ok=True)
    settings = served.settings(BTCFS_STATE_DB=str(tmp_path / "paper.sqlite"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    served.live_state.unlink(missing_ok=True)


def quotes(served: SmallServed, spot: float | None, perp: float | None, **kw: Any) -> None:
    prices = {("BTCUSDT", m): p for m, p in (("spot", spot), ("perp", perp)) if p is not None}
    write_live(served.live_state, live_state(EXCHANGE_NOW, prices, **kw))


def opened(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/paper/positions", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_costs_default_to_the_backtests_and_are_configurable(tmp_path: Path) -> None:
    backtest = load_config().backtest  # config/train.yml, as `btcfs train` reads it
    assert paper_costs({}) == (backtest.taker_fee_bps, backtest.slippage_bps) == (5.0, 1.0)
    config = tmp_path / "train.yml"
    config.write_text("backtest:\n  taker_fee_bps: 7.5\n  slippage_bps: 2\n")
    assert paper_costs({"BTCFS_TRAIN_CONFIG": str(config)}) == (7.5, 2.0)
    assert paper_costs({"BTCFS_TRAIN_CONFIG": str(config), "BTCFS_PAPER_FEE_BPS": "10"}) == (
        10.0,
        2.0,
    )
    broken = tmp_path / "broken.yml"
    broken.write_text("backtest:\n  taker_fee_bps: -3\n")
    with pytest.raises(ConfigError, match="taker_fee_bps"):
        paper_costs({"BTCFS_TRAIN_CONFIG": str(broken)})
    with pytest.raises(ConfigError, match="not found"):
        paper_costs({"BTCFS_TRAIN_CONFIG": str(tmp_path / "missing.yml")})
    for bad in ("-1", "nan", "5000", "ten"):
        with pytest.raises(ValueError, match="BTCFS_PAPER_FEE_BPS"):
            paper_costs({"BTCFS_PAPER_FEE_BPS": bad})


def test_a_long_fills_at_the_live_quote_with_slippage_and_fees_on_both_sides(
    client: TestClient, served: SmallServed
) -> None:
    quotes(served, spot=200.0, perp=199.0)
    position = opened(client, amount_usd=1000, symbol="BTCUSDT")
    assert position["market"] == "spot" and position["side"] == "long"
    assert position["entry_price_source"] == "open-bar"
    assert position["entry_reference_price"] == 200.0  # the spot quote, not the perp's
    assert position["entry_price"] == pytest.approx(200.0 * (1 + SLIP))
    assert position["units"] == pytest.approx(1000 / (200.0 * (1 + SLIP)))
    assert position["entry_fee_usd"] == pytest.approx(1000 * FEE)
    assert position["entry_price_at"] == "2025-01-01T00:06:59Z"
    assert position["entry_price_age_seconds"] < 60 and position["warnings"] == []
    # marked live: the quote moves, the list follows without a publish
    quotes(served, spot=210.0, perp=209.0)
    book = client.get("/v1/paper/positions").json()
    (marked,) = book["positions"]
    units = position["units"]
    assert marked["mark_price"] == 210.0 and marked["mark_source"] == "open-bar"
    assert marked["unrealised_pnl_usd"] == pytest.approx(units * 210.0 - 1000 - 1000 * FEE)
    exit_fill = 210.0 * (1 - SLIP)
    if_closed = units * exit_fill - 1000 - 1000 * FEE - units * exit_fill * FEE
    assert marked["pnl_if_closed_usd"] == pytest.approx(if_closed)
    assert book["unrealised_pnl_usd"] == pytest.approx(marked["unrealised_pnl_usd"])
    assert [m["market"] for m in book["marks"]] == ["spot"] and book["marks"][0]["price"] == 210.0
    closed = client.post(f"/v1/paper/positions/{position['id']}/close").json()
    assert closed["status"] == "closed" and closed["exit_price"] == pytest.approx(exit_fill)
    assert closed["exit_reference_price"] == 210.0
    assert closed["exit_fee_usd"] == pytest.approx(units * exit_fill * FEE)
    assert closed["realised_pnl_usd"] == pytest.approx(if_closed)
    assert closed["pnl_usd"] == pytest.approx(if_closed)
    assert closed["fees_usd"] == pytest.approx(1000 * FEE + units * exit_fill * FEE)
    book = client.get("/v1/paper/positions").json()
    assert book["realised_pnl_usd"] == pytest.approx(if_closed) and book["invested_usd"] == 0
    assert book["fees_usd"] == pytest.approx(closed["fees_usd"])
    # a round trip at an unchanged price loses exactly the costs
    flat = opened(client, amount_usd=500)
    done = client.post(f"/v1/paper/positions/{flat['id']}/close").json()
    cost = 500 * FEE + flat["units"] * 210 * (1 - SLIP) * FEE
    assert done["realised_pnl_usd"] == pytest.approx(flat["units"] * 210 * (1 - SLIP) - 500 - cost)
    assert done["realised_pnl_usd"] < 0


def test_a_short_on_the_perpetual_gains_when_the_price_falls(
    client: TestClient, served: SmallServed
) -> None:
    quotes(served, spot=200.0, perp=199.0)
    short = opened(client, amount_usd=1000, market="perp", side="short")
    assert short["entry_reference_price"] == 199.0  # the perp's quote
    entry = 199.0 * (1 - SLIP)  # a sell fills below
    assert short["entry_price"] == pytest.approx(entry)
    units = 1000 / entry
    quotes(served, spot=181.0, perp=180.0)
    (marked,) = client.get("/v1/paper/positions").json()["positions"]
    assert marked["mark_price"] == 180.0
    assert marked["unrealised_pnl_usd"] == pytest.approx(1000 - units * 180.0 - 1000 * FEE)
    closed = client.post(f"/v1/paper/positions/{short['id']}/close").json()
    exit_fill = 180.0 * (1 + SLIP)  # buying back fills above
    realised = 1000 - units * exit_fill - 1000 * FEE - units * exit_fill * FEE
    assert closed["realised_pnl_usd"] == pytest.approx(realised) and realised > 90
    assert closed["side"] == "short" and closed["market"] == "perp"


def test_a_short_on_spot_is_a_422_naming_the_side(client: TestClient, served: SmallServed) -> None:
    quotes(served, spot=200.0, perp=199.0)
    response = client.post("/v1/paper/positions", json={"amount_usd": 10, "side": "short"})
    assert response.status_code == 422
    body = response.json()
    assert body["extra"] == {"key": "side", "valid": ["long"]} and "perpetual" in body["detail"]
    assert client.get("/v1/paper/positions").json()["total"] == 0


def test_a_stale_price_is_refused_unless_accepted_then_the_fill_carries_a_warning(
    client: TestClient, served: SmallServed
) -> None:
    # no live loop: the newest published close is from 2025, old on the wall clock
    refused = client.post("/v1/paper/positions", json={"amount_usd": 100})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["extra"]["key"] == "accept_stale" and body["extra"]["source"] == "published-close"
    assert "no live loop has run here" in body["detail"] and "accept_stale" in body["detail"]
    accepted = opened(client, amount_usd=100, accept_stale=True)
    assert accepted["entry_price_source"] == "published-close"
    assert accepted["entry_reference_price"] == 100.0
    assert accepted["warnings"] and "stale price" in accepted["warnings"][0]
    # a live loop whose heartbeat stopped: its quote ages on the extrapolated exchange clock
    quotes(served, spot=200.0, perp=199.0, heartbeat_age_s=30)  # 300 exchange s at 10x
    refused = client.post(f"/v1/paper/positions/{accepted['id']}/close")
    assert refused.status_code == 409
    assert "has not turned for 30 s" in refused.json()["detail"]
    book = client.get("/v1/paper/positions").json()
    assert book["positions"][0]["status"] == "open" and book["positions"][0]["mark_is_stale"]
    assert book["marks"][0]["is_stale"] is True
    assert any("marked at a stale price" in w for w in book["positions"][0]["warnings"])
    closed = client.post(
        f"/v1/paper/positions/{accepted['id']}/close", json={"accept_stale": True}
    ).json()
    assert closed["status"] == "closed" and len(closed["warnings"]) == 2
    # a fresh quote of the other market does not make this one fresh
    # (an hour on, the published spot close is an hour old on the exchange's clock)
    hour_on = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    write_live(served.live_state, live_state(hour_on, {("BTCUSDT", "perp"): 199.0}))
    refused = client.post("/v1/paper/positions", json={"amount_usd": 100})
    assert refused.status_code == 409 and refused.json()["extra"]["source"] == "published-close"
    assert opened(client, amount_usd=100, market="perp")["entry_reference_price"] == 199.0


def test_a_stale_bound_is_a_setting(served: SmallServed, tmp_path: Path) -> None:
    settings = served.settings(BTCFS_STATE_DB=str(tmp_path / "paper.sqlite"),
                               BTCFS_PAPER_MAX_QUOTE_AGE_S="2")  # fmt: skip
    quotes(served, spot=200.0, perp=199.0, quote_age_s=5)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/paper/positions", json={"amount_usd": 10})
        assert response.status_code == 409 and response.json()["extra"]["max_age_seconds"] == 2


def test_a_repeated_client_order_id_returns_the_first_position(
    client: TestClient, served: SmallServed
) -> None:
    quotes(served, spot=200.0, perp=199.0)
    order = {"amount_usd": 250, "market": "perp", "side": "short", "client_order_id": "desk-1"}
    first = opened(client, **order)
    again = client.post("/v1/paper/positions", json=order)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = client.post("/v1/paper/positions", json={**order, "amount_usd": 251})
    assert other.status_code == 409 and other.json()["extra"]["key"] == "client_order_id"
    # a retry after the price went stale is still the same order, not a stale-price refusal
    quotes(served, spot=200.0, perp=199.0, heartbeat_age_s=60)
    retried = client.post("/v1/paper/positions", json=order)
    assert retried.status_code == 200 and retried.json()["id"] == first["id"]
    assert retried.json()["mark_is_stale"] is True
    assert client.get("/v1/paper/positions").json()["total"] == 1


BAD_OPENS: list[Any] = [
    {"amount_usd": "100"},
    {"amount_usd": 0},
    {"amount_usd": 1e12},
    {"amount_usd": float("inf")},
    {"amount_usd": 10, "side": "sideways"},
    {"amount_usd": 10, "market": "futures"},
    {"amount_usd": 10, "market": "PERP"},
    {"amount_usd": 10, "accept_stale": "true"},
    {"amount_usd": 10, "accept_stale": 1},
    {"amount_usd": 10, "leverage": 100},
    {"amount_usd": 10, "client_order_id": "'; drop table positions; --"},
    {"amount_usd": 10, "client_order_id": "x" * 65},
    {"amount_usd": 10, "client_order_id": ""},
    {"amount_usd": 10, "symbol": "B" * 33},
    [{"amount_usd": 10}],
    "amount_usd=10",
    None,
]


@pytest.mark.parametrize("body", BAD_OPENS, ids=range(len(BAD_OPENS)))
def test_malformed_and_hostile_opens_are_a_422_and_open_nothing(
    client: TestClient, served: SmallServed, body: Any
) -> None:
    quotes(served, spot=200.0, perp=199.0)
    content = json.dumps(body, allow_nan=True)
    response = client.post(
        "/v1/paper/positions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), (body, response.text)
    assert client.get("/v1/paper/positions").json()["total"] == 0


def test_duplicated_keys_and_bad_close_bodies_are_refused(
    client: TestClient, served: SmallServed
) -> None:
    quotes(served, spot=200.0, perp=199.0)
    headers = {"content-type": "application/json"}
    # the last of a repeated key counts, and is checked like any other value
    twice = '{"amount_usd": 10, "amount_usd": 1e12}'
    assert client.post("/v1/paper/positions", content=twice, headers=headers).status_code == 422
    sides = '{"amount_usd": 10, "market": "perp", "side": "long", "side": "short"}'
    short = client.post("/v1/paper/positions", content=sides, headers=headers)
    assert short.status_code == 201 and short.json()["side"] == "short"
    position = short.json()["id"]
    for bad in ('{"accept_stale": "yes"}', '{"accept": true}', "[]", "{", '"x"'):
        response = client.post(f"/v1/paper/positions/{position}/close", content=bad,
                               headers=headers)  # fmt: skip
        assert response.status_code in (400, 422), (bad, response.text)
    assert client.get("/v1/paper/positions").json()["open_count"] == 1
    for path in (
        "/v1/paper/positions/0/close",
        "/v1/paper/positions/-1/close",
        "/v1/paper/positions/1%20or%201=1/close",
        "/v1/paper/positions/9999/close",
    ):
        assert client.post(path).status_code in (404, 422), path
    closed = client.post(f"/v1/paper/positions/{position}/close", json={})
    assert closed.status_code == 200
    assert client.post(f"/v1/paper/positions/{position}/close").status_code == 409


_V1_SCHEMA = """
create table positions (
    id integer primary key autoincrement,
    symbol text not null,
    amount_usd real not null check (amount_usd > 0),
    units real not null check (units > 0),
    entry_price real not null check (entry_price > 0),
    entry_bar_at text not null,
    opened_at text not null,
    closed_at text,
    exit_price real,
    exit_bar_at text
)
"""


def test_an_old_schema_file_is_migrated_keeping_every_position(
    served: SmallServed, tmp_path: Path
) -> None:
    state = tmp_path / "paper.sqlite"
    con = sqlite3.connect(state)
    con.execute(_V1_SCHEMA)
    # the file is shared (the jobs keep their tables in it): others' tables are left alone
    con.execute("create table neighbour (id integer primary key, note text)")
    con.execute("insert into neighbour (note) values ('kept')")
    rows = [
        ("BTCUSDT", 1000.0, 10.0, 100.0, "2025-01-01T00:00:00+00:00",
         "2025-01-01T00:07:00+00:00", "2025-01-01T01:00:00+00:00", 110.0,
         "2025-01-01T00:50:00+00:00"),
        ("BTCUSDT", 500.0, 5.0, 100.0, "2025-01-01T00:00:00+00:00",
         "2025-01-01T00:08:00+00:00", None, None, None),
    ]  # fmt: skip
    con.executemany(
        "insert into positions (symbol, amount_usd, units, entry_price, entry_bar_at,"
        " opened_at, closed_at, exit_price, exit_bar_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    con.close()
    quotes(served, spot=120.0, perp=119.0)
    settings = served.settings(BTCFS_STATE_DB=str(state))
    for _ in range(2):  # a second start finds the file migrated and changes nothing
        with TestClient(create_app(settings)) as client:
            book = client.get("/v1/paper/positions").json()
            closed, still_open = book["positions"]
            assert book["total"] == 2 and book["open_count"] == 1
            assert (closed["status"], closed["market"], closed["side"]) == (
                "closed",
                "spot",
                "long",
            )
            assert closed["realised_pnl_usd"] == pytest.approx(10 * 110 - 1000)
            assert closed["fees_usd"] == 0 and closed["exit_price_source"] == "published-close"
            assert closed["entry_price_at"] == "2025-01-01T00:05:00Z"  # the v1 bar's close
            assert closed["exit_price_at"] == "2025-01-01T00:55:00Z"
            assert still_open["entry_price"] == 100.0 and still_open["entry_fee_usd"] == 0
            assert still_open["unrealised_pnl_usd"] == pytest.approx(5 * 120 - 500)
            assert book["realised_pnl_usd"] == pytest.approx(100)
            assert book["pnl_usd"] == pytest.approx(100 + 100)
    with TestClient(create_app(settings)) as client:
        new = opened(client, amount_usd=100, market="perp", side="short", client_order_id="n1")
        assert new["id"] == 3 and new["fee_bps"] == 5.0
        closed_old = client.post(f"/v1/paper/positions/{still_open['id']}/close").json()
        # a v1 position keeps its terms: no costs on either side (they were none at its open)
        assert closed_old["exit_price"] == 120.0 and closed_old["fee_bps"] == 0
        assert closed_old["realised_pnl_usd"] == pytest.approx(5 * 120 - 500)
    con = sqlite3.connect(state)
    assert con.execute("select note from neighbour").fetchall() == [("kept",)]
    con.close()


def test_concurrent_opens_with_one_client_order_id_open_one_position(tmp_path: Path) -> None:
    book = PaperBook(tmp_path / "paper.sqlite")
    fill = Fill(100.0, "open-bar", EXCHANGE_NOW, 1.0, EXCHANGE_NOW)
    costs = Costs(5.0, 1.0)
    outcomes: list[str] = []

    def place() -> None:
        try:
            book.open("BTCUSDT", "perp", "short", 100.0, fill, costs, client_order_id="dup-1")
            outcomes.append("opened")
        except OrderReplayed:
            outcomes.append("replayed")

    threads = [threading.Thread(target=place) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["opened"] + ["replayed"] * 7
    assert book.totals().count == 1
