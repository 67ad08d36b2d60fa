"""``/batches/multi-tenant``: post one batch to several tenants at once."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate

from api.auth import current_caller
from api.blueprint import Blueprint
from api.idempotency import idempotent
from api.schemas import BatchCreateSchema
from batchq.domain.storable import is_utf8
from batchq.runtime import Runtime
from batchq.service.creation import NewBatch
from batchq.service.multi_tenant import create_for_tenants

MAX_TENANTS = 1000
_OPTIONS = ("description", "page_size", "jobs_per_seed", "failure_threshold", "retention_days")

blp = Blueprint("multi-tenant", __name__, url_prefix="/batches",
                description="One batch for each of several tenants")


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


@blp.route("/multi-tenant")
class MultiTenantBatches(MethodView):
    @idempotent(blp)
    @blp.arguments(MultiTenantCreateSchema)
    @blp.response(200, MultiTenantResultSchema,
                  description="Every tenant got its batch (postedProblems is empty)")
    @blp.alt_response(207, schema=MultiTenantResultSchema,
                      description="Some tenants got no batch: postedProblems says why")
    @blp.alt_response(400, description="The body, its type, params or items are refused "
                                       "(they are the same for every tenant)")
    @blp.alt_response(401, description="No credential, or a wrong one")
    @blp.alt_response(403, description="You do not hold the MULTI_TENANT function")
    @blp.alt_response(413, description="More items than the configured maximum")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Create the same batch for each tenant of tenantIds"""
        rt: Runtime = current_app.extensions["batchq"]
        template = NewBatch(type=body["type"], params=body["params"],
                            **{name: body[name] for name in _OPTIONS if name in body})
        result = create_for_tenants(rt, current_caller(), template, body["items"],
                                    body["tenant_ids"])
        answer = {"posted_success": result.posted_success,
                  "posted_problems": result.posted_problems}
        return answer, 207 if result.posted_problems else 200
