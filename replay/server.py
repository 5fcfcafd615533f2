"""The replay HTTP server: Binance's REST paths and archive on loopback, with faults on request.

Other vendors' paths (CoinGlass, CoinAPI, FRED, ...) are mounted from `replay.vendors`;
every response says where its data came from in `X-Btcfs-Replay: synthetic|recorded`.

Built on the stdlib `http.server.ThreadingHTTPServer` rather than an ASGI framework because
the faults need raw control of the socket: a truncated body must declare its full
Content-Length and then stop, and a dropped request must close the connection without a
status line, neither of which a framework lets a handler do.

    with ReplayServer(market, faults="429=0.1", now="2024-05-12T00:00:00Z") as url:
        httpx.get(f"{url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h"})

The clock (`now`, `speed`): no `now` is the real clock; `now` alone freezes it there; with
`speed=X` it starts at `now` (or the real now) and runs X times as fast as the wall clock
(`speed=0` freezes). Everything that depends on market time (which bars exist and the open
bar's values, `/api/v3/time`, the archive, vendors' publication rules) reads this one clock;
rate limits, bans and vendor quotas stay on the wall clock, where clients wait.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import orjson

from core.redact import redact
from replay.archive import Archive
from replay.clock import Clock, datetime_to_us, parse_moment
from replay.faults import Fault, FaultInjector, FaultSpec
from replay.limits import Limits
from replay.market import MarketData
from replay.query import MarketView
from replay.rest import JSON, BinanceApi, Reply, Request, budget_of
from replay.vendors import ReplayContext, VendorRequest, VendorRoutes, build_routes

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__replay/"
ARCHIVE_PREFIX = "/data/"
_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
#: Says where a body came from: `synthetic` (a seeded market) or `recorded` (real data).
#: The loaders read it by the same name (a wire contract, checked by tests/replay).
REPLAY_HEADER = "X-Btcfs-Replay"
_SERVER_ERRORS = {
    500: (JSON, b'{"code":-1000,"msg":"An unknown error occurred while processing the request."}'),
    502: ("text/html", b"<html><head><title>502 Bad Gateway</title></head></html>"),
    503: (JSON, b'{"code":-1001,"msg":"Internal error; unable to process your request."}'),
}


def _now_us(now: int | str | datetime | None) -> int | None:
    if now is None or isinstance(now, int):
        return now
    if isinstance(now, datetime):
        return datetime_to_us(now)
    return parse_moment(now)


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter[int] = Counter()

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


class ReplayApp:
    """Everything one server knows: market, clock, faults, budgets and counters."""

    def __init__(
        self,
        market: MarketData,
        *,
        faults: FaultSpec | str | None = None,
        seed: int | None = None,
        now: int | str | datetime | None = None,
        speed: float | None = None,
        retry_after: float = 1.0,
        slow_delay: float = 35.0,
        ban_seconds: float = 120.0,
        banned_for: float = 0.0,
        weight_limits: dict[str, int] | None = None,
        retry_grace: float = 0.25,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        spec = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        self.market = market
        self.clock = Clock(_now_us(now), speed=speed)
        self.view = MarketView(market)
        self.api = BinanceApi(self.view, self.clock)
        self.archive = Archive(self.view)
        self.injector = FaultInjector(spec, market.seed if seed is None else seed)
        self.limits = Limits(
            weight_limits=weight_limits,
            ban_seconds=ban_seconds,
            banned_for=banned_for,
            retry_grace=retry_grace,
            clock=wall_clock,
        )
        self.retry_after = max(1, math.ceil(retry_after))
        self.slow_delay = slow_delay
        self.stopping = threading.Event()
        self.stats = _Stats()
        self.vendors: list[VendorRoutes] = build_routes(
            ReplayContext(market, self.view, self.clock, self.injector.seed, wall_clock)
        )

    def stats_payload(self) -> dict[str, Any]:
        with self.stats.lock:
            requests = self.stats.requests
            statuses = {str(k): v for k, v in sorted(self.stats.statuses.items())}
        return {
            "market": self.market.describe(),
            "now": self.clock.now_us() // 1000,
            "speed": self.clock.speed,
            "faults_spec": str(self.injector.spec),
            "requests": requests,
            "responses": statuses,
            "faults": self.injector.counts(),
            "rate_limited": self.limits.rate_limited,
            "retry_after_violations": self.limits.retry_after_violations,
            "bans": self.limits.bans,
            "banned_requests": self.limits.banned_requests,
            "weight_used": {budget: self.limits.used(budget) for budget in ("spot", "fapi")},
            "vendors": {routes.name: routes.stats() for routes in self.vendors},
        }

    def _vendor_for(self, path: str) -> VendorRoutes | None:
        return next((routes for routes in self.vendors if routes.matches(path)), None)

    def respond(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        if path.startswith(CONTROL_PREFIX):
            self._control(handler, path, method)
            return
        with self.stats.lock:
            self.stats.requests += 1
        vendor = self._vendor_for(path)
        if vendor is not None:
            self._vendor(handler, method, path, query, vendor)
            return
        client = handler.client_address[0]
        is_api = not path.startswith(ARCHIVE_PREFIX)
        budget = budget_of(path)

        banned = self.limits.ban_remaining(client)
        if banned is not None:
            # Bans, budgets and Retry-After run on the wall clock: clients wait in wall seconds.
            until_ms = int((self.limits.clock() + banned) * 1000)
            body = {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            }
            headers = {"Retry-After": str(max(1, math.ceil(banned)))}
            self._send(
                handler,
                method,
                Reply(418, orjson.dumps(body), headers=headers),
                budget if is_api else None,
            )
            return

        fault = self.injector.decide(method, path, query)
        truncate = False
        if fault is not None:
            if fault.kind == "drop":
                handler.drop()
                return
            if fault.kind in ("429", "5xx"):
                self._send(
                    handler,
                    method,
                    self._fault_reply(fault, client, budget),
                    budget if is_api else None,
                )
                return
            if fault.kind == "slow" and self.stopping.wait(self.slow_delay):
                handler.drop()
                return
            truncate = fault.kind == "truncate"

        if not is_api:
            reply = self._archive(path, method)
            self._send(handler, method, reply, None, truncate=truncate)
            return
        reply = self._api(path, method, query, handler, client, budget)
        self._send(handler, method, reply, budget, truncate=truncate)

    def _vendor(
        self,
        handler: _Handler,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        vendor: VendorRoutes,
    ) -> None:
        """A vendor route: faults (in the vendor's own error format), then the route.

        Binance's weight budgets and IP bans are Binance's: they do not apply here.
        """
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = VendorRequest(path, dict(query), headers, self.clock.now_us())
        fault = self.injector.decide(method, path, query, vendor_route=True)

        def send(reply: Reply, *, truncate: bool = False) -> None:
            # Vendor data is always derived from the market, never recorded from the vendor.
            reply.headers.setdefault(REPLAY_HEADER, "synthetic")
            self._send(handler, method, reply, None, truncate=truncate)

        truncate = False
        if fault is not None:
            if fault.kind == "drop":
                handler.drop()
                return
            if fault.kind == "429":
                reply = vendor.fault_reply(429)
                reply.headers.setdefault("Retry-After", str(self.retry_after))
                send(reply)
                return
            if fault.kind == "5xx":
                send(vendor.fault_reply(fault.status))
                return
            if fault.kind == "vendor":
                send(vendor.vendor_fault(request))
                return
            if fault.kind == "slow" and self.stopping.wait(self.slow_delay):
                handler.drop()
                return
            truncate = fault.kind == "truncate"
        send(vendor.handle(request) if method in ("GET", "HEAD") else vendor.fault_reply(405),
             truncate=truncate)  # fmt: skip

    def _fault_reply(self, fault: Fault, client: str, budget: str) -> Reply:
        if fault.kind == "429":
            self.limits.told_to_wait(client, self.retry_after)
            return _too_many(budget, self.limits.weight_limits[budget], self.retry_after)
        content_type, body = _SERVER_ERRORS[fault.status]
        return Reply(fault.status, body, content_type)

    def _api(
        self,
        path: str,
        method: str,
        query: list[tuple[str, str]],
        handler: _Handler,
        client: str,
        budget: str,
    ) -> Reply:
        route = self.api.routes.get(path)
        if route is None:
            return Reply(404, b'{"code":-1000,"msg":"Unknown endpoint."}')
        if method not in ("GET", "HEAD"):
            return Reply(405, b'{"code":-1000,"msg":"Method not allowed; use GET."}')
        params: dict[str, str] = {}
        for name, value in query:
            if name in params:
                return Reply(
                    400,
                    orjson.dumps(
                        {"code": -1101, "msg": f"Duplicate values for parameter '{name[:40]}'."}
                    ),
                )
            params[name] = value
        _, retry_after = self.limits.spend(route.budget, route.weight(params))
        if retry_after is not None:
            self.limits.told_to_wait(client, retry_after)
            return _too_many(route.budget, self.limits.weight_limits[route.budget], retry_after)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Request(path, params, headers, self.clock.now_us())
        return self.api.handle(route, request)

    def _archive(self, path: str, method: str) -> Reply:
        if method not in ("GET", "HEAD"):
            return _no_such_key(path, 405)
        found = self.archive.get(path, self.clock.now_us())
        if found is None:
            return _no_such_key(path)
        body, content_type = found
        return Reply(200, body, content_type)

    def _control(self, handler: _Handler, path: str, method: str) -> None:
        if path == "/__replay/stats" and method in ("GET", "HEAD"):
            reply = Reply(200, orjson.dumps(self.stats_payload()))
        else:
            reply = Reply(404, b'{"code":-1000,"msg":"Unknown endpoint."}')
        reply.headers.setdefault(REPLAY_HEADER, self.market.replay_kind)
        handler.send(reply, head=method == "HEAD", truncate=False)

    def _send(
        self,
        handler: _Handler,
        method: str,
        reply: Reply,
        budget: str | None,
        *,
        truncate: bool = False,
    ) -> None:
        if budget is not None:
            reply.headers.setdefault(_WEIGHT_HEADER, str(self.limits.used(budget)))
        reply.headers.setdefault(REPLAY_HEADER, self.market.replay_kind)
        self.stats.count(reply.status)
        handler.send(reply, head=method == "HEAD", truncate=truncate)


def _too_many(budget: str, limit: int, retry_after: int) -> Reply:
    body = {
        "code": -1003,
        "msg": f"Too much request weight used; current limit is {limit} request weight per "
        "1 MINUTE. Please use WebSocket Streams for live updates to avoid bans.",
    }
    return Reply(429, orjson.dumps(body), headers={"Retry-After": str(retry_after)})


def _no_such_key(path: str, status: int = 404) -> Reply:
    key = escape(path.lstrip("/")[:512])
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
        f"<Key>{key}</Key><RequestId>REPLAY</RequestId><HostId>replay</HostId></Error>"
    )
    return Reply(status, body.encode(), "application/xml")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "btcfs-replay"
    sys_version = ""
    timeout = 120  # idle keep-alive connections give their thread back after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        if self.server.app.stopping.is_set():
            # A stopped server answers nothing, not even on a connection kept alive from
            # before: to its clients it is gone (an outage drill stops it and means it).
            self.drop()
            return
        if method not in ("GET", "HEAD"):
            # A request body is never read, so the connection cannot carry another request.
            self.close_connection = True
        try:
            self.server.app.respond(self, method)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
        except Exception:
            logger.exception("replay server failed on %s %s", method, self.path[:200])
            try:
                content_type, body = _SERVER_ERRORS[500]
                reply = Reply(500, body, content_type)
                reply.headers[REPLAY_HEADER] = self.server.app.market.replay_kind
                self.send(reply, head=method == "HEAD", truncate=False)
            except OSError:
                self.close_connection = True

    def send(self, reply: Reply, *, head: bool, truncate: bool) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            # Say so: a client that keeps the connection in its pool would otherwise send the
            # next request into a socket we are about to close.
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if truncate:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.drop()
            return
        self.wfile.write(reply.body)

    def drop(self) -> None:
        """Close the connection now, whatever was (or was not) sent."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries keys in the query (FRED's api_key, Alpha Vantage's apikey).
        logger.debug("%s %s", self.client_address[0], redact(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ReplayApp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection error from %s", client_address, exc_info=True)


class ReplayServer:
    """Runs a ReplayApp on a background thread; a context manager yielding the base URL."""

    def __init__(
        self, market: MarketData, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.app = ReplayApp(market, **options)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the replay server is not running")
        address = self._server.server_address
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{address[1]}"

    def start(self) -> str:
        if self._server is not None:
            return self.url
        self._server = _Server((self.host, self.port), self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="replay-server",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self.app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def stats(self) -> dict[str, Any]:
        return self.app.stats_payload()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
