"""Keep API keys out of log lines, error messages and URLs: one process-wide set of secrets.

Secrets are registered once (every `HttpClient` registers its keys) and stay registered for the
life of the process, so a line logged after a client is closed is still redacted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"

# Query parameters whose values are credentials whatever their value (FRED's api_key,
# CoinAPI's apikey, generic token/key) plus Binance's request signature.
SENSITIVE_PARAMS = frozenset(
    {"api_key", "apikey", "token", "key", "access_token", "secret", "signature"}
)

# Header names that carry credentials: CG-API-KEY, X-CoinAPI-Key, X-MBX-APIKEY,
# Authorization (CryptoQuant's bearer token), cookies.
_SENSITIVE_HEADER_RE = re.compile(r"key|token|secret|auth|cookie|signature", re.IGNORECASE)

_QUERY_SECRET_RE = re.compile(
    r"(?P<prefix>[?&;](?:" + "|".join(sorted(SENSITIVE_PARAMS)) + r")=)[^&#;\s\"'<>]*",
    re.IGNORECASE,
)

# A URL's userinfo (`https://user:pass@host`, or a token as the user name): everything
# between `scheme://` and the authority's last '@' (a password may hold an unencoded '@').
_USERINFO_RE = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s/?#\"'<>]*@", re.IGNORECASE)

# Shorter values would turn ordinary words into *** everywhere; no real key is this short.
_MIN_SECRET_LEN = 4


def is_sensitive_param(name: str) -> bool:
    """True for a query parameter whose value is a credential."""
    return name.lower() in SENSITIVE_PARAMS


def is_sensitive_header(name: str) -> bool:
    """True for a header whose value is a credential."""
    return bool(_SENSITIVE_HEADER_RE.search(name))


class _Registry:
    """The registered secrets and one regex that matches any of them (longest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | None]) -> None:
        with self._lock:
            before = len(self._secrets)
            for value in values:
                if not value or len(value) < _MIN_SECRET_LEN:
                    continue
                # The URL-encoded spellings too: a key with '/' or '+' appears encoded in URLs.
                self._secrets.update({value, quote(value, safe=""), quote_plus(value)})
            if len(self._secrets) != before:
                alternatives = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def redact(self, text: str) -> str:
        pattern = self._pattern  # one read: a concurrent add() swaps in a new compiled pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _USERINFO_RE.sub(rf"\g<scheme>{REDACTED}@", text)
        return _QUERY_SECRET_RE.sub(rf"\g<prefix>{REDACTED}", text)


_REGISTRY = _Registry()


def register_secrets(values: Iterable[str | None]) -> None:
    """Add values (API keys, tokens) that must never appear in logs or errors."""
    _REGISTRY.add(values)


def redact(text: object) -> str:
    """`str(text)` with every registered secret, every secret query value and every URL's
    userinfo (`https://user:pass@host` -> `https://***@host`) replaced by ***."""
    return _REGISTRY.redact(str(text))


def redact_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of query params fit for a log line: credential params and secret values masked."""
    if not params:
        return {}
    return {
        name: REDACTED if is_sensitive_param(name) else _redact_value(value)
        for name, value in params.items()
    }


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of headers fit for a log line: credential headers masked."""
    if not headers:
        return {}
    return {
        name: REDACTED if is_sensitive_header(name) else redact(value)
        for name, value in headers.items()
    }


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack text with secrets replaced by ***.

    A filter on a logger only sees records logged on that very logger (not its children), so
    attach this to handlers to cover a whole hierarchy; `install_log_redaction` puts it on the
    loggers this package and httpx log to.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_INSTALL_LOCK = threading.Lock()


def install_log_redaction(logger_names: Iterable[str] = ("ingest", "ingest.http", "httpx")) -> None:
    """Attach one RedactingFilter to each named logger (idempotent).

    `httpx` matters: it logs every request URL at INFO, query string (and any ?apikey=) included.
    """
    with _INSTALL_LOCK:
        for name in logger_names:
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactingFilter) for f in logger.filters):
                logger.addFilter(RedactingFilter())
