"""The one HTTP client every vendor loader uses: retries, rate limits, bans, weight, redaction.

Sync httpx, safe to share between threads: a loader fetches pages concurrently with `map()`
and every wait (429 Retry-After, Binance weight, IP ban) is shared by all of a client's threads.
One client per vendor host, since Binance counts weight per IP and host.

Settings are one frozen `ClientConfig`: a `RetryPolicy`, a `WeightBudget` (Binance's request
weight, CoinGlass's plan limit), the timeout, concurrency, auth statuses and body cap.

Retry policy: up to `max_retries` retries on HTTP 5xx/408, timeouts, dropped connections,
truncated bodies and (in `get_json`) invalid JSON, each after a "full jitter" backoff of
`min(backoff_max, backoff_base * 2**n) * U[0, 1)` seconds for the n-th retry (AWS's full
jitter: spreads concurrent retriers the most while keeping the same expected growth).
A host that refuses connections or does not resolve gets at most `max_connect_retries` quick
retries (backoff capped at 1 s) until it has answered once, so "no network" shows in about a
second. 429 has its own budget and waits exactly Retry-After; 418 is never retried.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import orjson

from core.redact import (
    install_log_redaction,
    is_sensitive_header,
    is_sensitive_param,
    redact,
    redact_headers,
    redact_params,
    register_secrets,
)
from ingest.errors import (
    ConfigError,
    IPBanned,
    MalformedResponse,
    NetworkUnavailable,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    VendorAuthError,
    VendorHTTPError,
)

__all__ = [
    "ClientConfig",
    "ClientStats",
    "Fetched",
    "HttpClient",
    "RetryPolicy",
    "WeightBudget",
]

log = logging.getLogger("ingest.http")

T = TypeVar("T")
R = TypeVar("R")

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# The replay server says where a body came from: `synthetic` (its seeded market) or `recorded`.
REPLAY_HEADER = "X-Btcfs-Replay"
USER_AGENT = "btcfs/0.1 (httpx)"

# Sleep this long past a minute boundary before spending weight again: our clock and
# Binance's may disagree by a fraction of a second.
_MINUTE_MARGIN_S = 1.0
_CONNECT_BACKOFF_MAX_S = 1.0
# 5xx codes that mean "never", not "not now": 501 Not Implemented, 505, CoinAPI's 550 No data.
_PERMANENT_5XX = frozenset({501, 505, 550})
_BODY_SNIPPET_CHARS = 300
# The largest body a client reads (decoded): far above any vendor page or archive zip
# (a month of 1m klines zipped is ~3 MB), far below what would strain memory once parsed
# (a JSON body costs 9-28x its size in a parser).
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a client retries; see the module docstring for the policy."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A 429 asking for a longer wait than this fails at once (RateLimited) instead of sleeping.
    max_retry_after: float = 300.0
    max_rate_limit_retries: int = 10
    max_connect_retries: int = 2

    def __post_init__(self) -> None:
        if min(self.max_retries, self.max_rate_limit_retries, self.max_connect_retries) < 0:
            raise ConfigError("retry counts must not be negative")
        # `not >= 0` also refuses NaN.
        if not (self.backoff_base >= 0 and self.backoff_max >= 0):
            raise ConfigError(
                f"backoff_base and backoff_max must not be negative, "
                f"got {self.backoff_base} and {self.backoff_max}"
            )


@dataclass(frozen=True)
class WeightBudget:
    """A per-minute request-weight budget and the headers that report it.

    Binance says what a minute has used (X-MBX-USED-WEIGHT-1M); CoinGlass also says what the
    plan allows (API-KEY-USE-LIMIT / API-KEY-MAX-LIMIT): with `limit_header` set, the budget
    follows that header. `per_minute=None` tracks no weight at all; the client sends only while
    the minute's used weight stays within `headroom` of the budget.
    """

    per_minute: int | None = None
    headroom: float = 0.8
    used_header: str = USED_WEIGHT_HEADER
    limit_header: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.headroom <= 1:
            raise ConfigError(f"weight_headroom must be in (0, 1], got {self.headroom}")


@dataclass(frozen=True)
class ClientConfig:
    """Everything about how an HttpClient behaves, apart from who it talks to and with which key.

    Change one setting with `dataclasses.replace(config, max_concurrency=2)`.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    weight: WeightBudget = field(default_factory=WeightBudget)
    timeout: float | httpx.Timeout = 30.0
    max_concurrency: int = 4
    # Statuses that mean "the key is refused": Binance's 403 is its WAF, CoinAPI's is a key
    # without the privilege, so it is per vendor.
    auth_statuses: tuple[int, ...] = (401,)
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {self.max_concurrency}")


@dataclass(frozen=True)
class Fetched:
    """A 200 response: the redacted URL, headers and the raw body bytes (for landing as-is)."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_s: float


@dataclass
class ClientStats:
    """Counters over a client's life; read them after a run for the ingest report."""

    requests: int = 0
    retries: int = 0
    rate_limited_waits: int = 0
    weight_waits: int = 0
    slept_seconds: float = 0.0
    last_used_weight_1m: int | None = None
    # Responses the replay server marked as coming from its synthetic market
    # (`X-Btcfs-Replay: synthetic`); a live vendor never sends that header.
    synthetic_responses: int = 0


@dataclass
class _Budget:
    """Retries spent so far by one logical request."""

    transient: int = 0
    connect: int = 0
    throttled: int = 0


@dataclass
class _Attempt:
    """What one send produced: a response or a transport error."""

    response: httpx.Response | None = None
    error: httpx.RequestError | None = None
    elapsed_s: float = 0.0


class HttpClient:
    """A thread-safe vendor client; see the module docstring for the retry policy."""

    def __init__(
        self,
        base_url: str,
        *,
        vendor: str,
        config: ClientConfig | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        debug: bool = False,
    ) -> None:
        config = ClientConfig() if config is None else config
        self.vendor = vendor
        self.config = config
        self._retry = config.retry
        self._weight = config.weight
        # The current per-minute budget: CoinGlass states its plan's in a header (see WeightBudget).
        self.weight_budget_1m = config.weight.per_minute
        self._auth_statuses = frozenset(config.auth_statuses)
        self.debug = debug
        self.stats = ClientStats()

        default_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        secrets = tuple(secrets)
        register_secrets(secrets)
        register_secrets(v for k, v in default_headers.items() if is_sensitive_header(k))
        # Default query parameters carry the key of vendors that take it in the URL (FRED's
        # api_key, Alpha Vantage's apikey): every URL shown anywhere is redacted.
        default_params = dict(params or {})
        register_secrets(str(v) for k, v in default_params.items() if is_sensitive_param(k))
        # What a redirect to another origin must not carry (see `_follow`).
        self._credentials = frozenset(
            value
            for value in (
                *secrets,
                *(v for k, v in default_headers.items() if is_sensitive_header(k)),
                *(str(v) for k, v in default_params.items() if is_sensitive_param(k)),
            )
            if value
        )
        install_log_redaction()

        timeout = config.timeout
        if not isinstance(timeout, httpx.Timeout):
            # An unreachable host should not hold a thread for the whole read timeout.
            timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._http = httpx.Client(
            base_url=base_url,
            headers=default_headers,
            params=default_params or None,
            timeout=timeout,
            transport=transport,
            # Redirects are followed by `_follow`, which drops the key on leaving the origin.
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=config.max_concurrency,
                max_keepalive_connections=config.max_concurrency,
            ),
        )
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._lock = threading.Lock()  # guards the shared state below, stats and the rng
        self._not_before = -math.inf  # 429: no request to this host before this clock time
        self._banned_until: float | None = None  # 418: math.inf when no Retry-After was given
        self._weight_minute = -1  # UTC minute (clock // 60) of _weight_seen
        self._weight_seen = 0  # highest X-MBX-USED-WEIGHT-1M seen in that minute
        # Weight of requests sent and not yet answered, by the UTC minute they were sent in:
        # Binance counts a request in the minute it arrives, so only this minute's count.
        self._weight_inflight: dict[int, int] = {}
        self._reached = False  # the host has answered at least once

    # -- public API ----------------------------------------------------------------------------

    def get(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """GET a path (relative to base_url) or absolute URL; returns only a 200, body as bytes.

        Raises IPBanned, RateLimited, NotFound, VendorHTTPError or NetworkUnavailable.
        """
        _, fetched = self._fetch(path_or_url, params, weight, headers, parse_json=False)
        return fetched

    def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, Fetched]:
        """Like `get`, plus the body parsed with orjson; invalid JSON is retried, then raises
        MalformedResponse."""
        return self._fetch(path_or_url, params, weight, headers, parse_json=True)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`[fn(item) for item in items]` on up to max_concurrency threads, in item order.

        On the first failure no further item starts, running ones finish, and the error of the
        earliest failed item is raised.
        """
        work = list(items)
        if not work:
            return []
        # Set by the failing worker itself: cancelling from this thread alone would race with
        # workers that pick up the next item before we wake up.
        failed = threading.Event()

        def run(item: T) -> R:
            if failed.is_set():
                raise _Skipped
            try:
                return fn(item)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(
            max_workers=min(self.config.max_concurrency, len(work)),
            thread_name_prefix=f"{self.vendor}-http",
        ) as pool:
            futures = [pool.submit(run, item) for item in work]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            wait([future for future in futures if not future.cancelled()])
        error = _first_failure(futures)
        if error is not None:
            raise error
        return [future.result() for future in futures]

    @property
    def base_url(self) -> str:
        """The base URL relative paths are resolved against (e.g. for progress messages)."""
        return redact(self._http.base_url)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one logical request -------------------------------------------------------------------

    def _fetch(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None,
        weight: int,
        headers: Mapping[str, str] | None,
        *,
        parse_json: bool,
    ) -> tuple[Any, Fetched]:
        params = dict(params or {})
        register_secrets(str(v) for k, v in params.items() if is_sensitive_param(k))
        if headers:
            register_secrets(v for k, v in headers.items() if is_sensitive_header(k))
        try:
            shown_url = redact(self._http.build_request("GET", path_or_url, params=params).url)
        except httpx.InvalidURL as exc:
            raise ConfigError(
                f"{self.vendor}: invalid URL {redact(path_or_url)!r}: {exc}"
            ) from None
        budget = _Budget()
        while True:
            if self.debug:
                log.info(
                    "%s: GET %s params=%s headers=%s",
                    self.vendor,
                    shown_url,
                    redact_params(params),
                    redact_headers({**self._http.headers, **(headers or {})}),
                )
            attempt = self._send(path_or_url, params, weight, headers)
            if attempt.error is not None:
                delay = self._on_transport_error(attempt.error, budget, shown_url)
                self._pause(delay, "retry")
                continue
            response = attempt.response
            assert response is not None
            status = response.status_code
            if status == 200:
                fetched = Fetched(
                    url=redact(response.url),
                    status=status,
                    headers=response.headers,
                    body=response.content,
                    elapsed_s=attempt.elapsed_s,
                )
                if response.headers.get(REPLAY_HEADER, "").strip().lower() == "synthetic":
                    with self._lock:
                        self.stats.synthetic_responses += 1
                if not parse_json:
                    self._debug_response(fetched, _summarise_bytes(fetched))
                    return None, fetched
                try:
                    data = orjson.loads(fetched.body)
                except orjson.JSONDecodeError as exc:
                    self._debug_response(fetched, "invalid JSON")
                    delay = self._on_bad_json(exc, fetched, budget)
                    self._pause(delay, "retry")
                    continue
                self._debug_response(fetched, _summarise_json(data))
                return data, fetched
            if self.debug:
                log.info(
                    "%s: HTTP %d for %s in %.3f s",
                    self.vendor,
                    status,
                    shown_url,
                    attempt.elapsed_s,
                )
            if status == 418:
                raise self._ban_error(self._clock())
            if status == 429:
                self._on_rate_limited(response, budget, shown_url)
                continue  # the shared not-before time set in _send is waited for in _gate
            if (status >= 500 and status not in _PERMANENT_5XX) or status == 408:
                delay = self._on_server_error(response, budget, shown_url)
                self._pause(delay, "retry")
                continue
            raise self._status_error(response, shown_url)

    def _send(
        self,
        path_or_url: str,
        params: dict[str, Any],
        weight: int,
        headers: Mapping[str, str] | None,
    ) -> _Attempt:
        """One request inside a concurrency slot, after the shared waits; records the outcome."""
        with self._slots:
            minute = self._gate(weight)
            attempt = _Attempt()
            started = time.perf_counter()
            try:
                request = self._http.build_request(
                    "GET", path_or_url, params=params or None, headers=headers
                )
                attempt.response = self._read_bounded(self._follow(request))
            except httpx.RequestError as exc:
                attempt.error = exc
            finally:
                attempt.elapsed_s = time.perf_counter() - started
                self._after_send(attempt.response, weight, minute)
            return attempt

    def _follow(self, request: httpx.Request) -> httpx.Response:
        """Send, following redirects: to the request's own origin as httpx would, elsewhere
        without credentials (httpx drops only `Authorization`: a CG-API-KEY or X-CoinAPI-Key
        header, or a key in the query, would reach whatever host a response names)."""
        first = request.url
        for _ in range(self._http.max_redirects + 1):
            response = self._http.send(request, stream=True)
            following = response.next_request
            if following is None:
                return response
            response.close()
            request = following
            if not _same_origin(first, request.url):
                request = self._without_credentials(request)
        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)

    def _without_credentials(self, request: httpx.Request) -> httpx.Request:
        def secret(value: str) -> bool:
            return any(credential in value for credential in self._credentials)

        headers = httpx.Headers(
            [
                (name, value)
                for name, value in request.headers.multi_items()
                if not is_sensitive_header(name) and not secret(value)
            ]
        )
        query: list[tuple[str, str | int | float | bool | None]] = [
            (name, value)
            for name, value in request.url.params.multi_items()
            if not is_sensitive_param(name) and not secret(value)
        ]
        return httpx.Request(
            request.method,
            request.url.copy_with(params=httpx.QueryParams(query)),
            headers=headers,
            extensions=request.extensions,
        )

    def _read_bounded(self, response: httpx.Response) -> httpx.Response:
        """The response read whole, or ResponseTooLarge once its body passes the cap.

        Reads the decoded stream chunk by chunk, so an oversized (or decompression-bomb)
        body is refused after `max_body_bytes`, not after it filled memory.
        """
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.config.max_body_bytes:
                raise self._too_large(response, f"declares {int(declared):,} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.config.max_body_bytes:
                    raise self._too_large(response, f"passed {self.config.max_body_bytes:,} bytes")
        finally:
            response.close()
        # Decoded already: the copy must not claim an encoding or the wire length.
        headers = httpx.Headers(response.headers)
        for name in ("content-encoding", "content-length"):
            headers.pop(name, None)
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=bytes(body),
            request=response.request,
            extensions=response.extensions,
        )

    def _too_large(self, response: httpx.Response, what: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{self.vendor}: response from {redact(response.url)} {what}, over the "
            f"{self.config.max_body_bytes:,}-byte cap; refused unread"
        )

    def _gate(self, weight: int) -> int:
        """Block until this client may send `weight` more: no ban, past Retry-After, in budget.

        Returns the UTC minute the weight was reserved in.
        """
        while True:
            with self._lock:
                now = self._clock()
                self._raise_if_banned(now)
                delay = self._not_before - now
                kind = "rate_limited"
                longest = self._retry.max_retry_after
                if delay > longest:
                    raise RateLimited(
                        f"{self.vendor}: rate limited for another {delay:.0f} s "
                        f"(more than max_retry_after={longest:.0f} s); try later",
                        status=429,
                    )
                if delay <= 0:
                    delay, kind = self._weight_delay(now, weight), "weight"
                if delay <= 0:
                    minute = int(now // 60)
                    self._weight_inflight[minute] = self._weight_inflight.get(minute, 0) + weight
                    self.stats.requests += 1
                    return minute
                used = self._weight_seen
            if kind == "weight":
                log.info(
                    "%s: used weight %d + %d would pass %.0f%% of %d/min; waiting %.1f s "
                    "for the next minute",
                    self.vendor,
                    used,
                    weight,
                    self._weight.headroom * 100,
                    self.weight_budget_1m,
                    delay,
                )
            self._pause(delay, kind)

    def _weight_delay(self, now: float, weight: int) -> float:
        """Seconds to wait before spending `weight` this minute (0 = go); caller holds the lock."""
        if self.weight_budget_1m is None:
            return 0.0
        minute = int(now // 60)
        seen = self._weight_seen if self._weight_minute == minute else 0
        used = seen + self._weight_inflight.get(minute, 0)
        # used == 0: a fresh minute always admits one request, however heavy.
        if used == 0 or used + weight <= self.weight_budget_1m * self._weight.headroom:
            return 0.0
        return (minute + 1) * 60 - now + _MINUTE_MARGIN_S

    def _after_send(self, response: httpx.Response | None, weight: int, sent_minute: int) -> None:
        """Release the weight reservation and record what the response says about limits."""
        with self._lock:
            left = self._weight_inflight.pop(sent_minute, 0) - weight
            if left > 0:
                self._weight_inflight[sent_minute] = left
            if response is None:
                return
            self._reached = True
            now = self._clock()
            if self._weight.limit_header is not None:
                cap = _int_header(response.headers, self._weight.limit_header)
                if cap is not None and cap > 0:
                    self.weight_budget_1m = cap
            used = _int_header(response.headers, self._weight.used_header)
            if used is not None:
                minute = int(now // 60)
                if minute != self._weight_minute:
                    self._weight_minute, self._weight_seen = minute, used
                else:  # responses can arrive out of order: the highest count is the latest
                    self._weight_seen = max(self._weight_seen, used)
                self.stats.last_used_weight_1m = used
            if response.status_code == 418:
                retry_after = _retry_after_s(response.headers, now)
                until = math.inf if retry_after is None else now + retry_after
                self._banned_until = max(self._banned_until or -math.inf, until)
            elif response.status_code == 429:
                retry_after = _retry_after_s(response.headers, now)
                if retry_after is not None:
                    self._not_before = max(self._not_before, now + retry_after)

    # -- outcomes ------------------------------------------------------------------------------

    def _on_transport_error(self, exc: httpx.RequestError, budget: _Budget, url: str) -> float:
        """Backoff before retrying a transport failure, or raise when it is final."""
        what = f"{type(exc).__name__}: {redact(exc) or 'no detail'}"
        if isinstance(exc, httpx.UnsupportedProtocol):
            raise ConfigError(f"{self.vendor}: cannot request {url}: {what}") from None
        if isinstance(exc, httpx.TooManyRedirects):
            raise VendorHTTPError(f"{self.vendor}: GET {url}: {what}", url=url) from None
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            budget.connect += 1
            # Until the host has answered once, refusal/DNS failure most likely means no network.
            limit = self._retry.max_retries if self._reached else self._retry.max_connect_retries
            if budget.connect > limit:
                raise NetworkUnavailable(
                    f"{self.vendor}: cannot reach {_host(url)} after {budget.connect} attempts "
                    f"({what}); check the network connection"
                ) from None
            delay = self._backoff(budget.connect - 1, cap=_CONNECT_BACKOFF_MAX_S)
            tries = (budget.connect, limit)
        else:
            budget.transient += 1
            if budget.transient > self._retry.max_retries:
                raise VendorHTTPError(
                    f"{self.vendor}: GET {url} failed after {budget.transient} attempts: {what}",
                    status=None,
                    url=url,
                ) from None
            delay = self._backoff(budget.transient - 1)
            tries = budget.transient, self._retry.max_retries
        # A host that never answered is most likely "no network": the final error says so in
        # one line, so its retries stay quiet unless --debug asks for them.
        level = logging.WARNING if self._reached else logging.INFO
        log.log(
            level, "%s: %s for GET %s; retry %d/%d in %.2f s", self.vendor, what, url, *tries, delay
        )
        return delay

    def _on_bad_json(self, exc: ValueError, fetched: Fetched, budget: _Budget) -> float:
        budget.transient += 1
        snippet = _snippet(fetched.body)
        if budget.transient > self._retry.max_retries:
            raise MalformedResponse(
                f"{self.vendor}: GET {fetched.url} returned invalid JSON "
                f"{budget.transient} times ({exc}; {len(fetched.body)} bytes: {snippet!r})"
            ) from None
        delay = self._backoff(budget.transient - 1)
        log.warning(
            "%s: invalid JSON from GET %s (%s, %d bytes); retry %d/%d in %.2f s",
            self.vendor,
            fetched.url,
            exc,
            len(fetched.body),
            budget.transient,
            self._retry.max_retries,
            delay,
        )
        return delay

    def _on_server_error(self, response: httpx.Response, budget: _Budget, url: str) -> float:
        budget.transient += 1
        status = response.status_code
        if budget.transient > self._retry.max_retries:
            raise VendorHTTPError(
                f"{self.vendor}: HTTP {status} {response.reason_phrase} for GET {url} "
                f"after {budget.transient} attempts: {_vendor_message(response.content)}",
                status=status,
                url=url,
            )
        delay = self._backoff(budget.transient - 1)
        retry_after = _retry_after_s(response.headers, self._clock())
        if retry_after is not None and retry_after <= self._retry.max_retry_after:
            delay = max(delay, retry_after)
        log.warning(
            "%s: HTTP %d for GET %s; retry %d/%d in %.2f s",
            self.vendor,
            status,
            url,
            budget.transient,
            self._retry.max_retries,
            delay,
        )
        return delay

    def _on_rate_limited(self, response: httpx.Response, budget: _Budget, url: str) -> None:
        """Account a 429 and make every thread wait; raise RateLimited when it is hopeless."""
        budget.throttled += 1
        now = self._clock()
        retry_after = _retry_after_s(response.headers, now)
        if retry_after is not None and retry_after > self._retry.max_retry_after:
            raise RateLimited(
                f"{self.vendor}: HTTP 429 for GET {url}: Retry-After {retry_after:.0f} s is more "
                f"than max_retry_after={self._retry.max_retry_after:.0f} s; try later",
                status=429,
                url=url,
            )
        if budget.throttled > self._retry.max_rate_limit_retries:
            raise RateLimited(
                f"{self.vendor}: HTTP 429 for GET {url} {budget.throttled} times in a row; "
                "giving up (lower the concurrency or try later)",
                status=429,
                url=url,
            )
        with self._lock:
            self.stats.retries += 1
            if retry_after is None:
                retry_after = self._backoff_locked(budget.throttled - 1)
                self._not_before = max(self._not_before, now + retry_after)
        log.warning(
            "%s: HTTP 429 (rate limited) for GET %s; waiting %.1f s (429 %d/%d)",
            self.vendor,
            url,
            retry_after,
            budget.throttled,
            self._retry.max_rate_limit_retries,
        )

    def _raise_if_banned(self, now: float) -> None:
        if self._banned_until is not None and self._banned_until > now:
            raise self._ban_error(now)

    def _ban_error(self, now: float) -> IPBanned:
        banned_until = self._banned_until if self._banned_until is not None else now
        if math.isinf(banned_until):
            return IPBanned(
                f"{self.vendor}: HTTP 418: this IP is banned and the response gave no "
                "Retry-After; stop and do not retry now: requests during a ban lengthen it",
                retry_after_s=None,
            )
        remaining = max(0.0, banned_until - now)
        when = datetime.fromtimestamp(banned_until, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        return IPBanned(
            f"{self.vendor}: HTTP 418: this IP is banned until {when} UTC "
            f"({remaining:.0f} s from now); stop and do not retry before then: "
            "requests during a ban lengthen it",
            retry_after_s=remaining,
        )

    def _status_error(self, response: httpx.Response, url: str) -> VendorHTTPError:
        status = response.status_code
        detail = _vendor_message(response.content)
        message = f"{self.vendor}: HTTP {status} {response.reason_phrase} for GET {url}"
        if detail:
            message += f": {detail}"
        if status in self._auth_statuses:
            message += " (check the API key and its plan)"
            return VendorAuthError(message, status=status, url=url)
        if status == 404:
            return NotFound(message, status=status, url=url)
        return VendorHTTPError(message, status=status, url=url)

    # -- helpers -------------------------------------------------------------------------------

    def _backoff(self, retry: int, *, cap: float | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)) for the 0-based retry-th retry."""
        with self._lock:
            return self._backoff_locked(retry, cap=cap)

    def _backoff_locked(self, retry: int, *, cap: float | None = None) -> float:
        ceiling = min(
            self._retry.backoff_max if cap is None else cap,
            self._retry.backoff_base * 2.0 ** min(retry, 60),
        )
        return ceiling * self._rng.random()

    def _pause(self, seconds: float, kind: str) -> None:
        """Sleep (a full-jitter retry may draw 0) and count it under `kind`."""
        with self._lock:
            self.stats.slept_seconds += max(0.0, seconds)
            if kind == "retry":
                self.stats.retries += 1
            elif kind == "rate_limited":
                self.stats.rate_limited_waits += 1
            elif kind == "weight":
                self.stats.weight_waits += 1
        if seconds > 0:
            self._sleep(seconds)

    def _debug_response(self, fetched: Fetched, summary: str) -> None:
        if not self.debug:
            return
        log.info(
            "%s: HTTP %d for %s in %.3f s, used weight %s, %s",
            self.vendor,
            fetched.status,
            fetched.url,
            fetched.elapsed_s,
            fetched.headers.get(self._weight.used_header, "n/a"),
            redact(summary),
        )


class _Skipped(Exception):
    """A map() item not started because an earlier one failed."""


def _first_failure(futures: list[Future[Any]]) -> BaseException | None:
    for future in futures:
        if future.cancelled():
            continue
        error = future.exception()
        if error is not None and not isinstance(error, _Skipped):
            return error
    return None


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after_s(headers: httpx.Headers, now: float) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _same_origin(first: httpx.URL, then: httpx.URL) -> bool:
    """Same scheme, host and port, or the same host moving from http to https (as httpx)."""
    if then.host != first.host:
        return False
    if then.scheme == first.scheme:
        return then.port == first.port
    upgrade = first.scheme == "http" and then.scheme == "https"
    return upgrade and first.port in (None, 80) and then.port in (None, 443)


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except httpx.InvalidURL:
        return url


def _snippet(body: bytes) -> str:
    return redact(body[:_BODY_SNIPPET_CHARS].decode("utf-8", "replace"))


def _vendor_message(body: bytes) -> str:
    """The vendor's own error text: Binance `-1121 Invalid symbol.`, CoinAPI's message, …"""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _snippet(body).strip()
    if isinstance(data, dict):
        status = data.get("status")
        if isinstance(status, dict):  # CryptoQuant: {"status": {"code": 400, "message": ...}}
            data = {**status, **data}
        code = data.get("code")
        text = next((data[k] for k in ("msg", "message", "error") if data.get(k)), None)
        if text is not None:
            return _one_line(redact(f"{code} {text}" if code is not None else text))
    return _snippet(orjson.dumps(data))


def _one_line(text: str) -> str:
    """A vendor's message fit for one log line: no control characters, bounded length."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    return flat if len(flat) <= _BODY_SNIPPET_CHARS else flat[:_BODY_SNIPPET_CHARS] + "…"


def _summarise_json(data: Any) -> str:
    """The shape of a JSON body for --debug: keys and row counts, never the values."""
    if isinstance(data, dict):
        parts = [f"keys={list(data)}"]
        parts += [
            f"{key}: {_rows(value)}" for key, value in data.items() if isinstance(value, list)
        ]
        return "; ".join(parts)
    if isinstance(data, list):
        return _rows(data)
    return f"a JSON {type(data).__name__}"


def _rows(rows: list[Any]) -> str:
    if not rows:
        return "0 rows"
    first = rows[0]
    if isinstance(first, dict):
        shape = f"first row keys={list(first)}"
    elif isinstance(first, list):
        shape = f"first row length {len(first)}"
    else:
        shape = f"first row a {type(first).__name__}"
    return f"{len(rows)} rows, {shape}"


def _summarise_bytes(fetched: Fetched) -> str:
    content_type = fetched.headers.get("Content-Type", "unknown type")
    if "json" in content_type:
        try:
            return _summarise_json(orjson.loads(fetched.body))
        except orjson.JSONDecodeError:
            pass
    return f"{len(fetched.body)} bytes ({content_type})"
