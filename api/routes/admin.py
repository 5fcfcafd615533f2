"""POST /v1/admin/reload: re-attach serve.duckdb and reload models, behind a bearer token."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
from litestar import post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import Unauthorized, error_responses
from api.routes.stream import announce
from api.schemas import ReloadOut
from api.services import Services, ServicesDep


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: `Authorization: Bearer <BTCFS_ADMIN_TOKEN>`; without a configured token the
    admin API is off and every call is refused."""
    services: Services = connection.app.state.services
    expected = services.settings.admin_token
    header = connection.headers.get("authorization", "")
    scheme, _separator, token = header.partition(" ")
    if not expected:
        raise Unauthorized("the admin API is off: set BTCFS_ADMIN_TOKEN")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("missing or wrong bearer token")


@post(
    "/v1/admin/reload",
    operation_id="reload",
    summary="Reload the published file",
    tags=["admin"],
    guards=[require_admin],
    status_code=200,
    security=[{"bearer": []}],
    responses=error_responses(401, 503),
)
async def reload(services: ServicesDep) -> ReloadOut:
    """Re-attach serve.duckdb now (the API also notices a publish by itself), forget loaded
    models, and push a `publish` event to the stream's subscribers."""
    services.predictor.clear()
    await anyio.to_thread.run_sync(lambda: services.db.refresh(force=True))
    event = await anyio.to_thread.run_sync(lambda: announce(services))
    if event is not None:
        services.hub.broadcast(event)
    generation = services.db.generation()
    return ReloadOut(
        generation=generation.number,
        published_at=generation.info.published_at,
        dbt_invocation_id=generation.info.dbt_invocation_id,
    )


ROUTES = [reload]
