"""The execute step: running pages.

An execute message names one queued page. The worker claims it, runs it, and
then keeps claiming the batch's next pages in the same transaction that commits
the previous one, for one time slice; then it tops the queue up and yields, so
the jobs of all active batches interleave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from batchq.batch_types.context import ItemContext, ItemFailed, ProgressNote, RetryItem
from batchq.batch_types.registry import BatchType
from batchq.domain.page_runs import ClaimRequest, ItemFailure, ItemRetry, PageClaim, PageOutcome
from batchq.domain.storable import storable_text
from batchq.engine.deadline import (
    ItemDeadlineExceeded,
    ItemWatch,
    hung_message,
    item_deadline_of,
    item_deadlines,
)
from batchq.engine.deliveries import send_deliveries
from batchq.engine.heartbeat import LeaseHeartbeat
from batchq.engine.retries import failed_item, policy_of
from batchq.engine.seeding import queue_more_pages
from batchq.engine.throttle import item_throttle
from batchq.errors import BatchqError, StorageUnavailable
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


#: A worker claims as many pages at once as take about this long to run, so fast
#: pages share a transaction while a suspend or cancel still bites within it.
CLAIM_SECONDS = 0.2
MAX_PAGES_PER_CLAIM = 32


def run_job(rt: Runtime, batch_id: str, page_no: int, worker: str,
            on_hung: Callable[[], None] | None = None) -> int:
    """Run page ``page_no`` and then further pages for one time slice; returns pages run.

    A message for a page that is not queued (done, running elsewhere, or taken
    back by a suspend or cancel) does nothing. ``on_hung`` is what the heartbeat
    does with an item that outlived its deadline and the alarm (``batchq.engine.deadline``).
    """
    hand_back_unfinished(rt, worker)
    try:
        return _run_job(rt, batch_id, page_no, worker, on_hung)
    except StorageUnavailable:
        log.warning("The database went away while batch %s ran; its pages are handed back "
                    "when it is back.", batch_id)
        raise


def hand_back_unfinished(rt: Runtime, worker: str) -> None:
    """Release the pages an earlier job of this process could not commit, and re-send them."""
    unfinished = rt.unfinished_claims
    while unfinished:
        claim = unfinished[0]
        same = [c.page_no for c in unfinished if c.batch_id == claim.batch_id]
        for page_no in rt.storage.pages.release_unfinished(claim.batch_id, same, worker,
                                                           utcnow()):
            rt.send("execute", claim.batch_id, page_no)
        unfinished[:] = [c for c in unfinished if c.batch_id != claim.batch_id]


def _run_job(rt: Runtime, batch_id: str, page_no: int, worker: str,
             on_hung: Callable[[], None] | None) -> int:
    deadline = time.monotonic() + rt.settings.execute_slice_seconds
    lease = timedelta(seconds=rt.settings.lease_seconds)
    now = utcnow()
    first = rt.storage.pages.claim_queued(batch_id, page_no, worker, now, now + lease)
    claims = [first] if first is not None else []
    has_post_batch = first is not None and _has_post_batch(rt, first.type)
    pages_run = 0
    finalized = False
    while claims:
        started = time.monotonic()
        rt.unfinished_claims.extend(claims)  # until their outcomes are committed
        outcomes = run_pages(rt, claims, worker, on_hung)
        pages_run += len(outcomes)
        now = utcnow()
        request = None
        if time.monotonic() < deadline:
            per_page = (time.monotonic() - started) / len(claims)
            request = ClaimRequest(worker, now + lease, _pages_per_claim(per_page), claims[-1])
        result = rt.storage.pages.finish(outcomes, now, claim=request, finalize=True,
                                         has_post_batch=has_post_batch)
        del rt.unfinished_claims[-len(claims):]
        if not result.counted:
            log.info("Pages %s of batch %s were already done; their results were dropped.",
                     [claim.page_no for claim in claims], batch_id)
        if result.finalized is not None:
            finalized = True
            log.info("Batch %s finished with its last page: %s.", batch_id, result.finalized)
            if result.webhooks_recorded:  # recorded with the final status: send them
                send_deliveries(rt, batch_id)
        if result.needs_monitor:
            rt.send("monitor", batch_id)
        claims = result.next_claims
        if not claims and request is not None and result.unseeded:
            claims = _seed_and_claim(rt, request)
    if pages_run and not finalized:
        queue_more_pages(rt, batch_id)
    return pages_run


def _has_post_batch(rt: Runtime, code: str) -> bool:
    """Does the type have a post-batch step? Unknown here: assume so, the monitor decides."""
    try:
        return rt.registry.get(code).post_batch is not None
    except BatchqError:
        return True


def _seed_and_claim(rt: Runtime, request: ClaimRequest) -> list[PageClaim]:
    """Out of pages while the seed lags: create the next ones here rather than wait.

    The seed step is a conditional update of ``jobs_created``, so a worker and
    the seed task running it at once create each page once.
    """
    rt.storage.pages.seed(request.like.batch_id, utcnow())
    return rt.storage.pages.finish([], utcnow(), claim=request).next_claims


def _pages_per_claim(seconds_per_page: float) -> int:
    if seconds_per_page <= 0:
        return MAX_PAGES_PER_CLAIM
    return max(1, min(MAX_PAGES_PER_CLAIM, int(CLAIM_SECONDS / seconds_per_page)))


def run_pages(rt: Runtime, claims: Sequence[PageClaim], worker: str,
              on_hung: Callable[[], None] | None = None) -> list[PageOutcome]:
    """Run claimed pages (of one batch) one after the other; a heartbeat keeps all their
    leases alive, however long one item takes, up to the item's deadline."""
    deadline = item_deadline_of(rt, claims[0].type)
    with LeaseHeartbeat(rt, claims, worker, deadline, on_hung) as heartbeat:
        return [run_page(rt, claim, worker, heartbeat.item_done, heartbeat.item_starts)
                for claim in claims]


def run_page(rt: Runtime, claim: PageClaim, worker: str,
             keep_leases: Callable[[], None] | None = None,
             item_starts: Callable[[int, int], None] | None = None) -> PageOutcome:
    """Run the handler on every item of the page; failures are recorded, not raised.

    A transient failure with attempts left goes to a retry page instead
    (``batchq.engine.retries``); the batch's ``maxItemsPerSecond`` spaces the
    items (``batchq.engine.throttle``). ``keep_leases`` is called after every
    item; by default it renews the page's lease between items (``run_pages``
    passes its heartbeat's instead, and ``item_starts``, told each item's page
    and position). An item that ignored its deadline in an earlier run fails
    without running.
    """
    rows = claim.items or rt.storage.items.of_page(
        claim.batch_id, claim.stage, claim.first_pos, claim.item_count)
    if keep_leases is None:
        keep_leases = _lease_keeper(rt, [claim], worker)
    try:
        batch_type: BatchType | None = rt.registry.get(claim.type)
    except BatchqError as exc:
        batch_type, missing = None, f"batch type {claim.type!r} is not loaded on {worker}: {exc}"
    policy, throttle = policy_of(batch_type, claim), item_throttle(rt, claim)
    failures: list[ItemFailure] = []
    retries: list[ItemRetry] = []
    progress = ProgressNote()  # what the page's handlers last said, committed with its counters
    deadline = item_deadline_of(rt, claim.type)
    with item_deadlines(deadline) as watch:
        for row in rows:
            error: BaseException | None = None
            if batch_type is None:
                message: str | None = missing
            elif row["pos"] in claim.hung_positions:
                message = hung_message(deadline)
            else:
                throttle()
                if item_starts is not None:
                    item_starts(claim.page_no, row["pos"])
                context = ItemContext(claim.batch_id, row["key"], claim.stage, claim.params,
                                      progress, claim.item_attempt)
                error = _run_item(batch_type, row["payload"], context, watch)
                message = None if error is None else _error_message(error)
            if message is not None:
                failed = failed_item(policy, claim, row, message, error)
                if isinstance(failed, ItemRetry):
                    retries.append(failed)
                else:
                    failures.append(failed)
            keep_leases()
    return PageOutcome(claim.batch_id, claim.page_no, len(rows) - len(failures) - len(retries),
                       failures, progress_description=progress.text, retries=retries)


def _lease_keeper(rt: Runtime, claims: Sequence[PageClaim], worker: str) -> Callable[[], None]:
    """A function to call often: every third of a lease, it renews the claims' leases."""
    lease = rt.settings.lease_seconds
    renew_at = time.monotonic() + lease / 3

    def keep_leases() -> None:
        nonlocal renew_at
        if time.monotonic() >= renew_at:
            rt.storage.pages.renew_leases(claims, worker, utcnow() + timedelta(seconds=lease))
            renew_at = time.monotonic() + lease / 3

    return keep_leases


#: An item error is a message for a person; a handler's huge exception text is cut.
MAX_ERROR_MESSAGE = 4000


def _run_item(batch_type: BatchType, payload: object, context: ItemContext,
              watch: ItemWatch) -> BaseException | None:
    """None on success, else what the handler raised (or the deadline that stopped it)."""
    try:
        watch.start()
        try:
            batch_type.handler(payload, context)
        finally:
            watch.stop()
    except ItemDeadlineExceeded as exc:
        watch.stop()  # a tick may have raised just before the finally stopped the watch
        log.warning("Item %r of batch %s was stopped after its deadline of %g s.",
                    context.key, context.batch_id, exc.seconds)
        return exc
    except (ItemFailed, RetryItem) as exc:
        return exc
    except Exception as exc:
        log.info("Item %r of batch %s failed: %r", context.key, context.batch_id, exc)
        return exc
    return None


def _error_message(error: BaseException) -> str:
    """The item's error message for ``error``, fit for the database."""
    if isinstance(error, ItemFailed | RetryItem | ItemDeadlineExceeded):
        return storable_text(error.message, MAX_ERROR_MESSAGE)
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return storable_text(message, MAX_ERROR_MESSAGE)
