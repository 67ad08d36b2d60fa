"""Admission of new batches: the per-user quota of active batches.

Storage counts the creator's active batches inside the creating transaction,
serialised per user, and asks ``check_quota`` whether one more may start.
"""

from __future__ import annotations

from batchq.errors import QuotaExceeded

#: What a refusal advises: batches run for minutes, so a sooner retry rarely finds room.
RETRY_AFTER_SECONDS = 60


def check_quota(user: str, active: int, limit: int) -> None:
    """Raise ``QuotaExceeded`` when ``user`` already has ``limit`` active batches (0: no limit)."""
    if 0 < limit <= active:
        raise QuotaExceeded(
            f"User {user!r} already has {limit} active batch(es), the most allowed "
            "(BATCHQ_MAX_ACTIVE_BATCHES_PER_USER); retry when one has finished or was cancelled",
            {"maxActiveBatches": limit, "retryAfterSeconds": RETRY_AFTER_SECONDS},
            retry_after_seconds=RETRY_AFTER_SECONDS)
