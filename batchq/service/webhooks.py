"""Completion webhooks as the API and the CLI offer them: a batch's delivery log, and the
tenants' signing secrets (shown, rotated)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from batchq.domain.permissions import Caller
from batchq.domain.webhooks import tenant_key
from batchq.engine.deliveries import new_secret, signing_secrets
from batchq.runtime import Runtime
from batchq.service.listing import check_access
from batchq.storage.common import utcnow
from batchq.storage.deliveries import WebhookSecretRepository


def batch_deliveries(rt: Runtime, caller: Caller, batch_id: str) -> list[dict[str, Any]]:
    """The batch's webhook deliveries, each with its attempts, if ``caller`` may read it."""
    check_access(rt, caller, batch_id)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for attempt in rt.storage.deliveries.attempts_of_batch(batch_id):
        attempts.setdefault(attempt["delivery_id"], []).append(dict(attempt))
    return [{**delivery, "payload": json.loads(delivery["body"]),
             "log": attempts.get(delivery["id"], [])}
            for delivery in rt.storage.deliveries.of_batch(batch_id)]


def current_secrets(repository: WebhookSecretRepository, tenant_id: str | None) -> list[str]:
    """The secrets that sign the tenant's webhooks now (created on first use), newest first."""
    return signing_secrets(repository, tenant_key(tenant_id), utcnow())


def rotate_secret(repository: WebhookSecretRepository, tenant_id: str | None,
                  overlap_hours: float) -> str:
    """Give the tenant a new signing secret and return it; the previous one keeps signing
    too for ``overlap_hours`` (``BATCHQ_WEBHOOK_SECRET_OVERLAP_HOURS``), so receivers can
    switch without missing a webhook."""
    now = utcnow()
    secret = new_secret()
    repository.rotate(tenant_key(tenant_id), secret, now, now + timedelta(hours=overlap_hours))
    return secret
