"""Delivering completion webhooks: one attempt per ``batchq.deliver`` message, retried with
exponential back-off over hours by the sweep that beat runs.

A delivery row exists once its batch's final status committed (``batchq.storage.deliveries``).
The finaliser sends a deliver message right after; when that message is lost, or an
attempt failed and its next one is due, ``dispatch_due`` sends another. An attempt runs
only after winning the delivery (``claim``), so a redelivered message, two sweeps or two
beats never send one delivery twice at once; a receiver may still see a repeat after a
worker died mid-attempt (at least once), with the same ``webhook-id``.
"""

from __future__ import annotations

import logging
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from batchq.adapters.egress import EgressPolicy
from batchq.adapters.webhook_sender import Attempt, post
from batchq.domain.webhooks import (
    SECRET_BYTES,
    DeliveryStatus,
    answer_outcome,
    format_secret,
    retry_delay,
    webhook_headers,
)
from batchq.runtime import Runtime
from batchq.storage.common import Row, utcnow
from batchq.storage.deliveries import WebhookSecretRepository

log = logging.getLogger(__name__)
#: Deliveries one sweep dispatches at most; the next sweep takes the rest.
SWEEP_LIMIT = 200


def send_deliveries(rt: Runtime, batch_id: str) -> int:
    """Send a deliver message for each pending delivery of the batch (after it finished)."""
    ids = rt.storage.deliveries.pending_ids(batch_id)
    for delivery_id in ids:
        rt.send("deliver", delivery_id)
    return len(ids)


def dispatch_due(rt: Runtime) -> int:
    """The sweep: a deliver message for each delivery that is due and has none queued."""
    now = utcnow()
    stale_before = now - timedelta(seconds=rt.settings.requeue_after_seconds)
    ids = rt.storage.deliveries.dispatch_due(now, stale_before, SWEEP_LIMIT)
    for delivery_id in ids:
        rt.send("deliver", delivery_id)
    if ids:
        log.info("Dispatched %d due webhook deliveries.", len(ids))
    return len(ids)


def deliver(rt: Runtime, delivery_id: str) -> DeliveryStatus | None:
    """Make one attempt at a due delivery; returns its status after it, None if not ours."""
    now = utcnow()
    timeout = rt.settings.webhook_timeout_seconds
    delivery = rt.storage.deliveries.claim(delivery_id, now,
                                           now + timedelta(seconds=2 * timeout + 30))
    if delivery is None:
        return None
    signing = signing_secrets(rt.storage.webhook_secrets, delivery["tenant_key"], now)
    timestamp = int(now.replace(tzinfo=UTC).timestamp())
    headers = webhook_headers(signing, delivery["id"], timestamp, delivery["body"])
    attempt = post(EgressPolicy.from_settings(rt.settings), delivery["url"], delivery["body"],
                   headers, timeout)
    status, next_at = _what_follows(rt, delivery, attempt, now)
    rt.storage.deliveries.record_attempt(
        delivery, {"started_at": now, "duration_ms": attempt.duration_ms,
                   "status_code": attempt.status_code, "error": attempt.error},
        status, next_at)
    _log_attempt(delivery, attempt, status, next_at)
    return status


def _what_follows(rt: Runtime, delivery: Row, attempt: Attempt,
                  now: datetime) -> tuple[DeliveryStatus, datetime | None]:
    status = DeliveryStatus.FAILED if attempt.refused else answer_outcome(attempt.status_code)
    last_attempt = delivery["attempts"] >= rt.settings.webhook_max_attempts
    if status is DeliveryStatus.PENDING and last_attempt:
        status = DeliveryStatus.FAILED
    if status is not DeliveryStatus.PENDING:
        return status, None
    settings = rt.settings
    delay = retry_delay(delivery["attempts"], settings.webhook_retry_first_seconds,
                        settings.webhook_retry_max_seconds, attempt.retry_after, random.random)
    return status, now + timedelta(seconds=delay)


def _log_attempt(delivery: Row, attempt: Attempt, status: DeliveryStatus,
                 next_at: datetime | None) -> None:
    what = f"{delivery['event']} of batch {delivery['batch_id']} ({delivery['id']})"
    if status is DeliveryStatus.DELIVERED:
        log.info("Delivered %s on attempt %d.", what, delivery["attempts"])
    elif status is DeliveryStatus.FAILED:
        log.warning("Gave up delivering %s after attempt %d: %s.", what, delivery["attempts"],
                    attempt.error)
    else:
        log.info("Attempt %d of %s failed (%s); next attempt at %s.", delivery["attempts"], what,
                 attempt.error, next_at)


def signing_secrets(repository: WebhookSecretRepository, key: str, now: datetime) -> list[str]:
    """The secrets that sign the tenant's webhooks now: its secret (created on first use),
    and the previous one while a rotation overlaps."""
    row: Any = repository.get(key)
    if row is None:
        row = repository.create_if_missing(key, new_secret(), now)
    signing = [row["secret"]]
    if row["previous_secret"] and row["previous_until"] and row["previous_until"] > now:
        signing.append(row["previous_secret"])
    return signing


def new_secret() -> str:
    """A fresh random signing secret, ``whsec_...``."""
    return format_secret(secrets.token_bytes(SECRET_BYTES))
