"""gunicorn's ``gthread`` worker, with a quick-stop handler that cannot hang.

gthread's SIGQUIT/SIGINT handler shuts its thread pool down inside the signal
handler. That takes the pool's lock, which the main thread may hold at that
moment: in ``submit`` for a new connection, or in the same handler, entered
again when the master's SIGQUIT follows the terminal's SIGINT (Ctrl-C on
``gunicorn`` reaches master and workers both). A lock the thread already
holds never comes free (cpython#121649), so the worker hangs until the master
kills it after ``graceful_timeout``, or for good if the master is gone.

This worker leaves the pool alone on a quick stop. Nothing is lost by that:
only the main thread submits work, and it is exiting; the interpreter's exit
then ends the pool's threads as ``shutdown`` would.
"""

from __future__ import annotations

from types import FrameType

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker as GthreadWorker


class ThreadWorker(GthreadWorker):
    """``gthread`` but for the quick stop (``worker_class`` in ``api.gunicorn_config``)."""

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        Worker.handle_quit(self, sig, frame)
