"""Page cursors (api.cursor): what a cursor holds comes back only from a cursor this API
signed for the same query; anything else is a 422 naming `cursor`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.cursor import BACKWARD, CURSOR_CHARS, FORWARD, CursorCodec, Position, fingerprint, load_key
from api.errors import InvalidInput
from api.settings import ApiSettings

AT = datetime(2025, 1, 31, 12, 5, 0, 123456, tzinfo=UTC)
QUERY = fingerprint("/v1/bars", "BTCUSDT", "5m", AT, None)


def refused(codec: CursorCodec, cursor: str, query: bytes = QUERY) -> str:
    with pytest.raises(InvalidInput) as caught:
        codec.decode(cursor, query, "/v1/bars")
    assert caught.value.extra == {"key": "cursor"}
    return caught.value.detail


def test_a_cursor_holds_its_position_for_its_query_only() -> None:
    codec = CursorCodec(b"k" * 32)
    for direction in (FORWARD, BACKWARD):
        cursor = codec.encode(Position(direction, AT), QUERY)
        assert len(cursor) == CURSOR_CHARS and cursor.isascii()
        assert codec.decode(cursor, QUERY, "/v1/bars") == Position(direction, AT)
    cursor = codec.encode(Position(FORWARD, AT), QUERY)
    # a date alone and its midnight are one query; another symbol, interval, time or
    # endpoint is another
    midnight = datetime(2025, 1, 31, tzinfo=UTC)
    assert fingerprint("/v1/bars", "BTCUSDT", "5m", midnight, None) == fingerprint(
        "/v1/bars", "BTCUSDT", "5m", datetime.fromisoformat("2025-01-31T00:00:00+00:00"), None
    )
    for other in (
        fingerprint("/v1/features", "BTCUSDT", "5m", AT, None),
        fingerprint("/v1/bars", "ETHUSDT", "5m", AT, None),
        fingerprint("/v1/bars", "BTCUSDT", "1h", AT, None),
        fingerprint("/v1/bars", "BTCUSDT", "5m", None, None),
        fingerprint("/v1/bars", "BTCUSDT", "5m", AT, AT),
    ):
        assert "it pages another query" in refused(codec, cursor, other)


def test_malformed_altered_and_foreign_cursors_are_refused() -> None:
    codec = CursorCodec(b"k" * 32)
    cursor = codec.encode(Position(FORWARD, AT), QUERY)
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=="))
    for index in range(len(raw)):  # any byte changed: the tag no longer matches
        altered = bytearray(raw)
        altered[index] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(altered)).decode().rstrip("=")
        assert "altered, or not issued by this API" in refused(codec, text)
    for bad in ("", "abc", cursor[:-1], cursor + "A", cursor[:-1] + "=", "' or 1=1 --",
                "A" * CURSOR_CHARS, "%00" * 20, "é" * CURSOR_CHARS):  # fmt: skip
        refused(codec, bad)
    assert "not issued by this API" in refused(CursorCodec(b"other key" * 4), cursor)


def test_the_key_is_made_once_and_shared(tmp_path: Path) -> None:
    key = load_key(None, tmp_path / "state")
    assert len(key) == 32 and load_key(None, tmp_path / "state") == key
    assert (tmp_path / "state" / "cursor.key").stat().st_mode & 0o777 == 0o600
    assert list((tmp_path / "state").iterdir()) == [tmp_path / "state" / "cursor.key"]
    assert load_key("a configured key of 32 characters", tmp_path) == (
        b"a configured key of 32 characters"
    )
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")


def test_a_short_configured_key_refuses_to_start(tmp_path: Path) -> None:
    env = {"BTCFS_DATA_DIR": str(tmp_path), "BTCFS_API_CURSOR_KEY": "x" * 15}
    with pytest.raises(ValueError, match="BTCFS_API_CURSOR_KEY is 15 characters"):
        ApiSettings.from_env(env)
    settings = ApiSettings.from_env({**env, "BTCFS_API_CURSOR_KEY": "x" * 16})
    assert settings.cursor_key == "x" * 16 and "x" * 16 not in repr(settings)
    assert "BTCFS_API_CURSOR_KEY" not in settings.worker_env  # jobs never see it
