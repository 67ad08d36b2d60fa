"""Idempotency keys: a re-post with the same ``Idempotency-Key`` gets the first answer.

A key belongs to one user. Its row is reserved (``status_code`` 0, "in
progress") in a transaction of its own before the request runs, so of two
concurrent requests with one key exactly one runs; the other learns that the
key is in progress (409). When the request ends, its status code and body are
stored under the key, or the reservation is released when the answer is one a
retry may change (see ``is_kept``). Keys expire after a retention; the cleanup
task deletes them, and an expired key is treated as new even before then.

A request that dies with its process (kill -9 mid-request) leaves its key in
progress until the key expires: answering 409 until then is safe, whereas
running the request again could create a second batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from batchq.errors import BatchqError, Conflict, InvalidBatch
from batchq.storage.tables import idempotency_keys

MAX_KEY_LENGTH = 255
IN_PROGRESS = 0  # the status_code of a reserved key whose request is still running
#: Answers a retry of the same request may change; they are not kept under the key.
_NOT_KEPT = frozenset({408, 409, 413, 425, 429})


class InvalidIdempotencyKey(InvalidBatch):
    """The ``Idempotency-Key`` header is empty, too long or holds control characters."""


class IdempotencyKeyInProgress(Conflict):
    """Another request with the same key is still running."""


class IdempotencyKeyReused(BatchqError):
    """The key was first used with a different request."""

    status_code = 422


@dataclass(frozen=True)
class KeptResponse:
    """What a key's first request answered (``status_code`` 0 while it runs)."""

    request_hash: str
    status_code: int
    response: Any
    created_at: datetime


def check_key(key: str) -> None:
    """Raise ``InvalidIdempotencyKey`` unless ``key`` is 1 to 255 printable characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters "
            "(a UUID is a good key)", {"header": "Idempotency-Key"})


def is_kept(status_code: int) -> bool:
    """Is an answer with this status kept under its key? Successes and final refusals are."""
    return 200 <= status_code < 500 and status_code not in _NOT_KEPT


def reserve(engine: sa.Engine, user: str, key: str, now: datetime,
            retention: timedelta) -> KeptResponse | None:
    """Reserve ``key`` for a request of ``user``; returns None, or what the key already holds.

    A key older than ``retention`` is deleted and reserved afresh.
    """
    for _ in range(2):
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(idempotency_keys).values(
                    user_name=user, key=key, request_hash="", status_code=IN_PROGRESS,
                    response={}, created_at=now))
            return None
        except sa.exc.IntegrityError:
            kept = _kept(engine, user, key)
            if kept is None:
                continue  # released meanwhile: try again
            if kept.created_at >= now - retention:
                return kept
            _delete(engine, user, key, kept.created_at)
    raise IdempotencyKeyInProgress(_in_progress_message(key), {"header": "Idempotency-Key"})


def keep(engine: sa.Engine, user: str, key: str, request_hash: str, status_code: int,
         response: Any, batch_id: str | None) -> None:
    """Store the answer of the request that reserved ``key``."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
            .values(request_hash=request_hash, status_code=status_code, response=response,
                    batch_id=batch_id))


def release(engine: sa.Engine, user: str, key: str) -> None:
    """Forget a reservation whose answer is not kept, so a retry runs the request again."""
    with engine.begin() as conn:
        conn.execute(
            sa.delete(idempotency_keys)
            .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
            .where(idempotency_keys.c.status_code == IN_PROGRESS))


def replay(kept: KeptResponse, key: str, request_hash: str) -> KeptResponse:
    """The kept answer for a re-post; raises when it is in progress or was another request."""
    if kept.status_code == IN_PROGRESS:
        raise IdempotencyKeyInProgress(_in_progress_message(key),
                                       {"header": "Idempotency-Key"})
    if kept.request_hash != request_hash:
        raise IdempotencyKeyReused(
            f"The Idempotency-Key {key!r} was first used with another request (a different "
            "method, path, query or body); send a new key for a new request",
            {"header": "Idempotency-Key"})
    return kept


def delete_expired_keys(engine: sa.Engine, before: datetime) -> int:
    """Delete keys created before ``before``; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < before))
        return int(result.rowcount)


def _kept(engine: sa.Engine, user: str, key: str) -> KeptResponse | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(idempotency_keys)
            .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
        ).mappings().first()
    if row is None:
        return None
    return KeptResponse(row["request_hash"], row["status_code"], row["response"],
                        row["created_at"])


def _delete(engine: sa.Engine, user: str, key: str, created_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.delete(idempotency_keys)
            .where(idempotency_keys.c.user_name == user, idempotency_keys.c.key == key)
            .where(idempotency_keys.c.created_at == created_at))


def _in_progress_message(key: str) -> str:
    return (f"A request with the Idempotency-Key {key!r} is in progress; retry when it has "
            "finished to get its answer")
