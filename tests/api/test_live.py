"""GET /v1/live and the live side of /health, on a real published file (one bar, close 100)
and state files written by the live loop's own writer: the open bar's quote labelled as such
with its age on the exchange's clock, the published close labelled so without a loop, a
stale heartbeat degrading /health with the reason, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from api.app import create_app
from tests.api.livefixtures import SmallServed, live_state, small_served, write_live

#: The exchange's clock in the replay: 2 min after the one published bar closed.
EXCHANGE_NOW = datetime(2025, 1, 1, 0, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> SmallServed:
    return small_served(tmp_path_factory.mktemp("live"))


@pytest.fixture
def client(served: SmallServed) -> Iterator[TestClient]:
    served.live_state.unlink(missing_ok=True)
    with TestClient(create_app(served.settings())) as test_client:
        yield test_client
    served.live_state.unlink(missing_ok=True)


def test_without_a_live_loop_the_published_close_is_answered_labelled_so(
    client: TestClient, served: SmallServed
) -> None:
    body = client.get("/v1/live", params={"symbol": "BTCUSDT"}).json()
    assert body["status"] == "no-live-loop" and body["loop"] is None and body["quotes"] == []
    assert body["price"] == 100.0 and body["price_source"] == "published-close"
    assert "not a live price" in body["price_label"]
    assert body["clock"] == "wall" and body["is_stale"] is True  # a bar of 2025, on the wall
    assert any("no live loop has run here" in w for w in body["warnings"]), body["warnings"]
    assert body["published"]["close"] == 100.0
    assert body["freshness_seconds"] > 86400


def test_the_open_bars_quote_is_the_price_aged_on_the_exchange_clock(
    client: TestClient, served: SmallServed
) -> None:
    state = live_state(EXCHANGE_NOW, {("BTCUSDT", "spot"): 101.5, ("BTCUSDT", "perp"): 101.2},
                       quote_age_s=3)  # fmt: skip
    write_live(served.live_state, state)
    body = client.get("/v1/live").json()
    assert body["status"] == "live", body
    assert body["price"] == 101.5 and body["price_source"] == "open-bar"
    assert body["price_market"] == "spot" and "never landed" in body["price_label"]
    assert body["is_stale"] is False and body["warnings"] == []
    # ages on the exchange's clock (10x), not the wall's: seconds, not years
    assert 3 <= body["price_age_seconds"] < 60
    assert body["clock"] == "exchange"
    assert 120 <= body["freshness_seconds"] < 200  # 00:07 - 00:05 plus the extrapolation
    quotes = {q["market"]: q for q in body["quotes"]}
    assert quotes["perp"]["price"] == 101.2
    assert quotes["spot"]["open_time"] == "2025-01-01T00:07:00Z"
    assert all("never landed" in q["label"] for q in quotes.values())
    assert body["newest_bar"] == {"spot": "2025-01-01T00:06:00Z", "perp": "2025-01-01T00:06:00Z"}
    assert body["loop"]["problem"] is None and body["loop"]["clock_rate"] == 10.0
    # the next request reads the file again: a new quote without a restart
    write_live(served.live_state, live_state(EXCHANGE_NOW, {("BTCUSDT", "spot"): 99.0}))
    assert client.get("/v1/live").json()["price"] == 99.0


def test_a_stale_heartbeat_makes_live_behind_and_health_degraded_with_the_reason(
    client: TestClient, served: SmallServed
) -> None:
    write_live(served.live_state, live_state(EXCHANGE_NOW, {("BTCUSDT", "spot"): 101.0}))
    fresh = client.get("/health").json()
    assert not any(r.startswith("live:") for r in fresh["reasons"]), fresh["reasons"]
    (btc,) = fresh["freshness"]
    assert btc["clock"] == "exchange" and btc["age_seconds"] < 600  # not "2 years stale"
    assert not any("h old" in r for r in fresh["reasons"]), fresh["reasons"]

    stale = live_state(EXCHANGE_NOW, {("BTCUSDT", "spot"): 101.0}, heartbeat_age_s=60)
    write_live(served.live_state, stale)
    health = client.get("/health").json()
    assert health["status"] == "degraded"
    (reason,) = [r for r in health["reasons"] if r.startswith("live:")]
    assert "has not turned for 60 s" in reason and "stale after 10 s" in reason
    live = client.get("/v1/live").json()
    assert live["status"] == "behind" and "has not turned" in live["loop"]["problem"]
    # 60 wall seconds at 10x: the quote is 600 exchange seconds old, past the 120 s bound
    assert live["is_stale"] is True and live["price_age_seconds"] >= 600
    assert any("older than 120 s" in w for w in live["warnings"]), live["warnings"]

    write_live(served.live_state, live_state(EXCHANGE_NOW, {}, status="stopped"))
    stopped = client.get("/health").json()
    assert any(r.startswith("live:") and "stopped" in r for r in stopped["reasons"])


def test_a_loop_with_reasons_is_behind_and_without_a_quote_falls_back(
    client: TestClient, served: SmallServed
) -> None:
    state = live_state(EXCHANGE_NOW, {("ETHUSDT", "spot"): 3000.0},
                       reasons=("funding: vendor 429 for 5 min",))  # fmt: skip
    write_live(served.live_state, state)
    body = client.get("/v1/live", params={"symbol": "BTCUSDT"}).json()
    assert body["status"] == "behind" and body["price_source"] == "published-close"
    assert body["loop"]["problem"] == "funding: vendor 429 for 5 min"
    assert any("no quote of BTCUSDT" in w for w in body["warnings"])
    # a symbol only the loop knows is answered from its quote
    eth = client.get("/v1/live", params={"symbol": "ETHUSDT"}).json()
    assert eth["price"] == 3000.0 and eth["published"] is None
    health = client.get("/health").json()
    assert "live: funding: vendor 429 for 5 min" in health["reasons"]


@pytest.mark.parametrize(
    "symbol",
    ["SOLUSDT", "btcusdt", "'; drop table bars_5m; --", "../../etc/passwd", "B" * 5000, ""],
)
def test_unknown_and_hostile_symbols_are_a_404_listing_the_known(
    client: TestClient, symbol: str
) -> None:
    response = client.get("/v1/live", params={"symbol": symbol})
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["extra"]["key"] == "symbol" and body["extra"]["valid"] == ["BTCUSDT"]
    assert len(response.content) < 2000


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"version": 99}', b"\x00\xff" * 100, b'{"pid": "x"}'],
)
def test_an_unreadable_state_file_is_no_live_loop_not_an_error(
    client: TestClient, served: SmallServed, content: bytes
) -> None:
    served.live_state.parent.mkdir(parents=True, exist_ok=True)
    served.live_state.write_bytes(content)
    body = client.get("/v1/live").json()
    assert body["status"] == "no-live-loop" and body["price"] == 100.0
    assert client.get("/health").status_code == 200


def test_with_neither_a_loop_nor_a_publish_it_is_a_503_then_the_quotes_alone(
    tmp_path: Path,
) -> None:
    empty = SmallServed(tmp_path)
    with TestClient(create_app(empty.settings())) as client:
        response = client.get("/v1/live")
        assert response.status_code == 503
        assert "no live loop has run here and nothing is published" in response.json()["detail"]
        write_live(empty.live_state, live_state(EXCHANGE_NOW, {("BTCUSDT", "perp"): 100.5}))
        body = client.get("/v1/live").json()
        assert body["price"] == 100.5 and body["price_market"] == "perp"
        assert body["published"] is None and body["freshness_seconds"] is None


def test_the_live_state_path_is_a_setting(served: SmallServed, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    later = EXCHANGE_NOW + timedelta(minutes=1)
    write_live(elsewhere, live_state(later, {("BTCUSDT", "spot"): 7.0}))
    with TestClient(create_app(served.settings(BTCFS_LIVE_STATE=str(elsewhere)))) as client:
        assert client.get("/v1/live").json()["price"] == 7.0
