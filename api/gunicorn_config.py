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
from typing import Any

from api.slow_bodies import pace, unpace
from batchq.settings import Settings

#: Threads of each process for ordinary requests, beyond those its streams may hold.
REQUEST_THREADS = 28

_settings = Settings.from_env()

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
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
