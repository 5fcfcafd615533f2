"""The CSV road for regular kline pages must agree with the general JSON parser on any page."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.binance.parse import _regular_page, parse_kline_pages, parse_klines

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OPTIONS = {
    "dataset": "spot_klines",
    "interval_us": 60_000_000,
    "source": "rest",
    "ingested_at": NOW,
}


def row(i: int, ignore: object = "0") -> list[object]:
    t = 1_700_000_040_000 + 60_000 * i
    return [t, "100.5", "101", "99.5", "100", "2.5", t + 59_999, "250", 7, "1", "100", ignore]


def both(body: bytes):
    fast = parse_kline_pages([body], **OPTIONS)
    slow = parse_klines(orjson.loads(body), **OPTIONS)
    return fast, slow


def assert_same(body: bytes) -> None:
    fast, slow = both(body)
    assert fast.table.equals(slow.table)
    assert (
        fast.quarantine.column("reason").to_pylist() == slow.quarantine.column("reason").to_pylist()
    )
    assert fast.quarantine.column("raw").to_pylist() == slow.quarantine.column("raw").to_pylist()


HOSTILE = {
    "empty row between rows": b"["
    + b",".join([orjson.dumps(row(0)), b"[]", orjson.dumps(row(1))])
    + b"]",
    "row split hidden in a string": orjson.dumps([row(0, ignore="a],[b"), row(1)]),
    "comma inside a string": orjson.dumps([row(0, ignore="1,2"), row(1)]),
    "bracket inside a decimal": orjson.dumps([[*row(0)[:1], "1[2", *row(0)[2:]], row(1)]),
    "number instead of string": orjson.dumps([[*row(0)[:1], 100.5, *row(0)[2:]], row(1)]),
    "nested array": orjson.dumps([[*row(0)[:11], [0]], row(1)]),
    "13 fields": orjson.dumps([[*row(0), "x"], row(1)]),
    "11 fields": orjson.dumps([row(0)[:11], row(1)]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_irregular_pages_parse_like_json(name):
    body = HOSTILE[name]
    try:
        expected = parse_klines(orjson.loads(body), **OPTIONS)
    except Exception as exc:  # the general path refuses the page: so must the fast one
        with pytest.raises(type(exc)):
            parse_kline_pages([body], **OPTIONS)
        return
    got = parse_kline_pages([body], **OPTIONS)
    assert got.table.equals(expected.table), name
    assert (
        got.quarantine.column("reason").to_pylist()
        == expected.quarantine.column("reason").to_pylist()
    )


def test_an_empty_row_is_quarantined_not_skipped():
    fast = parse_kline_pages([HOSTILE["empty row between rows"]], **OPTIONS)
    assert fast.table.num_rows == 2
    assert fast.quarantine.column("reason").to_pylist() == ["row does not have 12 fields"]


def test_regular_pages_take_the_fast_path():
    assert _regular_page(orjson.dumps([row(i) for i in range(3)])) is not None
    assert _regular_page(b" [] ") == (b"[]", 0)


def test_futures_pages_take_the_csv_road_too():
    # Premium-index bars go below zero; perpetual bars have fewer decimals; mark bars no volume.
    premium = [1_700_000_040_000, "-0.00013768", "-0.00012902", "-0.00014872", "-0.00014852", "0",
               1_700_000_099_999, "0", 12, "0", "0", "0"]  # fmt: skip
    perp = [1_700_000_040_000, "90996.70", "91052.40", "90933.10", "91001.20", "15.761",
            1_700_000_099_999, "1434791.21234", 223, "9.238", "840974.6", "0"]  # fmt: skip
    for body in (orjson.dumps([premium]), orjson.dumps([perp])):
        assert _regular_page(body) == (body, 1)
    options = {**OPTIONS, "dataset": "premium_klines"}
    parsed = parse_kline_pages([orjson.dumps([premium])], **options)
    assert parsed.table.num_rows == 1 and parsed.quarantine.num_rows == 0


def test_a_page_that_is_not_json_is_refused_even_in_the_regular_shape():
    from ingest.errors import MalformedResponse

    body = orjson.dumps([row(0), row(1)])
    for broken in (body.replace(b'5",', b'"5,', 1), body.replace(b"[1", b"[01", 1)):
        assert _regular_page(broken) is None  # the right shape, but not JSON
        with pytest.raises(MalformedResponse):
            parse_kline_pages([broken], **OPTIONS)


decimal_text = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False).map(str)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(decimal_text, decimal_text, st.integers(0, 10**6)), min_size=1, max_size=30)
)
def test_random_pages_agree(values):
    rows = []
    for i, (a, b, trades) in enumerate(values):
        lo, hi = sorted([a, b], key=float)
        t = 1_700_000_040_000 + 60_000 * i
        rows.append([t, lo, hi, lo, hi, a, t + 59_999, b, trades, "0", "0", "0"])
    assert_same(orjson.dumps(rows))


def test_a_page_with_a_lost_quote_is_refused_not_read_leniently():
    from ingest.errors import MalformedResponse

    body = orjson.dumps([row(0), row(1)])
    broken = body[:-3] + b"]]"  # the last string's closing quote is gone: not JSON
    assert _regular_page(broken) is None
    with pytest.raises(MalformedResponse):
        parse_kline_pages([broken], **OPTIONS)


def test_only_a_line_starting_with_a_letter_is_a_csv_header():
    from ingest.binance.archive import _has_header

    assert _has_header(b"open_time,open,high\n1,2,3\n")
    assert not _has_header(b"1700000000000,1,2\n")
    assert not _has_header(b'"1700000000000","1"\n')  # quoted data row: keep it
