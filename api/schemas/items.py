"""Schemas of ``/batches/{id}/items``, ``/errors`` and ``/errors/summary``."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import UtcDateTime
from batchq.domain.item_outcomes import DEFAULT_TOP_MESSAGES, MAX_TOP_MESSAGES, ItemStatus
from batchq.domain.lists import DEFAULT_MAX_RESULTS, MAX_RESULTS

_STATUSES = [status.value for status in ItemStatus]


class WindowQuerySchema(Schema):
    """``firstResult`` and ``maxResults``; out of range is a 400, never a silent clamp."""

    class Meta:
        unknown = RAISE

    first_result = fields.Int(data_key="firstResult", load_default=0,
                              validate=validate.Range(min=0, max=2**31 - 1),
                              metadata={"description": "How many rows to skip (default 0)"})
    max_results = fields.Int(data_key="maxResults", load_default=DEFAULT_MAX_RESULTS,
                             validate=validate.Range(min=1, max=MAX_RESULTS),
                             metadata={"description": f"At most this many rows, 1 to "
                                                      f"{MAX_RESULTS} (default "
                                                      f"{DEFAULT_MAX_RESULTS})"})
    after_index = fields.Int(data_key="afterIndex", validate=validate.Range(min=-1, max=2**62),
                             metadata={"description": "A cursor: list the rows after the item "
                                                      "at this index (nextAfterIndex of the "
                                                      "previous answer); as fast at the "
                                                      "millionth row as at the first. Not with "
                                                      "firstResult"})

    @validates_schema
    def one_way_to_page(self, data: dict[str, Any], **_: Any) -> None:
        if "after_index" in data and data.get("first_result"):
            raise ValidationError("afterIndex and firstResult page in two ways: send one",
                                  "afterIndex")


class ItemQuerySchema(WindowQuerySchema):
    """``GET /batches/{id}/items``."""

    status = fields.Str(validate=validate.OneOf(_STATUSES), metadata={
        "description": "Only items with this outcome (default: every item)"})


class SummaryQuerySchema(Schema):
    """``GET /batches/{id}/errors/summary``."""

    class Meta:
        unknown = RAISE

    limit = fields.Int(load_default=DEFAULT_TOP_MESSAGES,
                       validate=validate.Range(min=1, max=MAX_TOP_MESSAGES),
                       metadata={"description": f"How many messages, 1 to {MAX_TOP_MESSAGES} "
                                                f"(default {DEFAULT_TOP_MESSAGES})"})


class ItemErrorSchema(Schema):
    index = fields.Int(attribute="seq", metadata={"description": "The item's 0-based position "
                                                                 "in the input"})
    key = fields.Str()
    message = fields.Str()
    failed_at = UtcDateTime(data_key="failedAt")
    attempts = fields.Int(metadata={"description": "How many times the item ran, its last "
                                                   "failing run included"})


class ErrorPageSchema(Schema):
    """A window of a batch's item errors, in input order."""

    total = fields.Int(metadata={"description": "All errors of the batch (= failedItems)"})
    first_result = fields.Int(data_key="firstResult")
    max_results = fields.Int(data_key="maxResults")
    after_index = fields.Int(data_key="afterIndex", allow_none=True)
    next_after_index = fields.Int(data_key="nextAfterIndex", allow_none=True, metadata={
        "description": "Pass as afterIndex for the next window; null: this window is the last"})
    errors = fields.List(fields.Nested(ItemErrorSchema))


class ItemSchema(Schema):
    index = fields.Int(attribute="seq", metadata={"description": "The item's 0-based position "
                                                                 "in the input"})
    key = fields.Str()
    stage = fields.Int()
    payload = fields.Raw(allow_none=True)
    status = fields.Str(validate=validate.OneOf(_STATUSES))
    error = fields.Str(metadata={"description": "The error message; only on failed items"})


class ItemPageSchema(Schema):
    """A window of a batch's items, in input order."""

    total = fields.Int(metadata={"description": "Items of the batch with that status"})
    status = fields.Str(allow_none=True, validate=validate.OneOf(_STATUSES),
                        metadata={"description": "The filter, null for every item"})
    first_result = fields.Int(data_key="firstResult")
    max_results = fields.Int(data_key="maxResults")
    after_index = fields.Int(data_key="afterIndex", allow_none=True)
    next_after_index = fields.Int(data_key="nextAfterIndex", allow_none=True, metadata={
        "description": "Pass as afterIndex for the next window; null: this window is the last"})
    items = fields.List(fields.Nested(ItemSchema))


class MessageCountSchema(Schema):
    message = fields.Str()
    count = fields.Int()
    sample_keys = fields.List(fields.Str(), data_key="sampleKeys",
                              metadata={"description": "Up to 3 keys, first in input order"})


class ErrorSummarySchema(Schema):
    """The most frequent error messages of a batch."""

    failed_items = fields.Int(data_key="failedItems")
    distinct_messages = fields.Int(data_key="distinctMessages")
    messages = fields.List(fields.Nested(MessageCountSchema),
                           metadata={"description": "By count, highest first"})
