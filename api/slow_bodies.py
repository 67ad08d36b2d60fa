"""Bodies that arrive too slowly are refused with 408, so a slow client holds a thread briefly.

A request's body is read by the thread serving it, from a blocking socket.
``api/gunicorn_config.py`` wraps that socket in a ``PacedSocket`` for each request:
every read must come by a deadline that the body's bytes push back, Apache
``mod_reqtimeout``'s rule ``body=20,MinRate=1000``: the body may take
``grace_seconds`` plus one second per ``min_bytes_per_second`` bytes received.
A body that stops, or sends one byte every 2 s, is cut once it falls behind; a
healthy upload of any size never is. The socket's timeout is that deadline, so
even a read that gets nothing at all ends in time.

``bound_body_reads`` turns the timeout into the one error shape: a 408.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import RequestTimeout

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: The shortest timeout a read gets, so a read already late still fails as a timeout.
_MIN_TIMEOUT = 0.001


class BodyTooSlow(RequestTimeout):
    """The body stopped or trickled; the error handlers answer it as a 408."""


class PacedSocket:
    """The ``recv`` of a request's socket under the rate rule; all else is the socket's."""

    def __init__(self, sock: socket.socket, grace_seconds: float,
                 min_bytes_per_second: float) -> None:
        self.raw = sock
        self._started = time.monotonic()
        self._grace = grace_seconds
        self._rate = min_bytes_per_second
        self._received = 0

    def recv(self, size: int, *flags: int) -> bytes:
        deadline = self._started + self._grace + self._received / self._rate
        self.raw.settimeout(max(_MIN_TIMEOUT, deadline - time.monotonic()))
        chunk = self.raw.recv(size, *flags)
        self._received += len(chunk)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def pace(sock: Any, grace_seconds: float, min_bytes_per_second: float) -> PacedSocket:
    """``sock`` (or the socket a previous request on the connection paced) under the rule."""
    raw = sock.raw if isinstance(sock, PacedSocket) else sock
    return PacedSocket(raw, grace_seconds, min_bytes_per_second)


def unpace(sock: Any) -> Any:
    """The plain socket under ``sock``, with no timeout left on it."""
    if not isinstance(sock, PacedSocket):
        return sock
    sock.raw.settimeout(None)
    return sock.raw


class _TimedInput:
    """``wsgi.input`` whose read timeouts become ``BodyTooSlow``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except TimeoutError as exc:
            raise BodyTooSlow(
                "The request body arrived too slowly: after BATCHQ_BODY_READ_IDLE_SECONDS it "
                "must average at least BATCHQ_BODY_MIN_BYTES_PER_SECOND bytes per second"
            ) from exc

    def read(self, *args: Any) -> bytes:
        return self._guarded(self._stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._guarded(self._stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._guarded(self._stream.readlines, *args)

    def __iter__(self) -> _TimedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def bound_body_reads(app: WSGIApp) -> WSGIApp:
    """``app`` with a body read that times out answered as a 408."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _TimedInput(stream)
        return app(environ, start_response)

    return guarded
