"""Fields and schemas every resource's schemas share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load


class UtcDateTime(fields.DateTime):
    """A time the database keeps as naive UTC, written as RFC 3339 with its offset (+00:00)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any,
                   **kwargs: Any) -> str | float | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class JsonBody(Schema):
    """A JSON request body, whose numbers and booleans must be JSON numbers and booleans.

    marshmallow alone would take ``"5"`` for an integer and ``0`` or ``"yes"`` for a
    boolean, which the OpenAPI document (and so every generated client) says are wrong.
    """

    @pre_load
    def refuse_loose_scalars(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        errors = {}
        for field in self.load_fields.values():
            name = field.data_key or field.name
            value = data.get(name)
            if value is None:
                continue
            if isinstance(field, fields.Boolean) and not isinstance(value, bool):
                errors[name] = ["Not a valid boolean: use true or false."]
            elif isinstance(field, fields.Number) and (
                    isinstance(value, bool) or not isinstance(value, int | float)):
                errors[name] = ["Not a valid number."]
        if errors:
            raise ValidationError(errors)
        return data


class CommaList(fields.Field):
    """A comma-separated list in a query parameter: ``a,b,c``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        parts = [part.strip() for part in str(value).split(",")]
        if not all(parts):
            raise ValidationError("must be a comma list of non-empty values, e.g. acme,globex")
        return parts


class WorkQueueStatusSchema(Schema):
    """Pages of a batch waiting in the broker or running, and the processes running them."""

    queued = fields.Int(metadata={"description": "Pages sent to the broker, not yet started"})
    running = fields.Int(metadata={"description": "Pages running now"})
    workers = fields.List(fields.Str(), metadata={"description": "Processes running them"})
