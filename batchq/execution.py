"""The seed and execute steps: creating pages and running them.

An execute message names one queued page. The worker claims it, runs it, and
then keeps claiming the batch's next pages in the same transaction that commits
the previous one, for one time slice; then it tops the queue up and yields, so
the jobs of all active batches interleave.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from batchq.errors import BatchqError, ItemFailed
from batchq.runtime import Runtime
from batchq.store import ItemFailure, PageClaim, PageOutcome, utcnow
from batchq.types import BatchType, ItemContext

log = logging.getLogger(__name__)


def seed_batch(rt: Runtime, batch_id: str) -> bool:
    """Create the next ``jobsPerSeed`` pages and queue what may run; True if more remain."""
    created, more = rt.store.seed_pages(batch_id, utcnow())
    if created:
        log.info("Seeded %d pages of batch %s.", created, batch_id)
    queue_more_pages(rt, batch_id)
    return more


def queue_more_pages(rt: Runtime, batch_id: str) -> list[int]:
    """Top the batch's queue up to ``max_queued_jobs`` and send their messages."""
    page_nos = rt.store.queue_pages(batch_id, rt.settings.max_queued_jobs, utcnow())
    for page_no in page_nos:
        rt.send("execute", batch_id, page_no)
    return page_nos


def run_job(rt: Runtime, batch_id: str, page_no: int, worker: str) -> int:
    """Run page ``page_no`` and then further pages for one time slice; returns pages run.

    A message for a page that is not queued (done, running elsewhere, or taken
    back by a suspend or cancel) does nothing.
    """
    deadline = time.monotonic() + rt.settings.execute_slice_seconds
    lease = timedelta(seconds=rt.settings.lease_seconds)
    now = utcnow()
    claim = rt.store.claim_queued_page(batch_id, page_no, worker, now, now + lease)
    pages_run = 0
    while claim is not None:
        outcome = run_page(rt, claim, worker)
        now = utcnow()
        keep_going = time.monotonic() < deadline
        result = rt.store.finish_page(
            outcome, now, claim_next_for=(worker, now + lease) if keep_going else None
        )
        pages_run += 1
        if not result.counted:
            log.info("Page %d of batch %s was already done; its result was dropped.",
                     claim.page_no, batch_id)
        if result.needs_monitor:
            rt.send("monitor", batch_id)
        claim = result.next_claim
    if pages_run:
        queue_more_pages(rt, batch_id)
    return pages_run


def run_page(rt: Runtime, claim: PageClaim, worker: str) -> PageOutcome:
    """Run the handler on every item of the page; failures are recorded, not raised."""
    rows = rt.store.read_page_items(claim.batch_id, claim.stage, claim.first_pos,
                                    claim.item_count)
    try:
        batch_type: BatchType | None = rt.registry.get(claim.type)
    except BatchqError as exc:
        batch_type, missing = None, f"batch type {claim.type!r} is not loaded on {worker}: {exc}"
    renew_every = rt.settings.lease_seconds / 3
    renew_at = time.monotonic() + renew_every
    failures: list[ItemFailure] = []
    for row in rows:
        if batch_type is None:
            message: str | None = missing
        else:
            context = ItemContext(claim.batch_id, row["key"], claim.stage, claim.params)
            message = _run_item(batch_type, row["payload"], context)
        if message is not None:
            failures.append(ItemFailure(claim.stage, row["pos"], row["seq"], row["key"], message))
        if time.monotonic() >= renew_at:
            until = utcnow() + timedelta(seconds=rt.settings.lease_seconds)
            rt.store.renew_lease(claim, worker, until)
            renew_at = time.monotonic() + renew_every
    return PageOutcome(claim.batch_id, claim.page_no, len(rows) - len(failures), failures)


def _run_item(batch_type: BatchType, payload: object, context: ItemContext) -> str | None:
    """None on success, else the item's error message."""
    try:
        batch_type.handler(payload, context)
    except ItemFailed as exc:
        return exc.message
    except Exception as exc:
        log.info("Item %r of batch %s failed: %r", context.key, context.batch_id, exc)
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
