"""A local HTTP server for the ``http`` type's tests: scripted answers, every request recorded.

It listens on 127.0.0.1 on a free port, in a thread of the test process. Answers
come from ``script`` first, in order; then a JSON body ``{"status": 404}``
answers that status; anything else answers 200.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``delay`` seconds pass before it is sent. With ``drip``, it is
    sent one byte every ``drip`` seconds, status line and headers included (a server
    that never lets a per-read timeout trip)."""

    status: int = 200
    body: str = '{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the server saw it, with the time it arrived (``time.time()``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class LocalServer(ThreadingHTTPServer):
    """The server; ``url`` is its address, ``requests`` what it received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[Reply] = deque()
        self.requests: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self.lock:
            self.script.extend(replies)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def record(self, request: Received) -> Reply:
        with self.lock:
            self.requests.append(request)
            if self.script:
                return self.script.popleft()
        try:
            status = json.loads(request.body).get("status") if request.body else None
        except (ValueError, AttributeError):
            status = None
        if isinstance(status, int):
            return Reply(status, json.dumps({"error": f"you asked for {status}"}))
        return Reply()


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        at = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.record(
            Received(self.command, self.path, dict(self.headers.items()), body, at))
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drip:
            self._drip(reply)
            return
        data = reply.body.encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _drip(self, reply: Reply) -> None:
        data = reply.body.encode()
        head = (f"HTTP/1.1 {reply.status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
        for byte in head + data:
            time.sleep(reply.drip)
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the client gave up: what a deadline does
                self.close_connection = True
                return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``requests`` instead."""


@contextmanager
def running_server() -> Iterator[LocalServer]:
    """A started server, shut down afterwards."""
    server = LocalServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
