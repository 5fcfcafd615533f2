"""The API's web-facing rules in one place: served Host names, same-origin JSON-only writes,
bounded JSON nesting, and the security headers on every response."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from api.errors import BadRequest, Forbidden, UnsupportedMediaType
from api.settings import ApiSettings

#: Names that only this machine can put in a Host header or an Origin: always served.
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
#: Deepest JSON nesting a body may have: our bodies need 4, and the decoder recurses once per
#: level (past ~1000 it fails with a RecursionError instead of a clear 400).
MAX_JSON_DEPTH = 32
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The one inline style allowed: the <style> element Lightweight Charts 5.2.1 adds for its
#: TradingView attribution logo (its licence asks for the logo), allowed by its sha256.
CHART_LOGO_STYLE = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
#: Only this server's own files: the dashboard and Swagger UI load vendored scripts and
#: styles from /static, fetch JSON and the stream from here, and may not be framed.
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {CHART_LOGO_STYLE}; "
    "img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: bytes.translate arguments that keep only brackets, every opener as `[`, closer as `]`.
_UNIFY = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(netloc: str) -> str:
    """`Example.org:8000` -> `example.org`, `[::1]:8000` -> `::1` (lowercase, no port)."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    if netloc.count(":") == 1:
        netloc = netloc.partition(":")[0]
    return netloc.rstrip(".")


def served_hosts(settings: ApiSettings) -> frozenset[str]:
    """The Host names answered: loopback, the bind host, and BTCFS_API_ALLOWED_HOSTS."""
    return frozenset({*LOOPBACK_NAMES, host_name(settings.host), *settings.allowed_hosts})


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text opens more than `limit` arrays/objects inside each other
    (brackets inside strings do not count; unclosed ones do)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(_UNIFY, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte == 0x5B else -1
        if depth > limit:
            return True
    return False


def _clip(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


class WebGuard(ASGIMiddleware):
    """Every HTTP request: a served Host (DNS rebinding), then for writes a same-origin or
    absent Origin (cross-site forms and fetches), a JSON body (no CORS-simple text/plain or
    form posts) and a bounded nesting depth. Refusals raise ApiErrors: the usual error body."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: ApiSettings) -> None:
        self.hosts = served_hosts(settings)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            raise BadRequest(
                f"Host {_clip(host)!r} is not served here: add the name to BTCFS_API_ALLOWED_HOSTS",
                key="host",
            )
        if scope["type"] == ScopeType.HTTP and scope["method"] in WRITE_METHODS:
            self._check_origin(scope, headers)
            if _has_body(headers):
                _check_json_type(headers)
                # Checked as the handler reads the body, so guards (the admin token) still
                # run before any of it is read.
                receive = _depth_checked(receive)
        await next_app(scope, receive, send)

    def _check_origin(self, scope: Scope, headers: dict[str, str]) -> None:
        origin = headers.get("origin")
        if origin is None:
            return  # not a browser page's request: curl, scripts, the jobs worker
        if not self._same_origin(origin, scope.get("scheme", "http"), headers["host"]):
            raise Forbidden(
                f"cross-site write refused: Origin {_clip(origin)!r} is not this API's origin",
                key="origin",
            )

    def _same_origin(self, origin: str, scheme: str, host: str) -> bool:
        """The origin the request came to, or a served name of it on the same port (the
        dashboard opened at localhost posting to 127.0.0.1 is one machine, one server)."""
        try:
            parts = urlsplit(origin)
            if parts.scheme != scheme or not parts.hostname:
                return False  # also `null`: sandboxed frames, file:// pages
            if parts.netloc.lower() == host.lower():
                return True
            port = parts.port or _default_port(scheme)
            return parts.hostname in self.hosts and port == _port(host, scheme)
        except ValueError:
            return False


def _check_json_type(headers: dict[str, str]) -> None:
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"request bodies must be application/json, not {_clip(media_type) or 'unset'!r}",
            key="content-type",
        )


def _depth_checked(receive: Receive) -> Receive:
    """`receive` that refuses a JSON body nested too deep once its last chunk is in (the
    body limit has capped what is buffered), before anything parses it."""
    chunks: list[bytes] = []

    async def checked() -> ReceiveMessage:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                chunks.clear()
                if json_depth_exceeds(body):
                    raise BadRequest(
                        f"JSON body nested more than {MAX_JSON_DEPTH} levels deep", key="body"
                    )
        return message

    return checked


def _has_body(headers: dict[str, str]) -> bool:
    if "transfer-encoding" in headers:
        return True
    try:
        return int(headers.get("content-length") or 0) > 0
    except ValueError:
        return True


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def _port(netloc: str, scheme: str) -> int | None:
    try:
        return urlsplit(f"//{netloc}").port or _default_port(scheme)
    except ValueError:
        return None


async def security_headers(message: Message, scope: Scope) -> None:
    """before_send hook: every response, routed or not, carries the headers."""
    if message["type"] == "http.response.start":
        existing = {name.lower() for name, _ in message.get("headers", [])}
        message["headers"] = [
            *message.get("headers", []),
            *((name, value) for name, value in _HEADERS if name not in existing),
        ]
