"""`btcfs serve`: the API under uvicorn."""

from __future__ import annotations

import os

import click

from api.settings import ApiSettings


@click.command("serve")
@click.option("--host", help="Interface to bind [default: $BTCFS_API_HOST or 127.0.0.1].")
@click.option("--port", type=int, help="Port [default: $BTCFS_API_PORT or 8000].")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn workers.")
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
def serve_command(host: str | None, port: int | None, workers: int, log_level: str) -> None:
    """Serve the published warehouse (serve.duckdb) over HTTP: REST, OpenAPI docs at /docs,
    the dashboard at /, a live stream at /v1/stream. Reattaches after each `btcfs publish`.

    \b
    Example: btcfs publish && btcfs serve --port 8000
    """
    import uvicorn

    try:
        settings = ApiSettings.from_env()
    except ValueError as exc:  # a bad setting (a short admin token): refuse to start
        raise click.ClickException(str(exc)) from exc
    host = host or settings.host
    port = port or settings.port
    # The app reads its settings again in uvicorn: the bind host decides which Host
    # names are served and whether paper writes need the admin token.
    if host != settings.host:
        os.environ["BTCFS_API_HOST"] = host
    if port != settings.port:
        os.environ["BTCFS_API_PORT"] = str(port)
    click.echo(
        f"btcfs API on http://{host}:{port}/  (docs: /docs, serving {settings.serve_db})",
        err=True,
    )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        # An open stream (dashboard tab) must not hold a shutdown forever.
        timeout_graceful_shutdown=5,
    )
