"""GET /: the dashboard (static HTML and JS under api/static, no CDN)."""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, get

STATIC = Path(__file__).resolve().parent.parent / "static"


@get("/", operation_id="dashboard", include_in_schema=False, sync_to_thread=False)
def dashboard() -> Response[bytes]:
    """The dashboard page: price, predicted path and band, signals, QA, model, paper P&L."""
    return Response(
        (STATIC / "index.html").read_bytes(),
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-cache"},
    )


ROUTES = [dashboard]
