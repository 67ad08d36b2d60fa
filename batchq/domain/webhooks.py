"""Completion webhooks, as rules: which events a final status sends, their body, their
signature (the Standard Webhooks scheme), and when a failed delivery is tried again.

docs/events-and-webhooks.md describes them for integrators.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from batchq.domain.statuses import BatchStatus

#: The prefix of a serialized signing secret (the spec's ``whsec_``).
SECRET_PREFIX = "whsec_"
#: Bytes of a new secret: the spec asks for 24 to 64.
SECRET_BYTES = 32
#: The tenant key of batches without a tenant (a real tenant id is never empty).
NO_TENANT = ""


class WebhookEvent(StrEnum):
    """The events of a batch's end."""

    COMPLETE = "batch.complete"  # every item ran, failures or not
    SUCCESS = "batch.success"  # every item ran and succeeded
    FAILED = "batch.failed"  # TooManyFailed, PostBatchFailed, Failed
    CANCELLED = "batch.cancelled"


class DeliveryStatus(StrEnum):
    """A delivery is pending until the receiver answers 2xx, or batchq gives up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


_EVENTS: dict[BatchStatus, tuple[WebhookEvent, ...]] = {
    BatchStatus.COMPLETED: (WebhookEvent.COMPLETE, WebhookEvent.SUCCESS),
    BatchStatus.COMPLETED_WITH_ERRORS: (WebhookEvent.COMPLETE,),
    BatchStatus.TOO_MANY_FAILED: (WebhookEvent.FAILED,),
    BatchStatus.POST_BATCH_FAILED: (WebhookEvent.FAILED,),
    BatchStatus.FAILED: (WebhookEvent.FAILED,),
    BatchStatus.CANCELLED: (WebhookEvent.CANCELLED,),
}


def events_of(status: BatchStatus | str) -> tuple[WebhookEvent, ...]:
    """The events a batch that ends with ``status`` sends (none for an active status)."""
    return _EVENTS.get(BatchStatus(status), ())


def tenant_key(tenant_id: str | None) -> str:
    """The key of the tenant's signing secret; batches without a tenant share one."""
    return NO_TENANT if tenant_id is None else tenant_id


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def event_body(event: WebhookEvent, batch: Mapping[str, Any], occurred_at: datetime) -> str:
    """The JSON body of ``event`` (compact: these exact bytes are signed and sent)."""
    data = {
        "batchId": batch["id"], "batchType": batch["type"], "status": str(batch["status"]),
        "tenantId": batch["tenant_id"], "createUserId": batch["create_user_id"],
        "totalItems": batch["total_items"], "processedItems": batch["processed_items"],
        "failedItems": batch["failed_items"],
        "unprocessedItems": batch["total_items"] - batch["processed_items"],
        "createdAt": _stamp(batch["created_at"]), "startedAt": _stamp(batch["started_at"]),
        "finishedAt": _stamp(batch["finished_at"]), "failureReason": batch["failure_reason"],
        "url": f"/batches/{batch['id']}",
    }
    body = {"type": event.value, "timestamp": _stamp(occurred_at), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# -- signatures ------------------------------------------------------------------------


def format_secret(raw: bytes) -> str:
    """A secret as the spec serializes it: ``whsec_`` and base64."""
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a serialized secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], message_id: str, timestamp: int, body: str) -> str:
    """``webhook-signature``: one signature per secret, space-separated (rotation signs with
    the new secret and the previous one, so a receiver verifies with either)."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)


def webhook_headers(secrets: Sequence[str], message_id: str, timestamp: int,
                    body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, message_id, timestamp, body)}


# -- retries ---------------------------------------------------------------------------


def answer_outcome(status_code: int | None) -> DeliveryStatus:
    """What an answer means: 2xx delivered; 410 Gone: the receiver wants no more (give up);
    anything else, no answer included: try again later (``PENDING``)."""
    if status_code is not None and 200 <= status_code < 300:
        return DeliveryStatus.DELIVERED
    if status_code == 410:
        return DeliveryStatus.FAILED
    return DeliveryStatus.PENDING


def retry_delay(attempts: int, first: float, maximum: float, retry_after: float | None = None,
                rng: Callable[[], float] = lambda: 1.0) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones.

    Exponential: ``first``, then four times as long each time, up to ``maximum``,
    jittered within the upper quarter so receivers coming back from an outage
    are not hit by every delivery at once. A ``Retry-After`` longer than that
    is obeyed, up to ``maximum``.
    """
    ceiling = min(maximum, first * 4.0 ** max(attempts - 1, 0))
    delay = ceiling * (0.75 + 0.25 * rng())
    if retry_after is not None:
        delay = max(delay, min(retry_after, maximum))
    return delay
