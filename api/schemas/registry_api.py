"""Schemas of the registry batch API (``/registry-api/batch``): postJob, jobStatus, the
multi-tenant postJob, and its error body; plus the mapping of its entities onto items."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from api.schemas.common import JsonBody
from api.schemas.multi_tenant import MAX_TENANTS, _storable, _unique

#: The document's "batch execution order - customer domain": a kind's stage is its index.
KINDS = ("Block", "Chain", "Wholesaler", "Customer")
#: The field that identifies each kind, most specific first: a Customer may name its Block.
ID_FIELDS = (("Customer", "customerId"), ("Wholesaler", "wholesalerId"),
             ("Chain", "chainId"), ("Block", "blockId"))
#: References to other entities, as the registry batch type names them.
REFERENCES = {"blockId": "block", "chainId": "chain", "wholesalerId": "wholesaler"}
MAX_ID_LENGTH = 500  # an item key's length


def entity_item(entity: Any) -> dict[str, Any] | None:
    """The batchq item of a registry entity, or None when the API cannot interpret it.

    ``{"blockId": "b1", "name": ...}`` becomes ``{"key": "b1", "stage": 0, "payload":
    {"kind": "Block", "id": "b1", "name": ...}}``; its references (``chainId``, ...)
    become ``chain``, ... .
    """
    if not isinstance(entity, dict):
        return None
    for kind, id_field in ID_FIELDS:
        entity_id = entity.get(id_field)
        if isinstance(entity_id, str) and 0 < len(entity_id) <= MAX_ID_LENGTH:
            payload = {REFERENCES.get(str(name), str(name)): value
                       for name, value in entity.items() if name != id_field}
            # Set last: an entity's own "kind" or "id" field must not change what it is.
            payload.update(kind=kind, id=entity_id)
            return {"key": entity_id, "stage": KINDS.index(kind), "payload": payload}
    return None


class Entities(fields.Field):
    """The ``data`` list, passed through: its entities are checked one by one."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("data must be a JSON array of entities")
        return value


class RegistryPostJobSchema(JsonBody):
    """``POST postJob``: the entities of one job."""

    class Meta:
        unknown = RAISE

    data = Entities(required=True, metadata={
        "type": "array", "items": {"type": "object"},
        "description": "Entities, each identified by blockId, chainId, wholesalerId or "
                       "customerId"})


class RegistryMultiTenantPostJobSchema(RegistryPostJobSchema):
    """``POST multiTenant/postJob``: the same entities for each tenant."""

    genero_tenant_ids = fields.List(
        fields.Str(validate=[validate.Length(min=1, max=200), _storable]),
        data_key="generoTenantIds", required=True,
        validate=[validate.Length(min=1, max=MAX_TENANTS), _unique])


class RegistryCorrelationSchema(Schema):
    correlation_id = fields.Str(data_key="correlationId", required=True,
                                metadata={"description": "Poll jobStatus with it"})


class RegistryJobStatusSchema(Schema):
    """``GET jobStatus/{correlationId}``."""

    correlation_id = fields.Str(data_key="correlationId", required=True)
    batch_job_status = fields.Str(data_key="batchJobStatus", required=True, validate=validate.OneOf(
        ["InProgress", "Completed", "CompletedWithErrors"]))
    no_of_items_posted = fields.Int(data_key="noOfItemsPosted", required=True)
    no_of_items_processed = fields.Int(data_key="noOfItemsProcessed", required=True)
    job_item_errors = fields.Dict(keys=fields.Str(), values=fields.Str(),
                                  data_key="jobItemErrors", required=True,
                                  metadata={"description": "{entity id: message}"})


class RegistryMultiTenantResultSchema(Schema):
    posted_success = fields.Dict(keys=fields.Str(), values=fields.Str(),
                                 data_key="postedSuccess", required=True,
                                 metadata={"description": "{tenant: correlation id}"})
    posted_problems = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()),
                                  data_key="postedProblems", required=True,
                                  metadata={"description": "{tenant: [messages]}"})


class RegistryErrorSchema(Schema):
    """The error body: a message and the specific problems (e.g. the refused entities)."""

    message = fields.Str(required=True)
    errors = fields.List(fields.Str(), required=True)
