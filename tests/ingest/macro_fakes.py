"""Helpers for the FRED, Alpha Vantage and CryptoQuant unit tests: a VendorContext on a
MockTransport, answered either by hand-written bodies or by the replay routes themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ingest import HttpClient
from ingest.vendors.base import VendorContext, VendorSpec, build_client
from lake.store import Lake
from replay.clock import datetime_to_us
from replay.vendors import ReplayContext, VendorRequest, VendorRoutes

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that keeps every request it answered."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def routes_handler(
    routes_cls: type[VendorRoutes], *, seed: int = 7, now: datetime, wall: float = 1e9
) -> tuple[Handler, VendorRoutes]:
    """Answer requests with the replay server's own route code (no socket)."""
    ctx = ReplayContext(None, None, None, seed, lambda: wall)  # type: ignore[arg-type]
    routes = routes_cls(ctx)
    now_us = datetime_to_us(now)

    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params.multi_items())
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = routes.handle(VendorRequest(request.url.path, params, headers, now_us))
        return httpx.Response(
            reply.status,
            content=reply.body,
            headers={
                "Content-Type": reply.content_type,
                "X-Btcfs-Replay": "synthetic",
                **reply.headers,
            },
        )

    return handle, routes


def json_response(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=payload)


def make_ctx(
    spec: VendorSpec,
    tmp_path: Path,
    handler: Handler,
    *,
    now: datetime,
    start: date,
    end: date | None = None,
    config: dict[str, Any] | None = None,
    key: str = "k" * 32,
    refresh_tail: int = 2,
) -> VendorContext:
    client = build_client(
        spec,
        key,
        base_url="http://vendor.test",
        client_factory=partial(
            HttpClient, transport=httpx.MockTransport(handler), sleep=lambda seconds: None
        ),
        config=replace(spec.client, retry=replace(spec.client.retry, max_retries=1)),
    )
    return VendorContext(
        spec=spec,
        client=client,
        lake=Lake(tmp_path / "lake"),
        raw_root=tmp_path / "raw",
        now=now,
        config=config or {},
        start=start,
        end=end or now.date(),
        datasets=spec.datasets,
        refresh_tail=refresh_tail,
    )


def files_text(root: Path) -> str:
    """Every file under root (gz pages decompressed, Parquet as bytes) as one string."""
    import gzip

    chunks = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        chunks.append(data.decode("utf-8", "replace"))
    return "\n".join(chunks)
