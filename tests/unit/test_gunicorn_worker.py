"""The web process's gunicorn worker stops on SIGINT/SIGQUIT whatever the thread pool holds."""

from __future__ import annotations

import signal
import threading

from gunicorn.config import Config
from gunicorn.glogging import Logger

from api.gunicorn_worker import ThreadWorker


def test_a_quick_stop_does_not_wait_for_the_thread_pools_lock() -> None:
    """The signal may come while the main thread holds the pool's lock (in ``submit``, or
    in this same handler for the signal before); gthread's own handler then waits for it
    for good (cpython#121649). Ours must end the worker all the same."""
    config = Config()
    worker = ThreadWorker(1, 0, [], None, 30, config, Logger(config))
    worker.tpool = worker.get_thread_pool()
    exited = threading.Event()

    def quick_stop() -> None:
        try:
            worker.handle_quit(signal.SIGQUIT, None)
        except SystemExit:
            exited.set()

    with worker.tpool._shutdown_lock:  # what the interrupted main thread holds
        stopper = threading.Thread(target=quick_stop, daemon=True)
        stopper.start()
        stopper.join(timeout=5)
    assert exited.is_set()
    assert not worker.alive
    worker.tpool.shutdown()
    worker.tmp.close()
