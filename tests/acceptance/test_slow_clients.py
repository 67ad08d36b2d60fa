"""Slow clients cannot starve the API: the web process as the Procfile starts it."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from bench.slow_clients import SlowUploads, Web, procfile_web_command, timed_read, web_process
from tests.integration.harness import wait_until

WEB_CONCURRENCY = 2


def test_another_users_read_is_answered_while_four_slow_uploads_per_process_trickle(
    tmp_path: Path,
) -> None:
    idle = {"BATCHQ_BODY_READ_IDLE_SECONDS": "6"}
    with web_process(procfile_web_command(), WEB_CONCURRENCY, tmp_path, idle) as web, \
            SlowUploads(web, 4 * WEB_CONCURRENCY) as uploads:
        time.sleep(2)  # every upload has sent its headers and started its body
        assert not uploads.answers  # still open: their bodies have 6 s before the rate rule
        # A generous bound: the old sync workers made this read wait for more than 30 s.
        assert timed_read(web, timeout=10) < 1.0
        # The uploads are bounded too: each one is refused once its body falls behind.
        wait_until(lambda: len(uploads.answers) == 4 * WEB_CONCURRENCY, 30,
                   "the slow uploads to be refused")
    assert {answer.split()[1] for answer in uploads.answers} == {"408"}


def _raw_answer(web: Web, request: bytes) -> tuple[str, dict[str, Any]]:
    """Send ``request`` as it is; the status line and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head, answer
    return head.split(b"\r\n")[0].decode(), json.loads(body)


def test_requests_gunicorn_refuses_itself_are_answered_in_the_apis_json_shape(
    tmp_path: Path,
) -> None:
    with web_process(procfile_web_command(), 1, tmp_path, {}) as web:
        status, body = _raw_answer(web, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
        assert status.startswith("HTTP/1.1 414") and body["status"] == 414
        status, body = _raw_answer(web, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert status.startswith("HTTP/1.1 400") and body["status"] == 400
        assert body["error"].startswith("Bad Request") and body["details"] == {}
