"""``maxItemsPerSecond``: a batch's items spaced across every worker, by the shared limiter.

Before each item of a batch with a rate, the worker reserves the next slot of
the batch's key (``batch:<id>``) in the shared limiter
(``batchq.adapters.rate_limit``: Redis, or a locked file on the embedded
stack), so all workers together start at most that many items a second. The
rate is read with each claim and read again at most once a second while a page
runs, and a worker never waits more than a second on one reservation without
reading it again: a rate changed by ``PATCH /batches/{id}`` holds within a
second, for pages already running too.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable

from batchq.adapters.rate_limit import RateLimiter, limiter_for
from batchq.domain.page_runs import PageClaim
from batchq.runtime import Runtime

#: How often a running page reads its batch's rate again, and the longest single wait.
REFRESH_SECONDS = 1.0
#: A worker reserves as many slots at once as the rate allows in this long, so a fast
#: rate costs one round trip to the limiter per batch of items, not one per item.
BURST_SECONDS = 0.02
#: Throttles kept per process (one per batch it ran lately).
_KEPT = 256
_throttles: OrderedDict[str, ItemThrottle] = OrderedDict()
_limiters: dict[tuple[int, int], RateLimiter] = {}


class ItemThrottle:
    """Waits before each item of one batch until its rate allows it."""

    def __init__(self, rt: Runtime, batch_id: str, rate: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 limiter: RateLimiter | None = None) -> None:
        self._rt = rt
        self._limiter = limiter
        self._key = f"batch:{batch_id}"
        self._batch_id = batch_id
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._read_at = clock()
        self._reserved = 0  # slots taken by the last reservation and not used yet

    def claimed(self, rate: float | None) -> None:
        """A claim just read the batch's rate: no need to read it again for a second."""
        self._rate, self._read_at = rate, self._clock()

    def __call__(self) -> None:
        """Return once the next item may start."""
        while True:
            rate = self._current_rate()
            if rate is None:
                self._reserved = 0
                return
            if self._reserved > 0:
                self._reserved -= 1
                return
            slots = max(1, int(rate * BURST_SECONDS))
            limiter = self._limiter or limiter_of(self._rt)
            wait = limiter.reserve_within(self._key, slots / rate, REFRESH_SECONDS)
            if wait is not None:
                if wait > 0:
                    self._sleep(wait)
                self._reserved = slots - 1
                return
            self._sleep(REFRESH_SECONDS)  # no slot within a second: read the rate again

    def _current_rate(self) -> float | None:
        if self._clock() - self._read_at >= REFRESH_SECONDS:
            self._rate = self._rt.storage.batches.throttle_of(self._batch_id)[0]
            self._read_at = self._clock()
        return self._rate


def item_throttle(rt: Runtime, claim: PageClaim) -> ItemThrottle:
    """The throttle of the claim's batch in this process, told the rate the claim read."""
    throttle = _throttles.pop(claim.batch_id, None)
    if throttle is None or throttle._rt is not rt:
        throttle = ItemThrottle(rt, claim.batch_id, claim.max_items_per_second)
    else:
        throttle.claimed(claim.max_items_per_second)
    _throttles[claim.batch_id] = throttle
    while len(_throttles) > _KEPT:
        _throttles.popitem(last=False)
    return throttle


def limiter_of(rt: Runtime) -> RateLimiter:
    """The shared limiter for ``rt``'s settings, one per process (built after a fork)."""
    key = (id(rt), os.getpid())
    if key not in _limiters:
        _limiters[key] = limiter_for(rt.settings)
    return _limiters[key]
