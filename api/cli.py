"""`btcfs serve`: the API under uvicorn."""

from __future__ import annotations

import errno
import os
import socket

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
    problem = port_problem(host, port)
    if problem is not None:
        raise click.ClickException(problem)
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


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (None when it can), found before anything is
    announced: a port another process listens on is refused in one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as uvicorn binds: a port left in TIME_WAIT is free, one with a listener is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is in use by another process: stop it, or "
                    "choose another with --port (or BTCFS_API_PORT)"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None
