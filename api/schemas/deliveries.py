"""Schemas of ``/batches/{id}/deliveries``: the completion webhooks of a batch and their log."""

from __future__ import annotations

from marshmallow import Schema, fields

from api.schemas.common import UtcDateTime


class DeliveryAttemptSchema(Schema):
    """One attempt at a delivery: when, how long, what the receiver answered."""

    attempt = fields.Int()
    started_at = UtcDateTime(data_key="startedAt")
    duration_ms = fields.Int(data_key="durationMs")
    status_code = fields.Int(data_key="statusCode", allow_none=True,
                             metadata={"description": "null when no answer came"})
    error = fields.Str(allow_none=True, metadata={"description": "Why it failed; null on 2xx"})


class DeliverySchema(Schema):
    """One webhook of the batch: its event, where it goes, and how its delivery went."""

    id = fields.Str(metadata={"description": "The webhook-id header: the same on every attempt"})
    event = fields.Str(metadata={"description": "batch.complete, batch.success, batch.failed "
                                                "or batch.cancelled"})
    url = fields.Str()
    status = fields.Str(metadata={"description": "pending, delivered or failed (given up)"})
    attempts = fields.Int()
    created_at = UtcDateTime(data_key="createdAt")
    next_attempt_at = UtcDateTime(data_key="nextAttemptAt", allow_none=True)
    finished_at = UtcDateTime(data_key="finishedAt", allow_none=True)
    last_status_code = fields.Int(data_key="lastStatusCode", allow_none=True)
    last_error = fields.Str(data_key="lastError", allow_none=True)
    payload = fields.Dict(metadata={"description": "The JSON body sent"})
    log = fields.List(fields.Nested(DeliveryAttemptSchema), metadata={
        "description": "Every attempt, oldest first"})
