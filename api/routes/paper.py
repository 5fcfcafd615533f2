"""Paper positions: open with `amount_usd` at the latest published close, list them marked
to market at the latest close, close them. Stored in their own SQLite file."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.db import Reader
from api.errors import Conflict, NotFound, Unavailable, error_responses, strictly
from api.paper import PaperPosition
from api.routes.admin import require_admin
from api.schemas import OpenPositionIn, Position, PositionsOut
from api.security import is_loopback
from api.services import PRICE_INTERVAL, ServicesDep, check_symbol, latest_bar

_PositionId = Annotated[int, PathParameter(ge=1, le=2**62, description="The position's id")]
#: Positions per page of the list (the totals always cover every position).
MAX_PAGE = 1_000
_Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_PAGE, description=f"Positions per page, 1-{MAX_PAGE}")
]
_Offset = Annotated[
    int, QueryParameter(ge=0, le=2**62, description="Positions to skip, in id order")
]


def paper_writer(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard of the paper writes: open to anyone on this machine while the API listens on
    loopback only; bound beyond it (BTCFS_API_HOST=0.0.0.0, a LAN address), they need the
    admin bearer token like the other writes, and are off without one."""
    if not is_loopback(connection.app.state.services.settings.host):
        require_admin(connection, handler)


def _price(reader: Reader, symbol: str) -> dict[str, Any]:
    bar = latest_bar(reader, symbol)
    if bar is None:
        raise Unavailable(f"no published {PRICE_INTERVAL} bar for {symbol}")
    return bar


def _marked(position: PaperPosition, mark: float) -> Position:
    price = position.exit_price if position.exit_price is not None else mark
    value = position.units * price
    pnl = value - position.amount_usd
    return Position(
        id=position.id,
        symbol=position.symbol,
        status="open" if position.is_open else "closed",
        amount_usd=position.amount_usd,
        units=position.units,
        entry_price=position.entry_price,
        opened_at=position.opened_at,
        closed_at=position.closed_at,
        exit_price=position.exit_price,
        mark_price=price,
        value_usd=value,
        pnl_usd=pnl,
        pnl_pct=pnl / position.amount_usd,
    )


@post(
    "/v1/paper/positions",
    operation_id="openPaperPosition",
    summary="Open a paper position",
    tags=["paper"],
    guards=[paper_writer],
    status_code=201,
    security=[{}, {"bearer": []}],
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def open_position(
    request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[OpenPositionIn]
) -> Position:
    """Buy `amount_usd` of `symbol` (long, no leverage, no costs) at the latest published
    5m close; units = amount / price. At most BTCFS_API_MAX_OPEN_POSITIONS open at a time
    (409 past it). Needs the admin token when the API listens beyond loopback. The body is
    decoded strictly: `"amount_usd": "100"` is a 422, a number must be a number."""
    strict = await strictly(request, OpenPositionIn)
    return await anyio.to_thread.run_sync(_open, services, strict)


def _open(services: ServicesDep, data: OpenPositionIn) -> Position:
    with services.db.reader() as reader:
        check_symbol(reader, data.symbol)
        bar = _price(reader, data.symbol)
    price = float(bar["close"])
    position = services.paper.open(
        data.symbol, data.amount_usd, price, bar["open_time"],
        max_open=services.settings.max_open_positions,
    )  # fmt: skip
    return _marked(position, price)


@get("/v1/paper/positions", operation_id="listPaperPositions",
     summary="Paper positions, marked to market", tags=["paper"],
     sync_to_thread=True, responses=error_responses(422, 503))  # fmt: skip
def list_positions(services: ServicesDep, limit: _Limit = 100, offset: _Offset = 0) -> PositionsOut:
    """A page of positions in id order (`limit` from `offset`; `next_offset` is the next
    page's, null on the last), open ones marked at the latest published close: units,
    invested, value and P&L. The totals cover every position, not just the page
    (realised from closed positions, unrealised from open)."""
    positions = services.paper.page(limit, offset)
    totals = services.paper.totals()
    marks: dict[str, float] = {}
    marked_at = None
    with services.db.reader() as reader:
        for symbol in totals.open_by_symbol:
            bar = latest_bar(reader, symbol)
            if bar is not None:
                marks[symbol] = float(bar["close"])
                marked_at = bar["available_at"]
    out = [_marked(p, marks.get(p.symbol, p.entry_price)) for p in positions]
    value = totals.value_usd(marks)
    unrealised = value - totals.invested_usd
    end = offset + len(out)
    return PositionsOut(
        positions=out,
        invested_usd=totals.invested_usd,
        value_usd=value,
        pnl_usd=totals.realised_pnl_usd + unrealised,
        realised_pnl_usd=totals.realised_pnl_usd,
        unrealised_pnl_usd=unrealised,
        marked_at=marked_at,
        total=totals.count,
        open_count=totals.open_count,
        limit=limit,
        offset=offset,
        next_offset=end if end < totals.count else None,
    )


@post(
    "/v1/paper/positions/{position_id:int}/close",
    operation_id="closePaperPosition",
    summary="Close a paper position",
    tags=["paper"],
    guards=[paper_writer],
    sync_to_thread=True,
    status_code=200,
    security=[{}, {"bearer": []}],
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
def close_position(services: ServicesDep, position_id: _PositionId) -> Position:
    """Sell the position's units at the latest published close (404 unknown, 409 closed)."""
    position = services.paper.get(position_id)
    if position is None:
        raise NotFound(f"no paper position {position_id}", key="position_id")
    if not position.is_open:
        raise Conflict(f"paper position {position_id} is already closed", key="position_id")
    with services.db.reader() as reader:
        bar = _price(reader, position.symbol)
    price = float(bar["close"])
    closed = services.paper.close(position_id, price, bar["open_time"])
    if closed is None:  # closed by another request in between
        raise Conflict(f"paper position {position_id} is already closed", key="position_id")
    return _marked(closed, price)


ROUTES = [open_position, list_positions, close_position]
