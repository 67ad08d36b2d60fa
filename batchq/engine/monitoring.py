"""The monitor: repairs what crashes and lost messages broke, and finalises batches.

It runs periodically for every active batch (celery beat) and for one batch
when a page ends that may have been its last. Every step is idempotent, so two
monitors at once do no harm: transitions are conditional updates.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from batchq.batch_types.context import BatchSummary
from batchq.domain.page_runs import ItemFailure, PageOutcome
from batchq.domain.results import ResultFile, result_file_problem, split_post_batch_return
from batchq.domain.secret_params import run_params
from batchq.domain.statuses import FINAL_STATUSES, WORKER_LOST, BatchStatus, PageStatus, StopReason
from batchq.domain.storable import json_problem
from batchq.engine.deadline import hung_message, item_deadline_of
from batchq.engine.deliveries import send_deliveries
from batchq.engine.seeding import queue_more_pages
from batchq.errors import BatchqError, StorageUnavailable, Unstorable
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


def monitor_all(rt: Runtime) -> int:
    """Monitor every active batch that needs it (``PageRepository.needing_monitor``); one
    broken batch does not stop the others.

    Runs on one process at a time (``single_runner``): a second beat's round, or
    one sent while a slow round still runs, is skipped; returns -1 then.
    """
    with rt.storage.single_runner("monitor") as mine:
        if not mine:
            log.info("Another process is monitoring the active batches; skipped.")
            return -1
        resend_before = _resend_before(rt)
        now = utcnow()
        batch_ids = rt.storage.pages.needing_monitor(now, resend_before, lost_before(rt, now))
        for batch_id in batch_ids:
            try:
                monitor_batch(rt, batch_id, resend_before)
            except Exception:
                log.exception("Monitoring batch %s failed; the next round retries.", batch_id)
        return len(batch_ids)


def monitor_batch(rt: Runtime, batch_id: str, resend_before: datetime | None = None) -> None:
    """Re-run pages of dead workers, re-send lost messages, then finalise if done."""
    recover_expired_pages(rt, batch_id)
    resend_lost_messages(rt, batch_id, resend_before)
    queue_more_pages(rt, batch_id)
    finalize_if_done(rt, batch_id)


def _resend_before(rt: Runtime) -> datetime:
    """Messages of pages queued before this are re-sent.

    Normally ``requeue_after_seconds`` ago: a page may wait that long behind other
    batches' messages. But when the broker holds fewer messages than there are pages
    queued, and seeds due, more than ``lost_message_after_seconds`` ago, it lost
    messages (a restart without persistence, a flushed queue, a batch created while
    it was down): those messages are re-sent now. Counting the broker first and the
    database second, a message taken meanwhile only lowers the database's count. A
    duplicate is harmless: a page is claimed once, a seed step is conditional.
    """
    now = utcnow()
    lost_before = now - timedelta(seconds=rt.settings.lost_message_after_seconds)
    held = rt.broker_backlog()
    if held is not None:
        waiting = (rt.storage.pages.count_queued_before(lost_before)
                   + rt.storage.batches.count_awaiting_seed(lost_before))
        if waiting > held:
            log.warning("The broker holds %d messages but %d pages or seeds have waited more "
                        "than %g s: it lost messages; re-sending them.",
                        held, waiting, rt.settings.lost_message_after_seconds)
            return lost_before
    return now - timedelta(seconds=rt.settings.requeue_after_seconds)


def lost_before(rt: Runtime, now: datetime) -> datetime:
    """A worker process whose heartbeat is older than this is dead."""
    return now - timedelta(seconds=rt.settings.worker_lost_after_seconds)


def recover_expired_pages(rt: Runtime, batch_id: str) -> None:
    """A page of a dead worker (its heartbeat went stale, or its lease ran out) is
    re-queued, or given up after ``max_attempts``."""
    now = utcnow()
    for page in rt.storage.pages.expired(batch_id, now, lost_before(rt, now)):
        if page["attempts"] >= rt.settings.max_attempts:
            give_up_page(rt, batch_id, page)
            continue
        status = rt.storage.pages.release_expired(batch_id, page["page_no"], now,
                                                  lost_before(rt, now))
        if status is not None:
            log.info("Page %d of batch %s lost its worker (attempt %d); released as %s.",
                     page["page_no"], batch_id, page["attempts"], status)
        if status == PageStatus.QUEUED:
            rt.send("execute", batch_id, page["page_no"])


def give_up_page(rt: Runtime, batch_id: str, page: Any) -> None:
    """Fail every item of a page whose workers kept dying, so the batch goes on."""
    rows = rt.storage.items.of_page_row(page)  # a retry page's items too
    hung = set(page["hung_positions"] or ())
    hung_error = hung_message(_deadline_of_batch(rt, batch_id)) if hung else WORKER_LOST
    failures = [ItemFailure(page["stage"], row["pos"], row["seq"], row["key"],
                            hung_error if row["pos"] in hung else WORKER_LOST,
                            page["item_attempt"]) for row in rows]
    outcome = PageOutcome(batch_id, page["page_no"], 0, failures)
    now = utcnow()
    result = rt.storage.pages.finish_one(outcome, now, only_if_lease_expired=True,
                                         lost_before=lost_before(rt, now))
    if result.counted:
        log.warning("Gave up page %d of batch %s after %d attempts; %d items failed.",
                    page["page_no"], batch_id, page["attempts"], len(failures))


def _deadline_of_batch(rt: Runtime, batch_id: str) -> float:
    batch = rt.storage.batches.get(batch_id)
    code = batch["type"] if batch is not None else ""
    return item_deadline_of(rt, code)


def resend_lost_messages(rt: Runtime, batch_id: str, stale_before: datetime | None = None) -> None:
    """Re-send execute messages of pages queued before ``stale_before`` (by default
    ``requeue_after_seconds`` ago), and a seed stalled since then."""
    now = utcnow()
    if stale_before is None:
        stale_before = now - timedelta(seconds=rt.settings.requeue_after_seconds)
    for page_no in rt.storage.pages.requeue_stale(batch_id, stale_before, now):
        log.info("Re-sending page %d of batch %s: queued since before %s.",
                 page_no, batch_id, stale_before)
        rt.send("execute", batch_id, page_no)
    batch = rt.storage.batches.get(batch_id)
    if batch is None or batch["status"] in FINAL_STATUSES or batch["stop_reason"]:
        return
    last_seed = batch["seeded_at"] or batch["created_at"]
    reads_source = batch["source_exhausted"] is False and not batch["suspended"]
    unseeded = batch["jobs_created"] < batch["total_jobs"] or reads_source
    if unseeded and last_seed < stale_before:
        log.info("Re-sending the seed of batch %s: no seed step since %s.", batch_id, last_seed)
        rt.send("seed", batch_id)


def finalize_if_done(rt: Runtime, batch_id: str) -> BatchStatus | None:
    """Give the batch its final status once nothing is in flight; returns it if set now."""
    batch = rt.storage.batches.get(batch_id)
    if batch is None or batch["status"] in FINAL_STATUSES:
        return None
    if rt.storage.pages.count_in_flight(batch_id):
        return None
    now = utcnow()
    if batch["stop_reason"] is not None:
        status = _STOPPED_STATUS[StopReason(batch["stop_reason"])]
        return _complete(rt, batch_id, status, failure_reason=batch["failure_reason"])
    if batch["jobs_completed"] < batch["total_jobs"] or batch["source_exhausted"] is False:
        return None  # pages to run, or a source still to read
    if batch["finalizer"] is not None:
        return _fail_stale_finalizer(rt, batch_id, now)
    post_batch = _post_batch_step(rt, batch["type"])
    if post_batch is None:
        return _complete(rt, batch_id, _done_status(batch))
    return _run_post_batch(rt, batch, post_batch)


_STOPPED_STATUS = {
    StopReason.CANCEL: BatchStatus.CANCELLED,
    StopReason.ABORT: BatchStatus.TOO_MANY_FAILED,
    StopReason.SOURCE_FAILED: BatchStatus.FAILED,
}


def _complete(rt: Runtime, batch_id: str, status: BatchStatus, **fields: Any) -> BatchStatus | None:
    if rt.storage.batches.complete(batch_id, status, utcnow(), **fields):
        log.info("Batch %s finished: %s.", batch_id, status)
        send_deliveries(rt, batch_id)  # its webhooks, recorded with the final status
        return status
    return None


def _done_status(batch: Any) -> BatchStatus:
    if batch["failed_items"]:
        return BatchStatus.COMPLETED_WITH_ERRORS
    return BatchStatus.COMPLETED


def _post_batch_step(rt: Runtime, code: str) -> Any:
    try:
        return rt.registry.get(code).post_batch
    except BatchqError:
        return None


def _run_post_batch(rt: Runtime, batch: Any, post_batch: Any) -> BatchStatus | None:
    token = uuid.uuid4().hex
    if not rt.storage.batches.claim_finalizer(batch["id"], token, utcnow()):
        return None
    batch_id = batch["id"]
    summary = BatchSummary(batch_id, batch["type"], run_params(batch),
                           batch["total_items"], batch["processed_items"], batch["failed_items"],
                           read_errors=lambda: rt.storage.items.iter_errors(batch_id))
    try:
        result, file = split_post_batch_return(post_batch(summary))
    except Exception as exc:
        log.info("The post-batch step of batch %s raised %r.", batch_id, exc)
        reason = f"Post-batch step failed: {type(exc).__name__}: {exc}"
        return _complete(rt, batch_id, BatchStatus.POST_BATCH_FAILED, finalizer=token,
                         failure_reason=reason)
    # Checked before completing: the store's write would raise after claim_finalizer and
    # leave the batch Processing until post_batch_timeout_seconds, with the wrong reason.
    unstorable = _unstorable_result(result) or result_file_problem(file)
    if unstorable is None and file is not None:
        unstorable = _store_result_file(rt, batch_id, file)
    if unstorable is not None:
        log.info("Batch %s fails its post-batch step: %s.", batch_id, unstorable)
        return _complete(rt, batch_id, BatchStatus.POST_BATCH_FAILED, finalizer=token,
                         failure_reason=unstorable)
    return _complete(rt, batch_id, _done_status(batch), finalizer=token, result=result)


def _store_result_file(rt: Runtime, batch_id: str, file: ResultFile) -> str | None:
    """Store the file before the batch finishes, so a finished batch shows it; or say why not."""
    try:
        rt.storage.result_files.save(batch_id, file, utcnow())
    except (Unstorable, StorageUnavailable) as exc:
        log.warning("Could not store the result file of batch %s: %s", batch_id, exc.__cause__)
        return f"The post-batch step's result file could not be stored: {exc.message}"
    return None


def _unstorable_result(result: Any) -> str | None:
    """Why the JSON column cannot store ``result``, naming the type at fault; or None."""
    kind = type(result).__name__
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"The post-batch step's result ({kind}) is not JSON: {exc}"
    problem = json_problem(result)  # what json.dumps lets through: U+0000
    return None if problem is None else f"The post-batch step's result ({kind}) {problem}"


def _fail_stale_finalizer(rt: Runtime, batch_id: str, now: Any) -> BatchStatus | None:
    """A finaliser that died mid post-batch step: the step ran at most once, so it failed."""
    timeout = rt.settings.post_batch_timeout_seconds
    before = now - timedelta(seconds=timeout)
    reason = f"The post-batch step did not finish within {timeout:g} seconds"
    return _complete(rt, batch_id, BatchStatus.POST_BATCH_FAILED, finalizing_before=before,
                     failure_reason=reason)
