"""Schemas of the media-archive batch API (``/media-archive/batches/``): batchq's own batch
schemas with the archive's status alias and its cleanup date."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

from api.schemas.batches import (
    BatchListItemSchema,
    BatchPatchSchema,
    BatchQuerySchema,
    BatchSchema,
)
from api.schemas.common import UtcDateTime
from batchq.domain.statuses import BatchStatus

#: The document spells Cancelling with three l; a status given as input may be spelt so.
STATUS_ALIASES = {"Cancellling": BatchStatus.CANCELLING.value}
STATUSES = [status.value for status in BatchStatus]


class ArchiveStatus(fields.Str):
    """One of the nine statuses, or the document's spelling ``Cancellling`` of Cancelling."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = STATUS_ALIASES.get(text, text)
        if text not in STATUSES:
            raise ValidationError(f"Must be one of: {', '.join(STATUSES)} (or Cancellling)")
        return text


class MediaArchiveQuerySchema(BatchQuerySchema):
    """``GET batches/``: batchq's filters, sort and window; ``status`` takes the alias."""

    status = ArchiveStatus(metadata={"enum": [*STATUSES, *STATUS_ALIASES]})


class MediaArchivePatchSchema(BatchPatchSchema):
    """``PATCH batches/{id}``: suspended, description, or status Cancelling (a cancel)."""

    status = ArchiveStatus(metadata={
        "enum": [BatchStatus.CANCELLING.value, *STATUS_ALIASES],
        "description": "Cancelling (or Cancellling) cancels the batch, as DELETE does"})


class _CleanupDate:
    cleanup_date = UtcDateTime(data_key="cleanupDate", allow_none=True, metadata={
        "description": "When the cleanup deletes the finished batch (retentionDays, 30 by "
                       "default, after finishedAt); null while it runs"})


class MediaArchiveBatchSchema(BatchSchema):
    """A batch, as ``GET /batches/{id}`` shows it, with its cleanup date."""

    cleanup_date = _CleanupDate.cleanup_date


class MediaArchiveListItemSchema(BatchListItemSchema):
    """A listed batch with its cleanup date."""

    cleanup_date = UtcDateTime(data_key="cleanupDate", allow_none=True)
