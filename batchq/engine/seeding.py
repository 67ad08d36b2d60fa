"""The seed step: creating a batch's pages, ``jobsPerSeed`` at a time, and queueing them.

Pages are arithmetic over the batch's per-stage item counts
(``batchq.domain.paging``), so the seed never reads an item. Each batch keeps at
most ``max_queued_jobs`` pages queued in the broker, so the pages of all active
batches interleave (docs/design.md, invariant 8).
"""

from __future__ import annotations

import logging

from batchq.engine.sources import seed_from_source
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


def seed_batch(rt: Runtime, batch_id: str) -> bool:
    """Create the next ``jobsPerSeed`` pages and queue what may run; True if more remain.

    A source batch reads its next chunk instead, which comes with its pages.
    """
    batch = rt.storage.batches.get(batch_id)
    if batch is not None and batch["source_exhausted"] is False:
        more = seed_from_source(rt, batch_id)
    else:
        created, more = rt.storage.pages.seed(batch_id, utcnow())
        if created:
            log.info("Seeded %d pages of batch %s.", created, batch_id)
    queue_more_pages(rt, batch_id)
    return more


def queue_more_pages(rt: Runtime, batch_id: str) -> list[int]:
    """Top the batch's queue up to ``max_queued_jobs`` and send their messages."""
    page_nos = rt.storage.pages.queue(batch_id, rt.settings.max_queued_jobs, utcnow())
    for page_no in page_nos:
        rt.send("execute", batch_id, page_no)
    return page_nos
