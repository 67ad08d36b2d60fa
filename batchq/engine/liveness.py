"""The heartbeat of a worker process: one row, renewed every few seconds while it lives.

A page's lease (``lease_seconds``, a minute) bounds how long a hung item may
hold it; waiting that long to learn that a worker machine died would stall its
batch for a minute. So every worker process renews a row of its own every
``worker_heartbeat_seconds`` from a daemon thread, which beats while any item
runs, and the monitor re-runs the pages of a process whose row is older than
``worker_lost_after_seconds`` (``batchq.storage.pages.abandoned``): a killed
process or machine is found within seconds. Times are the database's clock.
"""

from __future__ import annotations

import logging
import threading

from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


class WorkerLiveness:
    """``WorkerLiveness(rt, worker).start()`` before the process claims its first page."""

    def __init__(self, rt: Runtime, worker: str) -> None:
        self._rt = rt
        self.worker = worker
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Write the row now (a page claimed before it would be judged by its lease alone),
        then keep renewing it; raises ``StorageUnavailable`` if the database is down."""
        if self._thread is not None:
            return
        self._rt.storage.worker_heartbeats.beat(self.worker, utcnow())
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"worker-heartbeat-{self.worker}")
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and delete the row: this process runs nothing any more."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._rt.storage.worker_heartbeats.forget(self.worker)
        except Exception as exc:  # it goes stale instead, and is deleted by the cleanup
            log.info("Could not delete the heartbeat of %s: %s", self.worker, exc)

    def _beat(self) -> None:
        interval = self._rt.settings.worker_heartbeat_seconds
        while not self._stopped.wait(interval):
            try:
                self._rt.storage.worker_heartbeats.beat(self.worker, utcnow())
            except Exception as exc:  # the database is away: beat again when it is back
                log.warning("Could not renew the heartbeat of %s: %s", self.worker, exc)
