"""The production parsers against the oracle (the parsers before the parse-speed work).

Same input, same outcome: the same error, or the same typed rows, the same Parquet bytes (of
the table and of the lake partitions written from it), the same quarantine (reasons, raw text,
event times) and the same count of identical duplicates. On real Binance pages (skipped when
../shared/data is absent), on hand-made hostile pages and on random damage to regular ones.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.binance import parse as new
from ingest.errors import MalformedResponse
from lake.landing import Landing, land_days
from lake.schemas import BY_TABLE
from lake.store import Lake, PartitionKey, parquet_bytes
from tests.ingest.binance_fakes import MINUTE_MS, REAL_1M, SHARED_DATA, kline_row
from tests.ingest.oracle import parse as old

NOW = datetime(2026, 1, 1, 12, 30, 45, 123456, tzinfo=UTC)
FUTURES = SHARED_DATA / "binance" / "futures" / "um"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, ms

requires_real_pages = pytest.mark.skipif(
    not REAL_1M.is_dir(),
    reason=f"real Binance data not found at {SHARED_DATA} (../shared/data from the repo root)",
)


def kline_options(dataset: str = "spot_klines", interval_us: int | None = 60_000_000) -> dict:
    return {"dataset": dataset, "interval_us": interval_us, "source": "rest", "ingested_at": NOW}


def outcome(call: Callable[[], Any]) -> Any:
    """The parser's result, or its error as (type, message): errors must match too."""
    try:
        return call()
    except Exception as exc:
        return type(exc), str(exc)


def assert_same(got: Any, expected: Any) -> None:
    if isinstance(expected, tuple):
        assert got == expected, "the oracle raised; the parser must raise the same error"
        return
    assert not isinstance(got, tuple), f"the parser raised {got}; the oracle did not"
    assert got.table.schema == expected.table.schema
    assert got.table.equals(expected.table)
    assert parquet_bytes(got.table) == parquet_bytes(expected.table)
    assert got.quarantine.schema == expected.quarantine.schema
    assert got.quarantine.to_pylist() == expected.quarantine.to_pylist()
    assert parquet_bytes(got.quarantine) == parquet_bytes(expected.quarantine)
    assert got.duplicates_identical == expected.duplicates_identical


def is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def oracle_kline_pages(bodies: list[bytes], **options: Any) -> Any:
    """Today's parse_kline_pages, but a window with a page that is not JSON is refused as its
    JSON path refuses it: today's CSV fast path read a few such pages (a number with a leading
    zero, a digit outside its string's quotes) instead of refusing them."""
    json_only = not all(is_json(body) for body in bodies)
    return outcome(lambda: old.parse_kline_pages(bodies, **options, json_only=json_only))


def summary_agrees(body: bytes) -> None:
    got = outcome(lambda: new.kline_page_summary(body))
    if is_json(body):
        assert got == outcome(lambda: old.kline_page_summary(body))
    else:
        assert got[0] is MalformedResponse


def kline_pages_agree(bodies: list[bytes], **options: Any) -> Any:
    opts = {**kline_options(), **options}
    got = outcome(lambda: new.parse_kline_pages(bodies, **opts))
    assert_same(got, oracle_kline_pages(bodies, **opts))
    for body in bodies:
        summary_agrees(body)
    return got


def lake_files(parsed: Any, root: Path, dataset: str, interval: str) -> dict[str, bytes]:
    """Every file `land_days` writes for the parsed rows (partitions, manifests, quarantine)."""
    ds = BY_TABLE[dataset]
    times = parsed.table.column(ds.time_column).to_pylist() or [NOW]
    days = sorted({t.date() for t in times})
    land_days(
        Lake(root),
        Landing(ds, parsed.table, parsed.quarantine, "rest", NOW, ["page-1.json"],
                parsed.duplicates_identical),
        lambda day: PartitionKey(ds, "BTCUSDT", interval, day),
        days,
        now=NOW,
        held_back_note="held back",
        is_synthetic=False,
    )  # fmt: skip
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_locks" not in p.parts
    }


# ---- real pages -----------------------------------------------------------------------------


def real_rows(path: Path, *, unit_ms: bool) -> list[list[Any]]:
    """An archive day as Binance REST rows (ints for times and counts, decimal strings)."""
    rows = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            f = line.rstrip("\n").split(",")
            open_t, close_t = int(f[0]), int(f[6])
            if unit_ms and open_t >= 10**14:  # the spot archive is in µs from 2025
                open_t, close_t = open_t // 1000, close_t // 1000
            rows.append([open_t, *f[1:6], close_t, f[7], int(f[8]), *f[9:12]])
    return rows


def as_pages(rows: list[list[Any]], limit: int = 1000) -> list[bytes]:
    return [orjson.dumps(rows[i : i + limit]) for i in range(0, len(rows), limit)]


@requires_real_pages
@pytest.mark.realdata
@pytest.mark.parametrize("unit_ms", [True, False], ids=["ms", "as-archived"])
def test_real_pages_parse_to_the_same_rows_and_bytes(unit_ms: bool) -> None:
    files = sorted(REAL_1M.glob("BTCUSDT-1m-*.csv.gz"))
    assert files
    rows = [row for path in files for row in real_rows(path, unit_ms=unit_ms)]
    pages = as_pages(rows)
    total = 0
    for window in (2, 30):
        for i in range(0, len(pages), window):
            total += kline_pages_agree(pages[i : i + window]).table.num_rows
    # Every real bar lands, the 2023 halt's flat bars and truncated close time included.
    assert total == 2 * len(rows)


@requires_real_pages
@pytest.mark.realdata
def test_real_days_write_byte_identical_partitions(tmp_path: Path) -> None:
    # The 2023 exchange halt (flat bars, a truncated close time, 80 missing minutes), a ms day
    # and a µs day; a day's pages are parsed at once, as the loader does.
    for name in ("2023-03-24", "2024-05-10", "2025-08-31"):
        day_rows = real_rows(REAL_1M / f"BTCUSDT-1m-{name}.csv.gz", unit_ms=True)
        pages = as_pages(day_rows)
        # Real pages take the CSV road, not the JSON path.
        regular = [new._regular_page(page) for page in pages]
        texts = [page[0] for page in regular if page is not None]
        assert len(texts) == len(pages)
        assert new._parse_regular_pages(texts, **kline_options()) is not None
        got = new.parse_kline_pages(pages, **kline_options())
        expected = old.parse_kline_pages(pages, **kline_options())
        assert_same(got, expected)
        written = lake_files(got, tmp_path / "new" / name, "spot_klines", "1m")
        assert written == lake_files(expected, tmp_path / "old" / name, "spot_klines", "1m")
        assert any(path.endswith("part-0.parquet") for path in written)


@requires_real_pages
@pytest.mark.realdata
def test_real_days_with_damage_quarantine_identically(tmp_path: Path) -> None:
    rows = real_rows(REAL_1M / "BTCUSDT-1m-2025-06-01.csv.gz", unit_ms=True)
    rows[10][5] = "-1.00000000"  # negative volume
    rows[20][2] = "1.00000000"  # high below low
    rows[30] = rows[30][:11]  # a field short
    rows.insert(40, list(rows[40]))  # an identical duplicate
    conflicting = list(rows[50])
    conflicting[5] = "123.00000000"
    rows.insert(50, conflicting)  # a conflicting one
    rows[60], rows[61] = rows[61], rows[60]  # out of order
    rows[70][8] = "NaN"  # a string where the trade count belongs
    pages = as_pages(rows)
    got = new.parse_kline_pages(pages, **kline_options())
    expected = old.parse_kline_pages(pages, **kline_options())
    assert_same(got, expected)
    assert got.quarantine.num_rows == 6 and got.duplicates_identical == 1
    written = lake_files(got, tmp_path / "new", "spot_klines", "1m")
    assert written == lake_files(expected, tmp_path / "old", "spot_klines", "1m")
    assert any("_quarantine" in path for path in written)


@requires_real_pages
@pytest.mark.realdata
def test_real_archive_csv_parses_to_the_same_rows() -> None:
    for path in sorted(REAL_1M.glob("BTCUSDT-1m-*.csv.gz"))[:4]:
        data = gzip.decompress(path.read_bytes())
        for body in (data, data.replace(b",0\n", b",x\n", 1), data.replace(b".", b",", 1)):
            opts = {**kline_options(), "source": "archive"}
            got = outcome(lambda b=body, o=opts: new.klines_from_csv_bytes(b, **o))
            expected = outcome(lambda b=body, o=opts: old.klines_from_csv_bytes(b, **o))
            assert_same(got, expected)


def _csv_records(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def funding_agrees(rows: list[Any]) -> None:
    options = {"symbol": "BTCUSDT", "source": "rest", "ingested_at": NOW}
    assert_same(
        outcome(lambda: new.parse_funding(rows, **options)),
        outcome(lambda: old.parse_funding(rows, **options)),
    )


def open_interest_agrees(rows: list[Any]) -> None:
    options = {"symbol": "BTCUSDT", "period_us": 300_000_000, "source": "rest", "ingested_at": NOW}
    assert_same(
        outcome(lambda: new.parse_open_interest(rows, **options)),
        outcome(lambda: old.parse_open_interest(rows, **options)),
    )


@pytest.mark.realdata
@pytest.mark.skipif(not FUTURES.is_dir(), reason=f"real futures data not found at {FUTURES}")
def test_real_funding_and_open_interest_parse_identically() -> None:
    funding: list[Any] = [
        {"symbol": r["symbol"], "fundingTime": int(r["timestamp"]),
         "fundingRate": r["funding_rate"], "markPrice": ""}
        for r in _csv_records(FUTURES / "BTCUSDT-funding-2026-01-12_2026-03-20.csv")
    ]  # fmt: skip
    archive_funding: list[Any] = [
        {"symbol": "BTCUSDT", "fundingTime": r["funding_time"], "fundingRate": r["funding_rate"],
         "fundingIntervalHours": r["funding_interval_hours"]}
        for r in _csv_records(FUTURES / "BTCUSDT-funding-2025-05-01_2025-12-01.csv")
    ]  # fmt: skip
    funding_agrees(funding)
    funding_agrees(archive_funding)
    funding_agrees([*funding[:5], funding[2], {"x": 1}, 7, {**funding[6], "fundingRate": "0.5"}])
    oi: list[Any] = [
        {"symbol": "BTCUSDT", "timestamp": int(r["timestamp"]),
         "sumOpenInterest": r["sumOpenInterest"],
         "sumOpenInterestValue": r["sumOpenInterestValue"]}
        for r in _csv_records(FUTURES / "BTCUSDT-oi-5m-2024-05-09_2024-05-11.csv")
    ]  # fmt: skip
    open_interest_agrees(oi)
    damaged = [dict(r) for r in oi[:20]]
    damaged[3]["sumOpenInterest"] = "-1"
    damaged[4]["timestamp"] = str(damaged[4]["timestamp"])
    damaged[5]["timestamp"] = damaged[5]["timestamp"] + 1
    damaged[6]["symbol"] = "ETHUSDT"
    damaged[7]["sumOpenInterestValue"] = "NaN"
    open_interest_agrees([*damaged, damaged[1], {**damaged[2], "sumOpenInterest": "1"}])


# ---- hostile pages --------------------------------------------------------------------------


def row(i: int, **fields: Any) -> list[Any]:
    out = kline_row(T0 + MINUTE_MS * i)
    for index, value in fields.items():
        out[int(index[1:])] = value
    return out


def page(*rows: Any) -> bytes:
    """Rows as a compact JSON page (integers beyond 64 bits included: orjson refuses them)."""
    return json.dumps(list(rows), separators=(",", ":"), ensure_ascii=False).encode()


GOOD = page(*(row(i) for i in range(5)))
HOSTILE: dict[str, list[bytes]] = {
    "regular": [GOOD],
    "two regular pages": [GOOD, page(*(row(i) for i in range(5, 9)))],
    "empty pages": [b"[]", b" [ ] ", b"[]"],
    "no pages": [],
    "not JSON": [b"<html>502 Bad Gateway</html>"],
    "truncated": [GOOD[:-7]],
    "trailing comma": [GOOD[:-1] + b",]"],
    "trailing comma in a row": [GOOD[:-2] + b",]]"],
    "two arrays run together": [GOOD + GOOD],
    "leading garbage": [b"x" + GOOD],
    "missing outer brackets": [GOOD[1:-1]],
    "an error object": [b'{"code":-1121,"msg":"Invalid symbol."}'],
    "a bare number": [b"42"],
    "pretty-printed": [orjson.dumps([row(0), row(1)], option=orjson.OPT_INDENT_2)],
    "spaces after commas": [GOOD.replace(b",", b", ")],
    "one regular page, one irregular": [GOOD, b"[" + orjson.dumps(row(5)) + b", []]"],
    "11 fields": [page(row(0), row(1)[:11], row(2))],
    "13 fields": [page(row(0), [*row(1), "0"], row(2))],
    "no row has 12 fields": [page(row(0)[:3], row(1)[:3])],
    "empty row": [page(row(0), [], row(1))],
    "row is an object": [page(row(0), {"t": 1}, row(1))],
    "row is a string": [page(row(0), "1,2,3", row(1))],
    "nested array": [page(row(0), [*row(1)[:11], [0]], row(2))],
    "null open": [page(row(0), row(1, f1=None), row(2))],
    "null open time": [page(row(0), row(1, f0=None), row(2))],
    "string open time": [page(row(0), row(1, f0=str(T0 + MINUTE_MS)), row(2))],
    "word open time": [page(row(0), row(1, f0="abc"), row(2))],
    "float open time": [page(row(0), row(1, f0=T0 + MINUTE_MS + 0.5), row(2))],
    "open time with leading zero": [GOOD.replace(b"[%d" % T0, b"[0%d" % T0)],
    "digit outside its quotes": [GOOD.replace(b'0000",', b'000"0,', 1)],
    "empty string, digits after it": [GOOD.replace(b'"0"]', b'""0]', 1)],
    "negative open time": [page(row(0, f0=-T0), row(1))],
    "zero open time": [page(row(0, f0=0), row(1))],
    "huge open time": [page(row(0), row(1, f0=10**30), row(2))],
    "open time beyond int64": [page(row(0), row(1, f0=2**63), row(2))],
    "µs open and close": [
        page(row(0), row(1, f0=(T0 + MINUTE_MS) * 1000, f6=(T0 + 2 * MINUTE_MS) * 1000 - 1))
    ],
    "word trade count": [page(row(0), row(1, f8="x"), row(2))],
    "float trade count": [page(row(0), row(1, f8=1.5), row(2))],
    "negative trade count": [page(row(0), row(1, f8=-1), row(2))],
    "trade count beyond int64": [page(row(0), row(1, f8=2**64), row(2))],
    "number instead of a decimal string": [page(row(0), row(1, f1=30001.12), row(2))],
    "int instead of a decimal string": [page(row(0), row(1, f5=7), row(2))],
    "bool instead of a decimal string": [page(row(0), row(1, f5=True), row(2))],
    "word decimal": [page(row(0), row(1, f1="abc"), row(2))],
    "empty decimal": [page(row(0), row(1, f5=""), row(2))],
    "NaN": [page(row(0), row(1, f5="NaN"), row(2))],
    "nan": [page(row(0), row(1, f7="nan"), row(2))],
    "Infinity": [page(row(0), row(1, f2="Infinity"), row(2))],
    "inf": [page(row(0), row(1, f2="inf"), row(2))],
    "-inf": [page(row(0), row(1, f3="-inf"), row(2))],
    "exponent": [page(row(0), row(1, f5="1e3"), row(2))],
    "nine decimals": [page(row(0), row(1, f1="30001.123456789"), row(2))],
    "nine decimals, last one zero": [page(row(0), row(1, f5="10.001000000"), row(2))],
    "no decimals": [page(row(0), row(1, f5="10"), row(2))],
    "leading dot": [page(row(0), row(1, f5=".5"), row(2))],
    "trailing dot": [page(row(0), row(1, f5="5."), row(2))],
    "two dots": [page(row(0), row(1, f5="1.2.3"), row(2))],
    "minus inside": [page(row(0), row(1, f5="1-2"), row(2))],
    "lone minus": [page(row(0), row(1, f5="-"), row(2))],
    "minus zero": [page(row(0), row(1, f9="-0.00000000"), row(2))],
    "leading zeros in a decimal": [page(row(0), row(1, f5="0010.00100000"), row(2))],
    "plus sign": [page(row(0), row(1, f5="+10.5"), row(2))],
    "padded decimal": [page(row(0), row(1, f5=" 10.5 "), row(2))],
    "escaped quote": [page(row(0), row(1, f11='a"b'), row(2))],
    "unicode": [page(row(0), row(1, f11="é"), row(2))],
    "comma in a string": [page(row(0), row(1, f11="1,2"), row(2))],
    "brackets in a string": [page(row(0), row(1, f11="],["), row(2))],
    "brackets in a decimal": [page(row(0), row(1, f1="1[2"), row(2))],
    "number ignore field": [page(row(0), row(1, f11=0), row(2))],
    "huge decimal": [page(row(0), row(1, f7="123456789012345678901.5"), row(2))],
    "largest decimal": [page(row(0), row(1, f7="99999999999999999999.99999999"), row(2))],
    "decimal beyond int64 unscaled": [page(row(0), row(1, f7="92233720368.54775808"), row(2))],
    "huge volume, taker above it": [page(row(0), row(1, f5="99999999999.5", f9="99999999999.6"))],
    "huge negative": [page(row(0), row(1, f5="-99999999999999999999.5"), row(2))],
    "huge JSON number": [page(row(0), row(1, f7=1e300), row(2))],
    "negative volume": [page(row(0), row(1, f5="-1.00000000"), row(2))],
    "negative quote volume": [page(row(0), row(1, f7="-0.00000001"), row(2))],
    "negative taker volume": [page(row(0), row(1, f10="-5.5"), row(2))],
    "zero price": [page(row(0), row(1, f1="0", f2="0", f3="0", f4="0"), row(2))],
    "negative prices": [page(row(0), row(1, f1="-1", f2="-1", f3="-1", f4="-1"), row(2))],
    "high below low": [page(row(0), row(1, f2="1.00000000"), row(2))],
    "close above high": [page(row(0), row(1, f4="99999.00000000"), row(2))],
    "taker above volume": [page(row(0), row(1, f9="99999.00000000"), row(2))],
    "off the grid": [page(row(0), row(1, f0=T0 + MINUTE_MS + 1), row(2))],
    "close before open": [page(row(0), row(1, f6=T0), row(2))],
    "close after the bar": [page(row(0), row(1, f6=T0 + 3 * MINUTE_MS), row(2))],
    "identical duplicate": [page(row(0), row(1), row(1), row(2))],
    "identical duplicate across pages": [page(row(0), row(1)), page(row(1), row(2))],
    # More pages than one CSV read takes: rows of different reads are checked together.
    "duplicates across reads": [page(row(2 * i), row(2 * i + 1)) for i in range(4)]
    + [page(row(1), row(6, f8=5))],
    "a bad row in the last read": [page(row(2 * i), row(2 * i + 1)) for i in range(4)]
    + [page(row(9, f5="-1"))],
    "conflicting duplicate": [page(row(0), row(1), row(1, f4="30000.00000000"), row(2))],
    "three copies, one differs": [page(row(1), row(1), row(1, f8=5))],
    "out of order": [page(row(2), row(0), row(1))],
    "reversed pages": [page(row(3), row(4)), page(row(0), row(1))],
    "every row bad": [page(row(0, f5="x"), row(1, f5="y"))],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pages_parse_like_the_oracle(name: str, tmp_path: Path) -> None:
    got = kline_pages_agree(HOSTILE[name])
    if not isinstance(got, tuple):
        expected = oracle_kline_pages(HOSTILE[name], **kline_options())
        assert lake_files(got, tmp_path / "new", "spot_klines", "1m") == lake_files(
            expected, tmp_path / "old", "spot_klines", "1m"
        )


@pytest.mark.parametrize(
    ("dataset", "interval_us"),
    [("mark_klines", 60_000_000), ("premium_klines", 3_600_000_000), ("perp_klines", None)],
)
@pytest.mark.parametrize("name", ["regular", "negative prices", "zero price", "high below low"])
def test_the_futures_kline_datasets_parse_like_the_oracle(
    dataset: str, interval_us: int | None, name: str
) -> None:
    kline_pages_agree(HOSTILE[name], dataset=dataset, interval_us=interval_us)


HOSTILE_CSV = {
    "regular": b"\n".join(b",".join(str(v).encode() for v in row(i)) for i in range(4)) + b"\n",
    "header": b"open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    b"taker_buy_volume,taker_buy_quote_volume,ignore\n"
    + b",".join(str(v).encode() for v in row(0)),
    "NaN field": b",".join(str(v).encode() for v in row(0, f5="NaN")),
    "empty line": b",".join(str(v).encode() for v in row(0))
    + b"\n\n"
    + b",".join(str(v).encode() for v in row(1)),
    "short line": b",".join(str(v).encode() for v in row(0)[:11]),
    "huge decimal": b",".join(str(v).encode() for v in row(0, f7="123456789012345678901.5")),
    "duplicate": b"\n".join(b",".join(str(v).encode() for v in row(0)) for _ in range(2)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CSV))
def test_hostile_archive_csv_parses_like_the_oracle(name: str) -> None:
    data = HOSTILE_CSV[name]
    opts = {**kline_options(), "source": "archive", "has_header": name == "header"}
    assert_same(
        outcome(lambda: new.klines_from_csv_bytes(data, **opts)),
        outcome(lambda: old.klines_from_csv_bytes(data, **opts)),
    )


# ---- random damage ------------------------------------------------------------------------

# What a damaged kline page is made of: its own characters, and a few that JSON gives meaning.
_ALPHABET = b'0123456789[]",.-'
_DAMAGE = st.sampled_from([*(bytes([c]) for c in _ALPHABET), b" ", b"e", b"n", b"{}", b"null"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.floats(0, 1), _DAMAGE),
        min_size=1,
        max_size=3,
    ),
    pages=st.integers(1, 2),
)
def test_damaged_pages_parse_like_the_oracle(
    edits: list[tuple[str, float, bytes]], pages: int
) -> None:
    body = bytearray(page(*(row(i) for i in range(4))))
    for kind, where, text in edits:
        at = min(int(where * len(body)), len(body) - 1)
        if kind == "replace":
            body[at : at + 1] = text
        elif kind == "insert":
            body[at:at] = text
        else:
            del body[at]
    bodies = [bytes(body)] if pages == 1 else [page(row(10), row(11)), bytes(body)]
    kline_pages_agree(bodies)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 8),  # minute
            st.decimals(min_value=-10, max_value=10**12, places=8, allow_nan=False).map(str),
            st.decimals(min_value=0, max_value=10**12, places=9, allow_nan=False).map(str),
            st.integers(-1, 2**40),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_random_values_parse_like_the_oracle(rows: list[tuple[int, str, str, int]]) -> None:
    body = page(
        *(row(minute, f1=a, f2=b, f3=a, f5=b, f7=a, f8=trades) for minute, a, b, trades in rows)
    )
    kline_pages_agree([body])


def test_page_summary_of_every_hostile_page() -> None:
    for bodies in HOSTILE.values():
        for body in bodies:
            summary_agrees(body)


def test_a_regular_window_lands_every_row() -> None:
    parsed = kline_pages_agree(HOSTILE["two regular pages"])
    assert parsed.table.num_rows == 9 and parsed.quarantine.num_rows == 0
    assert isinstance(parsed.table, pa.Table)
    assert date(2024, 1, 1) == parsed.table.column("open_time")[0].as_py().date()
