"""Test oracle: `ingest.binance.parse` as it was before the parse-speed work (commit
4a52e93), verbatim but for its imports of `lake.rules` (the oracle's copy) and
`parse_kline_pages(json_only=True)`, its JSON path alone.

Vectorised parsing of Binance rows into the lake's Arrow schemas, with quarantine.

Every row either becomes a typed lake row or a quarantine row with its reason; nothing is
dropped silently. The fast path casts whole columns at once; only when a cast fails does it
look at rows one by one to find the culprits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest.errors import MalformedResponse, SchemaDrift
from ingest.timeutil import normalise_epoch_us
from lake.schemas import (
    BY_TABLE,
    FUNDING_SCHEMA,
    KLINE_SCHEMA,
    OPEN_INTEREST_SCHEMA,
    PRICE,
    QUARANTINE_SCHEMA,
    RATE,
    TIMESTAMP,
    Dataset,
)
from lake.store import quarantine_table
from tests.ingest.oracle.rules import duplicates, problems

KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trade_count",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_KLINE_DECIMALS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)


@dataclass
class Parsed:
    """Typed rows for the lake, quarantined rows, and identical duplicates removed."""

    table: pa.Table
    quarantine: pa.Table
    duplicates_identical: int = 0


class _Rejects:
    """Collects (row index, reason) pairs; the first reason found for a row wins."""

    def __init__(self, n: int):
        self.reason: list[str | None] = [None] * n
        self.count = 0

    def add(self, mask: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(mask):
            if self.reason[i] is None:
                self.reason[i] = reason
                self.count += 1

    def keep_mask(self) -> np.ndarray:
        return np.array([r is None for r in self.reason], dtype=bool)

    def check(
        self, columns: dict[str, pa.Array], dataset: Dataset, interval_us: int | None = None
    ) -> None:
        """Apply the dataset's rules (`lake.rules`) to the parsed columns; reasons found
        while parsing win."""
        values = pa.table({name: columns[name] for name in dataset.schema.names if name in columns})
        self.reason = problems(values, dataset, interval_us=interval_us, found=self.reason)
        self.count = sum(r is not None for r in self.reason)

    def dedupe(self, times: np.ndarray, compared: pa.Table, key_name: str) -> np.ndarray:
        """Identical duplicates collapse to one row; conflicting ones are all quarantined.

        Returns the mask of identical copies to remove (they are counted in the manifest).
        """
        identical, conflicting = duplicates(
            compared.append_column("_key", pa.array(times, pa.int64())), ["_key"], self.keep_mask()
        )
        self.add(conflicting, f"duplicate {key_name} with conflicting values")
        return identical


def _cast_column(
    values: pa.Array, target: pa.DataType, name: str, rejects: _Rejects, *, required: bool = True
) -> pa.Array:
    """Cast a whole column; on failure, reject the rows that don't cast and null them.

    A null in a required column (JSON `null`, or a padded row) is rejected too: filling it
    with 0 later would land an invented value.
    """
    if required and values.null_count:
        rejects.add(values.is_null().to_numpy(zero_copy_only=False), f"missing {name}")
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    good: list[object] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.to_pylist()):
        try:
            good.append(pc.cast(pa.array([value], type=values.type), target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            good.append(None)
            bad[i] = True
    rejects.add(bad, f"unparsable {name}")
    return pa.array(good, type=target)


def _json_text(value: object) -> str:
    """A decoded JSON value back as compact JSON text (integers of any size included)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # an int beyond 64 bits, possibly nested: orjson refuses those
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def _as_string_array(values: Sequence[object]) -> pa.Array:
    """Binance sends decimals as strings; anything else (numbers, null) is kept as text."""
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(
            [None if v is None else (v if isinstance(v, str) else _json_text(v)) for v in values],
            type=pa.string(),
        )


def _as_int_array(values: Sequence[object], name: str, rejects: _Rejects) -> np.ndarray:
    """Integers (or integer strings, as in CSV and some OI responses) -> int64 (0 where bad)."""
    try:
        array = np.asarray(values)
        # ndim: equal-length nested lists make a 2-D array; uint64 above int64 would wrap.
        if array.ndim == 1 and (
            array.dtype.kind == "i" or (array.dtype.kind == "u" and array.max() < 2**63)
        ):
            return array.astype(np.int64)
    except (ValueError, OverflowError):
        pass
    casted = _cast_column(_as_string_array(values), pa.int64(), name, rejects)
    return casted.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us, type=pa.int64()).cast(TIMESTAMP)


def _quarantine_table(
    dataset: str,
    raw_row: Callable[[int], object],
    rejects: _Rejects,
    event_us: np.ndarray | None,
    source: str,
    ingested_at: datetime,
    extra: list[tuple[object, str, int | None]] | None = None,
) -> pa.Table:
    items: list[tuple[str, str, int | None]] = []
    for i, reason in enumerate(rejects.reason):
        if reason is None:
            continue
        when = int(event_us[i]) if event_us is not None and event_us[i] > 0 else None
        items.append((_json_text(raw_row(i)), reason, when))
    items.extend((_json_text(raw), reason, when) for raw, reason, when in extra or [])
    return quarantine_table(dataset, items, source=source, ingested_at=ingested_at)


def _finish(
    schema: pa.Schema,
    columns: dict[str, pa.Array],
    rejects: _Rejects,
    dataset: str,
    raw_row: Callable[[int], object],
    event_us: np.ndarray,
    source: str,
    ingested_at: datetime,
    duplicates: np.ndarray,
) -> Parsed:
    keep = rejects.keep_mask() & ~duplicates
    n = len(keep)
    columns = dict(columns)
    columns["source"] = pa.repeat(pa.scalar(source, pa.string()), n)
    columns["ingested_at"] = pa.repeat(pa.scalar(ingested_at, TIMESTAMP), n)
    table = pa.table({name: columns[name] for name in schema.names})
    table = table.filter(pa.array(keep)).cast(schema)
    quarantine = _quarantine_table(dataset, raw_row, rejects, event_us, source, ingested_at)
    return Parsed(table=table, quarantine=quarantine, duplicates_identical=int(duplicates.sum()))


def parse_klines(
    rows: Sequence[Sequence[object]],
    *,
    dataset: str,
    interval_us: int | None,
    source: str,
    ingested_at: datetime,
) -> Parsed:
    """Binance kline rows (JSON arrays or CSV records, 12 fields) -> lake rows + quarantine."""
    n = len(rows)
    if n == 0:
        return Parsed(KLINE_SCHEMA.empty_table(), _empty_quarantine())
    is_row = np.fromiter(
        (isinstance(r, (list, tuple)) and len(r) == 12 for r in rows), dtype=bool, count=n
    )
    if not is_row.any():
        widths = sorted({len(r) if isinstance(r, (list, tuple)) else -1 for r in rows})
        raise SchemaDrift(f"{dataset}: kline rows have {widths} fields, expected 12")
    rejects = _Rejects(n)
    rejects.add(~is_row, "row does not have 12 fields")
    padded = (
        rows
        if is_row.all()
        else [r if ok else [None] * 12 for r, ok in zip(rows, is_row, strict=True)]
    )
    columns_raw = list(zip(*padded, strict=True))
    open_us = _as_int_array(columns_raw[0], "open_time", rejects)
    close_us = _as_int_array(columns_raw[6], "close_time", rejects)
    trades = _as_int_array(columns_raw[8], "trade_count", rejects)
    decimals = {
        name: _cast_column(
            _as_string_array(columns_raw[KLINE_FIELDS.index(name)]), PRICE, name, rejects
        ).fill_null(0)
        for name in _KLINE_DECIMALS
    }
    return _validate_klines(
        open_us, close_us, trades, decimals, rejects,
        raw_row=lambda i: rows[i], dataset=dataset, interval_us=interval_us, source=source,
        ingested_at=ingested_at,
    )  # fmt: skip


_KLINE_CSV_TYPES = {
    "open_time": pa.int64(),
    "close_time": pa.int64(),
    "trade_count": pa.int64(),
    "ignore": pa.string(),
    **dict.fromkeys(_KLINE_DECIMALS, PRICE),
}


def klines_from_csv_bytes(
    data: bytes,
    *,
    dataset: str,
    interval_us: int | None,
    source: str,
    ingested_at: datetime,
    has_header: bool = False,
) -> Parsed:
    """Kline CSV (the archive's format) -> lake rows; falls back to row-wise parsing on bad rows.

    The row-wise fallback also runs whenever a row is rejected, so that quarantined rows keep
    their fields exactly as received rather than as the CSV reader typed them.
    """

    def row_wise() -> Parsed:
        lines = data.decode("utf-8", errors="replace").splitlines()[1 if has_header else 0 :]
        records = [line.split(",") for line in lines if line.strip()]
        return parse_klines(
            records, dataset=dataset, interval_us=interval_us, source=source,
            ingested_at=ingested_at,
        )  # fmt: skip

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=list(KLINE_FIELDS), skip_rows=1 if has_header else 0, use_threads=False
            ),
            # An empty line is a malformed row here, not one to skip silently.
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            # No null markers: an empty or "NaN" field is a bad row, not a missing value.
            convert_options=pacsv.ConvertOptions(
                column_types=_KLINE_CSV_TYPES, null_values=[], strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return row_wise()
    n = table.num_rows
    if n == 0:
        return Parsed(KLINE_SCHEMA.empty_table(), _empty_quarantine())
    decimals = {name: table.column(name).combine_chunks() for name in _KLINE_DECIMALS}
    # The CSV reader does not enforce DECIMAL(28, 8)'s precision; a cast does.
    if any(_exceeds_precision(values) for values in decimals.values()):
        return row_wise()
    parsed = _validate_klines(
        table.column("open_time").to_numpy(),
        table.column("close_time").to_numpy(),
        table.column("trade_count").to_numpy(),
        decimals,
        _Rejects(n),
        raw_row=lambda i: table.slice(i, 1).to_pylist()[0],
        dataset=dataset, interval_us=interval_us, source=source, ingested_at=ingested_at,
    )  # fmt: skip
    return row_wise() if parsed.quarantine.num_rows else parsed


_PRICE_LIMIT = pa.scalar(10 ** (PRICE.precision - PRICE.scale), pa.decimal128(38, PRICE.scale))


def _exceeds_precision(values: pa.Array) -> bool:
    wide = values.cast(pa.decimal128(38, PRICE.scale))
    return bool(pc.any(pc.greater_equal(pc.abs(wide), _PRICE_LIMIT)).as_py())


# Characters a Binance kline page is made of: anything else means "not the regular shape".
_STRINGS_PER_KLINE = 9  # open, high, low, close, volume, quote, taker base/quote, ignore
_KLINE_PAGE_CHARS = b'0123456789[]",.-'


def _page_as_csv(body: bytes) -> bytes | None:
    """A regular kline page (`[[int,"dec",...,"0"],...]`) rewritten as CSV, else None.

    Only a page made of the characters a kline page is made of, with exactly 11 commas per row
    and one between rows, is rewritten; Arrow's CSV reader (which unquotes the decimal strings
    and requires 12 fields on every line) rejects anything else, which then takes the JSON path.
    """
    text = body.strip()
    if text == b"[]":
        return b""
    if not (text.startswith(b"[[") and text.endswith(b"]]")) or text.translate(
        None, _KLINE_PAGE_CHARS
    ):
        return None
    rows = text.count(b"],[") + 1
    # Commas and quotes must add up to 12 fields, 9 of them strings, per row: a page with a
    # lost quote or a row split inside a string is refused here, not read leniently.
    if text.count(b",") != 12 * rows - 1 or text.count(b'"') != 2 * _STRINGS_PER_KLINE * rows:
        return None
    return text[2:-2].replace(b"],[", b"\n")


def parse_kline_pages(
    bodies: Sequence[bytes],
    *,
    dataset: str,
    interval_us: int | None,
    source: str,
    ingested_at: datetime,
    json_only: bool = False,  # oracle only: skip the CSV fast path
) -> Parsed:
    """Raw `/klines` JSON bodies (the pages of one request window) -> lake rows, parsed at once.

    Binance's pages are perfectly regular, so the fast path joins them as one CSV for Arrow's
    C++ reader; a page of any other shape, or any row that fails validation, sends the whole
    window through the general JSON parser so quarantined rows keep their JSON as received.
    """
    options = {
        "dataset": dataset,
        "interval_us": interval_us,
        "source": source,
        "ingested_at": ingested_at,
    }
    csv_pages = [_page_as_csv(body) for body in bodies]
    if all(page is not None for page in csv_pages) and not json_only:
        joined = b"\n".join(page for page in csv_pages if page)
        parsed = klines_from_csv_bytes(joined, **options)  # type: ignore[arg-type]
        if parsed.quarantine.num_rows == 0:
            return parsed
    rows: list[object] = []
    for body in bodies:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponse(f"{dataset}: response is not JSON ({exc})") from exc
        if not isinstance(decoded, list):
            kind = type(decoded).__name__
            raise MalformedResponse(f"{dataset}: expected a JSON array of klines, got {kind}")
        rows.extend(decoded)
    return parse_klines(rows, **options)  # type: ignore[arg-type]


def kline_page_summary(body: bytes) -> tuple[int, int | None]:
    """(row count, last row's open time as sent) of a kline page, without decoding it all."""
    csv_page = _page_as_csv(body)
    if csv_page is not None:
        if not csv_page:
            return 0, None
        last_line = csv_page[csv_page.rfind(b"\n") + 1 :]
        try:
            return csv_page.count(b"\n") + 1, int(last_line.split(b",", 1)[0])
        except ValueError:
            pass  # e.g. a float or empty open time: the JSON path decides
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"kline page is not JSON ({exc})") from exc
    if not isinstance(decoded, list):
        raise MalformedResponse(f"expected a JSON array of klines, got {type(decoded).__name__}")
    if not decoded:
        return 0, None
    try:
        return len(decoded), int(decoded[-1][0])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise MalformedResponse(f"cannot read the open time of the last kline ({exc})") from exc


def _validate_klines(
    open_raw: np.ndarray,
    close_raw: np.ndarray,
    trades: np.ndarray,
    decimals: dict[str, pa.Array],
    rejects: _Rejects,
    *,
    raw_row: Callable[[int], object],
    dataset: str,
    interval_us: int | None,
    source: str,
    ingested_at: datetime,
) -> Parsed:
    """Units, then the dataset's rules (OHLC, signs, grid, close time: `lake.schemas`), then
    duplicates."""
    open_us = normalise_epoch_us(open_raw)
    close_us = normalise_epoch_us(close_raw)
    rejects.add(open_us <= 0, "open_time out of range")
    columns: dict[str, pa.Array] = {
        "open_time": _timestamps(open_us),
        "close_time": _timestamps(close_us),
        "trade_count": pa.array(trades, type=pa.int64()),
        **decimals,
    }
    rejects.check(columns, BY_TABLE[dataset], interval_us)
    value_rows = pa.table({k: columns[k] for k in (*_KLINE_DECIMALS, "close_time", "trade_count")})
    duplicates = rejects.dedupe(open_us, value_rows, "open_time")
    return _finish(
        KLINE_SCHEMA, columns, rejects, dataset, raw_row, open_us, source, ingested_at, duplicates
    )


def _object_rows(
    rows: Sequence[object], required: tuple[str, ...], symbol: str, rejects: _Rejects
) -> list[dict[str, object]]:
    """Reject rows that are not objects, lack a required key or name another symbol; return
    every row as a dict ({} for non-objects) so columns can be pulled out uniformly."""
    is_dict = np.array([isinstance(r, dict) for r in rows])
    rejects.add(~is_dict, "row is not an object")
    safe: list[dict[str, object]] = [r if isinstance(r, dict) else {} for r in rows]
    missing = np.array([any(k not in r for k in required) for r in safe]) & is_dict
    rejects.add(missing, f"missing {', '.join(required[:-1])} or {required[-1]}")
    wrong = np.array([r.get("symbol", symbol) != symbol for r in safe]) & is_dict
    rejects.add(wrong, f"wrong symbol (expected {symbol})")
    return safe


def parse_funding(
    rows: Sequence[dict[str, object]],
    *,
    symbol: str,
    source: str,
    ingested_at: datetime,
) -> Parsed:
    """Funding rows (REST dicts or archive records mapped to the same keys) -> lake rows."""
    if not rows:
        return Parsed(FUNDING_SCHEMA.empty_table(), _empty_quarantine())
    rejects = _Rejects(len(rows))
    safe = _object_rows(rows, ("fundingTime", "fundingRate"), symbol, rejects)

    times = normalise_epoch_us(
        _as_int_array([r.get("fundingTime", 0) for r in safe], "fundingTime", rejects)
    )
    rate = _cast_column(
        _as_string_array([r.get("fundingRate") for r in safe]), RATE, "fundingRate", rejects
    )
    mark_raw = [r.get("markPrice") for r in safe]
    mark = _cast_column(
        _as_string_array([None if m in (None, "") else m for m in mark_raw]),
        PRICE,
        "markPrice",
        rejects,
        required=False,
    )
    hours_raw = [r.get("fundingIntervalHours") for r in safe]
    hours = _cast_column(
        _as_string_array(hours_raw), pa.int32(), "fundingIntervalHours", rejects, required=False
    )
    columns = {
        "funding_time": _timestamps(times),
        "funding_rate": rate.fill_null(0),
        "mark_price": mark,
        "funding_interval_hours": hours,
    }
    rejects.check(columns, BY_TABLE["funding"])  # the ±3 % cap, compared as decimals
    rejects.add(times <= 0, "unparsable fundingTime")
    value_rows = pa.table({"funding_rate": columns["funding_rate"], "mark_price": mark})
    duplicates = rejects.dedupe(times, value_rows, "fundingTime")
    return _finish(
        FUNDING_SCHEMA,
        columns,
        rejects,
        "funding",
        lambda i: rows[i],
        times,
        source,
        ingested_at,
        duplicates,
    )


_OI_RATIOS = (
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)


def parse_open_interest(
    rows: Sequence[dict[str, object]],
    *,
    symbol: str,
    period_us: int,
    source: str,
    ingested_at: datetime,
) -> Parsed:
    """openInterestHist rows (or archive metrics mapped to the same keys) -> lake rows."""
    if not rows:
        return Parsed(OPEN_INTEREST_SCHEMA.empty_table(), _empty_quarantine())
    rejects = _Rejects(len(rows))
    safe = _object_rows(
        rows, ("timestamp", "sumOpenInterest", "sumOpenInterestValue"), symbol, rejects
    )
    # The timestamp is sometimes a string in Binance's own examples: coerce.
    times = normalise_epoch_us(
        _as_int_array([r.get("timestamp", 0) for r in safe], "timestamp", rejects)
    )
    oi = _cast_column(
        _as_string_array([r.get("sumOpenInterest") for r in safe]),
        PRICE,
        "sumOpenInterest",
        rejects,
    )
    oi_value = _cast_column(
        _as_string_array([r.get("sumOpenInterestValue") for r in safe]),
        PRICE,
        "sumOpenInterestValue",
        rejects,
    )
    rejects.add(times <= 0, "unparsable timestamp")
    columns: dict[str, pa.Array] = {
        "measured_at": _timestamps(times),
        "sum_open_interest": oi.fill_null(0),
        "sum_open_interest_value": oi_value.fill_null(0),
    }
    rejects.check(columns, BY_TABLE["open_interest"], period_us)  # signs, the period grid
    for name in _OI_RATIOS:
        columns[name] = _cast_column(
            _as_string_array([r.get(name) for r in safe]),
            pa.float64(),
            name,
            rejects,
            required=False,
        )
    value_rows = pa.table({k: columns[k] for k in ("sum_open_interest", "sum_open_interest_value")})
    duplicates = rejects.dedupe(times, value_rows, "timestamp")
    return _finish(
        OPEN_INTEREST_SCHEMA,
        columns,
        rejects,
        "open_interest",
        lambda i: rows[i],
        times,
        source,
        ingested_at,
        duplicates,
    )


def _empty_quarantine() -> pa.Table:
    return QUARANTINE_SCHEMA.empty_table()


def quarantine_rows(
    dataset: str,
    items: list[tuple[object, str, int | None]],
    *,
    source: str,
    ingested_at: datetime,
) -> pa.Table:
    """Quarantine rows that never reached a parser (e.g. rows outside the requested window)."""
    return _quarantine_table(dataset, lambda i: None, _Rejects(0), None, source, ingested_at, items)
