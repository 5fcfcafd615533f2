"""Opaque page cursors of the range endpoints: a keyset position (the open time a page ended
at, and which way the pages run) bound to the query it pages, signed so that a cursor this
API did not issue, or issued for another query, is refused instead of read.

A cursor is 34 bytes in URL-safe base64 (46 characters): version, direction, the open time
in epoch microseconds, a fingerprint of the query (endpoint, symbol, interval, start, end)
and an HMAC-SHA256 tag over all of it. Its time only ever becomes a bound SQL parameter.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.errors import InvalidInput

_VERSION = 1
#: version, direction, open time (us), query fingerprint; then the tag
_BODY = struct.Struct(">BBq8s")
_TAG_BYTES = 16
_LENGTH = _BODY.size + _TAG_BYTES
#: 34 bytes in unpadded URL-safe base64
CURSOR_CHARS = 46
_SHAPE = re.compile(rf"^[A-Za-z0-9_-]{{{CURSOR_CHARS}}}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: Where a cursor may point (the range endpoints' open bounds).
_FIRST_US = 0
_LAST_US = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // _US

#: Pages run forward (with `start`: later rows next) or backward (without: older rows next).
FORWARD, BACKWARD = 0, 1

_ADVICE = "pass the `next` link of the previous page (or its `next_cursor`) as it is"


@dataclass(frozen=True)
class Position:
    """Where the next page starts: after `open_time` (forward) or before it (backward)."""

    direction: int
    open_time: datetime


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def fingerprint(endpoint: str, *parts: str | datetime | None) -> bytes:
    """What a cursor is bound to: the endpoint and the values that choose its rows (times
    as UTC microseconds, so `2025-01-31` and `2025-01-31T00:00:00Z` are one query)."""
    text = "\n".join(
        [endpoint]
        + [
            "-" if part is None else str(_micros(part)) if isinstance(part, datetime) else part
            for part in parts
        ]
    )
    return hashlib.sha256(text.encode()).digest()[:8]


class CursorCodec:
    """Issues and reads cursors with one key (see `load_key`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = key

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, position: Position, query: bytes) -> str:
        body = _BODY.pack(_VERSION, position.direction, _micros(position.open_time), query)
        return base64.urlsafe_b64encode(body + self._tag(body)).decode().rstrip("=")

    def decode(self, cursor: str, query: bytes, endpoint: str) -> Position:
        """The position a cursor holds; a 422 naming `cursor` when it is malformed, was not
        issued by this API (altered, or signed with another key), or pages another query."""
        if not _SHAPE.match(cursor):
            raise InvalidInput(
                f"cursor: not a cursor of this API ({CURSOR_CHARS} URL-safe base64 "
                f"characters expected): {_ADVICE}",
                key="cursor",
            )
        try:
            raw = base64.urlsafe_b64decode(cursor + "==")
        except (binascii.Error, ValueError):  # pragma: no cover - the shape rules it out
            raw = b""
        body, tag = raw[: _BODY.size], raw[_BODY.size :]
        if len(raw) != _LENGTH or not hmac.compare_digest(tag, self._tag(body)):
            raise InvalidInput(
                f"cursor: altered, or not issued by this API: {_ADVICE}", key="cursor"
            )
        version, direction, micros, bound = _BODY.unpack(body)
        if version != _VERSION or direction not in (FORWARD, BACKWARD):
            raise InvalidInput(f"cursor: of an unknown version: {_ADVICE}", key="cursor")
        if not hmac.compare_digest(bound, query):
            raise InvalidInput(
                f"cursor: it pages another query; a cursor is valid on {endpoint} with the "
                "symbol, interval, start and end it was issued for (limit and format may "
                "change)",
                key="cursor",
            )
        if not _FIRST_US <= micros <= _LAST_US:  # pragma: no cover - signed by us
            raise InvalidInput("cursor: its time is out of range", key="cursor")
        return Position(direction, _EPOCH + micros * _US)


def load_key(configured: str | None, folder: Path) -> bytes:
    """The signing key: BTCFS_API_CURSOR_KEY when set (every API host behind one address
    needs the same), else a random key kept in `folder`/cursor.key, made once, so cursors
    outlive a restart and every worker on this machine reads the same key."""
    if configured:
        return configured.encode()
    path = folder / "cursor.key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # written whole under a private name, then linked: a worker starting beside this
        # one reads either no key or the whole one, and the first link wins
        draft = folder / f".cursor.key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    return path.read_bytes()
