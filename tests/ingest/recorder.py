"""A real HTTP listener on a loopback address that records every request it gets and answers
from a function: the stand-in for a host a vendor key must never reach."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import unquote_plus

#: (status, headers, body) for a request's path (with its query).
Answer = Callable[[str], tuple[int, dict[str, str], bytes]]


def not_found(_: str) -> tuple[int, dict[str, str], bytes]:
    return 404, {"Content-Type": "application/json"}, b'{"message": "nothing here"}'


@dataclass(frozen=True)
class Seen:
    path: str  # path and query as sent
    headers: tuple[tuple[str, str], ...]

    def text(self) -> str:
        """Everything the request carried, query decoded, for a search for a key."""
        headers = [f"{name}: {value}" for name, value in self.headers]
        return "\n".join([self.path, unquote_plus(self.path), *headers])


class Recorder:
    """`with Recorder("127.0.0.2") as host:` a listener until the block ends; `seen` holds
    every request, `carried(*values)` the values any of them contained."""

    def __init__(self, host: str = "127.0.0.1", answer: Answer = not_found) -> None:
        self.host = host
        self.answer = answer
        self.seen: list[Seen] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                recorder.seen.append(Seen(self.path, tuple(self.headers.items())))
                status, headers, body = recorder.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def carried(self, *values: str) -> list[str]:
        return [value for value in values if any(value in seen.text() for seen in self.seen)]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
