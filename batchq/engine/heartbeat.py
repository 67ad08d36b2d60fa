"""A heartbeat that keeps the leases of a worker's pages alive while a long item runs.

Between items, ``run_page`` could renew the leases itself; an item that runs
longer than ``lease_seconds`` would then lose its page, which the monitor
re-runs elsewhere. The heartbeat renews from a background thread instead, every
third of a lease, for as long as the process lives. A killed worker stops
beating, so its pages still come back after one lease. A hung item must not
hold its page or its worker either: once one item has run past its deadline
(``batchq.engine.deadline``), the heartbeat stops renewing, so no lease outlives
the deadline by more than one lease; ``HARD_GRACE_SECONDS`` later, if the alarm
did not stop the item, it marks the item hung on its page (its next run fails
it) and calls ``on_hung`` (the Celery task ends its process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType

from batchq.domain.page_runs import PageClaim
from batchq.engine.deadline import HARD_GRACE_SECONDS
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


class LeaseHeartbeat:
    """``with LeaseHeartbeat(rt, claims, worker) as beat:`` run the items, calling
    ``beat.item_starts(page_no, pos)`` before each one and ``beat.item_done()`` after."""

    def __init__(self, rt: Runtime, claims: Sequence[PageClaim], worker: str,
                 deadline_seconds: float | None = None,
                 on_hung: Callable[[], None] | None = None) -> None:
        self._rt = rt
        self._deadline = (rt.settings.item_timeout_seconds if deadline_seconds is None
                          else deadline_seconds)
        self._on_hung = on_hung
        self._claims = list(claims)
        self._worker = worker
        self._stopped = threading.Event()
        self._item_since = time.monotonic()
        #: (page_no, pos) of the item running now, if one does.
        self._running: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"lease-heartbeat-{claims[0].batch_id}")

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopped.set()
        self._thread.join()

    def item_starts(self, page_no: int, pos: int) -> None:
        """The item at ``pos`` of page ``page_no`` runs now (its deadline began at
        ``item_done``, before the throttle's wait)."""
        self._running = (page_no, pos)

    def item_done(self) -> None:
        """The next item starts now: its own ``item_timeout_seconds`` begin."""
        self._item_since = time.monotonic()
        self._running = None

    def _beat(self) -> None:
        lease = self._rt.settings.lease_seconds
        # Woken often enough to notice a deadline within a second; renews every third of a
        # lease.
        period = min(lease / 3, 1.0)
        renew_at = time.monotonic() + lease / 3
        while not self._stopped.wait(period):
            item_since = self._item_since
            overdue = time.monotonic() - item_since > self._deadline
            if overdue and not self._item_ends_after_deadline(item_since):
                return
            if time.monotonic() >= renew_at:
                self._renew(lease)
                renew_at = time.monotonic() + lease / 3

    def _item_ends_after_deadline(self, item_since: float) -> bool:
        """An item ran past its deadline: renew nothing until it ends. True when it ended
        within ``HARD_GRACE_SECONDS`` (the alarm stopped it); otherwise ``on_hung``."""
        batch_id = self._claims[0].batch_id
        log.warning("An item of batch %s has run past its deadline of %g s; its page's lease "
                    "is not renewed until it ends.", batch_id, self._deadline)
        grace_ends = time.monotonic() + HARD_GRACE_SECONDS
        while time.monotonic() < grace_ends:
            if self._stopped.wait(0.1):
                return False
            if self._item_since != item_since:
                return True
        log.error("An item of batch %s ignored its deadline of %g s for %g s more; its page "
                  "is left to expire%s.", batch_id, self._deadline, HARD_GRACE_SECONDS,
                  " and this worker process ends" if self._on_hung else "")
        self._mark_hung()
        if self._on_hung is not None:
            self._on_hung()
        return False

    def _mark_hung(self) -> None:
        """Record the item that ignored its deadline, so its page's next run fails it."""
        if self._running is None:
            return
        page_no, pos = self._running
        try:
            self._rt.storage.pages.mark_hung(self._claims[0].batch_id, page_no, pos)
        except Exception as exc:  # the page is then run again whole, the item with it
            log.warning("Could not mark the hung item of batch %s: %s",
                        self._claims[0].batch_id, exc)

    def _renew(self, lease: float) -> None:
        try:
            self._rt.storage.pages.renew_leases(self._claims, self._worker,
                                        utcnow() + timedelta(seconds=lease))
        except Exception as exc:  # the next beat retries; two more fit in the lease
            log.warning("Could not renew the leases of batch %s: %s",
                        self._claims[0].batch_id, exc)
