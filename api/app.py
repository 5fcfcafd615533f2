"""The Litestar application: `create_app(settings)` wires settings, services, routes, error
mapping, the offline OpenAPI docs (/docs) and the static dashboard (/)."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar, Request
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.base import BaseSchemaObject
from litestar.static_files import create_static_files_router

from api import examples
from api.errors import EXCEPTION_HANDLERS
from api.jobs import JobRunner
from api.routes import ROUTES
from api.routes.stream import announce
from api.security import WebGuard, security_headers
from api.services import ARROW_FILE, Services
from api.settings import ApiSettings
from api.stream import watch
from core import __version__

STATIC = Path(__file__).resolve().parent / "static"
_VENDOR = "/static/vendor/swagger-ui"
_FAVICON = "<link rel='icon' type='image/svg+xml' href='/static/favicon.svg'>"


class LocalSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI started by a vendored-style script file instead of Litestar's inline one,
    so the page runs under a CSP that allows scripts from this server only."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        return (
            "<!DOCTYPE html><html><head>"
            f"<title>{title}</title>{self.favicon}<meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<link href='{self.css_url}' rel='stylesheet'>"
            f"<script src='{self.js_url}'></script>"
            f"<script src='{self.standalone_preset_js_url}'></script>"
            "</head><body><div id='swagger-container'></div>"
            "<script src='/static/swagger-init.js'></script></body></html>"
        ).encode()


def openapi_config() -> OpenAPIConfig:
    """Swagger UI at /docs from the vendored swagger-ui-dist (api/static/vendor): no CDN."""
    return OpenAPIConfig(
        title="btcfs API",
        version=__version__,
        description=(
            "BTCUSDT bars, features and forecasts from the published btcfs warehouse, "
            "paper positions, a live stream of each publish, and pipeline jobs (ingest, "
            "build, train, publish) run in worker processes."
        ),
        path="/docs",
        # each handler's docstring is its operation's description
        use_handler_docstrings=True,
        render_plugins=[
            LocalSwaggerPlugin(
                path="/",
                js_url=f"{_VENDOR}/swagger-ui-bundle.js",
                css_url=f"{_VENDOR}/swagger-ui.css",
                standalone_preset_js_url=f"{_VENDOR}/swagger-ui-standalone-preset.js",
                favicon=_FAVICON,
            ),
            JsonRenderPlugin(path="/openapi.json", favicon=_FAVICON),
            YamlRenderPlugin(path="/openapi.yaml", favicon=_FAVICON),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="BTCFS_ADMIN_TOKEN"
                )
            }
        ),
    )


def create_app(settings: ApiSettings | None = None) -> Litestar:
    settings = settings or ApiSettings.from_env()
    services = Services.from_settings(settings)
    jobs = JobRunner.from_settings(settings)

    def provide_services() -> Services:
        return services

    def provide_jobs() -> JobRunner:
        return jobs

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        # What is served at start-up is no news: the stream announces later generations.
        await anyio.to_thread.run_sync(services.db.refresh)
        # A job whose worker died while no API was watching is failed now, with the reason.
        await anyio.to_thread.run_sync(jobs.reconcile)
        services.announced = services.db.current_number() or 0
        task = asyncio.create_task(
            watch(
                services.db.refresh,
                lambda: announce(services),
                services.hub,
                settings.watch_interval_s,
            )
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            services.db.close()

    app = Litestar(
        route_handlers=[
            *ROUTES,
            create_static_files_router(
                path="/static", directories=[STATIC], include_in_schema=False
            ),
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "jobs": Provide(provide_jobs, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[WebGuard(settings)],
        before_send=[security_headers],
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        # gzip when the client accepts it (JSON rows shrink about 10x); never the event
        # stream, whose events must leave as they happen
        compression_config=CompressionConfig(
            backend="gzip", gzip_compress_level=6, minimum_size=1024, exclude=["/v1/stream"]
        ),
        request_max_body_size=settings.max_body_bytes,
        state=State({"services": services, "jobs": jobs}),
    )
    _document_formats(app)
    _document_examples(app)
    return app


#: The operations that answer `format=csv|arrow` too (api.services.tabular), and whether
#: they page (a `Link` header to the next page).
TABULAR_OPERATIONS = (("get", "/v1/bars", True), ("get", "/v1/features", True),
                      ("post", "/v1/features/as-of", False))  # fmt: skip


def _document_formats(app: Litestar) -> None:
    """OpenAPI for the three formats: the JSON body alone under application/json (the
    handler's `| Response[Any]` would add an empty alternative), and text/csv and the Arrow
    IPC file beside it; the `Link` header of the paged ones."""
    paths = app.openapi_schema.paths or {}
    for method, path, paged in TABULAR_OPERATIONS:
        operation = getattr(paths[path], method)
        assert operation is not None and operation.responses is not None
        response = operation.responses["200"]
        assert not isinstance(response, Reference) and response.content is not None
        body = response.content["application/json"]
        if isinstance(body.schema, Schema) and body.schema.one_of:
            body.schema = body.schema.one_of[0]
        response.content["text/csv"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        response.content[ARROW_FILE] = OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        )
        if paged:
            response.headers = {
                **(response.headers or {}),
                "Link": OpenAPIHeader(
                    description='The next page, `</v1/...?...&cursor=...>; rel="next"` (RFC '
                    "8288), in every format; absent on the last page",
                    schema=Schema(type=OpenAPIType.STRING),
                ),
            }


@dataclass
class _Verbatim(BaseSchemaObject):
    """An example value as it is: Litestar drops the None values of plain dicts from the
    document, which would turn `"closed_at": null` into a missing required field."""

    value: Any

    def to_schema(self) -> Any:
        return self.value


def _document_examples(app: Litestar) -> None:
    """Every success response's example (api.examples), under each of its media types but
    the binary Arrow file; the event stream documented as what it is, text/event-stream."""
    paths = app.openapi_schema.paths or {}
    for item in paths.values():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method)
            if operation is None or operation.responses is None:
                continue
            for status, response in operation.responses.items():
                if not status.startswith("2") or isinstance(response, Reference):
                    continue
                name = operation.operation_id or ""
                if name == "stream":
                    response.content = {
                        "text/event-stream": OpenAPIMediaType(
                            schema=Schema(type=OpenAPIType.STRING),
                            examples={"events": Example(summary="hello, then a publish",
                                                        value=_Verbatim(examples.STREAM))},
                        )
                    }  # fmt: skip
                    continue
                body = examples.SUCCESS.get(name, {}).get(int(status))
                for media, content in (response.content or {}).items():
                    value = body if media == "application/json" else examples.CSV.get(name)
                    if value is not None and media != ARROW_FILE:
                        content.examples = {
                            "answer": Example(summary=operation.summary, value=_Verbatim(value))
                        }
