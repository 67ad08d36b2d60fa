"""Batch statuses, page states and the sets the state machine is written with."""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    """The statuses of docs/design.md "Lifecycle"; ``suspended`` is a separate flag."""

    WAITING = "Waiting"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    POST_BATCH_FAILED = "PostBatchFailed"
    TOO_MANY_FAILED = "TooManyFailed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


#: Statuses from which a batch can still make progress.
ACTIVE_STATUSES = frozenset(
    {BatchStatus.WAITING, BatchStatus.PROCESSING, BatchStatus.CANCELLING}
)
#: Statuses a batch never leaves.
FINAL_STATUSES = frozenset(set(BatchStatus) - ACTIVE_STATUSES)


class StopReason(StrEnum):
    """Why a batch drains: a user's cancel, the failure threshold, or its source failing."""

    CANCEL = "cancel"
    ABORT = "abort"
    SOURCE_FAILED = "source_failed"


class PageStatus(StrEnum):
    """An execution job's state.

    created -> queued (a message was sent) -> running (claimed under a lease) -> done.
    Suspend and stop put queued pages back to created, so a late message is a no-op.
    """

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


IN_FLIGHT_PAGES = (PageStatus.QUEUED.value, PageStatus.RUNNING.value)

WORKER_LOST = "worker lost"
