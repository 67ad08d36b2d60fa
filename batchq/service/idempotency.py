"""Idempotency keys: a retried request with the same key gets the first answer.

A key belongs to one user, by its stable id (a user added again under an old name
does not inherit its keys). Its row is reserved ("in progress") in a
transaction of its own before the request runs, so of two concurrent requests
with one key exactly one runs; the other learns that the key is in progress.
When the request ends, its answer (a status and a body, which this module
stores without reading) is kept under the key, or the reservation is released
when the answer is one a retry may change. Keys expire after
``BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS``; the cleanup task deletes them, and
an expired key is treated as new even before then.

A request that creates a batch (``creating_under``) marks its key with the
batch in the very transaction that creates it: once the batch exists, the key
names it, so a failure after the commit (keeping the answer, sending the
seed, the process dying) can never lead a retry to create a second batch; the
retry answers the batch instead (``replay`` then says which). Keys that create
no batch keep the answer after the request.

A request that creates one batch per tenant (``POST /batches/multi-tenant``)
marks its key in each batch's creating transaction with that tenant's batch.
When it fails after one of them was committed, the key becomes ``RESUMABLE``
rather than released: a retry of the same request then resumes it
(``resume``), answering the batches already made and creating only the missing
ones, so no tenant ever gets a second batch under one key.

A request that dies with its process (kill -9 mid-request) before its batch is
committed leaves its key in progress until the key expires: refusing retries
until then is safe, whereas running the request again could create a second batch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from batchq.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidIdempotencyKey
from batchq.runtime import Runtime
from batchq.storage.common import utcnow
from batchq.storage.idempotency import (
    CREATED,
    IN_PROGRESS,
    RESUMABLE,
    CreationClaim,
    KeptResponse,
)

MAX_KEY_LENGTH = 255
#: The largest answer kept under a key, as JSON; past it only its start is (``keep``).
MAX_KEPT_ANSWER_BYTES = 64 * 1024
_KEPT_MESSAGE = 2000
_DETAILS = {"header": "Idempotency-Key"}
#: The claim of the request running in this context, until a batch creation takes it.
_pending_claim: ContextVar[CreationClaim | None] = ContextVar("batchq_idempotency_claim",
                                                               default=None)

__all__ = ["CREATED", "MAX_KEY_LENGTH", "RESUMABLE", "CreationClaim", "KeptResponse",
           "check_key", "creating_under", "keep", "release", "replay", "reserve", "resume",
           "take_claim"]


@contextlib.contextmanager
def creating_under(claim: CreationClaim) -> Iterator[None]:
    """Run a request that creates one batch: the batch it creates marks ``claim``'s key."""
    token = _pending_claim.set(claim)
    try:
        yield
    finally:
        _pending_claim.reset(token)


def take_claim() -> CreationClaim | None:
    """The claim for the batch about to be created, if its request has one; taken once."""
    claim = _pending_claim.get()
    _pending_claim.set(None)
    return claim


def check_key(key: str) -> None:
    """Raise ``InvalidIdempotencyKey`` unless ``key`` is 1 to 255 printable characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters "
            "(a UUID is a good key)", dict(_DETAILS))


def reserve(rt: Runtime, user_id: str, key: str) -> KeptResponse | None:
    """Reserve ``key`` for a request of the user ``user_id``; None, or what the key holds.

    A key older than the retention is deleted and reserved afresh.
    """
    keys = rt.storage.idempotency_keys
    now = utcnow()
    retention = timedelta(hours=rt.settings.idempotency_key_retention_hours)
    for _ in range(2):
        if keys.try_reserve(user_id, key, now):
            return None
        kept = keys.get(user_id, key)
        if kept is None:
            continue  # released meanwhile: try again
        if kept.created_at >= now - retention:
            return kept
        keys.delete(user_id, key, kept.created_at)
    raise IdempotencyKeyInProgress(_in_progress_message(key), dict(_DETAILS))


def keep(rt: Runtime, user_id: str, key: str, request_hash: str, status_code: int,
         response: Any, batch_id: str | None) -> None:
    """Keep the answer of the request that reserved ``key``, cut to ``MAX_KEPT_ANSWER_BYTES``.

    An answer over the cap is not stored whole: a key already marked with its
    batch stays so (a retry shows the batch as it is then), a key marked with
    batches per tenant becomes resumable (a retry answers them again); any
    other keeps its status and the start of its message.
    """
    keys = rt.storage.idempotency_keys
    if len(json.dumps(response, default=str)) > MAX_KEPT_ANSWER_BYTES:
        marked = keys.get(user_id, key)
        if marked is not None and marked.status_code == CREATED:
            return
        if marked is not None and marked.batch_id is not None:
            keys.release(user_id, key)
            return
        response = _cut(status_code, response)
    keys.keep(user_id, key, request_hash, status_code, response, batch_id)


def _cut(status_code: int, response: Any) -> dict[str, Any]:
    """What is kept of an answer too large to keep: its status and the start of its message."""
    message = response.get("error") if isinstance(response, dict) else None
    return {"status": status_code,
            "error": str(message or "The first answer was too large to keep")[:_KEPT_MESSAGE],
            "details": {"truncated": True}}


def release(rt: Runtime, user_id: str, key: str) -> None:
    """Forget a reservation whose answer is not kept, so a retry runs the request again;
    a key that has batches per tenant becomes resumable instead."""
    rt.storage.idempotency_keys.release(user_id, key)


def resume(rt: Runtime, user_id: str, key: str, kept: KeptResponse) -> dict[str, str]:
    """Take the ``RESUMABLE`` key ``kept`` (as ``replay`` checked it) for this retry; returns
    the batches its request created, by tenant. Raises if another retry took it first."""
    keys = rt.storage.idempotency_keys
    if not keys.try_resume(user_id, key, kept.request_hash):
        raise IdempotencyKeyInProgress(_in_progress_message(key), dict(_DETAILS))
    return keys.tenant_batches(user_id, key)


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
