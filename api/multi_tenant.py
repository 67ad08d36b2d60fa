"""``/batches/multi-tenant``: post one batch to several tenants at once."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.idempotency import idempotent
from api.schemas.multi_tenant import MultiTenantCreateSchema, MultiTenantResultSchema
from batchq.service.creation import NewBatch
from batchq.service.multi_tenant import create_for_tenants

_OPTIONS = ("description", "page_size", "jobs_per_seed", "failure_threshold", "retention_days",
            "callback_url")

blp = Blueprint("multi-tenant", __name__, url_prefix="/batches",
                description="One batch for each of several tenants")


@blp.route("/multi-tenant")
class MultiTenantBatches(MethodView):
    @idempotent(blp, per_tenant=True)
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
        rt = runtime()
        template = NewBatch(type=body["type"], params=body["params"],
                            **{name: body[name] for name in _OPTIONS if name in body})
        result = create_for_tenants(rt, current_caller(), template, body["items"],
                                    body["tenant_ids"])
        answer = {"posted_success": result.posted_success,
                  "posted_problems": result.posted_problems}
        return answer, 207 if result.posted_problems else 200
