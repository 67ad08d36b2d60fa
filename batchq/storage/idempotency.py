"""The idempotency_keys table: a user's key, the hash of its request, and the answer kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.storage.tables import idempotency_keys

#: The ``status_code`` of a reserved key whose request is still running.
IN_PROGRESS = 0
#: The ``status_code`` of a key whose batch is committed but whose answer is not kept
#: (yet, or ever: the process may have failed after the commit); ``batch_id`` names it.
CREATED = 1


@dataclass(frozen=True)
class KeptResponse:
    """What a key's first request answered (``status_code`` 0 while it runs)."""

    request_hash: str
    status_code: int
    response: Any
    created_at: datetime
    batch_id: str | None = None


@dataclass(frozen=True)
class CreationClaim:
    """A reserved key whose request creates a batch: marked in the transaction creating it.

    So the key names its batch exactly when the batch exists, whatever fails
    after the commit; ``request_hash`` is called in that transaction, once the
    body has been read.
    """

    user: str
    key: str
    request_hash: Callable[[], str]


def mark_created(conn: sa.Connection, claim: CreationClaim, batch_id: str) -> None:
    """In the creating transaction: the reserved key of ``claim`` now names ``batch_id``."""
    conn.execute(
        sa.update(idempotency_keys)
        .where(idempotency_keys.c.user_name == claim.user, idempotency_keys.c.key == claim.key)
        .where(idempotency_keys.c.status_code == IN_PROGRESS)
        .values(request_hash=claim.request_hash(), status_code=CREATED, batch_id=batch_id))


class IdempotencyKeyRepository:
    """Keys per user: reserved while their request runs, then holding its answer."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def try_reserve(self, user: str, key: str, now: datetime) -> bool:
        """Reserve ``key`` for a request of ``user``; False when the key exists already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(idempotency_keys).values(
                    user_name=user, key=key, request_hash="", status_code=IN_PROGRESS,
                    response={}, created_at=now))
        except sa.exc.IntegrityError:
            return False
        return True

    def get(self, user: str, key: str) -> KeptResponse | None:
        """What ``key`` of ``user`` holds, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(idempotency_keys)
                .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
            ).mappings().first()
        if row is None:
            return None
        return KeptResponse(row["request_hash"], row["status_code"], row["response"],
                            row["created_at"], row["batch_id"])

    def keep(self, user: str, key: str, request_hash: str, status_code: int,
             response: Any, batch_id: str | None) -> None:
        """Store the answer of the request that reserved ``key``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
                .values(request_hash=request_hash, status_code=status_code, response=response,
                        batch_id=batch_id))

    def release(self, user: str, key: str) -> None:
        """Forget a reservation whose request is still marked in progress."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(idempotency_keys)
                .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
                .where(idempotency_keys.c.status_code == IN_PROGRESS))

    def delete(self, user: str, key: str, created_at: datetime) -> None:
        """Delete ``key`` if it is still the one created at ``created_at`` (an expired key)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(idempotency_keys)
                .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
                .where(idempotency_keys.c.created_at == created_at))

    def delete_expired(self, before: datetime) -> int:
        """Delete keys created before ``before``; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < before))
            return int(result.rowcount)
