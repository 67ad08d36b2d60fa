"""Schemas of the query string of an NDJSON or CSV ``POST /batches``."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import RAISE, ValidationError, fields, validate

from api.schemas.batches import BatchCreateSchema, RetryPolicySchema, run_windows_field
from batchq.domain.throttling import (
    MAX_CONCURRENT_JOBS,
    MAX_ITEMS_PER_SECOND,
    MIN_ITEMS_PER_SECOND,
)


class JSONObjectText(fields.Field):
    """A query parameter holding the JSON text of an object, e.g. ``{"url": "..."}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dict[str, Any]:
        try:
            loaded = current_app.json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ValidationError(f"must be the JSON text of an object: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValidationError("must be the JSON text of an object, e.g. {\"a\": 1}")
        return loaded


class JSONText(fields.Field):
    """A query parameter holding JSON text, loaded by ``inner`` (e.g. ``runWindows``)."""

    def __init__(self, inner: fields.Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            loaded = current_app.json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ValidationError(f"must be JSON text: {exc}") from exc
        return self.inner.deserialize(loaded)


class NullableInt(fields.Int):
    """An integer, or ``null`` / ``none`` in a query string for "no value"."""

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None,
                    **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("null", "none"):
            value = None
        return super().deserialize(value, attr, data, **kwargs)


class NullableFloat(fields.Float):
    """A float, or ``null`` / ``none`` in a query string for "no value"."""

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None,
                    **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("null", "none"):
            value = None  # before validation, which a None from _deserialize would not skip
        return super().deserialize(value, attr, data, **kwargs)


class UploadQuerySchema(BatchCreateSchema):
    """The query string of an NDJSON or CSV ``POST /batches``: the JSON body's fields but items."""

    class Meta:
        unknown = RAISE
        exclude = ("items",)

    params = JSONObjectText(load_default=dict, metadata={  # type: ignore[assignment]
        "type": "string", "description": "The type's parameters, as the JSON text of an object"})
    failure_threshold = NullableFloat(
        data_key="failureThreshold", allow_none=True,
        validate=validate.Range(min=0, max=1, min_inclusive=False),
        metadata={"description": "Abort when failed/processed reaches it; null disables"})
    retry_policy = JSONText(  # type: ignore[assignment]
        fields.Nested(RetryPolicySchema), data_key="retryPolicy", metadata={
            "type": "string", "description": 'The item retry policy\'s numbers as JSON text, '
                                             'e.g. {"maxAttempts": 5}'})
    run_windows = JSONText(  # type: ignore[assignment]
        run_windows_field(), data_key="runWindows", allow_none=True, metadata={
            "type": "string", "description": "The run windows as the JSON text of a list"})
    max_items_per_second = NullableFloat(
        data_key="maxItemsPerSecond", allow_none=True,
        validate=validate.Range(min=MIN_ITEMS_PER_SECOND, max=MAX_ITEMS_PER_SECOND),
        metadata={"description": "Items started per second across all workers; null: none"})
    max_concurrent_jobs = NullableInt(
        data_key="maxConcurrentJobs", allow_none=True,
        validate=validate.Range(min=1, max=MAX_CONCURRENT_JOBS),
        metadata={"description": "Pages of this batch running at once; null: no limit"})


class UploadQueryDocSchema(UploadQuerySchema):
    """The OpenAPI description of the query: ``type`` is needed by NDJSON and CSV only."""

    type = fields.Str(metadata={"description": "NDJSON and CSV uploads: the batch type's code "
                                "(required); a JSON body carries it in the body instead"})
