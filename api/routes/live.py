"""GET /v1/live: a symbol's price now, from the state file `btcfs live` writes (the open
1m bar's quote, labelled as such), the loop's status and the freshness of what is published;
the newest published close, labelled so, when no live loop has run."""

from __future__ import annotations

from typing import Any

from litestar import get

from api.errors import NotFound, Unavailable, error_responses
from api.live import LABELS, MARKETS, Clock, Price, current_price, published_close
from api.schemas import LiveLoop, LiveOut, LiveQuote, PublishedClose
from api.services import ServicesDep, Symbol, served_symbols
from core.symbols import symbol_problem


@get(
    "/v1/live",
    operation_id="getLive",
    summary="Live price, loop status and freshness",
    tags=["live"],
    sync_to_thread=True,
    responses=error_responses(404, 503),
)
def live(services: ServicesDep, symbol: Symbol = "BTCUSDT") -> LiveOut:
    """The price of `symbol` now and how far to trust it, read per request from the file
    `btcfs live` writes every ~2 s (no exchange is called): `quotes`, the still-open 1m bar's
    latest close per market (live, never landed); `price`, the fresher of the spot quote
    and the newest published 5m close, with its source, exchange time and age; `loop`, the
    live loop's status and `problem` (why it is behind or stopped); `newest_bar`, the newest
    landed 1m bar per market; `freshness_seconds`, the age of the newest published bar.
    Ages are on the exchange's clock as the state extrapolates it (a 10x replay runs ahead
    of the wall clock). `status`: live, behind (the loop has a problem or the price is
    stale) or no-live-loop (no state file: the published close, labelled so). 404: a
    symbol neither the loop nor the published file has; 503: neither exists yet."""
    settings = services.settings
    clock = Clock.read(settings)
    state = clock.state
    published: dict[str, Any] | None = None
    served: tuple[str, ...] = ()
    prices: dict[str, Price | None] = {}
    try:
        with services.db.reader() as reader:
            served = served_symbols(reader, "bars_5m")
            if symbol in served:
                published = published_close(reader, symbol, "spot")
            prices = {m: current_price(settings, clock, reader, symbol, m) for m in MARKETS}
    except Unavailable:
        if state is None:
            raise Unavailable(
                "no live loop has run here and nothing is published: run `btcfs live`, or "
                "`dbt build && btcfs publish`"
            ) from None
        prices = {m: current_price(settings, clock, None, symbol, m) for m in MARKETS}
    known = sorted({*served, *(state.symbols() if state is not None else ())})
    if symbol not in known:
        problem = symbol_problem(symbol)
        detail = f"unknown symbol {problem}" if problem else f"unknown symbol {symbol!r}"
        raise NotFound(detail, key="symbol", valid=known)
    price = prices["spot"] or prices["perp"]
    if price is None:
        raise Unavailable(f"no price for {symbol}: no live quote and no published bar")
    warnings = []
    quotes = []
    if state is not None:
        for quote in state.quotes:
            if quote.symbol != symbol:
                continue
            age = clock.age(quote.at)
            quotes.append(
                LiveQuote(market=quote.market, price=quote.price, open_time=quote.open_time,
                          at=quote.at, age_seconds=age,
                          is_stale=age > settings.paper_max_quote_age_s,
                          label=LABELS["open-bar"])
            )  # fmt: skip
        if not quotes:
            warnings.append(f"the live loop has no quote of {symbol}: {LABELS['published-close']}")
    else:
        warnings.append(
            f"no live loop has run here (no {settings.live_state}): {LABELS['published-close']}"
        )
    problem = clock.problem()
    if price.is_stale:
        warnings.append(price.staleness())
    loop = None
    if state is not None:
        loop = LiveLoop(
            pid=state.pid, status=state.status, problem=problem, started_at=state.started_at,
            heartbeat_at=state.heartbeat_at, heartbeat_age_seconds=state.heartbeat_age(clock.wall),
            exchange_now=clock.now, clock_rate=state.clock_rate, stale_after_s=state.stale_after_s,
            last_publish_at=state.last_publish_at, reasons=list(state.reasons),
            stale=dict(state.stale),
        )  # fmt: skip
    published_out = None
    if published is not None:
        published_out = PublishedClose(
            open_time=published["open_time"], available_at=published["available_at"],
            close=float(published["close"]), age_seconds=clock.age(published["available_at"]),
        )  # fmt: skip
    status = "no-live-loop" if state is None else "behind" if problem or price.is_stale else "live"
    return LiveOut(
        symbol=symbol,
        status=status,
        price=price.price,
        price_source=price.source,
        price_label=price.label,
        price_market=price.market,
        price_at=price.at,
        price_age_seconds=price.age_seconds,
        is_stale=price.is_stale,
        quotes=quotes,
        newest_bar={
            m: at
            for m in MARKETS
            if state is not None and (at := state.newest_bar_at(symbol, m)) is not None
        },
        published=published_out,
        freshness_seconds=published_out.age_seconds if published_out is not None else None,
        clock=clock.name,
        now=clock.now,
        loop=loop,
        warnings=warnings,
    )


ROUTES = [live]
