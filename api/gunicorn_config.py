"""gunicorn settings of the web process (the Procfile's ``web`` line: ``gunicorn -c``).

The serving model (docs/serving.md): ``gthread`` workers, each with more threads
than the live progress streams it may hold (``BATCHQ_SSE_MAX_STREAMS``), so
neither streams nor slow clients take every thread. gthread parks a connection
that has sent nothing yet in its event loop instead of a thread; a request that
has started holds a thread while its body arrives, so the body read is bounded:
``pre_request`` paces its socket (``api.slow_bodies``): after
``BATCHQ_BODY_READ_IDLE_SECONDS`` a body must average
``BATCHQ_BODY_MIN_BYTES_PER_SECOND``, or the request is answered 408.

gunicorn reads this module as its config file; the environment is read here,
once, like every batchq process reads its settings.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from api import gunicorn_errors
from api.slow_bodies import pace, unpace
from batchq.batch_types.loading import load_types
from batchq.errors import BatchqError, StorageUnavailable
from batchq.settings import Settings
from batchq.storage.engine import probe

#: Threads of each process for ordinary requests, beyond those its streams may hold.
REQUEST_THREADS = 28


def _checked_settings() -> Settings:
    """The settings, the batch types and the database URL, checked before gunicorn forks:
    what is wrong ends the process with one line (gunicorn would print a traceback per
    worker and then "Worker failed to boot"). A database that is down is only reported:
    the API answers 503 until it is back, so the web process may start before it."""
    try:
        settings = Settings.from_env()
        load_types(settings.types)
        probe(settings.database_url)
    except StorageUnavailable as exc:
        print(f"batchq: the web process starts without its database: {exc.message}",
              file=sys.stderr)
    except BatchqError as exc:
        raise SystemExit(f"batchq: cannot start the web process: {exc.message}") from None
    return settings


def _free_address(address: str) -> str:
    """``address`` if nothing listens on it, else the process ends with one line (gunicorn
    would retry for five seconds, logging each refusal)."""
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe_socket:
        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe_socket.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            raise SystemExit(f"batchq: cannot start the web process: {address} is taken "
                             f"({exc.strerror}); set PORT to a free port") from None
    return address


_settings = _checked_settings()
gunicorn_errors.install()  # a request gunicorn refuses is answered in JSON too

bind = _free_address(f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "api.gunicorn_worker.ThreadWorker"  # gthread, with a quick stop that cannot hang
threads = _settings.sse_max_streams + REQUEST_THREADS
# Connections a process keeps open, idle ones between requests included.
worker_connections = 4 * threads
# gthread's main loop beats while its threads work, so a long upload (a million items
# streamed into COPY) is not taken for a hung worker; this only catches a stuck loop.
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = "-"
wsgi_app = "api:create_app()"


def pre_request(worker: Any, req: Any) -> None:
    """Bound the read of the request's body: gunicorn reads it from a blocking socket
    without a timeout, so a client that stops sending would hold the thread for good."""
    req.unreader.sock = pace(req.unreader.sock, _settings.body_read_idle_seconds,
                             _settings.body_min_bytes_per_second)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Give the connection its plain socket back: the next request on a kept-alive
    connection has a deadline of its own, not what is left of this one's."""
    req.unreader.sock = unpace(req.unreader.sock)
