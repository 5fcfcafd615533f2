"""Injected faults, Retry-After and bans: deterministic by seed, whatever the thread order."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from replay import FaultInjector, FaultSpec, FaultSpecError, ReplayServer, SyntheticMarket

NOW = "2024-02-20T10:30:30Z"


def outcome(client: httpx.Client, path: str) -> str:
    """What a client saw: a status code, or the kind of broken connection."""
    try:
        response = client.get(path)
    except httpx.RemoteProtocolError as exc:
        return "truncate" if "message body" in str(exc) else "drop"
    except httpx.TransportError as exc:
        return type(exc).__name__
    return str(response.status_code)


def test_fault_spec_parsing() -> None:
    spec = FaultSpec.parse("429=0.1, 5xx=0.05,truncate=0.02,slow=0.01,drop=0.01")
    assert spec.rates == {"429": 0.1, "5xx": 0.05, "truncate": 0.02, "slow": 0.01, "drop": 0.01}
    assert str(FaultSpec.parse("drop=0.5,429=0.25")) == "429=0.25,drop=0.5"
    assert not FaultSpec.parse("").active


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("429", "is not NAME=RATE"),
        ("timeout=0.1", "unknown fault 'timeout'"),
        ("429=abc", "is not a number"),
        ("429=1.5", "within [0, 1]"),
        ("429=0.6,5xx=0.6", "add up to 1.2"),
        ("429=0.1,429=0.2", "given twice"),
    ],
)
def test_invalid_fault_specs(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message.replace("[", r"\[")):
        FaultSpec.parse(text)


def test_fault_rates_over_many_requests(synthetic_market: SyntheticMarket, wall_clock) -> None:
    rates = {"429": 0.1, "5xx": 0.05, "truncate": 0.02, "slow": 0.01, "drop": 0.01}
    spec = ",".join(f"{k}={v}" for k, v in rates.items())
    server = ReplayServer(
        synthetic_market, now=NOW, faults=spec, seed=1, slow_delay=0.0, wall_clock=wall_clock
    )
    seen: dict[str, int] = {}
    with server as url, httpx.Client(base_url=url, timeout=5) as client:
        for i in range(2000):
            result = outcome(client, f"/api/v3/ping?n={i}")
            seen[result] = seen.get(result, 0) + 1
            if result == "429":
                wall_clock.advance(1)  # a client that honours Retry-After
        stats = server.stats()
    injected = stats["faults"]
    assert sum(injected.values()) == 2000 - seen["200"] + injected["slow"]
    assert injected["429"] == seen["429"] and injected["drop"] == seen["drop"]
    assert injected["truncate"] == seen["truncate"]
    assert injected["5xx"] == sum(seen.get(s, 0) for s in ("500", "502", "503"))
    for kind, rate in rates.items():
        expected = 2000 * rate
        assert abs(injected[kind] - expected) <= 4 * (expected * (1 - rate)) ** 0.5 + 2, kind
    assert stats["retry_after_violations"] == 0 and stats["bans"] == 0


def test_same_seed_same_faults_whatever_the_thread_order(
    synthetic_market: SyntheticMarket,
) -> None:
    spec = "429=0.2,5xx=0.1,truncate=0.1,drop=0.1"
    paths = [f"/api/v3/ping?n={i % 60}" for i in range(180)]  # each path three times

    def run(workers: int, order: list[str]) -> dict[str, list[str]]:
        server = ReplayServer(synthetic_market, now=NOW, faults=spec, seed=5, retry_grace=1e9)
        results: dict[str, list[str]] = {}
        with (
            server as url,
            httpx.Client(base_url=url, timeout=5) as client,
            ThreadPoolExecutor(workers) as pool,
        ):
            found = pool.map(lambda p: outcome(client, p), order)
            for path, result in zip(order, found, strict=True):
                results.setdefault(path, []).append(result)
        return {path: sorted(found) for path, found in results.items()}

    sequential = run(1, paths)
    concurrent = run(6, list(reversed(paths)))
    assert sequential == concurrent
    other_seed = ReplayServer(synthetic_market, now=NOW, faults=spec, seed=6)
    with other_seed as url, httpx.Client(base_url=url, timeout=5) as client:
        different = [outcome(client, p) for p in paths[:60]]
    assert different != [sequential[p][0] for p in paths[:60]]


def test_each_repeat_of_a_request_draws_again() -> None:
    injector = FaultInjector(FaultSpec.parse("429=0.5"), seed=3)
    draws = [injector.decide("GET", "/api/v3/ping", []) for _ in range(40)]
    assert {d is None for d in draws} == {True, False}
    replay = FaultInjector(FaultSpec.parse("429=0.5"), seed=3)
    assert [replay.decide("GET", "/api/v3/ping", []) for _ in range(40)] == draws
    swapped = FaultInjector(FaultSpec.parse("429=0.5"), seed=3)
    query_a = swapped.decide("GET", "/x", [("a", "1"), ("b", "2")])
    other = FaultInjector(FaultSpec.parse("429=0.5"), seed=3)
    assert other.decide("GET", "/x", [("b", "2"), ("a", "1")]) == query_a  # sorted query


def raw_exchange(url: str, path: str) -> bytes:
    """Send one GET and read until the server closes the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_truncate_declares_the_full_length(synthetic_market: SyntheticMarket) -> None:
    with ReplayServer(synthetic_market, now=NOW, faults="truncate=1") as url:
        raw = raw_exchange(url, "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=10")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"Content-Length"])
    assert 0 < len(body) < length and abs(len(body) - length / 2) <= 1


def test_drop_sends_nothing(synthetic_market: SyntheticMarket) -> None:
    with ReplayServer(synthetic_market, now=NOW, faults="drop=1") as url:
        assert raw_exchange(url, "/api/v3/ping") == b""
        assert raw_exchange(url, "/__replay/stats").startswith(b"HTTP/1.1 200")  # never faulted


def test_server_errors_and_slow(synthetic_market: SyntheticMarket) -> None:
    failing = ReplayServer(synthetic_market, now=NOW, faults="5xx=1")
    with failing as url, httpx.Client(base_url=url) as client:
        statuses = {client.get(f"/api/v3/ping?n={i}").status_code for i in range(30)}
        archive = client.get("/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip")
    assert statuses == {500, 502, 503} and archive.status_code in statuses
    slow = ReplayServer(synthetic_market, now=NOW, faults="slow=1", slow_delay=30)
    with slow as url, pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{url}/api/v3/ping", timeout=0.3)
    # stopping the server released the stalled handler instead of waiting 30 s


def test_429_comes_with_retry_after_and_ignoring_it_bans(
    synthetic_market: SyntheticMarket, wall_clock
) -> None:
    server = ReplayServer(
        synthetic_market,
        now=NOW,
        faults="429=1",
        retry_after=3,
        ban_seconds=120,
        wall_clock=wall_clock,
    )
    with server as url, httpx.Client(base_url=url) as client:
        first = client.get("/api/v3/ping")
        assert first.status_code == 429 and first.headers["Retry-After"] == "3"
        assert first.json()["code"] == -1003
        wall_clock.advance(3)  # waited as told: no ban, just another (injected) 429
        assert client.get("/api/v3/ping").status_code == 429
        wall_clock.advance(1)  # too early
        banned = client.get("/fapi/v1/ping")
        assert banned.status_code == 418 and banned.headers["Retry-After"] == "120"
        assert "banned until" in banned.json()["msg"]
        wall_clock.advance(60)
        during = client.get("/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip")
        assert during.status_code == 418 and during.headers["Retry-After"] == "60"
        stats = client.get("/__replay/stats").json()
        assert stats["retry_after_violations"] == 1 and stats["bans"] == 1
        assert stats["banned_requests"] == 2 and stats["faults"]["429"] == 2
        wall_clock.advance(61)
        assert client.get("/api/v3/ping").status_code == 429  # ban over


def test_in_flight_requests_are_not_violations(
    synthetic_market: SyntheticMarket, wall_clock
) -> None:
    with ReplayServer(synthetic_market, now=NOW, faults="429=1", wall_clock=wall_clock) as url:
        assert httpx.get(f"{url}/api/v3/ping").status_code == 429
        wall_clock.advance(0.1)  # sent before the 429 arrived
        assert httpx.get(f"{url}/api/v3/ping").status_code == 429


def test_started_banned(synthetic_market: SyntheticMarket, wall_clock) -> None:
    with ReplayServer(synthetic_market, now=NOW, banned_for=90, wall_clock=wall_clock) as url:
        response = httpx.get(f"{url}/api/v3/klines?symbol=BTCUSDT&interval=1h")
        assert response.status_code == 418 and response.headers["Retry-After"] == "90"
        wall_clock.advance(90)
        assert httpx.get(f"{url}/api/v3/ping").status_code == 200


def test_weight_429_also_sets_retry_after(synthetic_market: SyntheticMarket, wall_clock) -> None:
    limits = {"spot": 4, "fapi": 2400}
    server = ReplayServer(synthetic_market, now=NOW, weight_limits=limits, wall_clock=wall_clock)
    with server as url, httpx.Client(base_url=url) as client:
        assert [client.get("/api/v3/ping").status_code for _ in range(5)] == [200] * 4 + [429]
        wall_clock.advance(1)
        assert client.get("/api/v3/ping").status_code == 418
