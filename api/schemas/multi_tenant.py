"""Schemas of ``POST /batches/multi-tenant``: one batch for each of several tenants."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from api.schemas.batches import BatchCreateSchema
from batchq.domain.storable import is_utf8

MAX_TENANTS = 1000


def _storable(tenant: str) -> None:
    if "\x00" in tenant or not is_utf8(tenant):
        raise ValidationError("must not contain U+0000 or a lone surrogate (\\ud800-\\udfff)")


def _unique(values: list[str]) -> None:
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValidationError(f"each tenant may appear once; repeated: {', '.join(repeated)}")


class MultiTenantCreateSchema(BatchCreateSchema):
    """``POST /batches/multi-tenant``: ``POST /batches``'s body with ``tenantIds``."""

    class Meta:
        exclude = ("tenant_id",)

    tenant_ids = fields.List(
        fields.Str(validate=[validate.Length(min=1, max=200), _storable]), data_key="tenantIds",
        required=True, validate=[validate.Length(min=1, max=MAX_TENANTS), _unique],
        metadata={"description": "The tenants to create the batch for, each once"})


class MultiTenantResultSchema(Schema):
    """Which tenants got their batch, and what stopped the others."""

    posted_success = fields.Dict(keys=fields.Str(), values=fields.Str(),
                                 data_key="postedSuccess",
                                 metadata={"description": "{tenant: batch id}"})
    posted_problems = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()),
                                  data_key="postedProblems",
                                  metadata={"description": "{tenant: [messages]}"})
