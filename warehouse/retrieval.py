"""Point-in-time retrieval: for each of a caller's events (symbol, event time), the feature
row that was available at that moment, as Feast's `get_historical_features` does.

The marts already hold point-in-time-correct rows, each with `available_at` (ARCHITECTURE.md
invariants 1 and 2); retrieval only joins: for every event, the row of its symbol with the
latest `available_at` at or before the event time. Nothing here computes a feature.

* DuckDB (build.duckdb, serve.duckdb): an `ASOF LEFT JOIN` against the event keys registered
  as an Arrow relation; the events never become SQL text. The API answers its few times from
  a per-publish `RowIndex` instead (the same rule, without planning a query per request).
* BigQuery (`dbt build --target prod`): the same answer in portable SQL, the union and running
  `LAST_VALUE` of macros/derivatives/as_of_latest_keys.sql, with the event keys loaded as a
  table first.

Feature names are checked against the catalog (warehouse.catalog) and quoted as identifiers;
symbols and times travel in the registered Arrow relations (a loaded table on BigQuery), the
max age as a bound parameter (a computed integer on BigQuery, whose emulator binds none). The
caller's other columns never enter a query and come back unchanged, in input order. An
event with no row yet (before the mart's first row for its symbol) or only one older than
`max_age` gets NULL features and a reason in `feature_null_reason`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import BtcfsError
from core.settings import DataPaths
from core.symbols import symbol_problem
from warehouse.catalog import CATALOG_TABLE, Catalog, CatalogError, from_rows, load_catalog
from warehouse.readers import BigQueryMarts, DuckDBMarts, ReadError, open_read_only

if TYPE_CHECKING:
    import pandas as pd

#: The feature marts retrieval reads, by bar interval.
INTERVALS = ("5m", "1h")
#: Mart columns that are keys, not features.
MART_KEYS = ("symbol", "open_time", "available_at")
#: The columns an events table must have.
SYMBOL, EVENT_TIME = "symbol", "event_time"
#: What retrieval adds after the caller's columns, before the features.
FEATURE_OPEN_TIME = "feature_open_time"
FEATURE_AVAILABLE_AT = "feature_available_at"
FEATURE_AGE_SECONDS = "feature_age_seconds"
NULL_REASON = "feature_null_reason"
ADDED_COLUMNS = (FEATURE_OPEN_TIME, FEATURE_AVAILABLE_AT, FEATURE_AGE_SECONDS, NULL_REASON)
#: Why an event's features are NULL.
NO_ROW = "no_row_at_or_before_event"
TOO_OLD = "older_than_max_age"
REASONS = (NO_ROW, TOO_OLD)

_ROW = "event_row"
SYMBOLS_SUFFIX = "_symbols"
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?$"
_HAS_OFFSET = r"([Zz]|[+-]\d{2}:\d{2})$"
#: The times Python, JSON and RFC 3339 share: years 1 to 9999 (UTC), in microseconds.
_FIRST_US = -62_135_596_800_000_000
_END_US = 253_402_300_800_000_000
_DURATION = re.compile(r"^(\d+)(us|ms|s|m|h|d)$")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86_400}


class RetrievalError(BtcfsError):
    """A retrieval that cannot run: bad events, an unknown feature or symbol, no warehouse."""


class BadEvents(RetrievalError):
    """Events that do not make a table of (symbol, event time): `index` is the first bad row
    (0-based, in input order) when one row is to blame."""

    def __init__(self, message: str, *, index: int | None = None, key: str = "events") -> None:
        super().__init__(message)
        self.index = index
        self.key = key


class UnknownChoice(RetrievalError):
    """An interval, feature, set or symbol the warehouse does not have; `valid` lists those
    it does."""

    def __init__(self, message: str, *, key: str, valid: Sequence[str]) -> None:
        super().__init__(message)
        self.key = key
        self.valid = list(valid)


class UnknownSymbol(UnknownChoice):
    """Events of a symbol the mart holds no row of."""


# ---------------------------------------------------------------------------- the choice


@dataclass(frozen=True)
class Selection:
    """What to retrieve: the mart (by interval), its features in mart order, the oldest row
    that still counts (`max_age`; None: any row)."""

    interval: str
    features: tuple[str, ...]
    max_age: timedelta | None = None

    @property
    def relation(self) -> str:
        return f"features_{self.interval}"


def mart_features(catalog: Catalog, interval: str) -> list[str]:
    """Every non-key column of the interval's mart, in declaration (mart) order."""
    check_interval(interval)
    return [c.name for c in catalog.columns(f"features_{interval}") if c.name not in MART_KEYS]


def check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise UnknownChoice(
            f"unknown interval {interval!r}: the feature marts are {', '.join(INTERVALS)}",
            key="interval",
            valid=INTERVALS,
        )
    return interval


def select_features(
    catalog: Catalog,
    interval: str = "5m",
    features: Sequence[str] | None = None,
    feature_set: str | None = None,
    max_age: timedelta | str | None = None,
) -> Selection:
    """Check a choice of features against the catalog: names (kept in mart order), a set, or
    by default every column of the mart."""
    available = mart_features(catalog, interval)
    if features is not None and feature_set is not None:
        raise UnknownChoice(
            "choose features by name or by set, not both", key="features", valid=available
        )
    if feature_set is not None:
        try:
            members = set(catalog.set_members(feature_set, f"features_{interval}"))
        except CatalogError as exc:
            raise UnknownChoice(str(exc), key="feature_set", valid=catalog.sets) from None
        chosen = [name for name in available if name in members]
    elif features is not None:
        wanted = list(features)
        if not wanted:
            raise UnknownChoice("no feature chosen", key="features", valid=available)
        unknown = [name for name in wanted if name not in available]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), available, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UnknownChoice(
                f"unknown feature {', '.join(map(repr, unknown[:5]))} in features_{interval}"
                f"{hint}: `btcfs features list` names them all",
                key="features",
                valid=available,
            )
        repeated = [name for name, count in Counter(wanted).items() if count > 1]
        if repeated:
            raise UnknownChoice(
                f"feature {', '.join(map(repr, repeated))} chosen twice",
                key="features",
                valid=available,
            )
        chosen = [name for name in available if name in set(wanted)]
    else:
        chosen = available
    return Selection(interval, tuple(chosen), parse_max_age(max_age))


def parse_max_age(value: timedelta | str | None) -> timedelta | None:
    """`15m`, `2h`, `90s`, `1d` (or a timedelta): the oldest row an event accepts."""
    if value is None or isinstance(value, timedelta):
        age = value
    else:
        found = _DURATION.match(value.strip())
        if not found:
            raise UnknownChoice(
                f"max age {value!r} is not a duration like 15m, 2h, 90s or 1d",
                key="max_age",
                valid=[f"<n>{unit}" for unit in _UNITS],
            )
        age = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    if age is not None and age < timedelta(0):
        raise UnknownChoice("max age must not be negative", key="max_age", valid=[])
    return age


# ---------------------------------------------------------------------------- the events


@dataclass(frozen=True)
class Events:
    """A caller's events: their table as given, and the keys retrieval joins on (row number,
    symbol, event time in UTC microseconds)."""

    table: pa.Table
    keys: pa.Table
    naive_times: int = 0  # event times given without an offset, read as UTC

    @property
    def symbols(self) -> list[str]:
        return sorted(str(s) for s in pc.unique(self.keys.column(SYMBOL)).to_pylist())


def parse_times(values: pa.Array | pa.ChunkedArray, key: str = EVENT_TIME) -> tuple[pa.Array, int]:
    """RFC 3339 text as UTC timestamps (microseconds) and how many had no offset (taken as
    UTC). BadEvents names the first value that is not a time, by index."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    array = array.cast(pa.string())
    if not len(array):
        return array.cast(_TIMESTAMP), 0
    _no_nulls(array, key)
    shaped = pc.match_substring_regex(array, _RFC3339)
    if not pc.all(shaped).as_py():
        index = _first_false(shaped)
        raise BadEvents(
            f"{key}[{index}]: {_shown(array[index].as_py())} is not an RFC 3339 time "
            "(e.g. 2025-01-31T12:00:00Z)",
            index=index,
            key=key,
        )
    with_offset = pc.match_substring_regex(array, _HAS_OFFSET)
    naive = len(array) - int(pc.sum(with_offset).as_py() or 0)
    text = pc.if_else(with_offset, array, pc.binary_join_element_wise(array, "Z", ""))
    try:
        parsed = pc.cast(pc.utf8_upper(text), _TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = None
    if parsed is not None:
        micros = pc.cast(parsed, pa.int64())
        inside = pc.and_(pc.greater_equal(micros, _FIRST_US), pc.less(micros, _END_US))
        if pc.all(inside).as_py():
            return parsed, naive
        index = _first_false(inside)
        raise BadEvents(
            f"{key}[{index}]: {_shown(array[index].as_py())} is outside the years 1 to 9999 in UTC",
            index=index,
            key=key,
        )
    # a well-shaped but impossible time (2025-02-30, 25:00): find the first, by index
    for index, value in enumerate(array.to_pylist()):
        try:
            datetime.fromisoformat(str(value).upper().replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            raise BadEvents(
                f"{key}[{index}]: {_shown(value)} is not a valid time ({exc})",
                index=index,
                key=key,
            ) from None
    raise BadEvents(f"{key}: a time cannot be read", key=key)


def _first_false(mask: pa.Array) -> int:
    return int(pc.index(mask, False).as_py())


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _no_nulls(array: pa.Array, key: str) -> None:
    if array.null_count:
        index = _first_false(pc.is_valid(array))
        raise BadEvents(f"{key}[{index}] is empty", index=index, key=key)


def prepare_events(events: pa.Table | pd.DataFrame) -> Events:
    """Check a table of events: `symbol` (text) and `event_time` (a timestamp, or RFC 3339
    text; a time without a zone is UTC) and any other columns, which come back unchanged."""
    if not isinstance(events, pa.Table):
        try:
            events = pa.Table.from_pandas(events, preserve_index=False)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise BadEvents(f"events cannot be read as a table: {exc}") from None
    missing = [name for name in (SYMBOL, EVENT_TIME) if name not in events.column_names]
    if missing:
        raise BadEvents(
            f"events lack the column {', '.join(missing)} (they need {SYMBOL} and {EVENT_TIME}; "
            f"they have {', '.join(events.column_names) or 'none'})",
            key=missing[0],
        )
    duplicated = [n for n, count in Counter(events.column_names).items() if count > 1]
    if duplicated:
        raise BadEvents(f"events have the column {', '.join(duplicated)} twice")
    symbols = events.column(SYMBOL).combine_chunks()
    if pa.types.is_null(symbols.type) and not len(symbols):  # an empty list: no type to see
        symbols = symbols.cast(pa.string())
    if pa.types.is_dictionary(symbols.type):
        symbols = symbols.dictionary_decode()
    if not (pa.types.is_string(symbols.type) or pa.types.is_large_string(symbols.type)):
        raise BadEvents(f"{SYMBOL} must be text, not {symbols.type}", key=SYMBOL)
    symbols = symbols.cast(pa.string())
    _no_nulls(symbols, SYMBOL)
    times = events.column(EVENT_TIME).combine_chunks()
    naive = 0
    if pa.types.is_null(times.type) and not len(times):
        times = times.cast(_TIMESTAMP)
    if pa.types.is_dictionary(times.type):
        times = times.dictionary_decode()
    if pa.types.is_string(times.type) or pa.types.is_large_string(times.type):
        times, naive = parse_times(times)
    elif pa.types.is_timestamp(times.type):
        _no_nulls(times, EVENT_TIME)
        if times.type.tz is None:
            naive = len(times)
            times = pc.assume_timezone(times, "UTC")
        # nanoseconds floor to the microsecond: the marts' times are microseconds, so the
        # same rows are at or before either
        times = times.cast(_TIMESTAMP, safe=False)
    else:
        raise BadEvents(
            f"{EVENT_TIME} must be a timestamp or RFC 3339 text, not {times.type}",
            key=EVENT_TIME,
        )
    keys = pa.table(
        {
            _ROW: pa.array(range(events.num_rows), type=pa.int64()),
            SYMBOL: symbols,
            EVENT_TIME: times,
        }
    )
    return Events(events, keys, naive)


# ---------------------------------------------------------------------------- the joins


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(catalog_name: str, relation: str) -> str:
    for part in (catalog_name, relation):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", part):
            raise RetrievalError(f"not a plain identifier: {part!r}")
    return f"{catalog_name}.{relation}"


def _answers_sql(selection: Selection, events_view: str, catalog_name: str) -> str:
    """CTEs ending in `answers`: per event key, its row number, time, the added columns and
    the features (NULL with a reason). `events_view` holds the keys with their symbol's code,
    `events_view + SYMBOLS_SUFFIX` the codes (symbol, symbol_code). Parameter: `$max_age_us`
    (or NULL). Every name in it is ours or a catalog-checked feature, quoted."""
    mart = _relation(catalog_name, selection.relation)
    columns = "".join(f", {_quoted(name)}" for name in selection.features)
    qualified = "".join(f", marts.{_quoted(name)}" for name in selection.features)
    # without a max age a NULL reason means no row, whose features the join left NULL
    masked = "".join(
        f",\n        case when reason is null then {_quoted(name)} end as {_quoted(name)}"
        if selection.max_age is not None
        else f", {_quoted(name)}"
        for name in selection.features
    )
    return f"""
with matched as (
    select
        events.{_ROW},
        events.event_time,
        marts.open_time,
        marts.available_at{qualified}
    from {_quoted(events_view)} as events
    asof left join (
        -- joined on the symbols' small integer codes: on their text, the join takes 3x
        select codes.symbol_code, marts.open_time, marts.available_at{columns}
        from {mart} as marts
        inner join {_quoted(events_view + SYMBOLS_SUFFIX)} as codes on codes.symbol = marts.symbol
    ) as marts
        on events.symbol_code = marts.symbol_code and events.event_time >= marts.available_at
),

aged as (
    -- integer microseconds: date_diff on a timestamptz goes through the ICU calendar (10x)
    select *, epoch_us(event_time) - epoch_us(available_at) as age_us
    from matched
),

judged as (
    select
        *,
        case
            when available_at is null then '{NO_ROW}'
            when age_us > cast($max_age_us as bigint) then '{TOO_OLD}'
        end as reason
    from aged
),

answers as (
    select
        {_ROW},
        event_time,
        open_time as {FEATURE_OPEN_TIME},
        available_at as {FEATURE_AVAILABLE_AT},
        age_us / 1e6 as {FEATURE_AGE_SECONDS},
        reason as {NULL_REASON}{masked}
    from judged
)
"""  # noqa: S608 - names are ours or checked against the catalog, values are bound


def duckdb_sql(selection: Selection, events_view: str, catalog_name: str = "main") -> str:
    """The as-of join on DuckDB, one row per event in input order: the added columns and the
    features. Parameter: `$max_age_us` (or NULL)."""
    names = ", ".join(_quoted(n) for n in (*ADDED_COLUMNS, *selection.features))
    final = f"select {names} from answers order by {_ROW}"  # noqa: S608 - checked names
    return _answers_sql(selection, events_view, catalog_name) + final


def _max_age_us(selection: Selection) -> int | None:
    if selection.max_age is None:
        return None
    return int(selection.max_age / timedelta(microseconds=1))


def join_duckdb(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    keys: pa.Table,
    catalog_name: str = "main",
) -> pa.Table:
    """The added columns and the features, one row per event key (`Events.keys`) in input
    order, from the mart in the DuckDB catalog `catalog_name` of `con`; the keys registered
    as Arrow relations (with their symbols' codes), never SQL text."""
    view = f"btcfs_events_{uuid.uuid4().hex}"
    symbols = pc.unique(keys.column(SYMBOL))
    coded = keys.append_column(
        "symbol_code", pc.index_in(keys.column(SYMBOL), value_set=symbols).cast(pa.int32())
    )
    codes = pa.table({SYMBOL: symbols, "symbol_code": pa.array(range(len(symbols)), pa.int32())})
    # DuckDB plans an ASOF join with a small side as a nested loop over every pair (120 M
    # for 200,000 events on 1,440 rows: seconds); the sort-merge plan is linear.
    con.execute("set asof_loop_join_threshold = 0")
    con.register(view, coded)
    con.register(view + SYMBOLS_SUFFIX, codes)
    try:
        sql = duckdb_sql(selection, view, catalog_name)
        try:
            table: pa.Table = con.execute(
                sql, {"max_age_us": _max_age_us(selection)}
            ).to_arrow_table()
            return table
        except duckdb.CatalogException as exc:
            raise RetrievalError(
                f"the warehouse has no {selection.relation} (or lacks a column the catalog "
                f"declares: run `dbt build`): {str(exc).splitlines()[0]}"
            ) from None
        except duckdb.BinderException as exc:
            raise RetrievalError(
                f"{selection.relation} does not match the catalog (run `dbt build`): "
                f"{str(exc).splitlines()[0]}"
            ) from None
    finally:
        con.unregister(view)
        con.unregister(view + SYMBOLS_SUFFIX)


def mart_symbols(
    con: duckdb.DuckDBPyConnection, relation: str, catalog_name: str = "main"
) -> list[str]:
    """The symbols the mart holds rows of."""
    sql = f"select distinct symbol from {_relation(catalog_name, relation)} order by 1"  # noqa: S608
    try:
        return [row[0] for row in con.execute(sql).fetchall()]
    except duckdb.CatalogException:
        raise RetrievalError(f"the warehouse has no {relation}: run `dbt build`") from None


def check_symbols(wanted: Sequence[str], valid: Sequence[str]) -> None:
    unknown = sorted(set(wanted) - set(valid))
    if unknown:
        # named as at every other door (core.symbols): `btcusdt` gets its upper-case form
        named = [symbol_problem(symbol) or repr(symbol) for symbol in unknown[:5]]
        raise UnknownSymbol(
            f"unknown symbol {', '.join(named)}: the warehouse holds "
            f"{', '.join(valid) or 'no symbol'}",
            key=SYMBOL,
            valid=valid,
        )


def assemble(events: Events, joined: pa.Table) -> pa.Table:
    """The caller's table, unchanged, then the added columns and the features."""
    if joined.num_rows != events.table.num_rows:
        raise RetrievalError(
            f"retrieval returned {joined.num_rows} rows for {events.table.num_rows} events"
        )
    table = events.table
    for name in joined.column_names:
        table = table.append_column(name, joined.column(name))
    return table


def check_names(events: Events, selection: Selection) -> None:
    """An event column may not share a name with what retrieval adds."""
    taken = set(ADDED_COLUMNS) | set(selection.features)
    clash = [name for name in events.table.column_names if name in taken]
    if clash:
        raise BadEvents(
            f"the events' column {', '.join(clash)} has the name of a column retrieval adds: "
            "rename it",
            key=clash[0],
        )


# ---------------------------------------------------------------------------- sources


def catalog_of(con: duckdb.DuckDBPyConnection, catalog_name: str = "main") -> Catalog | None:
    """The feature catalog a published file carries (serve.duckdb), or None (build.duckdb)."""
    sql = f"select * from {_relation(catalog_name, CATALOG_TABLE)}"  # noqa: S608
    try:
        cursor = con.execute(sql)
    except duckdb.CatalogException:
        return None
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return from_rows(rows, f"{catalog_name}.{CATALOG_TABLE}") if rows else None


@dataclass
class Retrieved:
    """A retrieval's result and what it was made from."""

    table: pa.Table
    selection: Selection
    naive_times: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> Summary:
        return summarise(self.table)


@dataclass(frozen=True)
class Summary:
    events: int
    matched: int
    null_by_reason: dict[str, int]

    def line(self) -> str:
        nulls = ", ".join(f"{count:,} {reason}" for reason, count in self.null_by_reason.items())
        return f"{self.events:,} events, {self.matched:,} matched" + (
            f", NULL: {nulls}" if nulls else ", none NULL"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "matched": self.matched,
            "null_by_reason": self.null_by_reason,
        }


def summarise(table: pa.Table) -> Summary:
    reasons = table.column(NULL_REASON)
    counts = {
        str(item["values"]): int(item["counts"])
        for item in pc.value_counts(reasons).to_pylist()
        if item["values"] is not None
    }
    ordered = {reason: counts[reason] for reason in REASONS if reason in counts}
    return Summary(table.num_rows, table.num_rows - sum(ordered.values()), ordered)


def retrieve_duckdb(
    path: Path,
    events: Events,
    interval: str = "5m",
    features: Sequence[str] | None = None,
    feature_set: str | None = None,
    max_age: timedelta | str | None = None,
    catalog: Catalog | None = None,
    *,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Retrieved:
    """Retrieval from a DuckDB warehouse file (dbt's build.duckdb or a published copy), opened
    read-only; the catalog is the file's own when it carries one, else dbt's manifest. With
    `chunk_rows`, the events go in slices of that many, `progress` called with each one's size.
    """
    if not path.is_file():
        raise RetrievalError(f"no warehouse at {path}: run `dbt build` (or `btcfs publish`)")
    try:
        con = open_read_only(path)  # says who holds the file while dbt writes it
    except ReadError as exc:
        raise RetrievalError(str(exc)) from None
    try:
        con.execute("set TimeZone = 'UTC'")
        catalog = catalog or catalog_of(con) or load_catalog()
        selection = select_features(catalog, interval, features, feature_set, max_age)
        check_names(events, selection)
        if events.table.num_rows:
            check_symbols(events.symbols, mart_symbols(con, selection.relation))
        size = chunk_rows or max(events.keys.num_rows, 1)
        parts = []
        for offset in range(0, max(events.keys.num_rows, 1), size):
            keys = events.keys.slice(offset, size)
            parts.append(join_duckdb(con, selection, keys))
            if progress is not None:
                progress(keys.num_rows)
        joined = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        build = build_identity(con, selection.relation)
    finally:
        con.close()
    extra = {"build": build, "catalog_version": catalog.version(), "source": str(path)}
    return Retrieved(assemble(events, joined), selection, events.naive_times, extra)


def build_identity(
    con: duckdb.DuckDBPyConnection, relation: str, catalog_name: str = "main"
) -> dict[str, Any]:
    """The dbt build that wrote `relation`: from a published file's metadata, else from the
    gate ledger dbt keeps in the warehouse (its last successful build of the model)."""
    published = _first(
        con,
        f"select dbt_invocation_id, built_at from {_relation(catalog_name, 'btcfs_publish')}",  # noqa: S608
    )
    if published is not None:
        return {"dbt_invocation_id": published[0], "built_at": _iso(published[1])}
    built = _first(
        con,
        "select invocation_id, run_started_at "  # noqa: S608 - our names only
        f"from {_relation(catalog_name, 'btcfs_gate_ledger')} "
        "where resource_type = 'model' and status = 'success' and unique_id like ? "
        "order by run_started_at desc limit 1",
        [f"model.%.{relation}"],
    )
    if built is None:
        return {"dbt_invocation_id": None, "built_at": None}
    return {"dbt_invocation_id": built[0], "built_at": _iso(built[1])}


def _first(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    try:
        return con.execute(sql, params or []).fetchone()
    except duckdb.CatalogException:
        return None


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def historical_features(
    events: pa.Table | pd.DataFrame,
    *,
    interval: str = "5m",
    features: Sequence[str] | None = None,
    feature_set: str | None = None,
    max_age: timedelta | str | None = None,
    source: Path | DuckDBMarts | BigQueryMarts | None = None,
    catalog: Catalog | None = None,
    as_pandas: bool = False,
) -> pa.Table | pd.DataFrame:
    """For each event (`symbol`, `event_time`, any other columns: carried through unchanged,
    in input order), the `interval` mart's row with the latest `available_at` at or before
    the event time: `feature_open_time`, `feature_available_at`, `feature_age_seconds`,
    `feature_null_reason` and the features (names, a set, or every column of the mart).

    `source` is a DuckDB file (default: $BTCFS_DATA_DIR/warehouse/build.duckdb) or a
    BigQuery dataset (`BigQueryMarts`). Arrow by default, pandas with `as_pandas`.
    """
    prepared = prepare_events(events)
    if isinstance(source, BigQueryMarts):
        result = retrieve_bigquery(
            source, prepared, interval, features, feature_set, max_age, catalog
        )
    else:
        path = source.path if isinstance(source, DuckDBMarts) else source
        result = retrieve_duckdb(
            path or DataPaths.from_env().build_db,
            prepared,
            interval,
            features,
            feature_set,
            max_age,
            catalog,
        )
    return result.table.to_pandas() if as_pandas else result.table


def bigquery_sql(selection: Selection, mart: str, events: str) -> str:
    """The as-of join in portable SQL for BigQuery (no ASOF JOIN there): the mart rows and
    the events in one stream per symbol, in time order with rows before events at the same
    time (so "at or before" holds), each event carrying the latest row's `available_at`
    (`last_value(... ignore nulls)`, as macros/derivatives/as_of_latest_keys.sql does), then
    that row joined back by (symbol, available_at), unique in a feature mart. `mart` and
    `events` are backquoted table names of our own; the max age, a number we computed, is the
    only value in the text (the emulator runs no query parameters)."""
    columns = "".join(f", marts.`{name}`" for name in selection.features)
    max_age = _max_age_us(selection)
    stale = (
        f"when timestamp_diff(carried.event_time, marts.available_at, microsecond) > {max_age}"
        f" then '{TOO_OLD}'"
        if max_age is not None
        else ""
    )
    masked = "".join(
        f", case when reason is null then `{name}` end as `{name}`"
        if max_age is not None
        else f", `{name}`"
        for name in selection.features
    )
    return f"""
with events as (
    select {_ROW}, symbol, event_time from {events}
),

marts as (
    select * from {mart}
    where symbol in (select distinct symbol from events)
),

stream as (
    select symbol, available_at as stream_time, 0 as sort_order, available_at as row_available_at,
        cast(null as int64) as {_ROW}, cast(null as timestamp) as event_time
    from marts
    union all
    select symbol, event_time as stream_time, 1 as sort_order, cast(null as timestamp),
        {_ROW}, event_time
    from events
),

carried as (
    select
        symbol,
        {_ROW},
        event_time,
        last_value(row_available_at ignore nulls) over (
            partition by symbol
            order by stream_time, sort_order
            rows between unbounded preceding and current row
        ) as matched_at
    from stream
),

judged as (
    select
        carried.{_ROW},
        marts.open_time,
        marts.available_at,
        timestamp_diff(carried.event_time, marts.available_at, microsecond) as age_us,
        case when marts.available_at is null then '{NO_ROW}' {stale} end as reason{columns}
    from carried
    left join marts
        on marts.symbol = carried.symbol and marts.available_at = carried.matched_at
    where carried.{_ROW} is not null
)

select
    open_time as {FEATURE_OPEN_TIME},
    available_at as {FEATURE_AVAILABLE_AT},
    age_us / 1e6 as {FEATURE_AGE_SECONDS},
    reason as {NULL_REASON}{masked}
from judged
order by {_ROW}
"""  # noqa: S608 - names are ours or checked against the catalog


def retrieve_bigquery(
    marts: BigQueryMarts,
    events: Events,
    interval: str = "5m",
    features: Sequence[str] | None = None,
    feature_set: str | None = None,
    max_age: timedelta | str | None = None,
    catalog: Catalog | None = None,
) -> Retrieved:
    """Retrieval from the marts `dbt build --target prod` wrote to BigQuery: the event keys
    loaded into a scratch table of the marts' dataset (dropped afterwards), the join in
    portable SQL (bigquery_sql). The catalog is dbt's manifest (of that build)."""
    from google.api_core import exceptions

    from warehouse.bigquery import to_csv
    from warehouse.connect import bigquery_client, first_line

    catalog = catalog or load_catalog()
    selection = select_features(catalog, interval, features, feature_set, max_age)
    check_names(events, selection)
    for part in (marts.project, marts.dataset):
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", part):
            raise RetrievalError(f"invalid BigQuery name {part!r}")
    client = bigquery_client(
        marts.project, marts.api_endpoint, purpose="retrieving from BigQuery", error=RetrievalError
    )
    from google.cloud import bigquery

    mart = f"`{marts.project}.{marts.dataset}.{selection.relation}`"
    scratch = f"{marts.project}.{marts.dataset}.btcfs_events_{uuid.uuid4().hex}"
    schema = [
        bigquery.SchemaField(_ROW, "INT64"),
        bigquery.SchemaField(SYMBOL, "STRING"),
        bigquery.SchemaField(EVENT_TIME, "TIMESTAMP"),
    ]
    try:
        symbols = [row[0] for row in client.query(f"select distinct symbol from {mart}")]  # noqa: S608
        if events.table.num_rows:
            check_symbols(events.symbols, sorted(symbols))
        client.create_table(bigquery.Table(scratch, schema=schema))
        config = bigquery.LoadJobConfig(
            schema=schema, source_format=bigquery.SourceFormat.CSV, skip_leading_rows=1,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        )  # fmt: skip
        if events.keys.num_rows:
            client.load_table_from_file(
                io.BytesIO(to_csv(events.keys)), scratch, job_config=config
            ).result()
        sql = bigquery_sql(selection, mart, f"`{scratch}`")
        joined = client.query(sql).to_arrow(create_bqstorage_client=marts.api_endpoint is None)
        build = _bigquery_build(client, marts, selection.relation)
    except exceptions.NotFound as exc:
        raise RetrievalError(
            f"BigQuery has no {marts.dataset}.{selection.relation}: run `dbt build --target "
            f"prod` ({first_line(exc)})"
        ) from None
    except exceptions.GoogleAPIError as exc:
        raise RetrievalError(f"retrieval on BigQuery failed: {first_line(exc)}") from None
    finally:
        with contextlib.suppress(Exception):  # a scratch table left behind is only a table
            client.delete_table(scratch, not_found_ok=True)
    joined = _like_duckdb(joined, selection)
    extra = {"build": build, "catalog_version": catalog.version(),
             "source": f"{BIGQUERY_SCHEME}{marts.project}/{marts.dataset}"}  # fmt: skip
    return Retrieved(assemble(events, joined), selection, events.naive_times, extra)


#: How a manifest names a BigQuery dataset it was retrieved from.
BIGQUERY_SCHEME = "bigquery://"


def _bigquery_build(client: Any, marts: BigQueryMarts, relation: str) -> dict[str, Any]:
    """The dbt build that wrote `relation` on BigQuery, from the gate ledger dbt keeps in
    that dataset (as build_identity reads it on DuckDB)."""
    from google.api_core import exceptions

    _relation("main", relation)  # a plain name: it is in the text below
    ledger = f"`{marts.project}.{marts.dataset}.btcfs_gate_ledger`"
    sql = (
        f"select invocation_id, run_started_at from {ledger} "  # noqa: S608 - checked names
        "where resource_type = 'model' and status = 'success' "
        f"and unique_id like 'model.%.{relation}' order by run_started_at desc limit 1"
    )
    try:
        rows = list(client.query(sql).result())
    except exceptions.GoogleAPIError:
        rows = []
    if not rows:
        return {"dbt_invocation_id": None, "built_at": None}
    return {"dbt_invocation_id": rows[0][0], "built_at": _iso(rows[0][1])}


def bigquery_source(uri: str, api_endpoint: str | None = None) -> BigQueryMarts:
    """The dataset a manifest's `bigquery://project/dataset` names."""
    project, _, dataset = uri.removeprefix(BIGQUERY_SCHEME).partition("/")
    if not project or not dataset:
        raise RetrievalError(f"not a BigQuery dataset: {uri!r}")
    return BigQueryMarts(project, dataset, api_endpoint)


def _like_duckdb(joined: pa.Table, selection: Selection) -> pa.Table:
    """BigQuery's result with the added columns typed as DuckDB's (an empty result comes
    back untyped)."""
    types = {
        FEATURE_OPEN_TIME: _TIMESTAMP,
        FEATURE_AVAILABLE_AT: _TIMESTAMP,
        FEATURE_AGE_SECONDS: pa.float64(),
        NULL_REASON: pa.string(),
    }
    columns = [
        joined.column(name).cast(types[name]) if name in types else joined.column(name)
        for name in joined.column_names
    ]
    return pa.table(columns, names=[*ADDED_COLUMNS, *selection.features])


# ---------------------------------------------------------------------------- files

#: File formats by extension: what `btcfs features get` reads and writes.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "btcfs.retrieval"


def file_format(path: Path, what: str) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise RetrievalError(
            f"{what} {path.name}: unknown format {path.suffix or '(no extension)'!r}; "
            f"use {', '.join(FORMATS)}"
        ) from None


def read_events_file(path: Path) -> Events:
    """Events from CSV or Parquet (by extension) with the columns symbol and event_time; a
    bad line or time is named by its line (CSV) or row (Parquet)."""
    kind = file_format(path, "events file")
    if not path.is_file():
        raise RetrievalError(f"events file {path} not found")
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise RetrievalError(f"{path.name} is not a readable Parquet file: {exc}") from None
    else:
        table = _read_csv(path)
    if table.num_rows == 0:
        raise BadEvents(f"{path.name} holds no events (a header at most)")
    try:
        return prepare_events(table)
    except BadEvents as exc:
        if exc.index is None:
            raise BadEvents(f"{path.name}: {exc}", key=exc.key) from None
        where = f"line {exc.index + 2}" if kind == "csv" else f"row {exc.index}"
        detail = str(exc).split(": ", 1)[-1] if str(exc).startswith(exc.key + "[") else str(exc)
        raise BadEvents(
            f"{path.name}, {where}: {exc.key} {detail}", index=exc.index, key=exc.key
        ) from None


def _read_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    if path.stat().st_size == 0:
        raise BadEvents(f"{path.name} is empty: it needs a header line with symbol,event_time")
    # times and symbols stay text: the one time parser here reads them, and names the row
    types = {SYMBOL: pa.string(), EVENT_TIME: pa.string()}
    try:
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as exc:
        raise BadEvents(f"{path.name}: {_csv_problem(path, exc)}") from None


def _csv_problem(path: Path, exc: Exception) -> str:
    """The first line whose field count differs from the header's, else Arrow's words."""
    import csv

    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            if len(row) != len(header):
                return (
                    f"line {reader.line_num} has {len(row)} fields, the header {len(header)} "
                    f"({','.join(header)[:80]})"
                )
    return str(exc).splitlines()[0]


def write_result(table: pa.Table, path: Path) -> None:
    """Parquet or CSV by extension, written to a temporary file and renamed over `path`."""
    kind = file_format(path, "output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, temporary)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + MANIFEST_SUFFIX)


def write_manifest(
    output: Path,
    events_path: Path,
    retrieved: Retrieved,
    feature_set: str | None,
    lake: dict[str, Any],
) -> Path:
    """What a retrieved training set is made of, beside it: the request, the warehouse build,
    the lake's digest, the catalog version and the features, and the files' sha256."""
    from core import __version__

    selection = retrieved.selection
    summary = retrieved.summary()
    payload = {
        "kind": MANIFEST_KIND,
        "format_version": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "btcfs_version": __version__,
        "output": {"file": output.name, "sha256": file_sha256(output), "rows": summary.events},
        "events": {
            "file": str(events_path.resolve()),
            "sha256": file_sha256(events_path),
            "rows": summary.events,
            "times_without_offset_read_as_utc": retrieved.naive_times,
        },
        "request": {
            "interval": selection.interval,
            "feature_set": feature_set,
            "features": list(selection.features),
            "max_age_seconds": selection.max_age.total_seconds() if selection.max_age else None,
        },
        "warehouse": {"file": retrieved.extra.get("source"), **retrieved.extra.get("build", {})},
        "lake": lake,
        "catalog": {"version": retrieved.extra.get("catalog_version")},
        "summary": summary.to_dict(),
    }
    path = manifest_path(output)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(json.dumps(payload, indent=2) + "\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_manifest(path: Path) -> tuple[Path, dict[str, Any]]:
    """The output file and its manifest, from either's path."""
    manifest = path if path.name.endswith(MANIFEST_SUFFIX) else manifest_path(path)
    output = (
        path.with_name(path.name[: -len(MANIFEST_SUFFIX)])
        if path.name.endswith(MANIFEST_SUFFIX)
        else path
    )
    try:
        payload = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise RetrievalError(
            f"no manifest {manifest.name} beside {output.name}: it was not written by "
            "`btcfs features get`"
        ) from None
    except (OSError, ValueError) as exc:
        raise RetrievalError(f"cannot read {manifest}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("kind") != MANIFEST_KIND:
        raise RetrievalError(f"{manifest} is not a btcfs retrieval manifest")
    return output, payload


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def verify(
    path: Path,
    warehouse: Path | None,
    lake: dict[str, Any],
    catalog: Catalog | None = None,
    bq_endpoint: str | None = None,
) -> list[Check]:
    """Check a retrieved file against its manifest and against what is here now: the file's
    sha256, the warehouse build, the lake's digest, the catalog version, and the answers
    themselves (the recorded events retrieved again must give the same table). The events
    are retrieved again from `warehouse`, or where the manifest says they came from: its
    DuckDB file, or its BigQuery dataset (through `bq_endpoint` when that is an emulator)."""
    output, manifest = read_manifest(path)
    checks = []
    recorded = manifest.get("output") or {}
    if output.is_file():
        same = file_sha256(output) == recorded.get("sha256")
        checks.append(Check("output file", same, "sha256 as recorded" if same else
                            f"{output.name} changed since it was written"))  # fmt: skip
    else:
        checks.append(Check("output file", False, f"{output} not found"))
    request = manifest.get("request") or {}
    events_info = manifest.get("events") or {}
    events_path = Path(str(events_info.get("file", "")))
    if not events_path.is_file():
        checks.append(Check("events file", False, f"{events_path} not found: cannot rebuild"))
        return checks
    if file_sha256(events_path) != events_info.get("sha256"):
        checks.append(Check("events file", False, f"{events_path} changed since: cannot rebuild"))
        return checks
    checks.append(Check("events file", True, f"{events_path} as recorded"))
    seconds = request.get("max_age_seconds")
    max_age = timedelta(seconds=seconds) if seconds is not None else None
    recorded_source = str((manifest.get("warehouse") or {}).get("file") or "")
    events = read_events_file(events_path)
    interval, features = request.get("interval", "5m"), request.get("features")
    if warehouse is None and recorded_source.startswith(BIGQUERY_SCHEME):
        marts = bigquery_source(recorded_source, bq_endpoint)
        retrieved = retrieve_bigquery(marts, events, interval, features, None, max_age, catalog)
    else:
        where = warehouse or Path(recorded_source or DataPaths.from_env().build_db)
        retrieved = retrieve_duckdb(where, events, interval, features, None, max_age, catalog)
    build = retrieved.extra.get("build", {})
    then = manifest.get("warehouse") or {}
    same_build = build.get("dbt_invocation_id") == then.get("dbt_invocation_id")
    checks.append(Check(
        "warehouse build", same_build,
        f"dbt invocation {build.get('dbt_invocation_id')}" + ("" if same_build else
        f", recorded {then.get('dbt_invocation_id')} (built {then.get('built_at')})"),
    ))  # fmt: skip
    same_lake = lake.get("sha256") == (manifest.get("lake") or {}).get("sha256")
    checks.append(Check("lake", same_lake, "digest as recorded" if same_lake else
                        "the lake changed since (new or replaced partitions)"))  # fmt: skip
    version = retrieved.extra.get("catalog_version")
    recorded_version = (manifest.get("catalog") or {}).get("version")
    same_catalog = version == recorded_version
    detail = f"version {version}" + ("" if same_catalog else f", recorded {recorded_version}")
    checks.append(Check("catalog", same_catalog, detail))
    if output.is_file():
        again = retrieved.table
        kept = _read_output(output, again.schema)
        same_rows = _same_answers(kept, again)
        checks.append(Check(
            "answers", same_rows,
            f"{again.num_rows:,} rows retrieved again, equal" if same_rows
            else "retrieved again, the answers differ: the warehouse changed since",
        ))  # fmt: skip
    return checks


def _read_output(path: Path, schema: pa.Schema) -> pa.Table:
    """The file as written; CSV read back with the types retrieval gave it."""
    if file_format(path, "output file") == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    import pyarrow.csv as pacsv

    types = {field.name: field.type for field in schema}
    # an empty field was a NULL (the CSV writer writes NULL text as nothing)
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid as exc:
        raise RetrievalError(f"{path.name} cannot be read back: {exc}") from None


def _same_answers(kept: pa.Table, again: pa.Table) -> bool:
    """The answers (what retrieval added) equal, as written to the file's format."""
    added = again.column_names[again.column_names.index(FEATURE_OPEN_TIME) :]
    if kept.num_rows != again.num_rows or not set(added) <= set(kept.column_names):
        return False
    for name in added:
        left, right = kept.column(name), again.column(name)
        if left.type != right.type:
            try:
                right = right.cast(left.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return False
        if not left.equals(right):
            return False
    return True


# ---------------------------------------------------------------------------- few times, fast

#: A NaN or infinity as DuckDB's to_json writes it (a value, never inside a string).
_NON_FINITE = re.compile(r":(?:-?Infinity|NaN)(?=[,}])")


def _json_time(column: str) -> str:
    # RFC 3339 in UTC as the API writes times elsewhere: no fraction when it is zero
    return (
        f"case when microsecond({column}) = 0 then strftime({column}, '%Y-%m-%dT%H:%M:%SZ') "
        f"else strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ') end"
    )


@dataclass(frozen=True)
class RowIndex:
    """One symbol's rows of a mart, as JSON pieces DuckDB wrote once, in `available_at`
    order: what the API answers a request's few times from without planning a query each
    time (a plan of 60 features takes DuckDB ~6 ms; a lookup here ~0.1 ms).

    The rule is the as-of join's: an event's row is the one with the latest `available_at`
    at or before its time (a binary search, `available_at` being unique and sorted). Its
    answers are checked against the DuckDB join and the brute-force reference."""

    available_at: np.ndarray  # int64 microseconds, strictly increasing
    heads: list[bytes]  # "feature_open_time":"…","feature_available_at":"…"
    tails: list[bytes]  # ,"feature":value,… in mart order, and the closing brace
    _missing: bytes  # the rest of a time with no row yet

    @classmethod
    def load(
        cls,
        con: duckdb.DuckDBPyConnection,
        selection: Selection,
        symbol: str,
        catalog_name: str = "main",
    ) -> RowIndex:
        mart = _relation(catalog_name, selection.relation)
        pairs = ", ".join(f"{_quoted(n)} := {_quoted(n)}" for n in selection.features)
        features = f"to_json(struct_pack({pairs}))" if pairs else "'{}'"
        sql = f"""
select
    epoch_us(available_at) as available_us,
    to_json(struct_pack(
        {FEATURE_OPEN_TIME} := {_json_time("open_time")},
        {FEATURE_AVAILABLE_AT} := {_json_time("available_at")}
    )) as head,
    {features} as tail
from {mart}
where symbol = $symbol
order by available_at
"""  # noqa: S608 - names are ours or checked against the catalog; the symbol is bound
        try:
            rows = con.execute(sql, {"symbol": symbol}).fetchall()
        except duckdb.Error as exc:
            raise RetrievalError(
                f"{selection.relation} cannot be read: {str(exc).splitlines()[0]}"
            ) from None
        available = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        if len(available) > 1 and not bool(np.all(np.diff(available) > 0)):
            raise RetrievalError(f"{selection.relation}: two rows of {symbol} share available_at")
        empty = ",".join(f'"{name}":null' for name in selection.features)
        missing = '"feature_open_time":null,"feature_available_at":null,"feature_age_seconds":null'
        return cls(
            available_at=available,
            heads=[row[1][1:-1].encode() for row in rows],
            tails=[_tail(_NON_FINITE.sub(":null", row[2])[1:-1]) for row in rows],
            _missing=missing.encode() + _tail(empty),
        )

    @functools.cached_property
    def nbytes(self) -> int:
        """About what the index holds in memory."""
        return (
            self.available_at.nbytes
            + sum(map(len, self.heads))
            + sum(map(len, self.tails))
            + 80 * len(self.heads)  # two bytes objects' headers per row
        )

    def json_rows(self, times: pa.Array | pa.ChunkedArray) -> bytes:
        """`{"rows": [...]}` as UTF-8: per time (UTC microseconds), in order, event_time,
        feature_open_time, feature_available_at, feature_age_seconds, then each feature."""
        micros = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False)
        found = np.searchsorted(self.available_at, micros, side="right") - 1
        stamps = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
        # one join of many small pieces: a row's features (~2 KB) are copied once
        pieces: list[bytes] = [b'{"rows":[']
        for number, (micro, index, stamp) in enumerate(
            zip(micros.tolist(), found.tolist(), stamps.tolist(), strict=True)
        ):
            text = stamp[:-7] if stamp.endswith(".000000") else stamp
            pieces.append(f'{"," if number else ""}{{"event_time":"{text}Z",'.encode())
            if index < 0:
                pieces.append(self._missing)
                continue
            age = (micro - int(self.available_at[index])) / 1e6
            pieces += (self.heads[index], f',"feature_age_seconds":{age!r}'.encode(),
                       self.tails[index])  # fmt: skip
        pieces.append(b"]}")
        return b"".join(pieces)


def _tail(features: str) -> bytes:
    """The end of a row: `,` and the features (when any were chosen), then `}`."""
    return (("," + features if features else "") + "}").encode()
