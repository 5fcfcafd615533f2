"""URL userinfo redaction: `https://user:pass@host` never reaches a log line, an error or a
job's parameters as it was written."""

from __future__ import annotations

import logging

import pytest

from core.redact import RedactingFilter, redact, redact_params


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@example.com/x?y=1", "https://***@example.com/x?y=1"),
        ("GET http://u:p4ss@127.0.0.1:8080/api", "GET http://***@127.0.0.1:8080/api"),
        # A token as the user name, no password.
        ("clone https://ghp_abcdef123456@github.com/o/r", "clone https://***@github.com/o/r"),
        # An unencoded '@' in the password: everything up to the host goes.
        ("http://user:p@ss@host:80/a", "http://***@host:80/a"),
        ("redis://:hunter22@cache:6379/0", "redis://***@cache:6379/0"),
        # Quoted, in JSON, at the end of a line, twice on one line.
        ('{"base_url": "https://a:b@h/"}', '{"base_url": "https://***@h/"}'),
        ("'ftp://x:y@h' and HTTPS://k:v@H2", "'ftp://***@h' and HTTPS://***@H2"),
        # With a secret query value too: both are masked.
        ("https://u:p@h/q?apikey=zz&s=1", "https://***@h/q?apikey=***&s=1"),
        # Already redacted: unchanged.
        ("https://***@h/", "https://***@h/"),
    ],
)
def test_url_userinfo_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://example.com/path@version",  # '@' in the path is not userinfo
        "http://example.com/?q=a@b",  # nor in the query
        "http://example.com#frag@x",
        "mail alice@example.com about http://example.com",  # an address, not a URL
        "user:pass@host",  # no scheme: not a URL
    ],
)
def test_an_at_sign_outside_the_authority_is_kept(text: str) -> None:
    assert redact(text) == text


def test_structured_params_are_redacted() -> None:
    params = {"base_url": "https://user:s3cret-pw@vendor.example/api", "symbols": ["BTCUSDT"]}
    assert redact_params(params) == {
        "base_url": "https://***@vendor.example/api",
        "symbols": ["BTCUSDT"],
    }


def test_log_records_are_redacted() -> None:
    record = logging.LogRecord(
        "ingest", logging.INFO, __file__, 1, "fetching %s", ("https://u:pw123@h/x",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "fetching https://***@h/x"


def test_a_long_line_without_userinfo_is_quick() -> None:
    """No backtracking blow-up on an authority that never ends in '@'."""
    line = "http://" + "a" * 200_000
    assert redact(line) == line
