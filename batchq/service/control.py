"""What a user does to a batch after creating it: read, suspend, resume, cancel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchq.domain.progress import WorkQueueStatus
from batchq.domain.statuses import FINAL_STATUSES, BatchStatus, StopReason
from batchq.domain.storable import check_text
from batchq.engine.seeding import queue_more_pages
from batchq.errors import BatchNotFound, Conflict, InvalidBatch
from batchq.runtime import Runtime
from batchq.service.run_options import RUN_LIMIT_FIELDS, changed_run_limits
from batchq.storage.common import Row, utcnow
from batchq.storage.result_files import ResultFileInfo

MAX_ITEM_ERRORS_SHOWN = 100
CAN_CANCEL, CANNOT_CANCEL = "CanCancel", "CannotCancel"


def get_batch(rt: Runtime, batch_id: str) -> Row:
    """The batch row; ``BatchNotFound`` if there is none."""
    batch = rt.storage.batches.get(batch_id)
    if batch is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    return batch


@dataclass(frozen=True)
class BatchDetails:
    """What reading one batch shows beyond its row, read without scanning its items."""

    batch: Row
    work_queue: WorkQueueStatus
    #: The first ``MAX_ITEM_ERRORS_SHOWN`` item errors in page order: seq, key, message.
    first_errors: list[Row]
    result_file: ResultFileInfo | None
    cancellation_behaviour: str
    #: The ids of the batch's retry batches, oldest first.
    retries: list[str] = field(default_factory=list)
    #: When it was read, by the clock of run windows (``Runtime.clock``).
    read_at: datetime | None = None


def batch_details(rt: Runtime, batch_id: str, batch_row: Row | None = None) -> BatchDetails:
    """The batch and what it shows beyond its row; ``batch_row`` is the batch as just read,
    if the caller has it (it is not read again)."""
    batch = batch_row if batch_row is not None else get_batch(rt, batch_id)
    # Each read is a round trip: skip those whose answer the batch row already gives.
    # A finished batch has no page in flight (it finishes only once none is).
    finished = batch["status"] in FINAL_STATUSES
    queue = WorkQueueStatus(0, 0) if finished else rt.storage.pages.work_queue_status(batch_id)
    errors = (rt.storage.items.first_errors(batch_id, MAX_ITEM_ERRORS_SHOWN)
              if batch["failed_items"] else [])
    result_file = rt.storage.result_files.info(batch_id) if finished else None
    # Only a finished batch can be retried, so only one may have retries.
    retries = rt.storage.batches.retries_of(batch_id) if finished else []
    return BatchDetails(batch, queue, errors, result_file,
                        cancellation_behaviour(rt, batch["type"]), retries, rt.clock())


def cancellation_behaviour(rt: Runtime, code: str) -> str:
    """The CRM BatchTask API's CancellationBehaviour of a type: ``CanCancel`` or ``CannotCancel``.

    A type this process has not loaded is cancellable: a cancel only drains.
    """
    if code in rt.registry and not rt.registry.get(code).can_cancel:
        return CANNOT_CANCEL
    return CAN_CANCEL


def cancel_batch(rt: Runtime, batch_id: str) -> Row:
    """Drain-style cancel: no new page starts, running pages finish and are counted.

    Returns the batch as the cancel left it, ``Cancelling``: its last running page
    may finish and finalise it ``Cancelled`` before a read after the cancel, and the
    answer to a cancel is that it was accepted (202).
    """
    batch = get_batch(rt, batch_id)
    _refuse_cancel_of(batch)  # a finished batch says so, whatever its type
    if cancellation_behaviour(rt, batch["type"]) == CANNOT_CANCEL:
        raise Conflict(f"Batches of type {batch['type']!r} cannot be cancelled "
                       f"({CANNOT_CANCEL}); batch {batch_id} runs to completion",
                       {"batchId": batch_id, "cancellationBehaviour": CANNOT_CANCEL})
    before = rt.storage.batches.request_cancel(batch_id, utcnow())
    if before is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    _refuse_cancel_of(before)
    rt.send("monitor", batch_id)
    return {**before, "status": BatchStatus.CANCELLING.value,
            "stop_reason": StopReason.CANCEL.value}


def _refuse_cancel_of(batch: Row) -> None:
    batch_id, status = batch["id"], batch["status"]
    if status in FINAL_STATUSES:
        raise Conflict(f"Batch {batch_id} already finished with status {status}",
                       {"batchId": batch_id, "status": status})
    if batch["stop_reason"] == StopReason.ABORT:
        raise Conflict(f"Batch {batch_id} is already stopping because too many items failed",
                       {"batchId": batch_id})
    if batch["stop_reason"] == StopReason.SOURCE_FAILED:
        raise Conflict(f"Batch {batch_id} is already stopping because its source failed",
                       {"batchId": batch_id})
    if batch["finalizer"] is not None:
        raise Conflict(f"Batch {batch_id} is running its post-batch step and can no longer "
                       "be cancelled", {"batchId": batch_id})


def change_batch(rt: Runtime, batch_id: str, changes: Mapping[str, Any]) -> Row:
    """Apply a PATCH: ``suspended``, ``description``, and what limits the running batch
    (``max_items_per_second``, ``max_concurrent_jobs``, ``run_windows``); a refused field
    changes nothing.

    Everything is checked before anything changes. A finished batch can
    neither be suspended, resumed nor rethrottled, so that is checked first;
    the flag and the limits are then set under the batch's row lock, which
    refuses a batch that finished meanwhile before the description is touched.
    A new limit holds for the next page claimed after it commits; pages it
    lets start are queued at once.
    """
    if not changes.keys() & {"suspended", "description", *RUN_LIMIT_FIELDS}:
        raise InvalidBatch("Nothing to change: send suspended, description, "
                           "maxItemsPerSecond, maxConcurrentJobs and/or runWindows")
    if "description" in changes:
        check_text("description", changes["description"])
    batch = get_batch(rt, batch_id)
    limits = changed_run_limits(rt, batch, changes)
    if "suspended" in changes:
        _refuse_suspend_of(batch, changes["suspended"])
    if limits:
        _refuse_rethrottle_of(batch)
    if "suspended" in changes:
        batch = set_suspended(rt, batch_id, changes["suspended"])
    if limits:
        batch = set_run_limits(rt, batch_id, limits)
    if "description" in changes:
        batch = set_description(rt, batch_id, changes["description"])
    return batch


def set_run_limits(rt: Runtime, batch_id: str, limits: Mapping[str, Any]) -> Row:
    """Store checked run limits of an active batch, and queue the pages they let start."""
    before = rt.storage.batches.set_run_limits(batch_id, limits)
    if before is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    _refuse_rethrottle_of(before)
    queue_more_pages(rt, batch_id)
    return get_batch(rt, batch_id)


def _refuse_rethrottle_of(batch: Row) -> None:
    if batch["status"] in FINAL_STATUSES:
        raise Conflict(f"Batch {batch['id']} already finished with status {batch['status']}; "
                       "its limits can no longer change", {"batchId": batch["id"]})


def set_suspended(rt: Runtime, batch_id: str, suspended: bool) -> Row:
    """Suspend (no new page starts) or resume (deferred pages go back in the queue)."""
    before = rt.storage.batches.set_suspended(batch_id, suspended)
    if before is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    _refuse_suspend_of(before, suspended)
    if not suspended:
        queue_more_pages(rt, batch_id)
        rt.send("monitor", batch_id)
        if before["source_exhausted"] is False:
            rt.send("seed", batch_id)  # reading the source paused with the batch
    return get_batch(rt, batch_id)


def _refuse_suspend_of(batch: Row, suspended: bool) -> None:
    if batch["status"] in FINAL_STATUSES:
        action = "suspended" if suspended else "resumed"
        raise Conflict(f"Batch {batch['id']} already finished with status {batch['status']} "
                       f"and cannot be {action}", {"batchId": batch["id"]})


def set_description(rt: Runtime, batch_id: str, description: str | None) -> Row:
    """Change the batch's description (finished batches included)."""
    check_text("description", description)
    if not rt.storage.batches.set_description(batch_id, description):
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    return get_batch(rt, batch_id)
