"""Paper positions: open long or short at the live price (fees and slippage on both sides),
list them marked to the live price, close them. Stored in their own SQLite file."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.errors import Conflict, InvalidInput, NotFound, Unavailable, error_responses, strictly
from api.live import Clock, Price, current_price
from api.paper import Costs, Fill, OrderReplayed, PaperPosition, replayed
from api.routes.admin import require_admin
from api.schemas import ClosePositionIn, Mark, OpenPositionIn, Position, PositionsOut
from api.security import is_loopback
from api.services import ServicesDep, check_symbol

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


def _fill(
    services: ServicesDep, symbol: str, market: str, accept_stale: bool, action: str
) -> tuple[Price, list[str]]:
    """The price a fill uses now (api.live.current_price) and the warnings it carries: 404
    for a symbol not served (an open), 503 without a price, 409 when it is stale and the
    caller did not accept that."""
    clock = Clock.read(services.settings)
    with services.db.reader() as reader:
        if action == "open":  # a position already open closes whatever is served now
            check_symbol(reader, symbol)
        price = current_price(services.settings, clock, reader, symbol, market)
    if price is None:
        raise Unavailable(
            f"no {market} price for {symbol}: no live quote and no published {market} 5m bar"
        )
    warnings = []
    if price.is_stale:
        why = price.staleness()
        problem = clock.problem()
        if problem is not None:
            why += f"; live loop: {problem}"
        elif clock.state is None:
            why += "; no live loop has run here (`btcfs live`)"
        if not accept_stale:
            raise Conflict(
                f'refusing to {action} at a stale price: {why}. Send "accept_stale": true'
                " to fill at it anyway",
                key="accept_stale",
                price=price.price,
                source=price.source,
                price_at=price.at.isoformat(),
                age_seconds=round(price.age_seconds, 3),
                max_age_seconds=price.max_age_seconds,
            )
        warnings.append(f"filled at a stale price (accept_stale): {why}")
    return price, warnings


def _marked(position: PaperPosition, mark: Price | None) -> Position:
    warnings = list(position.warnings)
    if position.is_open:
        price = mark.price if mark is not None else position.entry_reference_price
        unrealised = position.unrealised_pnl(price)
        pnl, realised, if_closed = unrealised, None, position.pnl_if_closed(price)
        source: str = mark.source if mark is not None else "entry (no price now)"
        if mark is not None and mark.is_stale:
            warnings.append(f"marked at a stale price: {mark.staleness()}")
        fees = position.entry_fee_usd
        mark_at = mark.at if mark is not None else None
        mark_age = mark.age_seconds if mark is not None else None
    else:
        assert position.exit_price is not None
        price = position.exit_reference_price or position.exit_price
        realised = position.realised_pnl_usd or 0.0
        pnl, unrealised, if_closed = realised, None, None
        source = f"exit ({position.exit_price_source})"
        fees = position.entry_fee_usd + (position.exit_fee_usd or 0.0)
        mark_at, mark_age = position.exit_price_at, None
    return Position(
        id=position.id,
        symbol=position.symbol,
        market=position.market,
        side=position.side,
        status="open" if position.is_open else "closed",
        amount_usd=position.amount_usd,
        units=position.units,
        entry_price=position.entry_price,
        entry_reference_price=position.entry_reference_price,
        entry_price_source=position.entry_price_source,
        entry_price_at=position.entry_price_at,
        entry_price_age_seconds=position.entry_price_age_s,
        fee_bps=position.fee_bps,
        slippage_bps=position.slippage_bps,
        entry_fee_usd=position.entry_fee_usd,
        currency="USD",
        opened_at=position.opened_at,
        closed_at=position.closed_at,
        exit_price=position.exit_price,
        exit_reference_price=position.exit_reference_price,
        exit_price_source=position.exit_price_source,
        exit_price_at=position.exit_price_at,
        exit_fee_usd=position.exit_fee_usd,
        mark_price=price,
        mark_source=source,
        mark_at=mark_at,
        mark_age_seconds=mark_age,
        mark_is_stale=bool(position.is_open and mark is not None and mark.is_stale),
        value_usd=position.amount_usd + pnl,
        pnl_usd=pnl,
        pnl_pct=pnl / position.amount_usd,
        realised_pnl_usd=realised,
        unrealised_pnl_usd=unrealised,
        pnl_if_closed_usd=if_closed,
        fees_usd=fees,
        client_order_id=position.client_order_id,
        warnings=warnings,
    )


def _marks(services: ServicesDep, markets: list[tuple[str, str]]) -> dict[tuple[str, str], Price]:
    """The price of each (symbol, market) now; those without one are left out."""
    if not markets:
        return {}
    clock = Clock.read(services.settings)
    marks = {}
    try:
        with services.db.reader() as reader:
            for symbol, market in markets:
                price = current_price(services.settings, clock, reader, symbol, market)
                if price is not None:
                    marks[(symbol, market)] = price
    except Unavailable:  # nothing published: the live quotes alone
        for symbol, market in markets:
            price = current_price(services.settings, clock, None, symbol, market)
            if price is not None:
                marks[(symbol, market)] = price
    return marks


@post(
    "/v1/paper/positions",
    operation_id="openPaperPosition",
    summary="Open a paper position",
    tags=["paper"],
    guards=[paper_writer],
    status_code=201,
    security=[{}, {"bearer": []}],
    responses={
        200: ResponseSpec(
            Position,
            description="The position this client_order_id opened before (none opened now)",
            generate_examples=False,
        ),
        **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
    },
)
async def open_position(
    request: Request[Any, Any, Any], services: ServicesDep, data: JSONBody[OpenPositionIn]
) -> Response[Position]:
    """Open `amount_usd` of notional of `symbol`: `long` on `spot` or `perp`, `short` on
    `perp` only (a spot short is a 422). It fills at the live price of that market (the
    still-open 1m bar's quote from `btcfs live`; the newest published 5m close when that is
    newer or there is no live loop) moved against the trader by the slippage, and pays the
    taker fee on the notional (BTCFS_PAPER_FEE_BPS / _SLIPPAGE_BPS, by default the
    backtest's from config/train.yml). A price older than BTCFS_PAPER_MAX_QUOTE_AGE_S (a
    quote) or BTCFS_PAPER_MAX_CLOSE_AGE_S (a close), on the exchange's clock, is refused
    with a 409 naming its age, unless `accept_stale: true` (the position then carries a
    warning). A repeated `client_order_id` answers 200 with the position it opened. At most
    BTCFS_API_MAX_OPEN_POSITIONS open (409 past it). Needs the admin token when the API
    listens beyond loopback. The body is decoded strictly: `"amount_usd": "100"` is a 422."""
    strict = await strictly(request, OpenPositionIn)
    return await anyio.to_thread.run_sync(_open, services, strict)


def _replayed(services: ServicesDep, outcome: Exception) -> Response[Position]:
    """200 with the position a client_order_id opened, marked now; or its Conflict."""
    if not isinstance(outcome, OrderReplayed):
        raise outcome
    position = outcome.position
    marks = _marks(services, [(position.symbol, position.market)])
    marked = _marked(position, marks.get((position.symbol, position.market)))
    return Response(marked, status_code=200)


def _open(services: ServicesDep, data: OpenPositionIn) -> Response[Position]:
    if data.market == "spot" and data.side == "short":
        raise InvalidInput(
            'side: a short needs the perpetual (`"market": "perp"`); spot is long-only',
            key="side",
            valid=["long"],
        )
    order = (data.symbol, data.market, data.side, data.amount_usd)
    if data.client_order_id is not None:
        # a retried order is answered before its price is looked at (it may be stale now)
        before = services.paper.by_client_order_id(data.client_order_id)
        if before is not None:
            return _replayed(services, replayed(before, *order))
    price, warnings = _fill(services, data.symbol, data.market, data.accept_stale, "open")
    fill = Fill(price.price, price.source, price.at, price.age_seconds, price.open_time)
    settings = services.settings
    try:
        position = services.paper.open(
            data.symbol, data.market, data.side, data.amount_usd, fill,
            Costs(settings.paper_fee_bps, settings.paper_slippage_bps),
            warnings=warnings, client_order_id=data.client_order_id,
            max_open=settings.max_open_positions,
        )  # fmt: skip
    except OrderReplayed as again:
        return _replayed(services, again)
    # marked at the price it filled at (a stale one that was accepted is flagged so)
    return Response(_marked(position, price), status_code=201)


@get("/v1/paper/positions", operation_id="listPaperPositions",
     summary="Paper positions, marked to market", tags=["paper"],
     sync_to_thread=True, responses=error_responses(422, 503))  # fmt: skip
def list_positions(services: ServicesDep, limit: _Limit = 100, offset: _Offset = 0) -> PositionsOut:
    """A page of positions in id order (`limit` from `offset`; `next_offset` is the next
    page's, null on the last). Open ones are marked at the live price of their market (the
    open bar's quote, else the newest published close; `marks` lists each with its source
    and age, a stale one flagged): unrealised P&L less the entry fee paid, and what closing
    now would realise; closed ones show the realised P&L, fees and slippage included. The
    totals cover every position, not just the page."""
    positions = services.paper.page(limit, offset)
    totals = services.paper.totals()
    shown = {(p.symbol, p.market) for p in positions if p.is_open}
    marks = _marks(services, sorted({*totals.open_markets, *shown}))
    out = [_marked(p, marks.get((p.symbol, p.market))) for p in positions]
    unrealised = totals.unrealised_usd({key: mark.price for key, mark in marks.items()})
    end = offset + len(out)
    return PositionsOut(
        positions=out,
        invested_usd=totals.invested_usd,
        value_usd=totals.invested_usd + unrealised,
        pnl_usd=totals.realised_pnl_usd + unrealised,
        realised_pnl_usd=totals.realised_pnl_usd,
        unrealised_pnl_usd=unrealised,
        fees_usd=totals.fees_usd,
        marked_at=max((mark.at for mark in marks.values()), default=None),
        marks=[
            Mark(
                symbol=m.symbol,
                market=m.market,
                price=m.price,
                source=m.source,
                label=m.label,
                at=m.at,
                age_seconds=m.age_seconds,
                is_stale=m.is_stale,
            )
            for m in marks.values()
        ],
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
    status_code=200,
    security=[{}, {"bearer": []}],
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def close_position(
    request: Request[Any, Any, Any], services: ServicesDep, position_id: _PositionId
) -> Position:
    """Close the position at the live price of its market (as an open fills: slippage
    against the trader, the taker fee on the exit notional) and realise its P&L, fees
    included; 404 unknown, 409 closed. A stale price is a 409 unless the optional body says
    `{"accept_stale": true}` (the position then carries a warning)."""
    body = await request.body()
    options = await strictly(request, ClosePositionIn) if body.strip() else ClosePositionIn()
    return await anyio.to_thread.run_sync(_close, services, position_id, options)


def _close(services: ServicesDep, position_id: int, options: ClosePositionIn) -> Position:
    position = services.paper.get(position_id)
    if position is None:
        raise NotFound(f"no paper position {position_id}", key="position_id")
    if not position.is_open:
        raise Conflict(f"paper position {position_id} is already closed", key="position_id")
    price, warnings = _fill(
        services, position.symbol, position.market, options.accept_stale, "close"
    )
    fill = Fill(price.price, price.source, price.at, price.age_seconds, price.open_time)
    closed = services.paper.close(position_id, fill, warnings=warnings)
    if closed is None:  # closed by another request in between
        raise Conflict(f"paper position {position_id} is already closed", key="position_id")
    return _marked(closed, None)


ROUTES = [open_position, list_positions, close_position]
