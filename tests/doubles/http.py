"""A small threaded HTTP server on loopback that the Consul and Vault doubles share.

It can be stopped and started again on the same port with its state intact, which is how tests take a
server "down" mid-run. Requests in flight when it stops get their connection closed without an answer,
as a crashed server would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class Request:
    """What a double's route sees of one request."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urlparse(handler.path)
        self.method = method
        self.path = parsed.path
        # Consul flags such as ?recurse and ?raw come without a value: keep_blank_values keeps them.
        self.query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Response:
    def __init__(
        self, status: int, body: bytes | str | Any = b"", headers: dict[str, str] | None = None, *, as_json: bool = True
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, bytes):
            self.body = body
        elif isinstance(body, str) and not as_json:
            self.body = body.encode()
            self.headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            self.body = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json")


class ServerDown(Exception):
    """Raised inside a route to drop the connection without an answer."""


Route = Callable[[Request], Response]


class LoopbackServer:
    """Serves ``route`` on 127.0.0.1; `stop` / `start` keep the port."""

    def __init__(self, route: Route, port: int = 0) -> None:
        self._route = route
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.running = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        route = self._route
        running = self.running

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm holds the
                # body until the client's delayed ACK (40 ms on Linux). Go's net/http, which Consul and
                # Vault use, sets TCP_NODELAY on every connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                try:
                    response = route(Request(self, method))
                    if not running.is_set():
                        raise ServerDown
                except ServerDown:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def do_LIST(self) -> None:
                self._serve("LIST")

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"double-{self.port}", daemon=True)
        self.running.set()
        self._thread.start()

    def stop(self) -> None:
        self.running.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
