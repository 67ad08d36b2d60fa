"""How far along a batch is, read off its row alone: no query, no item scan
(docs/design.md, invariant 6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchq.domain.paging import stage_of_page
from batchq.domain.run_windows import closed_sentence, parse_windows
from batchq.domain.statuses import FINAL_STATUSES, BatchStatus
from batchq.errors import InvalidBatch


def progress_percent(processed: int, total: int) -> float:
    """Processed items as a percentage of all, to two places; an empty batch is 100."""
    return round(100.0 * processed / total, 2) if total else 100.0


def jobs_progress(batch: Mapping[str, Any]) -> str:
    """``"7 out of 20"``: pages done out of pages (the Camunda 7 batch API's jobs)."""
    return f"{batch['jobs_completed']} out of {batch['total_jobs']}"


def current_stage(batch: Mapping[str, Any]) -> int | None:
    """The stage whose pages run now; None unless the batch is staged and unfinished.

    No page of a stage starts before every page of the earlier ones is done, so
    the done pages are always the first ``jobs_completed`` in stage order plus
    none after: the next page in that order is of the current stage.
    """
    if len(batch["stage_sizes"]) < 2 or batch["status"] in FINAL_STATUSES:
        return None
    own_done = batch["jobs_completed"] - batch.get("retry_jobs_completed", 0)  # retry pages aside
    return stage_of_page(batch["stage_sizes"], batch["page_size"], own_done)


def progress_description(batch: Mapping[str, Any], now: datetime | None = None) -> str:
    """What the batch shows as ``progressDescription`` at ``now`` (naive UTC).

    A handler's description tells how the work goes while the batch runs; once
    the batch stops or pauses (suspended, or outside its run windows), the
    sentence batchq writes says so instead.
    """
    running = batch["status"] not in FINAL_STATUSES and not batch["suspended"]
    if running and now is not None and batch.get("run_windows") and not batch["stop_reason"]:
        closed = _outside_windows(batch["run_windows"], now)
        if closed is not None:
            return f"{closed}; {_counts(batch)}"
    if batch["progress_description"] and running:
        return str(batch["progress_description"])
    return progress_sentence(batch)


def _outside_windows(stored: Any, now: datetime) -> str | None:
    try:
        return closed_sentence(parse_windows(stored), now)
    except InvalidBatch:
        return None  # a window that no longer parses does not hold the batch (StartGate)


def _counts(batch: Mapping[str, Any]) -> str:
    done = f"{batch['processed_items']} of {batch['total_items']} items processed"
    return f"{done}, {batch['failed_items']} failed" if batch["failed_items"] else done


def progress_sentence(batch: Mapping[str, Any]) -> str:
    """batchq's own one-line account of the batch: its status and its counters."""
    status = batch["status"]
    done = _counts(batch)
    if batch["suspended"] and status not in FINAL_STATUSES:
        return f"Suspended: {done}"
    if status == BatchStatus.WAITING:
        return "Waiting for a worker"
    return f"{status}: {done}"


@dataclass(frozen=True)
class WorkQueueStatus:
    """Pages of a batch waiting in the broker or running, and the workers running them."""

    queued: int
    running: int
    workers: list[str] = field(default_factory=list)
