"""How far along a batch is, read off its row alone: no query, no item scan
(docs/design.md, invariant 6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchq.domain.paging import stage_of_page
from batchq.domain.statuses import FINAL_STATUSES, BatchStatus


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
    return stage_of_page(batch["stage_sizes"], batch["page_size"], batch["jobs_completed"])


def progress_description(batch: Mapping[str, Any]) -> str:
    """What the batch shows as ``progressDescription``.

    A handler's description tells how the work goes while the batch runs; once
    the batch stops or pauses, the sentence batchq writes says so instead.
    """
    running = batch["status"] not in FINAL_STATUSES and not batch["suspended"]
    if batch["progress_description"] and running:
        return str(batch["progress_description"])
    return progress_sentence(batch)


def progress_sentence(batch: Mapping[str, Any]) -> str:
    """batchq's own one-line account of the batch: its status and its counters."""
    status = batch["status"]
    done = f"{batch['processed_items']} of {batch['total_items']} items processed"
    if batch["failed_items"]:
        done += f", {batch['failed_items']} failed"
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
