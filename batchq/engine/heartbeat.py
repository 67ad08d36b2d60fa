"""A heartbeat that keeps the leases of a worker's pages alive while a long item runs.

Between items, ``run_page`` could renew the leases itself; an item that runs
longer than ``lease_seconds`` would then lose its page, which the monitor
re-runs elsewhere. The heartbeat renews from a background thread instead, every
third of a lease, for as long as the process lives. A killed worker stops
beating, so its pages still come back after one lease. A hung item must not
hold its page forever either: once one item has run ``item_timeout_seconds``,
the heartbeat stops renewing and the page goes back as if its worker had died.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType

from batchq.domain.page_runs import PageClaim
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


class LeaseHeartbeat:
    """``with LeaseHeartbeat(rt, claims, worker) as beat:`` run the items, calling
    ``beat.item_done()`` after each one."""

    def __init__(self, rt: Runtime, claims: Sequence[PageClaim], worker: str) -> None:
        self._rt = rt
        self._claims = list(claims)
        self._worker = worker
        self._stopped = threading.Event()
        self._item_since = time.monotonic()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"lease-heartbeat-{claims[0].batch_id}")

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopped.set()
        self._thread.join()

    def item_done(self) -> None:
        """The next item starts now: its own ``item_timeout_seconds`` begin."""
        self._item_since = time.monotonic()

    def _beat(self) -> None:
        lease = self._rt.settings.lease_seconds
        while not self._stopped.wait(lease / 3):
            running_for = time.monotonic() - self._item_since
            if running_for > self._rt.settings.item_timeout_seconds:
                log.warning("An item of batch %s has run %.0f seconds, more than "
                            "BATCHQ_ITEM_TIMEOUT_SECONDS; its page's lease is left to expire.",
                            self._claims[0].batch_id, running_for)
                return
            self._renew(lease)

    def _renew(self, lease: float) -> None:
        try:
            self._rt.storage.pages.renew_leases(self._claims, self._worker,
                                        utcnow() + timedelta(seconds=lease))
        except Exception as exc:  # the next beat retries; two more fit in the lease
            log.warning("Could not renew the leases of batch %s: %s",
                        self._claims[0].batch_id, exc)
