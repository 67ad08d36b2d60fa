"""What a user does to a batch after creating it: read, suspend, resume, cancel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchq.domain.paging import stage_of_page
from batchq.domain.statuses import FINAL_STATUSES, BatchStatus, StopReason
from batchq.domain.storable import check_text
from batchq.engine.execution import queue_more_pages
from batchq.errors import BatchNotFound, Conflict, InvalidBatch
from batchq.runtime import Runtime
from batchq.storage.store import Row, WorkQueueStatus, utcnow

MAX_ITEM_ERRORS_SHOWN = 100
CAN_CANCEL, CANNOT_CANCEL = "CanCancel", "CannotCancel"


def get_batch(rt: Runtime, batch_id: str) -> Row:
    """The batch row; ``BatchNotFound`` if there is none."""
    batch = rt.store.get_batch(batch_id)
    if batch is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    return batch


def describe_batch(rt: Runtime, batch_id: str, batch_row: Row | None = None) -> dict[str, Any]:
    """Everything ``GET /batches/{id}`` shows, read without scanning the batch's items.

    ``batch_row`` is the batch as just read, if the caller has it (not read again).
    """
    batch = dict(batch_row if batch_row is not None else get_batch(rt, batch_id))
    # Each read is a round trip: skip those whose answer the batch row already gives.
    # A finished batch has no page in flight (it finishes only once none is).
    finished = batch["status"] in FINAL_STATUSES
    queue = WorkQueueStatus(0, 0) if finished else rt.store.work_queue_status(batch_id)
    errors = rt.store.item_errors(batch_id, MAX_ITEM_ERRORS_SHOWN) if batch["failed_items"] else []
    total_jobs, done_jobs = batch["total_jobs"], batch["jobs_completed"]
    batch.update(
        unprocessed_items=batch["total_items"] - batch["processed_items"],
        progress=f"{done_jobs} out of {total_jobs}",
        progress_percent=_percent(batch["processed_items"], batch["total_items"]),
        work_queue_status={"queued": queue.queued, "running": queue.running,
                           "workers": queue.workers},
        item_errors={row["key"]: row["message"] for row in errors},
        item_errors_truncated=batch["failed_items"] > len(errors),
        current_stage=_current_stage(batch),
        cancellation_behaviour=cancellation_behaviour(rt, batch["type"]),
        result_file=_result_file_info(rt, batch),
    )
    if not batch["progress_description"] or not _running(batch):
        # A handler's description tells how the work goes; once the batch stops or
        # pauses, the sentence batchq writes says so instead.
        batch["progress_description"] = _progress_sentence(batch)
    return batch


def _current_stage(batch: Row) -> int | None:
    """The stage whose pages run now; None unless the batch is staged and unfinished.

    No page of a stage starts before every page of the earlier ones is done, so
    the done pages are always the first ``jobs_completed`` in stage order plus
    none after: the next page in that order is of the current stage. Arithmetic
    on the batch row, no query.
    """
    if len(batch["stage_sizes"]) < 2 or batch["status"] in FINAL_STATUSES:
        return None
    return stage_of_page(batch["stage_sizes"], batch["page_size"], batch["jobs_completed"])


def _running(batch: Row) -> bool:
    return batch["status"] not in FINAL_STATUSES and not batch["suspended"]


def _result_file_info(rt: Runtime, batch: Row) -> dict[str, Any] | None:
    """Name, media type, size and address of the result file of a finished batch."""
    if batch["status"] not in FINAL_STATUSES:
        return None
    info = rt.store.result_file_info(batch["id"])
    if info is None:
        return None
    return {"filename": info.filename, "media_type": info.media_type, "size": info.size,
            "url": f"/batches/{batch['id']}/result-file"}


def cancellation_behaviour(rt: Runtime, code: str) -> str:
    """Seed 004's CancellationBehaviour of a type: ``CanCancel`` or ``CannotCancel``.

    A type this process has not loaded is cancellable: a cancel only drains.
    """
    if code in rt.registry and not rt.registry.get(code).can_cancel:
        return CANNOT_CANCEL
    return CAN_CANCEL


def cancel_batch(rt: Runtime, batch_id: str) -> Row:
    """Drain-style cancel: no new page starts, running pages finish and are counted."""
    batch = get_batch(rt, batch_id)
    _refuse_cancel_of(batch)  # a finished batch says so, whatever its type
    if cancellation_behaviour(rt, batch["type"]) == CANNOT_CANCEL:
        raise Conflict(f"Batches of type {batch['type']!r} cannot be cancelled "
                       f"({CANNOT_CANCEL}); batch {batch_id} runs to completion",
                       {"batchId": batch_id, "cancellationBehaviour": CANNOT_CANCEL})
    before = rt.store.request_cancel(batch_id, utcnow())
    if before is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    _refuse_cancel_of(before)
    rt.send("monitor", batch_id)
    return get_batch(rt, batch_id)


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
    """Apply a PATCH's ``suspended`` and ``description`` together; a refused one changes nothing.

    A finished batch can neither be suspended nor resumed, so that is checked
    before either field changes. The flag is then set first: ``store.set_suspended``
    refuses a finished batch under the batch's row lock, so should the batch
    finish during the request, the ``Conflict`` still comes before the description
    is touched.
    """
    if not changes.keys() & {"suspended", "description"}:
        raise InvalidBatch("Nothing to change: send suspended and/or description")
    if "description" in changes:
        check_text("description", changes["description"])
    batch = get_batch(rt, batch_id)
    if "suspended" in changes:
        _refuse_suspend_of(batch, changes["suspended"])
        batch = set_suspended(rt, batch_id, changes["suspended"])
    if "description" in changes:
        batch = set_description(rt, batch_id, changes["description"])
    return batch


def set_suspended(rt: Runtime, batch_id: str, suspended: bool) -> Row:
    """Suspend (no new page starts) or resume (deferred pages go back in the queue)."""
    before = rt.store.set_suspended(batch_id, suspended)
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
    if not rt.store.set_description(batch_id, description):
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    return get_batch(rt, batch_id)


def _percent(done: int, total: int) -> float:
    return round(100.0 * done / total, 2) if total else 100.0


def _progress_sentence(batch: dict[str, Any]) -> str:
    status = batch["status"]
    done = f"{batch['processed_items']} of {batch['total_items']} items processed"
    if batch["failed_items"]:
        done += f", {batch['failed_items']} failed"
    if batch["suspended"] and status not in FINAL_STATUSES:
        return f"Suspended: {done}"
    if status == BatchStatus.WAITING:
        return "Waiting for a worker"
    return f"{status}: {done}"
