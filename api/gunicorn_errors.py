"""gunicorn's own refusals in the API's JSON error shape.

gunicorn answers a request it cannot parse (a request line past
``limit_request_line``: 414; too many or too long headers: 431; a malformed
line or header: 400) before the app sees it, with an HTML page written by
``gunicorn.util.write_error``. Its workers call that function through the
module, so replacing it once in the web process (``api.gunicorn_config``)
makes those answers ``{"status", "error", "details"}`` like every other.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util

#: The message is gunicorn's, which may echo part of the request: bounded.
MAX_MESSAGE = 500


def json_error_response(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer gunicorn writes for a request it refused."""
    body = json.dumps({"status": status, "error": f"{reason}: {message[:MAX_MESSAGE]}"
                       if message else reason, "details": {}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error``'s signature, writing JSON."""
    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


def install() -> None:
    """Make gunicorn's refusals JSON in this process and the workers it forks."""
    patched: Any = util
    patched.write_error = write_json_error
