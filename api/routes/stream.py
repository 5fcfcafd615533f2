"""GET /v1/stream: Server-Sent Events; a `publish` event after each publish carries the new
5m bars and the latest predictions (the dashboard listens to it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get
from litestar.background_tasks import BackgroundTask
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.errors import ApiError, error_responses
from api.routes.bars import BAR_COLUMNS
from api.schemas import Bar
from api.services import EARLIEST, LATEST, Services, ServicesDep, window_sql
from api.stream import MAX_BARS, encode, keepalive_events

_NEW_BARS = window_sql(BAR_COLUMNS, "bars_5m", newest_first=True, after=True)


def announce(services: Services) -> dict[str, Any] | None:
    """The `publish` event of the current generation, once: None when it was announced."""
    with services.announce_lock:
        current = services.db.current_number()
        if current is None or current == services.announced:
            return None
        event = publish_event(services)
        services.announced = event["generation"]
        return event


def publish_event(services: Services, *, kind: str = "publish") -> dict[str, Any]:
    """The current generation: its publish metadata and, per symbol, the 5m bars newer than
    the last event's (at most MAX_BARS) and the latest prediction (null without a model)."""
    with services.db.reader() as reader:
        generation = reader.generation
        symbols: dict[str, Any] = {}
        for symbol in generation.symbols:
            since = services.stream_since.get(symbol, EARLIEST) if kind == "publish" else None
            rows = reader.rows(_NEW_BARS, [symbol, since or EARLIEST, LATEST, MAX_BARS])
            rows.reverse()
            try:
                prediction: Any = services.predictor.latest(reader, symbol, None)
            except ApiError:
                prediction = None
            symbols[symbol] = {"bars": [Bar(**row) for row in rows], "prediction": prediction}
            if rows and kind == "publish":
                services.stream_since[symbol] = rows[-1]["open_time"]
        info = generation.info
        return {
            "type": kind,
            "generation": generation.number,
            "published_at": info.published_at,
            "built_at": info.built_at,
            "dbt_invocation_id": info.dbt_invocation_id,
            "symbols": symbols,
        }


@get(
    "/v1/stream",
    operation_id="stream",
    summary="Live events (Server-Sent Events)",
    tags=["stream"],
    responses=error_responses(429, 503),
)
async def stream(services: ServicesDep, request: Request[Any, Any, Any]) -> ServerSentEvent:
    """Server-Sent Events. First a `hello` event (the current publish, without bars), then
    a `publish` event after each new serve.duckdb: `symbols.<symbol>.bars` are the new 5m
    bars, `symbols.<symbol>.prediction` the latest forecast. Comments keep it alive.
    At most BTCFS_API_SSE_MAX_PER_CLIENT streams per client address (429 past it) and
    BTCFS_API_SSE_MAX_CLIENTS in all (503); each ends after BTCFS_API_SSE_MAX_SECONDS
    (an EventSource reconnects by itself)."""
    settings = services.settings
    client = request.client.host if request.client else "unknown"
    slot = services.hub.admit(
        client, max_clients=settings.sse_max_clients, max_per_client=settings.sse_max_per_client
    )

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        try:
            try:
                with services.db.reader() as reader:
                    info = reader.generation.info
                    hello = {"type": "hello", "generation": reader.generation.number,
                             "published_at": info.published_at,
                             "dbt_invocation_id": info.dbt_invocation_id}  # fmt: skip
            except ApiError as exc:
                hello = {"type": "hello", "generation": None, "detail": exc.detail}
            yield ServerSentEventMessage(event="hello", data=encode(hello))
            events = keepalive_events(slot.queue, settings.keepalive_s, settings.sse_max_seconds)
            async for event in events:
                if event is None:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
                else:
                    yield ServerSentEventMessage(
                        event=event["type"], id=event["generation"], data=encode(event)
                    )
        finally:
            slot.release()

    # The after-send task frees the slot too: a client gone before the first event leaves
    # the generator unstarted, and an unstarted generator never runs its `finally`.
    return ServerSentEvent(events(), background=BackgroundTask(slot.release))


ROUTES = [stream]
