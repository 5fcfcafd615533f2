"""HttpClient: retries, 429/418, weight budget, redaction, debug output and map(), offline."""

from __future__ import annotations

import gzip
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from ingest import ClientConfig, Fetched, HttpClient, RetryPolicy, WeightBudget
from ingest.errors import (
    IPBanned,
    MalformedResponse,
    NetworkUnavailable,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    VendorHTTPError,
)

# 2023-11-14 22:13:20 UTC: 40 s before a minute boundary.
T0 = 1_700_000_000.0
DUMMY_KEY = "dUmMy-KEY-7f3a9c1e5b2d-do-not-leak"

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that only moves when the client sleeps; records every sleep."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class FixedRandom(random.Random):
    """rng.random() always returns `value`, to pin jitter to its upper bound."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def json_response(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(data), headers=headers)


def scripted(*steps: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering successive requests with `steps` (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps[min(len(seen), len(steps) - 1)]
        seen.append(request)
        if isinstance(step, Exception):
            raise step
        # a fresh Response per request: httpx binds each one to its request
        return httpx.Response(step.status_code, headers=step.headers, content=step.content)

    return handler, seen


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake: FakeTime) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(handler: Handler, **kwargs: Any) -> HttpClient:
        kwargs.setdefault("rng", random.Random(7))
        client = HttpClient(
            "https://api.test",
            vendor="binance",
            transport=httpx.MockTransport(handler),
            sleep=fake.sleep,
            clock=fake.clock,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- retries ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap(make_client, fake):
    handler, seen = scripted(*[httpx.Response(503)] * 5, json_response([1]))
    client = make_client(
        handler,
        rng=FixedRandom(0.999),
        config=ClientConfig(retry=RetryPolicy(backoff_base=0.5, backoff_max=3.0, max_retries=5)),
    )
    data, _ = client.get_json("/api/v3/klines")
    assert data == [1]
    assert len(seen) == 6
    assert fake.sleeps == pytest.approx([0.4995, 0.999, 1.998, 2.997, 2.997])
    assert client.stats.retries == 5
    assert client.stats.requests == 6


def test_full_jitter_stays_within_bounds_and_varies(make_client, fake):
    handler, _ = scripted(httpx.Response(500))
    client = make_client(
        handler,
        rng=random.Random(3),
        config=ClientConfig(retry=RetryPolicy(backoff_base=0.5, backoff_max=4.0, max_retries=12)),
    )
    with pytest.raises(VendorHTTPError):
        client.get("/x")
    assert len(fake.sleeps) == 12
    for retry, slept in enumerate(fake.sleeps):
        assert 0 <= slept < min(4.0, 0.5 * 2**retry)
    assert len(set(fake.sleeps)) == 12


def test_5xx_then_success(make_client, fake):
    handler, seen = scripted(httpx.Response(502), httpx.Response(504), json_response({"ok": 1}))
    client = make_client(handler)
    data, fetched = client.get_json("/api/v3/ping")
    assert data == {"ok": 1}
    assert fetched.status == 200
    assert fetched.body == b'{"ok":1}'
    assert len(seen) == 3
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=["read-timeout", "connect-timeout", "truncated-body", "reset"],
)
def test_transport_error_then_success(make_client, fake, error):
    handler, seen = scripted(error, json_response([[1, "2"]]))
    client = make_client(handler)
    data, _ = client.get_json("/api/v3/klines")
    assert data == [[1, "2"]]
    assert len(seen) == 2
    assert len(fake.sleeps) == 1


def test_invalid_json_is_retried_then_succeeds(make_client):
    truncated = httpx.Response(200, content=b'[[1700000000000,"37000.1","37010.0"')
    handler, seen = scripted(truncated, json_response([[1]]))
    client = make_client(handler)
    data, _ = client.get_json("/api/v3/klines")
    assert data == [[1]]
    assert len(seen) == 2


def test_invalid_json_every_time_raises_malformed_response(make_client):
    handler, seen = scripted(httpx.Response(200, content=b"<html>maintenance</html>"))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_retries=2)))
    with pytest.raises(MalformedResponse, match="invalid JSON 3 times"):
        client.get_json("/api/v3/klines")
    assert len(seen) == 3


def test_get_does_not_parse_json(make_client):
    handler, _ = scripted(httpx.Response(200, content=b"PK\x03\x04zipbytes"))
    client = make_client(handler)
    fetched = client.get("https://data.test/data/spot/x.zip")
    assert fetched.body == b"PK\x03\x04zipbytes"
    assert fetched.url == "https://data.test/data/spot/x.zip"


def test_retries_exhausted_raise_vendor_http_error_with_status(make_client, fake):
    handler, seen = scripted(httpx.Response(503, text="upstream down"))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_retries=3)))
    with pytest.raises(VendorHTTPError) as info:
        client.get("/api/v3/klines", {"symbol": "BTCUSDT"})
    assert info.value.status == 503
    assert "after 4 attempts" in str(info.value)
    assert "upstream down" in str(info.value)
    assert info.value.url == "https://api.test/api/v3/klines?symbol=BTCUSDT"
    assert len(seen) == 4
    assert len(fake.sleeps) == 3


def test_timeouts_exhausted_raise_vendor_http_error_without_status(make_client):
    handler, seen = scripted(httpx.ReadTimeout("timed out"))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_retries=2)))
    with pytest.raises(VendorHTTPError, match="ReadTimeout") as info:
        client.get("/slow")
    assert info.value.status is None
    assert not isinstance(info.value, NetworkUnavailable)
    assert len(seen) == 3


# -- 4xx -------------------------------------------------------------------------------------


def test_400_carries_the_binance_error_and_is_not_retried(make_client, fake):
    handler, seen = scripted(json_response({"code": -1121, "msg": "Invalid symbol."}, 400))
    client = make_client(handler)
    with pytest.raises(VendorHTTPError) as info:
        client.get_json("/api/v3/klines", {"symbol": "BTCUSDX"})
    assert "-1121 Invalid symbol." in str(info.value)
    assert info.value.status == 400
    assert not isinstance(info.value, NotFound)
    assert len(seen) == 1
    assert fake.sleeps == []


def test_404_raises_not_found(make_client):
    handler, seen = scripted(httpx.Response(404, text="Not Found"))
    client = make_client(handler)
    with pytest.raises(NotFound) as info:
        client.get("https://data.test/data/spot/daily/klines/BTCUSDT/1m/missing.zip")
    assert info.value.status == 404
    assert len(seen) == 1


def test_coinapi_error_message_is_reported(make_client):
    handler, _ = scripted(json_response({"message": "Invalid API key"}, 401))
    client = make_client(handler)
    with pytest.raises(VendorHTTPError, match=r"Invalid API key.*check the API key"):
        client.get("/v1/ohlcv/x/history")


# -- 429 -------------------------------------------------------------------------------------


def test_429_waits_exactly_retry_after(make_client, fake):
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}), json_response({"ok": True})
    )
    client = make_client(handler)
    data, _ = client.get_json("/api/v3/klines")
    assert data == {"ok": True}
    assert fake.sleeps == [7.0]
    assert len(seen) == 2
    assert client.stats.rate_limited_waits == 1


def test_429_with_http_date_retry_after(make_client, fake):
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:50 GMT"}),
        json_response({}),
    )
    client = make_client(handler)
    client.get_json("/x")
    assert fake.sleeps == pytest.approx([30.0])


def test_429_without_retry_after_backs_off(make_client, fake):
    handler, seen = scripted(httpx.Response(429), json_response({}))
    client = make_client(
        handler, rng=FixedRandom(0.5), config=ClientConfig(retry=RetryPolicy(backoff_base=2.0))
    )
    client.get_json("/x")
    assert fake.sleeps == [1.0]
    assert len(seen) == 2


def test_429_retry_after_beyond_max_raises_rate_limited(make_client, fake):
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_retry_after=300)))
    with pytest.raises(RateLimited) as info:
        client.get("/x")
    assert info.value.status == 429
    assert fake.sleeps == []
    with pytest.raises(RateLimited):  # the window is shared: no request is sent inside it
        client.get("/y")
    assert len(seen) == 1


def test_429_budget_exhausted_raises_rate_limited(make_client, fake):
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "1"}))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_rate_limit_retries=3)))
    with pytest.raises(RateLimited, match="4 times"):
        client.get("/x")
    assert len(seen) == 4
    assert fake.sleeps == [1.0, 1.0, 1.0]


def test_429_window_is_shared_across_threads(fake):
    """Thread A gets a 429 (Retry-After 7) and sleeps; thread B must wait out the same window."""
    sent: list[tuple[str, float]] = []
    a_sleeping, b_done = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, fake.clock()))
        if request.url.path == "/a" and len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return json_response({"path": request.url.path})

    sleeps: dict[str, list[float]] = {"a": [], "b": []}
    target: dict[str, float] = {}

    def sleep(seconds: float) -> None:
        who = threading.current_thread().name
        sleeps[who].append(seconds)
        if who == "a":  # hold A in its sleep until B has finished
            start = fake.clock()
            a_sleeping.set()
            assert b_done.wait(5)
            target["a"] = start + seconds
        with fake._lock:
            fake.now = max(fake.now, target.pop(who, fake.now + seconds))

    with HttpClient(
        "https://api.test",
        vendor="binance",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        clock=fake.clock,
    ) as client:
        results: dict[str, Any] = {}

        def run(name: str) -> None:
            results[name] = client.get_json(f"/{name}")[0]
            if name == "b":
                b_done.set()

        thread_a = threading.Thread(target=run, args=("a",), name="a")
        thread_a.start()
        assert a_sleeping.wait(5)
        thread_b = threading.Thread(target=run, args=("b",), name="b")
        thread_b.start()
        thread_b.join(5)
        thread_a.join(5)

    assert results == {"a": {"path": "/a"}, "b": {"path": "/b"}}
    assert sleeps == {"a": [7.0], "b": [7.0]}
    first, *after = sent
    assert first == ("/a", T0)
    assert after, "no request after the 429"
    assert all(sent_at >= T0 + 7 for _, sent_at in after)


# -- 418 -------------------------------------------------------------------------------------


def test_418_raises_ip_banned_without_retry_and_later_calls_fail_fast(make_client, fake):
    banned = json_response({"code": -1003, "msg": "Way too many requests; IP banned"}, 418)
    banned.headers["Retry-After"] = "120"
    handler, seen = scripted(banned)
    client = make_client(handler)
    with pytest.raises(IPBanned) as info:
        client.get("/api/v3/klines")
    error = info.value
    assert error.status == 418
    assert error.retry_after_s == 120
    assert "banned until 2023-11-14 22:15:20 UTC" in str(error)
    assert "do not retry" in str(error)
    assert fake.sleeps == []
    assert len(seen) == 1

    fake.now += 20
    with pytest.raises(IPBanned) as later:
        client.get("/api/v3/ping")
    assert later.value.retry_after_s == 100
    assert "banned until 2023-11-14 22:15:20 UTC" in str(later.value)
    assert len(seen) == 1, "no request may be sent during the ban"

    fake.now += 101  # the ban is over
    with pytest.raises(IPBanned):
        client.get("/api/v3/ping")  # the scripted vendor bans again
    assert len(seen) == 2


def test_418_without_retry_after_bans_for_the_clients_life(make_client):
    handler, seen = scripted(httpx.Response(418))
    client = make_client(handler)
    for _ in range(2):
        with pytest.raises(IPBanned, match="no Retry-After") as info:
            client.get("/x")
        assert info.value.retry_after_s is None
    assert len(seen) == 1


# -- weight ----------------------------------------------------------------------------------


def test_weight_headroom_sleeps_until_the_next_minute(make_client, fake):
    used = iter(["78", "80", "3", "5"])

    def handler(request: httpx.Request) -> httpx.Response:
        # lower-case header name: the lookup must be case-insensitive
        return json_response([], **{"x-mbx-used-weight-1m": next(used)})

    client = make_client(
        handler, config=ClientConfig(weight=WeightBudget(per_minute=100, headroom=0.8))
    )
    client.get("/api/v3/klines", weight=2)  # first request: nothing known yet
    client.get("/api/v3/klines", weight=2)  # 78 + 2 = 80: still within 80 %
    assert fake.sleeps == []
    client.get("/api/v3/klines", weight=2)  # 80 + 2 > 80: wait for 22:14:00 (+1 s margin)
    assert fake.sleeps == [pytest.approx(41.0)]
    assert client.stats.weight_waits == 1
    assert client.stats.last_used_weight_1m == 3
    client.get("/api/v3/klines", weight=2)  # new minute, 3 used
    assert len(fake.sleeps) == 1


def test_weight_zero_requests_in_parallel(make_client, fake):
    handler, _ = scripted(json_response([], **{"X-MBX-USED-WEIGHT-1M": "1"}))
    client = make_client(handler, config=ClientConfig(weight=WeightBudget(per_minute=10)))
    assert len(client.map(lambda _: client.get("/futures/data/x", weight=0), range(20))) == 20
    assert fake.sleeps == []


def test_weight_is_not_tracked_without_a_budget(make_client, fake):
    handler, _ = scripted(json_response([], **{"X-MBX-USED-WEIGHT-1M": "5999"}))
    client = make_client(handler)
    for _ in range(3):
        client.get("/x", weight=10)
    assert fake.sleeps == []


def test_in_flight_weight_counts_before_its_response_arrives(fake):
    """Four threads at once must not overshoot: the budget covers requests still in flight."""
    started = threading.Barrier(2, timeout=5)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            started.wait()  # hold the first request in flight
            started.wait()
        return json_response([], **{"X-MBX-USED-WEIGHT-1M": "1"})

    with (
        HttpClient(
            "https://api.test",
            vendor="binance",
            transport=httpx.MockTransport(handler),
            sleep=fake.sleep,
            clock=fake.clock,
            config=ClientConfig(weight=WeightBudget(per_minute=100, headroom=0.5)),
        ) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        slow = pool.submit(client.get, "/slow", weight=40)
        started.wait()
        client.get("/fast", weight=20)  # 40 in flight + 20 > 50: wait for the next minute
        started.wait()
        slow.result(5)
    assert fake.sleeps == [pytest.approx(41.0)]


# -- redaction and debug output --------------------------------------------------------------


def test_secrets_never_appear_in_logs_errors_or_urls(make_client, caplog):
    caplog.set_level(logging.DEBUG)
    other_key = "tok-Z9Y8X7W6V5-other"
    steps: list[httpx.Response | Exception] = [
        httpx.Response(503),
        httpx.ReadTimeout(f"timed out talking to {DUMMY_KEY}"),
        json_response({"ok": 1}),
        json_response({"code": -2015, "msg": f"Invalid API-key {DUMMY_KEY}"}, 400),
        httpx.Response(404, text=f"no such key {DUMMY_KEY}"),
        httpx.Response(200, content=f"garbage {DUMMY_KEY}".encode()),
    ]
    handler, seen = scripted(*steps)
    client = make_client(
        handler,
        secrets=[DUMMY_KEY],
        headers={"X-MBX-APIKEY": DUMMY_KEY},
        debug=True,
        config=ClientConfig(retry=RetryPolicy(max_retries=2)),
    )
    _, fetched = client.get_json("/api/v3/account", {"apikey": DUMMY_KEY, "symbol": "BTCUSDT"})
    texts = [fetched.url, repr(fetched)]
    failing_calls: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: client.get("/x", {"api_key": DUMMY_KEY}), VendorHTTPError),
        (lambda: client.get("/x", {"token": other_key}), NotFound),  # not passed as a secret
        (lambda: client.get_json("/x", headers={"CG-API-KEY": DUMMY_KEY}), MalformedResponse),
    ]
    for call, expected in failing_calls:
        with pytest.raises(expected) as info:
            call()
        texts += [str(info.value), repr(info.value), str(info.value.__dict__)]

    assert seen[0].headers["X-MBX-APIKEY"] == DUMMY_KEY  # sent, just never shown
    assert "apikey=***" in fetched.url
    assert "symbol=BTCUSDT" in fetched.url
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logged  # httpx's own request log line is covered too
    for text in [logged, *texts]:
        assert DUMMY_KEY not in text
        assert other_key not in text
    assert "***" in logged


def test_debug_logs_params_and_response_shape_not_values(make_client, caplog):
    caplog.set_level(logging.INFO, logger="ingest.http")
    rows = [[1700000000000, "37123.45", "37200.00"] + ["0"] * 9] * 3
    handler, _ = scripted(
        json_response(rows, **{"X-MBX-USED-WEIGHT-1M": "12"}),
        json_response({"code": "0", "msg": "success", "data": [{"time": 1, "open": "0.0123"}]}),
    )
    client = make_client(handler, debug=True)
    client.get_json("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3}, weight=2)
    client.get_json("/api/futures/funding-rate/history")
    text = caplog.text
    assert "params={'symbol': 'BTCUSDT', 'interval': '1m', 'limit': 3}" in text
    assert "3 rows, first row length 12" in text
    assert "used weight 12" in text
    assert "keys=['code', 'msg', 'data']" in text
    assert "data: 1 rows, first row keys=['time', 'open']" in text
    assert "37123.45" not in text
    assert "0.0123" not in text


def test_without_debug_nothing_is_logged_for_a_clean_request(make_client, caplog):
    caplog.set_level(logging.DEBUG, logger="ingest.http")
    handler, _ = scripted(json_response([1]))
    make_client(handler).get_json("/x", {"symbol": "BTCUSDT"})
    assert [r for r in caplog.records if r.name == "ingest.http"] == []


# -- concurrency -----------------------------------------------------------------------------


class InFlight:
    """A handler that counts concurrent requests and takes a little real time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(0.02)
        with self.lock:
            self.current -= 1
        return json_response({"n": int(request.url.params["n"])})


def test_map_preserves_order_and_bounds_concurrency(make_client):
    counter = InFlight()
    client = make_client(counter, config=ClientConfig(max_concurrency=3))
    results = client.map(lambda n: client.get_json("/x", {"n": n})[0]["n"], range(12))
    assert results == list(range(12))
    assert 2 <= counter.peak <= 3


def test_semaphore_bounds_requests_from_any_thread_pool(make_client):
    counter = InFlight()
    client = make_client(counter, config=ClientConfig(max_concurrency=2))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: client.get_json("/x", {"n": n})[0]["n"], range(16)))
    assert results == list(range(16))
    assert counter.peak <= 2


def test_map_raises_the_first_error_and_cancels_pending_work(make_client):
    handler, _ = scripted(json_response({}))
    client = make_client(handler, config=ClientConfig(max_concurrency=1))
    ran: list[int] = []

    def fetch(n: int) -> int:
        ran.append(n)
        if n == 2:
            raise ValueError("page 2 is bad")
        return n

    with pytest.raises(ValueError, match="page 2 is bad"):
        client.map(fetch, range(50))
    assert ran == [0, 1, 2]  # nothing starts after the failure


def test_map_of_nothing(make_client):
    handler, _ = scripted(json_response({}))
    assert make_client(handler).map(str, []) == []


def test_map_reraises_vendor_errors(make_client):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["n"] == "3":
            return httpx.Response(404)
        return json_response({})

    client = make_client(handler)
    with pytest.raises(NotFound):
        client.map(lambda n: client.get("/x", {"n": n}), range(6))


# -- no network ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_reports_network_unavailable_fast(fake):
    started = time.monotonic()
    with (
        HttpClient(
            f"http://127.0.0.1:{closed_port()}",
            vendor="binance",
            sleep=fake.sleep,
            clock=fake.clock,
            rng=FixedRandom(0.999),
        ) as client,
        pytest.raises(NetworkUnavailable, match=r"cannot reach 127\.0\.0\.1 after 3 attempts"),
    ):
        client.get("/api/v3/ping")
    assert time.monotonic() - started < 2
    assert len(fake.sleeps) == 2
    assert sum(fake.sleeps) < 1.5


def test_dns_failure_reports_network_unavailable(make_client):
    handler, seen = scripted(httpx.ConnectError("[Errno -2] Name or service not known"))
    client = make_client(handler)
    with pytest.raises(NetworkUnavailable, match="Name or service not known"):
        client.get("/x")
    assert len(seen) == 3


def test_connection_errors_after_the_host_answered_get_the_full_budget(make_client):
    refused = httpx.ConnectError("connection refused")
    handler, seen = scripted(json_response({}), refused, refused, refused, json_response([1]))
    client = make_client(handler, config=ClientConfig(retry=RetryPolicy(max_retries=5)))
    client.get("/x")
    data, _ = client.get_json("/x")  # a blip mid-run is retried like any transient failure
    assert data == [1]
    assert len(seen) == 5


def test_fetched_is_frozen(make_client):
    handler, _ = scripted(json_response({}))
    fetched = make_client(handler).get("/x")
    assert isinstance(fetched, Fetched)
    with pytest.raises(AttributeError):
        fetched.status = 500  # type: ignore[misc]


def test_base_url_is_exposed_redacted(make_client):
    handler, _ = scripted(json_response({}))
    client = make_client(handler)
    assert client.base_url == "https://api.test"


# ------------------------------------------------------------------------------ body size cap


def _capped(handler: Handler, cap: int = 1000) -> tuple[HttpClient, list[int]]:
    calls: list[int] = []

    def counting(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return handler(request)

    client = HttpClient("https://vendor.test", vendor="v", transport=httpx.MockTransport(counting),
                        config=ClientConfig(max_body_bytes=cap), sleep=lambda _: None)  # fmt: skip
    return client, calls


def _chunks(payload: bytes, size: int = 64) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


@pytest.mark.parametrize(
    "make_response",
    [
        # Declared too long: refused before reading a byte.
        lambda: httpx.Response(200, content=b"[" + b"1," * 600 + b"1]"),
        # Chunked, no length: refused once the stream passes the cap.
        lambda: httpx.Response(200, content=_chunks(b"[" + b"1," * 600 + b"1]")),
        # A small gzip body that decodes past the cap (a decompression bomb in miniature).
        lambda: httpx.Response(
            200,
            content=gzip.compress(b" " * 50_000 + b"[]"),
            headers={"Content-Encoding": "gzip"},
        ),
    ],
    ids=["content-length", "chunked", "gzip-bomb"],
)
def test_a_body_over_the_cap_is_refused_once_and_never_parsed(make_response):
    client, calls = _capped(lambda request: make_response())
    with pytest.raises(ResponseTooLarge, match=r"over the 1,000-byte cap; refused unread"):
        client.get_json("/api/v3/klines")
    client.close()
    assert len(calls) == 1  # not retried: the same request would bring the same body


def test_bodies_within_the_cap_arrive_whole_and_decoded():
    payload = orjson.dumps([[1, "2.5"]] * 20)
    responses = iter(
        [
            httpx.Response(200, content=payload),
            httpx.Response(200, content=_chunks(payload, 7)),
            httpx.Response(
                200, content=gzip.compress(payload), headers={"Content-Encoding": "gzip"}
            ),
        ]
    )
    client, _ = _capped(lambda request: next(responses), cap=len(payload))
    got = [client.get("/x") for _ in range(3)]
    client.close()
    assert [f.body for f in got] == [payload] * 3
    assert all("content-encoding" not in f.headers for f in got)
