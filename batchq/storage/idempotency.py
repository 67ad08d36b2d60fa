"""The idempotency_keys table: a user's key, the hash of its request, and the answer kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.storage.tables import idempotency_key_batches, idempotency_keys

#: The ``status_code`` of a reserved key whose request is still running.
IN_PROGRESS = 0
#: The ``status_code`` of a key whose batch is committed but whose answer is not kept
#: (yet, or ever: the process may have failed after the commit); ``batch_id`` names it.
CREATED = 1
#: The ``status_code`` of a key whose request creates one batch per tenant and ended (failed)
#: after some of them were committed (``idempotency_key_batches`` names them): a retry of
#: the same request resumes it (``try_resume``) instead of creating them again.
RESUMABLE = 2


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

    user_id: str
    key: str
    request_hash: Callable[[], str]
    #: For a request creating one batch per tenant: the tenant of the batch about to be
    #: created (None: the request creates one batch) ...
    tenant: str | None = None
    #: ... and the batches an earlier try of the request made, by tenant (it is resumed).
    created: Mapping[str, str] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> CreationClaim:
        """The claim for ``tenant``'s batch."""
        return replace(self, tenant=tenant)


def mark_created(conn: sa.Connection, claim: CreationClaim, batch_id: str) -> None:
    """In the creating transaction: the reserved key of ``claim`` now names ``batch_id``.

    A key of one batch becomes ``CREATED``. A key of one batch per tenant stays in
    progress with ``batch_id`` the latest, and gets a row naming the tenant's
    batch (one row per batch, so a post to n tenants writes n rows, not n maps):
    if the request fails, ``release`` keeps the key for a retry.
    """
    status = {"status_code": CREATED} if claim.tenant is None else {}
    marked = conn.execute(
        sa.update(idempotency_keys)
        .where(idempotency_keys.c.user_id == claim.user_id,
               idempotency_keys.c.key == claim.key)
        .where(idempotency_keys.c.status_code == IN_PROGRESS)
        .values(request_hash=claim.request_hash(), batch_id=batch_id, **status))
    if claim.tenant is not None and marked.rowcount == 1:
        conn.execute(sa.insert(idempotency_key_batches).values(
            user_id=claim.user_id, key=claim.key, tenant_id=claim.tenant, batch_id=batch_id))


class IdempotencyKeyRepository:
    """Keys per user (by id): reserved while their request runs, then holding its answer."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def try_reserve(self, user_id: str, key: str, now: datetime) -> bool:
        """Reserve ``key`` for a request of the user ``user_id``; False if it exists already."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(idempotency_keys).values(
                    user_id=user_id, key=key, request_hash="", status_code=IN_PROGRESS,
                    response={}, created_at=now))
        except sa.exc.IntegrityError:
            return False
        return True

    def get(self, user_id: str, key: str) -> KeptResponse | None:
        """What ``key`` of the user ``user_id`` holds, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(idempotency_keys)
                .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            ).mappings().first()
        if row is None:
            return None
        return KeptResponse(row["request_hash"], row["status_code"], row["response"],
                            row["created_at"], row["batch_id"])

    def keep(self, user_id: str, key: str, request_hash: str, status_code: int,
             response: Any, batch_id: str | None) -> None:
        """Store the answer of the request that reserved ``key``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
                .values(request_hash=request_hash, status_code=status_code, response=response,
                        batch_id=batch_id))

    def release(self, user_id: str, key: str) -> None:
        """Forget a reservation whose request is still marked in progress, unless it created
        batches (one per tenant): then the key becomes ``RESUMABLE`` with them."""
        mine = (idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key,
                idempotency_keys.c.status_code == IN_PROGRESS)
        with self.engine.begin() as conn:
            conn.execute(sa.update(idempotency_keys).where(*mine)
                         .where(idempotency_keys.c.batch_id.is_not(None))
                         .values(status_code=RESUMABLE))
            conn.execute(sa.delete(idempotency_keys).where(*mine))

    def try_resume(self, user_id: str, key: str, request_hash: str) -> bool:
        """Take a ``RESUMABLE`` key for a retry of its request; False if another retry did."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
                .where(idempotency_keys.c.status_code == RESUMABLE,
                       idempotency_keys.c.request_hash == request_hash)
                .values(status_code=IN_PROGRESS))
            return bool(result.rowcount == 1)

    def tenant_batches(self, user_id: str, key: str) -> dict[str, str]:
        """The batches the request of ``key`` made one per tenant, by tenant."""
        with self.engine.connect() as conn:
            made = conn.execute(
                sa.select(idempotency_key_batches.c.tenant_id, idempotency_key_batches.c.batch_id)
                .where(idempotency_key_batches.c.user_id == user_id,
                       idempotency_key_batches.c.key == key))
            return {str(tenant): str(batch_id) for tenant, batch_id in made}

    def delete(self, user_id: str, key: str, created_at: datetime) -> None:
        """Delete ``key`` if it is still the one created at ``created_at`` (an expired key),
        with the batches it named."""
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(idempotency_keys)
                .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
                .where(idempotency_keys.c.created_at == created_at))
            if deleted.rowcount:
                conn.execute(sa.delete(idempotency_key_batches)
                             .where(idempotency_key_batches.c.user_id == user_id,
                                    idempotency_key_batches.c.key == key))

    def delete_expired(self, before: datetime) -> int:
        """Delete keys created before ``before``, with the batches they named; returns how
        many keys."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < before))
            key_gone = ~sa.exists().where(
                idempotency_keys.c.user_id == idempotency_key_batches.c.user_id,
                idempotency_keys.c.key == idempotency_key_batches.c.key)
            conn.execute(sa.delete(idempotency_key_batches).where(key_gone))
            return int(result.rowcount)
