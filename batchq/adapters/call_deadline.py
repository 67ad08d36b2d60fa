"""A wall-clock deadline for one whole outbound call, not for each socket read.

A socket timeout bounds each read, so a server sending one byte every 9 s
never trips a 10 s timeout and holds the caller for as long as it likes.
``call_deadline(seconds)`` bounds the whole call instead: every socket the
call opens (``watch_socket``, called by the egress rule's ``connect``) is shut
down when the time is up, which wakes any read blocked on it with an end of
file or an error; ``expired`` then tells the caller why its call failed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

_current = threading.local()


class CallDeadline:
    """The sockets of one call, shut down together once its time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once, if it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def expire(self) -> None:
        """The time is up: shut every socket of the call down."""
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to wake
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[CallDeadline]:
    """Run one call (in this thread) under a deadline of ``seconds``."""
    deadline = CallDeadline(seconds)
    timer = threading.Timer(seconds, deadline.expire)
    timer.daemon = True
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    timer.start()
    try:
        yield deadline
    finally:
        timer.cancel()
        _current.deadline = previous


def watch_socket(sock: socket.socket) -> socket.socket:
    """Put ``sock`` under the deadline of the call this thread is making, if any."""
    deadline: CallDeadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)
    return sock
