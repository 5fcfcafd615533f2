"""The live stream's fan-out: a watcher notices each publish and hands every subscriber the
new 5m bars and the latest predictions (served as Server-Sent Events by routes/stream.py)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import anyio
import msgspec

from api.errors import TooManyRequests, Unavailable

log = logging.getLogger("api.stream")
#: Events a slow subscriber may fall behind by before its oldest ones are dropped.
QUEUE_SIZE = 16
#: At most this many new bars per symbol in one event (a first publish sends the last day).
MAX_BARS = 288


class Slot:
    """One admitted stream: its queue, held until `release` (idempotent: the stream's end
    and the response's after-send task both call it, whichever comes first)."""

    def __init__(self, hub: Hub, client: str) -> None:
        self.hub = hub
        self.client = client
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.hub._queues.discard(self.queue)
            self.hub._per_client[self.client] -= 1
            if not self.hub._per_client[self.client]:
                del self.hub._per_client[self.client]


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._per_client: Counter[str] = Counter()

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def admit(self, client: str, *, max_clients: int, max_per_client: int) -> Slot:
        """A slot for one more stream of `client` (its address), or the refusal: 429 past
        the per-client cap, 503 past the total (the event loop's thread: no lock needed)."""
        if self._per_client[client] >= max_per_client:
            raise TooManyRequests(
                f"this client has {self._per_client[client]} streams open, the most allowed "
                f"(BTCFS_API_SSE_MAX_PER_CLIENT={max_per_client}): close one first",
                key="stream",
            )
        if len(self._queues) >= max_clients:
            raise Unavailable(
                f"{len(self._queues)} streams are open, the most allowed "
                f"(BTCFS_API_SSE_MAX_CLIENTS={max_clients}): retry later",
                key="stream",
            )
        slot = Slot(self, client)
        self._queues.add(slot.queue)
        self._per_client[client] += 1
        return slot

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
    queue: asyncio.Queue[dict[str, Any]], keepalive_s: float, max_seconds: float = math.inf
) -> AsyncIterator[dict[str, Any] | None]:
    """The subscriber's events, with None every `keepalive_s` of silence, until
    `max_seconds` have passed (then the stream ends; an EventSource reconnects)."""
    deadline = time.monotonic() + max_seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield await asyncio.wait_for(queue.get(), timeout=min(keepalive_s, left))
        except TimeoutError:
            if deadline - time.monotonic() > 0:
                yield None


def since_key(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
