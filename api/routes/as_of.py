"""POST /v1/features/as-of: for each of a caller's times, the feature row that was available
then (warehouse.retrieval, on the published serve.duckdb like every other endpoint)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import pyarrow as pa
from litestar import MediaType, Response, post
from litestar.params import JSONBody

from api.db import Reader
from api.errors import InvalidInput, error_responses
from api.schemas import AsOfIn, AsOfOut
from api.services import (
    FEATURE_INTERVALS,
    FORMATS,
    Format,
    ServicesDep,
    check_choice,
    check_symbol,
    tabular,
)
from warehouse.catalog import CATALOG_TABLE, Catalog, from_rows
from warehouse.retrieval import (
    EVENT_TIME,
    NULL_REASON,
    BadEvents,
    RowIndex,
    Selection,
    UnknownChoice,
    join_duckdb,
    parse_times,
    prepare_events,
    select_features,
)

#: The most times one request may ask about.
MAX_TIMES = 10_000
#: Row indexes kept per publish (one per symbol, interval and choice of features), and the
#: memory they may hold together: a caller choosing new features each time costs a load
#: each time, never memory (a year of 5m rows with every feature is ~170 MB).
MAX_INDEXES = 16
MAX_BYTES = 512 * 2**20


def _catalog(reader: Reader) -> Catalog:
    """The declaration published with the file (once per publish)."""
    key = ("as_of_catalog",)
    catalog: Catalog | None = reader.generation.memo.get(key)
    if catalog is None:
        if not reader.has(CATALOG_TABLE):
            raise InvalidInput("the published file has no feature catalog: run `btcfs publish`")
        rows = reader.rows(f"select * from serve.{CATALOG_TABLE}")  # noqa: S608 - our name
        catalog = from_rows(rows, "serve.duckdb")
        reader.generation.memo[key] = catalog
    return catalog


def _index(reader: Reader, selection: Selection, symbol: str) -> RowIndex:
    """The symbol's rows of the mart as JSON pieces, loaded once per publish and choice."""
    indexes: OrderedDict[tuple[str, ...], RowIndex] = reader.generation.memo.setdefault(
        ("as_of_indexes",), OrderedDict()
    )
    key = (symbol, selection.interval, *selection.features)
    with _lock:
        index = indexes.get(key)
        if index is not None:
            indexes.move_to_end(key)
            return index
    index = RowIndex.load(reader.cursor, selection, symbol, "serve")
    with _lock:
        indexes[key] = index
        # the oldest go first, down to both bounds (the newest always stays)
        while len(indexes) > 1 and (
            len(indexes) > MAX_INDEXES or sum(i.nbytes for i in indexes.values()) > MAX_BYTES
        ):
            indexes.popitem(last=False)
    return index


_lock = threading.Lock()


def _table(reader: Reader, selection: Selection, symbol: str, times: pa.Array) -> pa.Table:
    """The JSON answer's columns, typed, from the library's as-of join on the served file
    (the DuckDB plan costs ~6 ms: fine for a whole table, which JSON answers from the index
    instead)."""
    events = prepare_events(
        pa.table({"symbol": pa.array([symbol] * len(times), pa.string()), EVENT_TIME: times})
    )
    joined = join_duckdb(reader.cursor, selection, events.keys, "serve").drop_columns([NULL_REASON])
    return joined.add_column(0, EVENT_TIME, events.keys.column(EVENT_TIME))


@post(
    "/v1/features/as-of",
    operation_id="getFeaturesAsOf",
    summary="Feature rows as of your times",
    tags=["features"],
    sync_to_thread=True,
    status_code=200,
    responses=error_responses(404, 413, 422, 503),
    response_description="One flat row per time, in the order given",
)
def post_features_as_of(
    services: ServicesDep, data: JSONBody[AsOfIn], format: Format = "json"
) -> AsOfOut | Response[Any]:
    """For each time, the feature row of `symbol` with the latest `available_at` at or
    before it (point in time: what was known then): `event_time` (in UTC),
    `feature_open_time`, `feature_available_at`, `feature_age_seconds`, then each feature by
    its mart name (`features`, or a `feature_set`'s, or every column); all null before the
    first row. At most 10,000 times per request; an unknown symbol is a 404 listing the valid
    ones, an unknown feature, set or interval a 422 listing them, a malformed time a 422
    naming its index (`extra.key`, e.g. `times[3]`). `format=csv` or `format=arrow` (an
    Arrow IPC file) answer the same rows as a typed table."""
    check_choice("interval", data.interval, FEATURE_INTERVALS)
    check_choice("format", format, FORMATS)
    if len(data.times) > MAX_TIMES:
        raise InvalidInput(
            f"{len(data.times):,} times: at most {MAX_TIMES:,} per request", key="times",
            limit=MAX_TIMES,
        )  # fmt: skip
    try:
        times, _ = parse_times(pa.array(data.times, type=pa.string()), key="times")
    except BadEvents as exc:
        raise InvalidInput(str(exc), key=f"times[{exc.index}]") from None
    with services.db.reader() as reader:
        try:
            selection = select_features(
                _catalog(reader), data.interval, data.features, data.feature_set
            )
        except UnknownChoice as exc:
            raise InvalidInput(str(exc), key=exc.key, valid=exc.valid) from None
        check_symbol(reader, data.symbol, selection.relation)
        if format != "json":
            table = _table(reader, selection, data.symbol, times)
            return tabular(table, format, f"features_{data.interval}_{data.symbol}_as_of")
        index = _index(reader, selection, data.symbol)
    # the pieces were written by DuckDB once per publish: no 60 Python objects per time
    return Response(index.json_rows(times), media_type=MediaType.JSON)


ROUTES = [post_features_as_of]
