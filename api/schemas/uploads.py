"""Schemas of the query string of an NDJSON or CSV ``POST /batches``."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import RAISE, ValidationError, fields, validate

from api.schemas.batches import BatchCreateSchema


class JSONObjectText(fields.Field):
    """A query parameter holding the JSON text of an object, e.g. ``{"url": "..."}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dict[str, Any]:
        try:
            loaded = current_app.json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"must be the JSON text of an object: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValidationError("must be the JSON text of an object, e.g. {\"a\": 1}")
        return loaded


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


class UploadQueryDocSchema(UploadQuerySchema):
    """The OpenAPI description of the query: ``type`` is needed by NDJSON and CSV only."""

    type = fields.Str(metadata={"description": "NDJSON and CSV uploads: the batch type's code "
                                "(required); a JSON body carries it in the body instead"})
