"""Admission of new batches: the per-user quota of active batches.

The check runs inside the transaction that creates the batch, serialised per
user, so concurrent creates cannot all see room for one more: on PostgreSQL a
transaction-scoped advisory lock on the user's name is taken before counting;
SQLite's write transactions (``BEGIN IMMEDIATE``, see ``batchq.storage.engine``) are
serialised anyway. Whoever counts next sees the batches committed before it.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from batchq.domain.statuses import ACTIVE_STATUSES
from batchq.errors import BatchqError
from batchq.storage.common import status_values
from batchq.storage.engine import is_postgres
from batchq.storage.tables import batches

#: What 429 answers advise: batches run for minutes, so a sooner retry rarely finds room.
RETRY_AFTER_SECONDS = 60


class TooManyActiveBatches(BatchqError):
    """The creator already has the configured maximum of active batches."""

    status_code = 429

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(
            f"User {user!r} already has {limit} active batch(es), the most allowed "
            "(BATCHQ_MAX_ACTIVE_BATCHES_PER_USER); retry when one has finished or was cancelled",
            {"maxActiveBatches": limit, "retryAfterSeconds": RETRY_AFTER_SECONDS})
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def check_active_quota(conn: sa.Connection, user: str | None, limit: int) -> None:
    """Raise ``TooManyActiveBatches`` when ``user`` already has ``limit`` active batches.

    Call it first in the creating transaction: the lock it takes on PostgreSQL
    is held until that transaction ends, so the batch it inserts is counted by
    the next creator of the same user. ``limit`` 0 means no quota; batches
    without a creator (batchq's own) are never limited.
    """
    if limit <= 0 or user is None:
        return
    if is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(user))))
    active = conn.execute(
        sa.select(sa.func.count()).select_from(batches)
        .where(batches.c.create_user_id == user)
        .where(batches.c.status.in_(status_values(ACTIVE_STATUSES)))
    ).scalar_one()
    if active >= limit:
        raise TooManyActiveBatches(user, limit)


def _lock_key(user: str) -> int:
    """A stable signed 64-bit advisory-lock key for the user (Python's hash() is salted)."""
    digest = hashlib.sha256(b"batchq:active-batches:" + user.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
