"""Giving a batch its final status, inside a caller's transaction, exactly once.

Two transactions finalise: the monitor's (``BatchRepository.complete``) and,
for a batch without a post-batch step, the worker's transaction that commits
its last page (``PageRepository.finish``), so a small batch ends without a
monitor hop. Both go through ``complete_in``: one conditional ``UPDATE ...
WHERE status IN (active)``, and the completion webhooks recorded in the same
transaction, so whichever commits first finalises and the other changes
nothing (docs/design.md, invariant 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from batchq.domain.lifecycle import STOPPED_STATUS, done_status
from batchq.domain.statuses import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    IN_FLIGHT_PAGES,
    BatchStatus,
    StopReason,
)
from batchq.storage.common import count_pages, status_values
from batchq.storage.deliveries import record_completion
from batchq.storage.tables import batches


def complete_in(conn: sa.Connection, batch: Mapping[str, Any], status: BatchStatus,
                now: datetime, condition: sa.ColumnElement[bool], *, result: Any = None,
                failure_reason: str | None = None) -> bool:
    """Move the locked, active ``batch`` to ``status`` once; True if this call did.

    ``condition`` narrows who may (the finaliser's token, or none holding it).
    The webhooks are due exactly when the final status commits: same transaction.
    """
    statement = (
        sa.update(batches)
        .where(batches.c.id == batch["id"],
               batches.c.status.in_(status_values(ACTIVE_STATUSES)), condition)
        .values(status=status, finished_at=now, failure_reason=failure_reason,
                expires_at=now + timedelta(days=batch["retention_days"]))
    )
    if result is not None:
        statement = statement.values(result=result)
    if conn.execute(statement).rowcount != 1:
        return False
    record_completion(conn, batch, status, now, failure_reason)
    return True


def finalize_with_last_page(conn: sa.Connection, batch: Mapping[str, Any], now: datetime,
                            has_post_batch: bool) -> BatchStatus | None:
    """In a worker's transaction that locked ``batch`` (as it is after the counters): give
    it its final status if nothing of it is left to run; returns that status if set.

    A batch whose type has a post-batch step is left to the monitor, which runs the
    step once; a drained one (cancel, abort) ends here too, as the monitor would end it.
    Pages other workers hold are still ``queued`` or ``running`` here (their commit
    waits on this batch row), so only the last committer finds none in flight.
    """
    if batch["status"] in FINAL_STATUSES or batch["finalizer"] is not None:
        return None
    if batch["stop_reason"] is not None:
        status = STOPPED_STATUS[StopReason(batch["stop_reason"])]
        reason = batch["failure_reason"]
    elif (batch["jobs_completed"] < batch["total_jobs"] or batch["source_exhausted"] is False
          or has_post_batch):
        return None
    else:
        status, reason = done_status(batch), None
    if count_pages(conn, batch["id"], IN_FLIGHT_PAGES):
        return None
    done = complete_in(conn, batch, status, now, batches.c.finalizer.is_(None),
                       failure_reason=reason)
    return status if done else None
