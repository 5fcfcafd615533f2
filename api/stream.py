"""The live stream's fan-out: a watcher notices each publish and hands every subscriber the
new 5m bars and the latest predictions (served as Server-Sent Events by routes/stream.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import anyio
import msgspec

log = logging.getLogger("api.stream")
#: Events a slow subscriber may fall behind by before its oldest ones are dropped.
QUEUE_SIZE = 16
#: At most this many new bars per symbol in one event (a first publish sends the last day).
MAX_BARS = 288


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    @contextlib.contextmanager
    def subscription(self) -> Any:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def broadcast(self, event: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()  # drop the oldest: the client refetches on any publish
            queue.put_nowait(event)


def encode(event: dict[str, Any]) -> str:
    return msgspec.json.encode(event).decode()


async def watch(
    refresh: Callable[[], object],
    announce: Callable[[], dict[str, Any] | None],
    hub: Hub,
    interval_s: float,
) -> None:
    """Poll for a new serve.duckdb; broadcast the event `announce` makes for a generation
    not announced yet (a request may have attached it first: refresh's answer is not it)."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await anyio.to_thread.run_sync(refresh)
            event = await anyio.to_thread.run_sync(announce)
            if event is not None:
                hub.broadcast(event)
        except Exception:  # the watcher must outlive one bad file or model
            log.exception("stream watcher: could not publish an event")


async def keepalive_events(
    queue: asyncio.Queue[dict[str, Any]], keepalive_s: float
) -> AsyncIterator[dict[str, Any] | None]:
    """The subscriber's events, with None every `keepalive_s` of silence."""
    while True:
        try:
            yield await asyncio.wait_for(queue.get(), timeout=keepalive_s)
        except TimeoutError:
            yield None


def since_key(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
