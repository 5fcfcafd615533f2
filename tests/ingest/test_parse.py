"""ingest.binance.parse: typed kline/funding/OI rows, quarantine reasons, the CSV fast path."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.binance.parse import (
    Parsed,
    kline_page_summary,
    klines_from_csv_bytes,
    parse_funding,
    parse_kline_pages,
    parse_klines,
    parse_open_interest,
    quarantine_rows,
)
from ingest.errors import IngestError, MalformedResponse, SchemaDrift
from lake.schemas import FUNDING_SCHEMA, KLINE_SCHEMA, OPEN_INTEREST_SCHEMA, QUARANTINE_SCHEMA
from lake.store import table_data_sha256
from tests.ingest.binance_fakes import MINUTE_MS, REAL_1M, kline_row, requires_real_data

NOW = datetime(2025, 6, 1, tzinfo=UTC)
MIN_US = 60_000_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, ms
REAL_ROW = [
    1748131200000000, "106454.27000000", "106500.00000000", "106400.01000000",
    "106480.99000000", "12.34567000", 1748131259999999, "1314306.12345678", 1234,
    "6.00000000", "638725.62000000", "0",
]  # fmt: skip


def klines(rows: Sequence[Any], **kw: Any) -> Parsed:
    options: dict[str, Any] = {
        "dataset": "spot_klines",
        "interval_us": MIN_US,
        "source": "rest",
        "ingested_at": NOW,
    }
    options.update(kw)
    return parse_klines(rows, **options)


def pages(bodies: Sequence[bytes], **kw: Any) -> Parsed:
    options: dict[str, Any] = {
        "dataset": "spot_klines",
        "interval_us": MIN_US,
        "source": "rest",
        "ingested_at": NOW,
    }
    options.update(kw)
    return parse_kline_pages(bodies, **options)


def reasons(parsed: Parsed) -> list[str]:
    return parsed.quarantine.column("reason").to_pylist()


def with_field(row: list[Any], index: int, value: Any) -> list[Any]:
    out = list(row)
    out[index] = value
    return out


# ---- klines: values and schema ------------------------------------------------------------


def test_kline_values_are_exact_decimals_and_utc_microseconds() -> None:
    parsed = klines([REAL_ROW])
    assert parsed.table.schema == KLINE_SCHEMA
    assert parsed.quarantine.num_rows == 0
    row = parsed.table.to_pylist()[0]
    assert row["open"] == Decimal("106454.27000000")
    assert str(row["open"]) == "106454.27000000"
    assert row["quote_volume"] == Decimal("1314306.12345678")
    assert row["open_time"] == datetime(2025, 5, 25, tzinfo=UTC)
    assert row["close_time"] == datetime(2025, 5, 25, 0, 0, 59, 999_999, tzinfo=UTC)
    assert row["trade_count"] == 1234
    assert row["source"] == "rest"
    assert row["ingested_at"] == NOW


def test_ms_and_us_rows_land_on_one_monotonic_timeline() -> None:
    ms_row = kline_row(1_735_689_540_000)  # 2024-12-31 23:59 in ms
    us_row = with_field(kline_row(1_735_689_600_000), 0, 1_735_689_600_000_000)
    us_row[6] = 1_735_689_659_999_999
    parsed = klines([ms_row, us_row])
    times = [t.timestamp() for t in parsed.table.column("open_time").to_pylist()]
    assert parsed.quarantine.num_rows == 0
    assert times == [1_735_689_540.0, 1_735_689_600.0]


def test_empty_input() -> None:
    assert klines([]).table.num_rows == 0
    assert pages([b"[]", b"[]"]).table.num_rows == 0
    assert pages([]).table.schema == KLINE_SCHEMA


# ---- klines: quarantine reasons -----------------------------------------------------------

GOOD = kline_row(T0)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (with_field(GOOD, 1, "abc"), "unparsable open"),
        (with_field(GOOD, 1, "1.123456789"), "unparsable open"),  # more than 8 decimals
        (with_field(GOOD, 5, ""), "unparsable volume"),
        (with_field(GOOD, 5, None), "missing volume"),
        (with_field(GOOD, 0, None), "missing open_time"),
        (with_field(GOOD, 8, "x"), "unparsable trade_count"),
        (with_field(with_field(GOOD, 2, "1.00000000"), 3, "2.00000000"), "OHLC inconsistent"),
        (with_field(GOOD, 2, "29000.00000000"), "OHLC inconsistent"),  # high < open
        (with_field(GOOD, 5, "-1.00000000"), "negative volume or trade count"),
        (with_field(GOOD, 8, -1), "negative volume or trade count"),
        (with_field(GOOD, 9, "999999.00000000"), "taker buy volume exceeds volume"),
        (with_field(with_field(GOOD, 0, T0 + 1), 6, T0 + 60_000), "not on the interval grid"),
        (with_field(GOOD, 6, T0 + 60_000), "close_time outside the bar"),
        (with_field(GOOD, 6, T0 - 1), "close_time outside the bar"),
        (with_field(with_field(GOOD, 0, 0), 6, 59_999), "open_time out of range"),
        (with_field(with_field(GOOD, 0, -60_000), 6, -1), "open_time out of range"),
        (GOOD[:11], "row does not have 12 fields"),
        ([*GOOD, "extra"], "row does not have 12 fields"),
        ("not a row", "row does not have 12 fields"),
        ({"open_time": T0}, "row does not have 12 fields"),
    ],
)
def test_bad_kline_is_quarantined_with_its_reason(row: Any, reason: str) -> None:
    neighbour = kline_row(T0 + MINUTE_MS)
    parsed = klines([row, neighbour])
    assert parsed.table.num_rows == 1, "the good neighbour lands"
    assert parsed.table.column("open_time").to_pylist()[0].timestamp() * 1000 == T0 + MINUTE_MS
    assert len(reasons(parsed)) == 1
    assert reason in reasons(parsed)[0]
    # The quarantined row is kept exactly as received (JSON-encoded).
    assert json.loads(parsed.quarantine.column("raw")[0].as_py()) == row
    assert parsed.quarantine.schema == QUARANTINE_SCHEMA


def test_all_null_row_is_not_landed_as_zeros() -> None:
    """A row of nulls must not become a 1970 bar of zero prices (premium allows <= 0)."""
    parsed = klines([[None] * 12, GOOD], dataset="premium_klines")
    assert parsed.table.num_rows == 1
    assert reasons(parsed) == ["missing open_time"]


def test_non_positive_price_only_allowed_for_premium_klines() -> None:
    negative = GOOD[:]
    negative[1:5] = ["-0.00010000", "0.00020000", "-0.00030000", "0.00000000"]
    assert reasons(klines([negative])) == ["non-positive price"]
    parsed = klines([negative], dataset="premium_klines")
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.column("low").to_pylist() == [Decimal("-0.00030000")]


def test_all_rows_of_a_new_width_is_schema_drift() -> None:
    with pytest.raises(SchemaDrift, match="expected 12"):
        klines([[*GOOD, "x"], [*kline_row(T0 + MINUTE_MS), "x"]])
    with pytest.raises(SchemaDrift):
        klines([{"a": 1}, "x"])
    with pytest.raises(SchemaDrift):
        pages([orjson.dumps([GOOD[:9]])])


@pytest.mark.parametrize(
    "body", [b'{"code":-1121,"msg":"Invalid symbol."}', b'"x"', b"null", b"12", b"[[1,2", b""]
)
def test_non_list_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponse):
        pages([body])


def test_identical_duplicates_collapse_and_are_counted() -> None:
    other = kline_row(T0 + MINUTE_MS)
    parsed = klines([GOOD, other, GOOD, GOOD])
    assert parsed.table.num_rows == 2
    assert parsed.duplicates_identical == 2
    assert parsed.quarantine.num_rows == 0


def test_conflicting_duplicates_are_all_quarantined() -> None:
    changed = with_field(GOOD, 8, GOOD[8] + 1)  # another trade count
    other = kline_row(T0 + MINUTE_MS)
    # Two copies of one version and one of another: every row at that key goes to quarantine.
    parsed = klines([GOOD, changed, other, GOOD])
    assert parsed.table.num_rows == 1
    assert parsed.duplicates_identical == 0
    assert reasons(parsed) == ["duplicate open_time with conflicting values"] * 3
    raws = [json.loads(r) for r in parsed.quarantine.column("raw").to_pylist()]
    assert raws == [GOOD, changed, GOOD]
    assert {t.timestamp() for t in parsed.quarantine.column("event_time").to_pylist()} == {
        T0 / 1000
    }


def test_first_reason_wins_and_event_time_is_kept_when_parsable() -> None:
    row = with_field(with_field(GOOD, 2, "1.00000000"), 5, "-1")
    parsed = klines([row, with_field(GOOD, 0, "nope")])
    assert reasons(parsed) == ["OHLC inconsistent", "unparsable open_time"]
    assert parsed.quarantine.column("event_time").to_pylist() == [
        datetime(2024, 1, 1, tzinfo=UTC),
        None,
    ]


# ---- the real halt-day bar ----------------------------------------------------------------


@requires_real_data
def test_real_halt_bar_with_truncated_close_time_is_accepted() -> None:
    data = gzip.decompress((REAL_1M / "BTCUSDT-1m-2023-03-24.csv.gz").read_bytes())
    line = next(x for x in data.decode().splitlines() if ",1679661581646," in x)
    parsed = klines([line.split(",")], interval_us=MIN_US)
    assert parsed.quarantine.num_rows == 0
    row = parsed.table.to_pylist()[0]
    assert row["open_time"] == datetime(2023, 3, 24, 12, 39, tzinfo=UTC)
    assert row["close_time"] == datetime(2023, 3, 24, 12, 39, 41, 646_000, tzinfo=UTC)
    assert row["volume"] == Decimal(0)
    csv = klines_from_csv_bytes(
        data, dataset="spot_klines", interval_us=MIN_US, source="archive", ingested_at=NOW
    )
    assert csv.quarantine.num_rows == 0
    assert csv.table.num_rows == 1360


# ---- pages: the CSV fast path equals the general path -------------------------------------


def _general(bodies: Sequence[bytes], **kw: Any) -> Parsed:
    rows: list[Any] = []
    for body in bodies:
        rows.extend(orjson.loads(body))
    return klines(rows, **kw)


def test_fast_and_general_paths_agree_on_a_regular_page() -> None:
    body_a = orjson.dumps([kline_row(T0 + i * MINUTE_MS) for i in range(1000)])
    body_b = orjson.dumps([kline_row(T0 + i * MINUTE_MS) for i in range(1000, 1440)])
    fast = pages([body_a, body_b])
    general = _general([body_a, body_b])
    assert fast.table.equals(general.table)
    assert fast.table.num_rows == 1440
    assert table_data_sha256(fast.table) == table_data_sha256(general.table)


def _decimal_text(low: int = 0) -> st.SearchStrategy[str]:
    """Decimal strings as Binance and odd-but-valid writers send them: 1, 1.5, 1.50000000."""
    return st.builds(
        lambda whole, frac, digits: (
            f"{whole}.{frac:08d}"[: len(str(whole)) + 1 + digits] if digits else str(whole)
        ),
        st.integers(low, 10**12),
        st.integers(0, 10**8 - 1),
        st.integers(0, 8),
    )


@st.composite
def kline_pages(draw: st.DrawFn) -> list[bytes]:
    """Random valid kline pages, with identical duplicates and µs rows mixed in."""
    n = draw(st.integers(1, 40))
    start = draw(st.integers(1_500_000_000_000 // MINUTE_MS, 1_800_000_000_000 // MINUTE_MS))
    rows = []
    for i in range(n):
        open_ms = (start + i) * MINUTE_MS
        prices = sorted(draw(st.lists(_decimal_text(1), min_size=4, max_size=4)), key=Decimal)
        low, a, b, high = prices
        o, c = (a, b) if draw(st.booleans()) else (b, a)
        volume = draw(_decimal_text())
        share = Decimal(draw(st.sampled_from(["0", "0.5", "1"])))
        taker = f"{(Decimal(volume) * share).quantize(Decimal('0.00000001')):f}"
        row: list[Any] = [
            open_ms, o, high, low, c, volume, open_ms + MINUTE_MS - 1, draw(_decimal_text()),
            draw(st.integers(0, 10**9)), taker, draw(_decimal_text()), draw(st.sampled_from("01")),
        ]  # fmt: skip
        if draw(st.booleans()):  # spot archive 2025+: µs
            row[0], row[6] = open_ms * 1000, (open_ms + MINUTE_MS) * 1000 - 1
        rows.append(row)
        if draw(st.integers(0, 9)) == 0:
            rows.append(list(row))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=3)))
    bounds = [0, *cuts, len(rows)]
    return [orjson.dumps(rows[a:b]) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kline_pages())
def test_property_fast_path_equals_general_path(bodies: list[bytes]) -> None:
    fast = pages(bodies)
    general = _general(bodies)
    assert fast.quarantine.num_rows == 0 == general.quarantine.num_rows
    assert fast.table.equals(general.table)
    assert fast.duplicates_identical == general.duplicates_identical
    assert table_data_sha256(fast.table) == table_data_sha256(general.table)
    for body in bodies:
        rows = orjson.loads(body)
        count, last = kline_page_summary(body)
        assert count == len(rows)
        assert last == (rows[-1][0] if rows else None)


def test_a_bad_row_sends_the_window_through_the_json_path() -> None:
    bad = with_field(kline_row(T0 + MINUTE_MS), 2, "1.00000000")  # high < low
    body = orjson.dumps([GOOD, bad])
    parsed = pages([body])
    assert reasons(parsed) == ["OHLC inconsistent"]
    assert json.loads(parsed.quarantine.column("raw")[0].as_py()) == bad  # as received


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (5, "", "unparsable volume"),
        # 21 integer digits: beyond DECIMAL(28, 8), though the text itself has only 22 digits
        # (the CSV reader parses it at scale 1 and rescales without a precision check).
        (7, "123456789012345678901.1", "unparsable quote_volume"),
        (7, "-99999999999999999999999", "unparsable quote_volume"),
    ],
)
def test_values_that_pass_the_fast_paths_character_check_still_quarantine(
    index: int, value: str, reason: str
) -> None:
    bad = with_field(GOOD, index, value)
    parsed = pages([orjson.dumps([bad, kline_row(T0 + MINUTE_MS)])])
    assert parsed.table.num_rows == 1
    assert reasons(parsed) == [reason]
    csv = klines_from_csv_bytes(
        ",".join(map(str, bad)).encode(),
        dataset="spot_klines",
        interval_us=MIN_US,
        source="archive",
        ingested_at=NOW,
    )
    assert csv.table.num_rows == 0
    assert reasons(csv) == [reason]


def test_page_summary_on_both_paths() -> None:
    rows = [kline_row(T0 + i * MINUTE_MS) for i in range(3)]
    compact = orjson.dumps(rows)
    pretty = json.dumps(rows, indent=1).encode()  # not the regular shape: general path
    assert kline_page_summary(compact) == (3, T0 + 2 * MINUTE_MS)
    assert kline_page_summary(pretty) == (3, T0 + 2 * MINUTE_MS)
    assert kline_page_summary(b"[]") == (0, None)
    assert kline_page_summary(b" [ ] ") == (0, None)
    with pytest.raises(MalformedResponse):
        kline_page_summary(b'{"code":-1121,"msg":"Invalid symbol."}')


@pytest.mark.parametrize(
    "body",
    [
        b'[[1.5,"1","1","1","1","1",2,"1","1","1","1","0"]]',  # valid JSON, float open time
        b'[[,"1","1","1","1","1",2,"1",1,"1","1","0"],[-,"1","1","1","1","1",2,"1",1,"1","1","0"]]',
        b"[[1e400]]",
        b"[null]",
        b"[[]]",
        b'[["x"]]',
        b"[{}]",
    ],
)
def test_page_summary_never_crashes(body: bytes) -> None:
    try:
        count, last = kline_page_summary(body)
    except MalformedResponse:
        return
    assert count == 1
    assert last == 1


# ---- hostile inputs -----------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    10**30, -(10**30), 2**63, 2**64 - 1, 1e308, float("nan"), float("inf"), "NaN", "nan", "inf",
    "-Infinity", "", " ", "1e5", "0x10", "１２３", "😀", "\x00", "null", None, True, [1, 2],
    [[1]], {"a": [1, {"b": None}]}, {}, [], "9" * 400, "1" + "0" * 40 + ".5", "-0.00000000",
]  # fmt: skip


@pytest.mark.parametrize("index", range(12))
def test_hostile_values_in_any_kline_field_never_crash(index: int) -> None:
    rows = [
        with_field(kline_row(T0 + i * MINUTE_MS), index, value)
        for i, value in enumerate(HOSTILE_VALUES)
    ]
    parsed = klines(rows)
    assert parsed.table.num_rows + parsed.quarantine.num_rows == len(rows)
    for raw in parsed.quarantine.column("raw").to_pylist():
        assert isinstance(raw, str)


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
def test_hostile_values_on_the_page_path_quarantine_or_raise_clearly(value: Any) -> None:
    rows: list[Any] = [kline_row(T0 + i * MINUTE_MS) for i in range(3)]
    rows[1] = with_field(rows[1], 4, value)
    try:
        body = orjson.dumps(rows)
    except TypeError:
        body = json.dumps(rows).encode()
    try:
        parsed = pages([body])
    except IngestError:
        return
    assert parsed.table.num_rows + parsed.quarantine.num_rows == 3


@pytest.mark.parametrize(
    "body",
    [b"[1,2,3]", b'["a","b"]', b"[[[[[]]]]]", b'[{"a":1}]', b"[" + b"[" * 50 + b"]" * 51],
)
def test_hostile_page_shapes_raise_ingest_errors(body: bytes) -> None:
    with pytest.raises(IngestError):
        pages([body])


# ---- archive CSV path ---------------------------------------------------------------------


def test_csv_quarantine_keeps_the_line_as_received() -> None:
    good = ",".join(str(x) for x in GOOD)
    bad = ",".join(str(x) for x in with_field(kline_row(T0 + MINUTE_MS), 2, "1.00000000"))
    parsed = klines_from_csv_bytes(
        f"{good}\n{bad}\n".encode(),
        dataset="spot_klines",
        interval_us=MIN_US,
        source="archive",
        ingested_at=NOW,
    )
    assert parsed.table.num_rows == 1
    assert reasons(parsed) == ["OHLC inconsistent"]
    assert json.loads(parsed.quarantine.column("raw")[0].as_py()) == bad.split(",")


@pytest.mark.parametrize("bad_field", ["", "NaN", "null", "N/A", "nan"])
def test_csv_null_markers_are_bad_rows_not_zeros(bad_field: str) -> None:
    line = ",".join(str(x) for x in with_field(GOOD, 5, bad_field))
    parsed = klines_from_csv_bytes(
        (line + "\n").encode(),
        dataset="spot_klines",
        interval_us=MIN_US,
        source="archive",
        ingested_at=NOW,
    )
    assert parsed.table.num_rows == 0
    assert reasons(parsed) == ["unparsable volume"]


def test_csv_with_header() -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    header += "taker_buy_volume,taker_buy_quote_volume,ignore"
    lines = [header] + [",".join(map(str, kline_row(T0 + i * MINUTE_MS))) for i in range(3)]
    parsed = klines_from_csv_bytes(
        "\n".join(lines).encode(),
        dataset="perp_klines",
        interval_us=MIN_US,
        source="archive",
        ingested_at=NOW,
        has_header=True,
    )
    assert parsed.table.num_rows == 3
    assert parsed.quarantine.num_rows == 0


# ---- funding ------------------------------------------------------------------------------

FUNDING = {
    "symbol": "BTCUSDT",
    "fundingTime": 1_768_262_400_007,  # 08:00:00.007: Binance's real jitter
    "fundingRate": "0.00002245",
    "markPrice": "91234.56000000",
}


def funding(rows: Sequence[Any]) -> Parsed:
    return parse_funding(rows, symbol="BTCUSDT", source="rest", ingested_at=NOW)  # type: ignore[arg-type]


def test_funding_row_jitter_kept_and_mark_price_optional() -> None:
    no_mark = {**FUNDING, "fundingTime": 1_768_291_200_000, "markPrice": ""}
    absent = {k: v for k, v in FUNDING.items() if k != "markPrice"}
    absent["fundingTime"] = 1_768_320_000_016
    parsed = funding([FUNDING, no_mark, absent])
    assert parsed.table.schema == FUNDING_SCHEMA
    assert parsed.quarantine.num_rows == 0
    rows = parsed.table.to_pylist()
    assert rows[0]["funding_time"] == datetime(2026, 1, 13, 0, 0, 0, 7000, tzinfo=UTC)
    assert rows[0]["funding_rate"] == Decimal("0.00002245")
    assert rows[0]["mark_price"] == Decimal("91234.56")
    assert rows[1]["mark_price"] is None
    assert rows[2]["mark_price"] is None
    assert rows[2]["funding_time"].microsecond == 16_000


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**FUNDING, "symbol": "ETHUSDT"}, "wrong symbol"),
        ({**FUNDING, "fundingRate": "0.03000001"}, "outside ±3 %"),
        ({**FUNDING, "fundingRate": "-0.05"}, "outside ±3 %"),
        ({**FUNDING, "fundingRate": "abc"}, "unparsable fundingRate"),
        ({**FUNDING, "fundingRate": None}, "missing fundingRate"),
        ({**FUNDING, "markPrice": "x"}, "unparsable markPrice"),
        ({**FUNDING, "fundingTime": "soon"}, "unparsable fundingTime"),
        ({**FUNDING, "fundingTime": 0}, "unparsable fundingTime"),
        ({k: v for k, v in FUNDING.items() if k != "fundingTime"}, "missing fundingTime"),
        (["BTCUSDT", 1, "0.0001"], "row is not an object"),
    ],
)
def test_bad_funding_rows_are_quarantined(row: Any, reason: str) -> None:
    parsed = funding([row, {**FUNDING, "fundingTime": 1_768_233_600_000}])
    assert parsed.table.num_rows == 1
    assert len(reasons(parsed)) == 1
    assert reason in reasons(parsed)[0]
    assert json.loads(parsed.quarantine.column("raw")[0].as_py()) == row


def test_funding_rate_at_the_cap_is_kept_and_string_times_coerced() -> None:
    parsed = funding([{**FUNDING, "fundingRate": "-0.03000000", "fundingTime": "1768262400007"}])
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.column("funding_rate").to_pylist() == [Decimal("-0.03")]


def test_funding_empty() -> None:
    assert funding([]).table.schema == FUNDING_SCHEMA


# ---- open interest ------------------------------------------------------------------------

OI = {
    "symbol": "BTCUSDT",
    "sumOpenInterest": "71346.12900000",
    "sumOpenInterestValue": "4336802989.71660000",
    "timestamp": 1_715_252_400_000,
}
FIVE_MIN_US = 5 * MIN_US


def open_interest(rows: Sequence[Any]) -> Parsed:
    return parse_open_interest(
        rows,  # type: ignore[arg-type]
        symbol="BTCUSDT",
        period_us=FIVE_MIN_US,
        source="rest",
        ingested_at=NOW,
    )


def test_open_interest_string_timestamps_are_coerced() -> None:
    parsed = open_interest(
        [{**OI, "timestamp": "1715252400000"}, {**OI, "timestamp": 1_715_252_700_000}]
    )
    assert parsed.table.schema == OPEN_INTEREST_SCHEMA
    assert parsed.quarantine.num_rows == 0
    assert parsed.table.column("measured_at").to_pylist() == [
        datetime(2024, 5, 9, 11, 0, tzinfo=UTC),
        datetime(2024, 5, 9, 11, 5, tzinfo=UTC),
    ]
    assert parsed.table.column("sum_open_interest").to_pylist()[0] == Decimal("71346.129")
    assert parsed.table.column("count_long_short_ratio").to_pylist() == [None, None]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**OI, "timestamp": 1_715_252_400_001}, "not on the period grid"),
        ({**OI, "timestamp": 1_715_252_460_000}, "not on the period grid"),
        ({k: v for k, v in OI.items() if k != "timestamp"}, "missing timestamp"),
        ({k: v for k, v in OI.items() if k != "sumOpenInterest"}, "missing timestamp, sumOpen"),
        ({**OI, "sumOpenInterestValue": None}, "missing sumOpenInterestValue"),
        ({**OI, "sumOpenInterest": "-1"}, "negative open interest"),
        ({**OI, "symbol": "ETHUSDT"}, "wrong symbol"),
        ({**OI, "timestamp": "x"}, "unparsable timestamp"),
        ({**OI, "timestamp": 0}, "unparsable timestamp"),
        ("row", "row is not an object"),
    ],
)
def test_bad_open_interest_rows_are_quarantined(row: Any, reason: str) -> None:
    parsed = open_interest([row, {**OI, "timestamp": 1_715_252_700_000}])
    assert parsed.table.num_rows == 1
    assert len(reasons(parsed)) == 1
    assert reason in reasons(parsed)[0]


def test_open_interest_duplicates() -> None:
    same = open_interest([OI, dict(OI)])
    assert (same.table.num_rows, same.duplicates_identical, same.quarantine.num_rows) == (1, 1, 0)
    clash = open_interest([OI, {**OI, "sumOpenInterest": "1"}])
    assert clash.table.num_rows == 0
    assert reasons(clash) == ["duplicate timestamp with conflicting values"] * 2


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
def test_hostile_funding_and_oi_values_never_crash(value: Any) -> None:
    for key in FUNDING:
        parsed = funding([{**FUNDING, key: value}])
        assert parsed.table.num_rows + parsed.quarantine.num_rows == 1
    for key in OI:
        parsed = open_interest([{**OI, key: value}])
        assert parsed.table.num_rows + parsed.quarantine.num_rows == 1


def test_quarantine_rows_for_rows_that_never_reached_a_parser() -> None:
    table = quarantine_rows(
        "spot_klines",
        [({"a": 1}, "outside the requested days", 5), ([10**30], "other", None)],
        source="rest",
        ingested_at=NOW,
    )
    assert table.schema == QUARANTINE_SCHEMA
    assert table.column("raw").to_pylist() == ['{"a":1}', f"[{10**30}]"]
    assert table.column("event_time").to_pylist()[1] is None
    assert pa.types.is_timestamp(table.schema.field("event_time").type)
