"""Paper positions: open with `amount_usd` at the latest published close, list them marked
to market at the latest close, close them. Stored in their own SQLite file."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.params import JSONBody, PathParameter

from api.db import Reader
from api.errors import Conflict, NotFound, Unavailable, error_responses
from api.paper import PaperPosition
from api.schemas import OpenPositionIn, Position, PositionsOut
from api.services import PRICE_INTERVAL, ServicesDep, check_symbol, latest_bar

_PositionId = Annotated[int, PathParameter(ge=1, le=2**62)]


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
    tags=["paper"],
    sync_to_thread=True,
    status_code=201,
    responses=error_responses(404, 413, 422, 503),
)
def open_position(services: ServicesDep, data: JSONBody[OpenPositionIn]) -> Position:
    """Buy `amount_usd` of `symbol` (long, no leverage, no costs) at the latest published
    5m close; units = amount / price."""
    with services.db.reader() as reader:
        check_symbol(reader, data.symbol)
        bar = _price(reader, data.symbol)
    price = float(bar["close"])
    position = services.paper.open(data.symbol, data.amount_usd, price, bar["open_time"])
    return _marked(position, price)


@get("/v1/paper/positions", operation_id="listPaperPositions", tags=["paper"],
     sync_to_thread=True, responses=error_responses(503))  # fmt: skip
def list_positions(services: ServicesDep) -> PositionsOut:
    """Every position, open ones marked at the latest published close: units, invested,
    value and P&L, with totals (realised from closed positions, unrealised from open)."""
    positions = services.paper.all()
    marks: dict[str, float] = {}
    marked_at = None
    with services.db.reader() as reader:
        for symbol in {p.symbol for p in positions if p.is_open}:
            bar = latest_bar(reader, symbol)
            if bar is not None:
                marks[symbol] = float(bar["close"])
                marked_at = bar["available_at"]
    out = [_marked(p, marks.get(p.symbol, p.entry_price)) for p in positions]
    open_ = [p for p in out if p.status == "open"]
    closed = [p for p in out if p.status == "closed"]
    return PositionsOut(
        positions=out,
        invested_usd=sum(p.amount_usd for p in open_),
        value_usd=sum(p.value_usd for p in open_),
        pnl_usd=sum(p.pnl_usd for p in out),
        realised_pnl_usd=sum(p.pnl_usd for p in closed),
        unrealised_pnl_usd=sum(p.pnl_usd for p in open_),
        marked_at=marked_at,
    )


@post(
    "/v1/paper/positions/{position_id:int}/close",
    operation_id="closePaperPosition",
    tags=["paper"],
    sync_to_thread=True,
    status_code=200,
    responses=error_responses(404, 409, 422, 503),
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
