"""The rules of a batch's lifecycle, read off its row: may it run, may it stop, how it ends.

See docs/design.md "Lifecycle". Each function reads a batch as a mapping of its
columns; storage applies them inside the transactions that change the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchq.domain.statuses import BatchStatus, StopReason

#: The final status of a batch that drained, by why it drained.
STOPPED_STATUS = {
    StopReason.CANCEL: BatchStatus.CANCELLED,
    StopReason.ABORT: BatchStatus.TOO_MANY_FAILED,
    StopReason.SOURCE_FAILED: BatchStatus.FAILED,
}


def threshold_reached(threshold: float | None, processed: int, failed: int, total: int) -> bool:
    """The failure-threshold rule: the ratio is reached once enough items ran."""
    if threshold is None or processed <= 0 or processed < min(100, total):
        return False
    return failed / processed >= threshold


def threshold_reason(batch: Mapping[str, Any]) -> str:
    """The ``failureReason`` of a batch the failure threshold stopped (TooManyFailed)."""
    return (f"{batch['failed_items']} of the {batch['processed_items']} items processed "
            f"failed, reaching the failure threshold of {batch['failure_threshold']:.0%}; "
            "the batch was stopped")


def batch_threshold_reached(batch: Mapping[str, Any]) -> bool:
    """``threshold_reached`` with the batch's own threshold and counters."""
    return threshold_reached(batch["failure_threshold"], batch["processed_items"],
                             batch["failed_items"], batch["total_items"])


def runnable(batch: Mapping[str, Any]) -> bool:
    """May a new page of this batch start?"""
    return (
        batch["status"] in (BatchStatus.WAITING, BatchStatus.PROCESSING)
        and not batch["suspended"]
        and batch["stop_reason"] is None
        and batch["finalizer"] is None
    )


def cancellable(batch: Mapping[str, Any]) -> bool:
    """May this batch still be stopped (by a cancel, the failure threshold or its source)?"""
    return (
        batch["status"] in (BatchStatus.WAITING, BatchStatus.PROCESSING)
        and batch["stop_reason"] is None
        and batch["finalizer"] is None
    )


def done_status(batch: Mapping[str, Any]) -> BatchStatus:
    """The final status of a batch whose every item ran."""
    if batch["failed_items"]:
        return BatchStatus.COMPLETED_WITH_ERRORS
    return BatchStatus.COMPLETED
