"""What the handlers share: the published warehouse, the models, the paper book, the stream."""

from __future__ import annotations

import io
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.csv as pacsv
from litestar import Response
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import QueryParameter, SkipValidation

from api.cursor import BACKWARD, CURSOR_CHARS, FORWARD, CursorCodec, Position, fingerprint, load_key
from api.db import Reader, ServeDatabase
from api.errors import InvalidInput, NotFound
from api.paper import PaperBook
from api.predictor import HORIZON_SECONDS, Predictor
from api.settings import ApiSettings
from api.stream import Hub
from core.symbols import symbol_problem

BAR_INTERVALS = ("5m", "15m", "1h", "4h", "1d")
FEATURE_INTERVALS = ("5m", "1h")
#: The finest published bars: what "the latest price" means for paper positions.
PRICE_INTERVAL = "5m"
MAX_LIMIT = 5_000

# Query parameters shared by several routes (their enums and bounds go into OpenAPI).
Symbol = Annotated[
    str,
    QueryParameter(
        description="Trading pair as the warehouse holds it (BTCUSDT, ETHUSDT); one the "
        "published file does not serve is a 404 listing those it does",
        examples=[Example(value="BTCUSDT")],
    ),
]
BarInterval = Annotated[
    str,
    QueryParameter(description="Bar width", schema_extra={"enum": list(BAR_INTERVALS)}),
]
FeatureInterval = Annotated[
    str,
    QueryParameter(
        description="Feature grain: 5m (features_5m) or 1h (features_1h)",
        schema_extra={"enum": list(FEATURE_INTERVALS)},
    ),
]
Horizon = Annotated[
    str | None,
    QueryParameter(
        description="Forecast horizon of the model to use (default: the primary model's)",
        schema_extra={"enum": list(HORIZON_SECONDS)},
    ),
]
#: What the range and as-of endpoints answer in: JSON (the default), CSV, or an Arrow IPC
#: file (`pyarrow.ipc.open_file`, `polars.read_ipc`, `pandas.read_feather` read it straight
#: from the body; the body is whole anyway, so the stream format would gain nothing).
FORMATS = ("json", "csv", "arrow")
ARROW_FILE = "application/vnd.apache.arrow.file"
Format = Annotated[
    str,
    QueryParameter(
        description="json (default), csv (a header row, RFC 3339 times) or arrow (an Arrow "
        "IPC file, every column with its type: polars.read_ipc, pyarrow.ipc.open_file)",
        schema_extra={"enum": list(FORMATS)},
    ),
]
Limit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=MAX_LIMIT,
        description=f"Rows per page, 1-{MAX_LIMIT:,}; more rows are behind the `next` link",
    ),
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="Where the next page starts: the opaque `next_cursor` of the page "
        'before (or follow its `next` link, the `Link: <...>; rel="next"` header in every '
        "format). Valid with the symbol, interval, start and end it was issued for (limit "
        "and format may change); a malformed, altered or foreign cursor is a 422. With "
        "`start` the pages run forward to `end`, without it backward from the newest row; "
        "the last page has no next. A keyset on open time: every row once, also across a "
        "publish",
        schema_extra={
            "minLength": CURSOR_CHARS,
            "maxLength": CURSOR_CHARS,
            "pattern": "^[A-Za-z0-9_-]+$",
        },
    ),
]
Timestamp = Annotated[
    str | None,
    QueryParameter(
        description="RFC 3339 time, e.g. 2025-01-31T12:00:00Z (no offset: UTC), or a date "
        "alone, its midnight UTC (2025-01-31)",
        schema_extra={"format": "date-time"},
    ),
]
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?)?$"
)


@dataclass
class Services:
    settings: ApiSettings
    db: ServeDatabase
    predictor: Predictor
    paper: PaperBook
    cursors: CursorCodec
    hub: Hub = field(default_factory=Hub)
    #: The newest 5m bar each symbol's last stream event carried.
    stream_since: dict[str, datetime] = field(default_factory=dict)
    #: The generation the stream last announced (by the watcher or an admin reload).
    announced: int | None = None
    announce_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Services:
        return cls(
            settings=settings,
            db=ServeDatabase(settings.serve_db),
            predictor=Predictor(settings.registry_root, settings.primary_model),
            paper=PaperBook(settings.state_db),
            cursors=CursorCodec(load_key(settings.cursor_key, settings.state_db.parent)),
        )


#: How handlers ask for the services: Litestar injects the app's one instance by this name,
#: as it is (validating it would convert it, i.e. hand each request a copy).
ServicesDep = NamedDependency[SkipValidation[Services]]


_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def served_symbols(reader: Reader, table: str) -> tuple[str, ...]:
    """The symbols a published mart holds rows of (memoised per generation)."""
    key = ("symbols", table)
    memo = reader.generation.memo
    if key not in memo:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"not a table name: {table!r}")
        rows = (
            reader.rows(f"select distinct symbol from serve.{table} order by 1")  # noqa: S608
            if reader.has(table)
            else []
        )
        memo[key] = tuple(row["symbol"] for row in rows)
    symbols: tuple[str, ...] = memo[key]
    return symbols


def check_symbol(reader: Reader, symbol: str, table: str | None = None) -> None:
    """404 unless `table` (a mart the endpoint reads; default: latest_features, what
    forecasts and paper trades need) holds rows of `symbol`; `valid` lists those it does, so
    a file with bars but no features still serves its bars."""
    symbols = served_symbols(reader, table) if table else reader.generation.symbols
    if symbol not in symbols:
        # refused as at every other door (core.symbols), with the upper-case form named
        problem = symbol_problem(symbol)
        detail = f"unknown symbol {problem}" if problem else f"unknown symbol {symbol!r}"
        raise NotFound(detail, key="symbol", valid=list(symbols))


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InvalidInput(f"unknown {name} {value!r}", key=name, valid=list(valid))


def parse_time(name: str, value: str | None) -> datetime | None:
    """A query timestamp: RFC 3339, or a date alone meaning its midnight UTC (no epoch
    numbers); one without an offset is taken as UTC."""
    if value is None:
        return None
    if not _RFC3339.match(value):
        raise InvalidInput(
            f"{name}: {value[:40]!r} is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)",
            key=name,
        )
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 2025-02-30, or past year 9999 in UTC
        raise InvalidInput(f"{name}: {value[:40]!r} is not a valid time ({exc})", key=name) from exc


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start {start.isoformat()} is after end {end.isoformat()}", key="start")


#: Open bounds of a time window when a request gives none.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def window_sql(
    columns: str, table: str, *, newest_first: bool, after: bool = False, before: bool = False
) -> str:
    """One symbol's rows of a published mart in a window of open times: parameters symbol,
    lower bound (inclusive, or exclusive with `after`), upper bound (inclusive, or exclusive
    with `before`), limit."""
    lower = ">" if after else ">="
    upper = "<" if before else "<="
    order = "desc" if newest_first else "asc"
    return (
        f"select {columns} from serve.{table} "  # noqa: S608 - names are ours, values bound
        f"where symbol = ? and open_time {lower} ? and open_time {upper} ? "
        f"order by open_time {order} limit ?"
    )


@dataclass(frozen=True)
class RangeQuery:
    """A range request as its caller sent it: `endpoint` (its path), the values that choose
    the rows (what a cursor is bound to) and how many to answer, in which format."""

    endpoint: str
    symbol: str
    interval: str
    start: str | None
    end: str | None
    limit: int
    format: str
    cursor: str | None

    def link(self, cursor: str) -> str:
        """The next page: this request's parameters (as sent) with `cursor`; a path and
        query, relative to the server (RFC 8288 resolves it against the request)."""
        params = {"symbol": self.symbol, "interval": self.interval, "start": self.start,
                  "end": self.end, "limit": str(self.limit), "format": self.format}  # fmt: skip
        kept = {name: value for name, value in params.items() if value is not None}
        if self.format == "json":
            del kept["format"]
        return f"{self.endpoint}?{urlencode({**kept, 'cursor': cursor})}"


@dataclass(frozen=True)
class Page:
    """The rows of one page, oldest first, and the cursor of the next (None: the last)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    next: str | None

    def headers(self) -> dict[str, str]:
        return {"link": f'<{self.next}>; rel="next"'} if self.next else {}


def window_page(services: Services, query: RangeQuery, columns: str, table: str) -> Page:
    """A page of a range request, oldest first: with `start`, the first `limit` rows from it
    (the next page: the rows after them, up to `end`); otherwise the newest `limit` rows up
    to `end` (the next page: the `limit` rows before them). A keyset on open time, never an
    offset: paging returns every row of the range once, also across a publish. Bad times,
    an inverted range, an unknown symbol and a bad cursor are the usual 4xx."""
    since, until = parse_time("start", query.start), parse_time("end", query.end)
    check_range(since, until)
    bound = fingerprint(query.endpoint, query.symbol, query.interval, since, until)
    direction = FORWARD if since is not None else BACKWARD
    lower, upper = since or EARLIEST, until or LATEST
    after = before = False
    if query.cursor is not None:
        position = services.cursors.decode(query.cursor, bound, query.endpoint)
        direction = position.direction
        if direction == FORWARD:
            lower, after = position.open_time, True
        else:
            upper, before = position.open_time, True
    newest_first = direction == BACKWARD
    with services.db.reader() as reader:
        check_symbol(reader, query.symbol, table)
        rows = reader.rows(
            window_sql(columns, table, newest_first=newest_first, after=after, before=before),
            [query.symbol, lower, upper, query.limit + 1],
        )
    more = len(rows) > query.limit
    del rows[query.limit :]
    cursor = (
        services.cursors.encode(Position(direction, rows[-1]["open_time"]), bound) if more else None
    )
    if newest_first:
        rows.reverse()
    return Page(rows, cursor, query.link(cursor) if cursor else None)


def tabular(
    rows: list[dict[str, Any]] | pa.Table,
    form: str,
    name: str,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """`rows` (a mart's columns, or a typed table) as CSV or an Arrow IPC file, named
    `name` when saved."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    sink = io.BytesIO()
    if form == "csv":
        pacsv.write_csv(table, sink)
        media, suffix = "text/csv", "csv"
    else:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        media, suffix = ARROW_FILE, "arrow"
    return Response(
        sink.getvalue(),
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="{name}.{suffix}"',
            **(headers or {}),
        },
    )


def clean(value: Any) -> Any:
    """JSON-safe feature values: non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def latest_bar(reader: Reader, symbol: str) -> dict[str, Any] | None:
    """The newest published 5m bar of a symbol (memoised per generation)."""
    key = ("latest_bar", symbol)
    memo = reader.generation.memo
    if key not in memo:
        rows = reader.rows(
            "select open_time, available_at, cast(close as double) as close from serve.bars_5m"
            " where symbol = ? order by open_time desc limit 1",
            [symbol],
        )
        memo[key] = rows[0] if rows else None
    result: dict[str, Any] | None = memo[key]
    return result
