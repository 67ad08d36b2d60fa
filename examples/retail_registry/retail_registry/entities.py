"""The registry's entities, their references and their execution order (the registry batch API)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

#: The registry batch API's "batch execution order - customer domain": a kind's stage is its index.
KINDS = ("Block", "Chain", "Wholesaler", "Customer")

#: The references each kind may carry: payload field -> referenced kind.
REFERENCES: dict[str, dict[str, str]] = {
    "Block": {},
    "Chain": {"block": "Block"},
    "Wholesaler": {},
    "Customer": {"block": "Block", "chain": "Chain", "wholesaler": "Wholesaler"},
}


class Entity(Schema):
    """One registry entity, e.g. ``{"kind": "Customer", "id": "c-1", "name": "...",
    "block": "b-1", "chain": "ch-1", "wholesaler": "w-1"}``."""

    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    deleted = fields.Bool(load_default=False)
    block = fields.Str(allow_none=True, validate=validate.Length(min=1, max=100))
    chain = fields.Str(allow_none=True, validate=validate.Length(min=1, max=100))
    wholesaler = fields.Str(allow_none=True, validate=validate.Length(min=1, max=100))

    @validates_schema
    def _references_fit_the_kind(self, data: dict[str, Any], **_: Any) -> None:
        allowed = REFERENCES.get(data.get("kind", ""), {})
        for field in ("block", "chain", "wholesaler"):
            if data.get(field) is not None and field not in allowed:
                raise ValidationError(f"a {data['kind']} has no {field}", field)


def stage_of(payload: Any) -> int:
    """The stage of an entity: Block 0 < Chain 1 < Wholesaler 2 < Customer 3."""
    kind = payload.get("kind") if isinstance(payload, dict) else None
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return KINDS.index(kind)


def references(entity: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The entity's references that are set: payload field -> (referenced kind, id)."""
    fields_ = REFERENCES[entity["kind"]]
    return {field: (kind, entity[field]) for field, kind in fields_.items()
            if entity.get(field) is not None}
