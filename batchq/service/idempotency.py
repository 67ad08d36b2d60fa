"""Idempotency keys: a retried request with the same key gets the first answer.

A key belongs to one user. Its row is reserved ("in progress") in a
transaction of its own before the request runs, so of two concurrent requests
with one key exactly one runs; the other learns that the key is in progress.
When the request ends, its answer (a status and a body, which this module
stores without reading) is kept under the key, or the reservation is released
when the answer is one a retry may change. Keys expire after
``BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS``; the cleanup task deletes them, and
an expired key is treated as new even before then.

A request that dies with its process (kill -9 mid-request) leaves its key in
progress until the key expires: refusing retries until then is safe, whereas
running the request again could create a second batch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batchq.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidIdempotencyKey
from batchq.runtime import Runtime
from batchq.storage.common import utcnow
from batchq.storage.idempotency import IN_PROGRESS, KeptResponse

MAX_KEY_LENGTH = 255
_DETAILS = {"header": "Idempotency-Key"}

__all__ = ["MAX_KEY_LENGTH", "KeptResponse", "check_key", "keep", "release", "replay", "reserve"]


def check_key(key: str) -> None:
    """Raise ``InvalidIdempotencyKey`` unless ``key`` is 1 to 255 printable characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters "
            "(a UUID is a good key)", dict(_DETAILS))


def reserve(rt: Runtime, user: str, key: str) -> KeptResponse | None:
    """Reserve ``key`` for a request of ``user``; returns None, or what the key already holds.

    A key older than the retention is deleted and reserved afresh.
    """
    keys = rt.storage.idempotency_keys
    now = utcnow()
    retention = timedelta(hours=rt.settings.idempotency_key_retention_hours)
    for _ in range(2):
        if keys.try_reserve(user, key, now):
            return None
        kept = keys.get(user, key)
        if kept is None:
            continue  # released meanwhile: try again
        if kept.created_at >= now - retention:
            return kept
        keys.delete(user, key, kept.created_at)
    raise IdempotencyKeyInProgress(_in_progress_message(key), dict(_DETAILS))


def keep(rt: Runtime, user: str, key: str, request_hash: str, status_code: int,
         response: Any, batch_id: str | None) -> None:
    """Keep the answer of the request that reserved ``key``."""
    rt.storage.idempotency_keys.keep(user, key, request_hash, status_code, response, batch_id)


def release(rt: Runtime, user: str, key: str) -> None:
    """Forget a reservation whose answer is not kept, so a retry runs the request again."""
    rt.storage.idempotency_keys.release(user, key)


def replay(kept: KeptResponse, key: str, request_hash: str) -> KeptResponse:
    """The kept answer for a retry; raises when it is in progress or was another request."""
    if kept.status_code == IN_PROGRESS:
        raise IdempotencyKeyInProgress(_in_progress_message(key), dict(_DETAILS))
    if kept.request_hash != request_hash:
        raise IdempotencyKeyReused(
            f"The Idempotency-Key {key!r} was first used with another request (a different "
            "method, path, query or body); send a new key for a new request", dict(_DETAILS))
    return kept


def _in_progress_message(key: str) -> str:
    return (f"A request with the Idempotency-Key {key!r} is in progress; retry when it has "
            "finished to get its answer")
