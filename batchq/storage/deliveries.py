"""The deliveries of completion webhooks, their attempts (the delivery log), and the
tenants' signing secrets.

A batch's deliveries are written by ``record_completion`` inside the transaction
that gives the batch its final status (``BatchRepository.complete``), so a
delivery exists exactly when the final status committed; the unique index on
(batch_id, event) keeps it to one per event whatever races. A worker sends a
delivery only after winning it with a conditional update (``claim``), so a
redelivered message or a second sweep sends nothing twice at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from batchq.domain.statuses import BatchStatus
from batchq.domain.webhooks import DeliveryStatus, event_body, events_of, tenant_key
from batchq.storage.common import Row, first_row, rows
from batchq.storage.engine import is_postgres
from batchq.storage.tables import deliveries, delivery_attempts, webhook_secrets

_PENDING = DeliveryStatus.PENDING.value


def record_completion(conn: sa.Connection, batch: Mapping[str, Any], status: BatchStatus,
                      now: datetime, failure_reason: str | None) -> int:
    """Insert the deliveries of ``batch`` ending with ``status``, in the caller's transaction.

    ``batch`` is the row as it was before the final update. Returns how many
    were inserted (none without a ``callback_url``, none twice for one event).
    """
    url = batch.get("callback_url")
    if not url:
        return 0
    final = {**batch, "status": status, "finished_at": now, "failure_reason": failure_reason}
    values = [
        {"id": f"msg_{uuid.uuid4().hex}", "batch_id": batch["id"], "event": event.value,
         "tenant_key": tenant_key(batch["tenant_id"]), "url": url,
         "body": event_body(event, final, now), "status": _PENDING, "attempts": 0,
         "created_at": now, "next_attempt_at": now, "dispatched_at": now}
        for event in events_of(status)]
    if not values:
        return 0
    insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    statement = insert(deliveries).on_conflict_do_nothing(index_elements=["batch_id", "event"])
    return int(conn.execute(statement, values).rowcount or 0)


class DeliveryRepository:
    """Webhook deliveries and their attempts."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def of_batch(self, batch_id: str) -> list[Row]:
        """The batch's deliveries, oldest first (each event's, in event order)."""
        query = (sa.select(deliveries).where(deliveries.c.batch_id == batch_id)
                 .order_by(deliveries.c.created_at, deliveries.c.event))
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def attempts_of_batch(self, batch_id: str) -> list[Row]:
        """Every attempt of the batch's deliveries, in order."""
        query = (sa.select(delivery_attempts).where(delivery_attempts.c.batch_id == batch_id)
                 .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt))
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def pending_ids(self, batch_id: str) -> list[str]:
        """The batch's deliveries not yet delivered nor given up."""
        query = sa.select(deliveries.c.id).where(deliveries.c.batch_id == batch_id,
                                                 deliveries.c.status == _PENDING)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(deliveries.c.event)).scalars())

    def claim(self, delivery_id: str, now: datetime, until: datetime) -> dict[str, Any] | None:
        """Win a due delivery for one attempt, held until ``until``; None if not ours.

        Not ours: delivered or given up already, not due yet, or held by a live
        sender. The attempt is counted here, so a sender that dies still uses one.
        """
        with self.engine.begin() as conn:
            won = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status == _PENDING,
                       deliveries.c.next_attempt_at <= now)
                .where(sa.or_(deliveries.c.claimed_until.is_(None),
                              deliveries.c.claimed_until < now))
                .values(claimed_until=until, attempts=deliveries.c.attempts + 1)
            ).rowcount == 1
            if not won:
                return None
            return first_row(conn.execute(
                sa.select(deliveries).where(deliveries.c.id == delivery_id)))

    def record_attempt(self, delivery: Mapping[str, Any], attempt: Mapping[str, Any],
                       status: DeliveryStatus, next_attempt_at: datetime | None) -> None:
        """Log one attempt and what follows: delivered, given up, or pending until later."""
        finished = status is not DeliveryStatus.PENDING
        with self.engine.begin() as conn:
            conn.execute(sa.insert(delivery_attempts).values(
                delivery_id=delivery["id"], attempt=delivery["attempts"],
                batch_id=delivery["batch_id"], **attempt))
            conn.execute(
                sa.update(deliveries).where(deliveries.c.id == delivery["id"])
                .values(status=status.value, claimed_until=None, dispatched_at=None,
                        next_attempt_at=None if finished else next_attempt_at,
                        finished_at=attempt["started_at"] if finished else None,
                        last_status_code=attempt["status_code"], last_error=attempt["error"]))

    def dispatch_due(self, now: datetime, stale_before: datetime, limit: int = 100) -> list[str]:
        """Mark due deliveries as dispatched and return their ids, for a deliver message each.

        A delivery dispatched since ``stale_before`` is left alone: its message
        is presumably still queued. Two sweeps at once each dispatch a delivery
        at most once (a conditional update).
        """
        due = (sa.select(deliveries.c.id)
               .where(deliveries.c.status == _PENDING, deliveries.c.next_attempt_at <= now)
               .where(sa.or_(deliveries.c.claimed_until.is_(None),
                             deliveries.c.claimed_until < now))
               .where(sa.or_(deliveries.c.dispatched_at.is_(None),
                             deliveries.c.dispatched_at < stale_before))
               .order_by(deliveries.c.next_attempt_at).limit(limit))
        dispatched = []
        with self.engine.begin() as conn:
            for delivery_id in list(conn.execute(due).scalars()):
                if conn.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == _PENDING)
                    .where(sa.or_(deliveries.c.dispatched_at.is_(None),
                                  deliveries.c.dispatched_at < stale_before))
                    .values(dispatched_at=now)
                ).rowcount == 1:
                    dispatched.append(delivery_id)
        return dispatched


def delete_of_batches(conn: sa.Connection, batch_ids: Sequence[str]) -> None:
    """Delete the deliveries and attempts of ``batch_ids`` (retention), in the caller's
    transaction."""
    for table in (delivery_attempts, deliveries):
        conn.execute(sa.delete(table).where(table.c.batch_id.in_(list(batch_ids))))


class WebhookSecretRepository:
    """Each tenant's signing secret, and the previous one while a rotation overlaps."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> Row | None:
        """The secrets row of tenant ``key``, or None."""
        query = sa.select(webhook_secrets).where(webhook_secrets.c.tenant_key == key)
        with self.engine.connect() as conn:
            return first_row(conn.execute(query))

    def create_if_missing(self, key: str, secret: str, now: datetime) -> Row:
        """The tenant's row; ``secret`` becomes its secret if it had none (first one wins)."""
        with self.engine.begin() as conn:
            insert = postgresql.insert if is_postgres(conn) else sqlite.insert
            conn.execute(insert(webhook_secrets)
                         .values(tenant_key=key, secret=secret, rotated_at=now)
                         .on_conflict_do_nothing(index_elements=["tenant_key"]))
            row = first_row(conn.execute(
                sa.select(webhook_secrets).where(webhook_secrets.c.tenant_key == key)))
        assert row is not None
        return row

    def rotate(self, key: str, secret: str, now: datetime, previous_until: datetime) -> Row:
        """Make ``secret`` the tenant's secret; the one before signs too until
        ``previous_until``."""
        self.create_if_missing(key, secret, now)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(webhook_secrets)
                .where(webhook_secrets.c.tenant_key == key, webhook_secrets.c.secret != secret)
                .values(previous_secret=webhook_secrets.c.secret, previous_until=previous_until,
                        secret=secret, rotated_at=now))
            row = first_row(conn.execute(
                sa.select(webhook_secrets).where(webhook_secrets.c.tenant_key == key)))
        assert row is not None
        return row
